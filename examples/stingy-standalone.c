/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* For stingy standalone programs: no module and no afork-server at all.
 *
 * The program calls afork_early_init() first (so that libraries it uses
 * later can make processes without executing anything), then loads what
 * its workers share (here: a table computed once), then forks itself into
 * a template with afork_process_fork_self(), while it is still
 * single-threaded. Ten workers are forked from that template; each runs
 * worker_run(), a function of the program, and sees the preloaded table
 * without computing it again.
 *
 * Shows: ten workers, each with its id and pid, all seeing the same table
 * that was computed once, before the fork. */
#include <afork/afork.h>

#include <stdio.h>
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

  line = g_strdup_printf ("worker %s (pid %d): table of %d entries, sum %" G_GUINT64_FORMAT "%s\n",
                          id, (int) getpid (), TABLE_SIZE, sum,
                          sum == table_sum ? "" : " MISMATCH");
  if (write (afork_child_get_fd (child), line, strlen (line)) < 0)
    _exit (1);
}

typedef struct
{
  GMainLoop *loop;
  guint      pending;
  guint      ok;
} State;

static void
read_done (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  State *state = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source),
                                                              result, &error);

  if (bytes != NULL && g_bytes_get_size (bytes) > 0)
    {
      g_autofree char *line = g_strndup (g_bytes_get_data (bytes, NULL),
                                         g_bytes_get_size (bytes));
      printf ("%s", line);
      if (strstr (line, "MISMATCH") == NULL)
        state->ok++;
    }
  else
    g_printerr ("a worker said nothing: %s\n", error ? error->message : "end of file");

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

  connection = afork_process_run_finish (AFORK_PROCESS (source), result, &error);
  if (connection == NULL)
    {
      g_printerr ("a worker failed: %s\n", error->message);
      if (--state->pending == 0)
        g_main_loop_quit (state->loop);
      return;
    }

  /* The stream keeps the connection alive until the read is done. */
  g_input_stream_read_bytes_async (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                   256, G_PRIORITY_DEFAULT, NULL, read_done, state);
  g_object_set_data_full (G_OBJECT (source), "connection", connection, g_object_unref);
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template = NULL;
  g_autoptr(GPtrArray) workers = g_ptr_array_new_with_free_func (g_object_unref);
  State state = { 0 };

  /* Optional, as the very first thing, for libraries that make processes. */
  if (!afork_early_init (&error))
    {
      g_printerr ("early init failed: %s\n", error->message);
      return 1;
    }

  /* Load what the workers share, then preserve it all in a template. */
  load_table ();
  template = afork_process_fork_self (&error);
  if (template == NULL)
    {
      g_printerr ("fork-self failed: %s\n", error->message);
      return 1;
    }
  printf ("template pid %d holds a table of %d entries\n",
          (int) afork_process_get_pid (template), TABLE_SIZE);

  state.loop = g_main_loop_new (NULL, FALSE);
  for (guint id = 1; id <= N_WORKERS; id++)
    {
      g_autofree char *arg = g_strdup_printf ("%u", id);
      AforkProcess *worker = afork_process_fork (template);

      afork_process_send_arg (worker, arg);
      afork_process_run_async (worker, "worker_run", NULL, worker_started, &state);
      g_ptr_array_add (workers, worker);
      state.pending++;
    }

  g_main_loop_run (state.loop);
  g_main_loop_unref (state.loop);

  printf ("%u of %d workers saw the preloaded table\n", state.ok, N_WORKERS);

  return state.ok == N_WORKERS ? 0 : 1;
}
