/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* For stingy standalone programs: no module and no afork-server at all.
 *
 * The program sets its locale, calls afork_early_init() (so that
 * libraries it uses later can make processes without executing anything),
 * then loads what its workers share (here: a table computed once), then
 * forks itself into a template with afork_process_fork_self(), while it
 * is still single-threaded. Ten workers are forked from that template; each runs
 * worker_run(), a function of the program, and sees the preloaded table
 * without computing it again.
 *
 * Shows: ten workers, each with its id and pid, all seeing the same table
 * that was computed once, before the fork. */
#include <afork/afork.h>
#include <glib/gi18n.h>

#include <locale.h>
#include <string.h>
#include <unistd.h>

#define N_WORKERS 10
#define TABLE_SIZE 100000

/* What the workers share, computed once in the program. */
static guint32 *table;
static guint64 table_sum;

static void
load_table (void)
{
  table = g_new (guint32, TABLE_SIZE);
  for (guint i = 0; i < TABLE_SIZE; i++)
    {
      table[i] = (i * 2654435761u) >> 7;
      table_sum += table[i];
    }
}

/* The line a worker writes, @sum being the sum of the table it sees. */
static char *
worker_line (const char *id,
             GPid        pid,
             guint64     sum)
{
  g_autofree char *sum_text = g_strdup_printf ("%" G_GUINT64_FORMAT, sum);

  if (sum == table_sum)
    /* TRANSLATORS: the number of a worker, its process id, the size of
     * the table and the sum of its entries */
    return g_strdup_printf (ngettext ("worker %s (pid %d): table of %d entry, sum %s\n",
                                      "worker %s (pid %d): table of %d entries, sum %s\n",
                                      TABLE_SIZE),
                            id, (int) pid, TABLE_SIZE, sum_text);
  else
    /* TRANSLATORS: the number of a worker, its process id, the size of
     * the table and the sum of its entries, which is not the one computed
     * before the fork */
    return g_strdup_printf (ngettext ("worker %s (pid %d): table of %d entry, sum %s MISMATCH\n",
                                      "worker %s (pid %d): table of %d entries, sum %s MISMATCH\n",
                                      TABLE_SIZE),
                            id, (int) pid, TABLE_SIZE, sum_text);
}

/* The worker: exported so that the template finds it by name. */
G_MODULE_EXPORT void worker_run (AforkChild *child);
void
worker_run (AforkChild *child)
{
  const char *id = afork_child_get_arg (child, 0, NULL);
  guint64 sum = 0;
  g_autofree char *line = NULL;

  for (guint i = 0; table != NULL && i < TABLE_SIZE; i++)
    sum += table[i];

  line = worker_line (id, getpid (), sum);
  if (write (afork_child_get_fd (child), line, strlen (line)) < 0)
    _exit (1);
}

typedef struct
{
  GMainLoop *loop;
  guint      pending;
  guint      ok;
} State;

/* One worker's read: the line it should write when it sees the table. */
typedef struct
{
  State *state;
  char  *expected;
} Reader;

static void
read_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Reader *reader = user_data;
  State *state = reader->state;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source),
                                                              result, &error);

  if (bytes != NULL && g_bytes_get_size (bytes) > 0)
    {
      g_autofree char *line = g_strndup (g_bytes_get_data (bytes, NULL),
                                         g_bytes_get_size (bytes));
      g_print ("%s", line);
      if (g_str_equal (line, reader->expected))
        state->ok++;
    }
  else
    g_printerr (_("a worker said nothing: %s\n"),
                error ? error->message : _("end of file"));

  g_free (reader->expected);
  g_free (reader);

  if (--state->pending == 0)
    g_main_loop_quit (state->loop);
}

static void
worker_started (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  State *state = user_data;
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;
  Reader *reader;

  connection = afork_process_run_finish (AFORK_PROCESS (source), result, &error);
  if (connection == NULL)
    {
      g_printerr (_("a worker failed: %s\n"), error->message);
      if (--state->pending == 0)
        g_main_loop_quit (state->loop);
      return;
    }

  /* The worker runs in the locale of the program it was forked from: its
   * line is the one written here, with the sum computed before the fork. */
  reader = g_new (Reader, 1);
  reader->state = state;
  reader->expected = worker_line (g_object_get_data (source, "id"),
                                  afork_process_get_pid (AFORK_PROCESS (source)),
                                  table_sum);

  /* The stream keeps the connection alive until the read is done. */
  g_input_stream_read_bytes_async (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                   256, G_PRIORITY_DEFAULT, NULL, read_done, reader);
  g_object_set_data_full (G_OBJECT (source), "connection", connection, g_object_unref);
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template = NULL;
  g_autoptr(GPtrArray) workers = g_ptr_array_new_with_free_func (g_object_unref);
  State state = { 0 };

  /* Before any fork, so that the workers translate their messages too. */
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* Optional, as early as possible, for libraries that make processes. */
  if (!afork_early_init (&error))
    {
      g_printerr (_("early init failed: %s\n"), error->message);
      return 1;
    }

  /* Load what the workers share, then preserve it all in a template. */
  load_table ();
  template = afork_process_fork_self (&error);
  if (template == NULL)
    {
      g_printerr (_("fork-self failed: %s\n"), error->message);
      return 1;
    }
  /* TRANSLATORS: a process id, then the size of the table */
  g_print (ngettext ("template pid %d holds a table of %d entry\n",
                     "template pid %d holds a table of %d entries\n",
                     TABLE_SIZE),
           (int) afork_process_get_pid (template), TABLE_SIZE);

  state.loop = g_main_loop_new (NULL, FALSE);
  for (guint id = 1; id <= N_WORKERS; id++)
    {
      g_autofree char *arg = g_strdup_printf ("%u", id);
      AforkProcess *worker = afork_process_fork (template);

      afork_process_send_arg (worker, arg);
      g_object_set_data_full (G_OBJECT (worker), "id", g_steal_pointer (&arg), g_free);
      afork_process_run_async (worker, "worker_run", NULL, worker_started, &state);
      g_ptr_array_add (workers, worker);
      state.pending++;
    }

  g_main_loop_run (state.loop);
  g_main_loop_unref (state.loop);

  /* TRANSLATORS: how many of the %d workers saw the table; the plural
   * form follows the number of workers */
  g_print (ngettext ("%u of %d worker saw the preloaded table\n",
                     "%u of %d workers saw the preloaded table\n",
                     N_WORKERS),
           state.ok, N_WORKERS);

  return state.ok == N_WORKERS ? 0 : 1;
}
