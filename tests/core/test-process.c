/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AforkProcess through real processes: arguments and descriptors, user
 * templates, errors from every stage, cancellation, lifetime, pids. */
#include "core-util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG_SIZE (1024 * 1024)
#define QUEUE_FILLER_SIZE (4 * 1024 * 1024)

static GBytes *
make_binary (gsize   size,
             guint32 seed)
{
  g_autoptr(GRand) rng = g_rand_new_with_seed (seed);
  guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) g_rand_int_range (rng, 0, 256);

  /* NUL bytes at the edges and in the middle, whatever the generator did. */
  if (size > 0)
    {
      data[0] = 0;
      data[size / 2] = 0;
      data[size - 1] = 0;
    }

  return g_bytes_new_take (data, size);
}

static char *
bytes_line (GBytes *bytes)
{
  gsize size;
  const void *data = g_bytes_get_data (bytes, &size);
  g_autofree char *sum = sha256_string (data, size);

  return g_strdup_printf ("s %" G_GSIZE_FORMAT " %s", size, sum);
}

/* get_pid () is the child's own getpid (), for every kind of process. */
static void
notify_count_cb (G_GNUC_UNUSED GObject    *object,
                 G_GNUC_UNUSED GParamSpec *pspec,
                 gpointer                  user_data)
{
  (*(guint *) user_data)++;
}

static void
test_pid (gconstpointer data)
{
  AforkTestKind kind = GPOINTER_TO_INT (data);
  g_autoptr(AforkProcess) process = afork_test_make_process (kind);
  g_auto(GStrv) lines = NULL;
  GPid before, child_pid;
  int property_pid = -1;
  guint notified = 0;

  g_signal_connect (process, "notify::pid", G_CALLBACK (notify_count_cb), &notified);

  before = afork_process_get_pid (process);
  if (kind == AFORK_TEST_KIND_NEW_EXEC)
    {
      /* A direct child, known from the start. */
      g_assert_cmpint (before, >, 0);
      g_assert_cmpint (afork_test_proc_parent (before), ==, getpid ());
    }
  else
    g_assert_cmpint (before, ==, 0);

  afork_process_require (process, TEST_MODULE);
  lines = run_lines (process, "test_run_pid");
  g_assert_cmpuint (g_strv_length (lines), ==, 1);
  child_pid = afork_test_parse_pid_line (lines[0]);

  g_assert_cmpint (child_pid, !=, getpid ());
  g_assert_cmpint (afork_process_get_pid (process), ==, child_pid);
  g_object_get (process, "pid", &property_pid, NULL);
  g_assert_cmpint (property_pid, ==, child_pid);

  if (kind == AFORK_TEST_KIND_NEW_EXEC)
    {
      g_assert_cmpint (child_pid, ==, before);
      g_assert_cmpuint (notified, ==, 0);
    }
  else
    {
      int status;

      g_assert_cmpuint (notified, ==, 1);
      /* Forked from a template, which reaps it: not our child. */
      g_assert_cmpint (waitpid (child_pid, &status, WNOHANG), ==, -1);
      g_assert_cmpint (errno, ==, ECHILD);
    }
}

/* Sends @n_items arguments, strings and descriptors in turn (after
 * @filler, if any), and checks that the child sees each in its place. */
static void
check_interleaved (AforkProcess *process,
                   guint         n_items,
                   GBytes       *filler)
{
  g_autoptr(GPtrArray) expected = g_ptr_array_new_with_free_func (g_free);
  g_autofree int *reads = g_new (int, n_items);
  g_auto(GStrv) lines = NULL;
  guint first = 0;

  afork_process_require (process, TEST_MODULE);
  if (filler != NULL)
    {
      afork_process_send_bytes (process, filler);
      g_ptr_array_add (expected, bytes_line (filler));
      first = 1;
    }

  for (guint i = 0; i < n_items; i++)
    {
      reads[i] = -1;

      if (i % 2 == 0)
        {
          g_autofree char *arg = i == 4 ? g_strdup ("h\xc3\xa9llo w\xc3\xb6rld") :
                                          g_strdup_printf ("arg-%u", first + i);

          g_assert_true (afork_process_send_arg (process, arg) == process);
          g_ptr_array_add (expected, arg_line (arg));
        }
      else
        {
          int fds[2];

          afork_test_pipe (fds);
          g_assert_true (afork_process_send_fd (process, fds[1]) == process);
          /* The library has its own copy. */
          close (fds[1]);
          reads[i] = fds[0];
          g_ptr_array_add (expected, g_strdup ("f"));
        }
    }
  g_ptr_array_add (expected, g_strdup ("global (null)"));
  g_ptr_array_add (expected, g_strdup ("end"));
  g_ptr_array_add (expected, NULL);

  lines = run_lines (process, "test_run_args");
  assert_lines_equal (lines, (const char * const *) expected->pdata);

  for (guint i = 1; i < n_items; i += 2)
    {
      g_autofree char *got = afork_test_read_fd_to_eof (reads[i]);
      g_autofree char *want = g_strdup_printf ("fd %u\n", first + i);

      g_assert_cmpstr (got, ==, want);
      close (reads[i]);
    }
}

/* Strings and descriptors, interleaved, arrive in order. */
static void
test_args_interleaved (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));

  check_interleaved (process, 12, NULL);
}

/* The same, with 300 descriptors among 600 arguments, queued behind a
 * socket that is full, so that they leave in batches (one message carries
 * at most 253 descriptors). */
static void
test_args_interleaved_queued (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GBytes) filler = make_binary (QUEUE_FILLER_SIZE, 7);

  check_interleaved (process, 600, filler);
}

/* Many more descriptors than one message carries (253), queued among
 * strings while the child's command loop is held, so that the socket
 * fills up with small frames and hundreds of descriptors wait in the
 * queue: each must still travel no later than its frame. */
static void
test_args_many_fds_held (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GPtrArray) expected = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) sink_want = g_string_new (NULL);
  g_autofree char *sink_got = NULL;
  g_auto(GStrv) lines = NULL;
  int gate[2], sink[2];
  const guint n_items = 1200;

  afork_test_pipe (gate);
  afork_test_pipe (sink);

  afork_process_require (process, TEST_MODULE);
  afork_process_send_fd (process, gate[0]);
  close (gate[0]);
  afork_process_call (process, "test_call_wait_gate", NULL);
  afork_process_call (process, "test_call_clear_args", NULL);

  for (guint i = 0; i < n_items; i++)
    {
      if (i % 2 == 0)
        {
          g_autofree char *arg = g_strdup_printf ("arg-%u", i);

          afork_process_send_arg (process, arg);
          g_ptr_array_add (expected, arg_line (arg));
        }
      else
        {
          /* Copies of one pipe, to stay far below any descriptor limit. */
          afork_process_send_fd (process, sink[1]);
          g_ptr_array_add (expected, g_strdup ("f"));
          g_string_append_printf (sink_want, "fd %u\n", i);
        }
    }
  close (sink[1]);
  g_ptr_array_add (expected, g_strdup ("global (null)"));
  g_ptr_array_add (expected, g_strdup ("end"));
  g_ptr_array_add (expected, NULL);

  /* Let the child go on. */
  g_assert_cmpint (write (gate[1], "x", 1), ==, 1);
  close (gate[1]);

  lines = run_lines (process, "test_run_args");
  assert_lines_equal (lines, (const char * const *) expected->pdata);

  sink_got = afork_test_read_fd_to_eof (sink[0]);
  g_assert_cmpstr (sink_got, ==, sink_want->str);
  close (sink[0]);
}

/* A 1 MiB binary argument with NUL bytes, then an empty one, then a plain
 * string, all exactly as sent. */
static void
test_args_binary (gconstpointer data)
{
  AforkTestKind kind = GPOINTER_TO_INT (data);
  g_autoptr(AforkProcess) process = afork_test_make_process (kind);
  g_autoptr(GBytes) big = make_binary (BIG_SIZE, 0x5eed);
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  g_autofree char *big_line = bytes_line (big);
  g_autofree char *empty_line = arg_line ("");
  g_autofree char *after_line = arg_line ("after");
  g_auto(GStrv) lines = NULL;
  gsize size;
  const guint8 *bytes = g_bytes_get_data (big, &size);

  g_assert_cmpuint (size, ==, BIG_SIZE);
  g_assert_nonnull (memchr (bytes + 1, '\0', size - 2));

  afork_process_require (process, TEST_MODULE);
  g_assert_true (afork_process_send_bytes (process, big) == process);
  afork_process_send_bytes (process, empty);
  afork_process_send_arg (process, "after");

  lines = run_lines (process, "test_run_args");
  assert_lines_equal (lines, (const char * const[]) {
                        big_line, empty_line, after_line, "global (null)", "end", NULL });
}

/* 200 descriptors to one child, each one the right one. */
static void
test_args_many_fds (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_auto(GStrv) lines = NULL;
  int reads[200];
  guint i = 0;

  afork_process_require (process, TEST_MODULE);
  for (guint k = 0; k < G_N_ELEMENTS (reads); k++)
    {
      int fds[2];

      afork_test_pipe (fds);
      afork_process_send_fd (process, fds[1]);
      close (fds[1]);
      reads[k] = fds[0];
    }

  lines = run_lines (process, "test_run_args");
  for (guint k = 0; k < G_N_ELEMENTS (reads); k++)
    g_assert_cmpstr (lines[i++], ==, "f");
  g_assert_cmpstr (lines[i++], ==, "global (null)");
  g_assert_cmpstr (lines[i++], ==, "end");
  g_assert_null (lines[i]);

  for (guint k = 0; k < G_N_ELEMENTS (reads); k++)
    {
      g_autofree char *got = afork_test_read_fd_to_eof (reads[k]);
      g_autofree char *want = g_strdup_printf ("fd %u\n", k);

      g_assert_cmpstr (got, ==, want);
      close (reads[k]);
    }
}

/* 50 forks of one user template: each sees the template's module, the
 * effect of its call function and its arguments, then its own. */
#define N_FORKS 50

static void
test_fork_template (void)
{
  g_autoptr(AforkProcess) template = afork_test_make_process (AFORK_TEST_KIND_NEW);
  AforkProcess *children[N_FORKS];
  GSocketConnection *connections[N_FORKS] = { NULL, };
  GAsyncResult *results[N_FORKS] = { NULL, };
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autofree char *template_line = arg_line ("T");
  const char * const global_args[] = { "G", NULL };

  g_assert_true (afork_process_require (template, TEST_MODULE) == template);
  afork_process_send_arg (template, "T");
  g_assert_true (afork_process_call (template, "test_call_set_global", global_args) == template);

  for (guint i = 0; i < N_FORKS; i++)
    {
      g_autofree char *arg = g_strdup_printf ("child-%u", i);

      children[i] = afork_process_fork (template);
      g_assert_true (AFORK_IS_PROCESS (children[i]));
      g_assert_true (children[i] != template);
      afork_process_send_arg (children[i], arg);
    }

  /* The first half one after the other with the synchronous call, the
   * other half all at once. */
  for (guint i = 0; i < N_FORKS; i++)
    {
      if (i < N_FORKS / 2)
        {
          g_autoptr(GError) error = NULL;

          connections[i] = afork_process_run (children[i], "test_run_args", NULL, &error);
          g_assert_no_error (error);
          g_assert_nonnull (connections[i]);
        }
      else
        afork_process_run_async (children[i], "test_run_args", NULL,
                                 afork_test_store_result_cb, &results[i]);
    }

  for (guint i = 0; i < N_FORKS; i++)
    {
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *arg = g_strdup_printf ("child-%u", i);
      g_autofree char *child_line = arg_line (arg);
      g_autofree char *text = NULL;
      g_autofree char *want = NULL;

      if (i < N_FORKS / 2)
        connection = g_steal_pointer (&connections[i]);
      else
        {
          afork_test_wait_result (&results[i]);
          connection = afork_process_run_finish (children[i], results[i], &error);
          g_assert_no_error (error);
          g_clear_object (&results[i]);
        }

      text = afork_test_read_connection (connection);
      want = g_strdup_printf ("%s\n%s\nglobal G\nend\n", template_line, child_line);
      g_assert_cmpstr (text, ==, want);

      g_assert_cmpint (afork_process_get_pid (children[i]), >, 0);
      g_assert_false (g_hash_table_contains (pids, GINT_TO_POINTER (afork_process_get_pid (children[i]))));
      g_hash_table_add (pids, GINT_TO_POINTER (afork_process_get_pid (children[i])));
      g_object_unref (children[i]);
    }

  /* The template is unchanged by its forks: nothing of theirs (such as
   * their sockets) is left among its arguments. */
  {
    g_auto(GStrv) lines = run_lines (template, "test_run_args");

    assert_lines_equal (lines, (const char * const[]) { template_line, "global G", "end", NULL });
    g_assert_false (g_hash_table_contains (pids, GINT_TO_POINTER (afork_process_get_pid (template))));
  }
}

/* Fork of a process that ran, or that failed: reported at run_finish. */
static void
test_fork_closed (void)
{
  g_autoptr(AforkProcess) ran = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(AforkProcess) failed = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(AforkProcess) from_ran = NULL;
  g_autoptr(AforkProcess) from_failed = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  int bad = closed_fd_number ();

  afork_process_require (ran, TEST_MODULE);
  connection = run_ok (ran, "test_run_pid");
  text = afork_test_read_connection (connection);
  from_ran = afork_process_fork (ran);
  g_assert_true (AFORK_IS_PROCESS (from_ran));
  error = run_error (from_ran, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CLOSED);
  g_clear_error (&error);

  afork_process_send_fd (failed, bad);
  from_failed = afork_process_fork (failed);
  g_assert_true (AFORK_IS_PROCESS (from_failed));
  error = run_error (from_failed, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);
}

/* A synchronous run of a fork whose template still has commands queued
 * (its socket is full) must not depend on anyone iterating the context the
 * template was made in; nor must a fork of a fork of such a template. The
 * run happens in a thread; this thread does not iterate its context until
 * the run is over, or has clearly stalled. */
typedef struct
{
  AforkProcess      *child;
  GSocketConnection *connection;
  GError            *error;
  GMutex             lock;
  GCond              cond;
  gboolean           done;
} SyncForkData;

static gpointer
sync_fork_thread (gpointer user_data)
{
  SyncForkData *data = user_data;
  GError *error = NULL;
  GSocketConnection *connection = afork_process_run (data->child, "test_run_args", NULL, &error);

  g_mutex_lock (&data->lock);
  data->connection = connection;
  data->error = error;
  data->done = TRUE;
  g_cond_signal (&data->cond);
  g_mutex_unlock (&data->lock);

  return NULL;
}

static void
test_fork_sync_behind_queue (gconstpointer test_data)
{
  guint depth = GPOINTER_TO_UINT (test_data);
  g_autoptr(AforkProcess) template = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GBytes) filler = make_binary (QUEUE_FILLER_SIZE, 5);
  g_autoptr(GString) want = g_string_new (NULL);
  g_autofree char *filler_line = bytes_line (filler);
  g_autofree char *text = NULL;
  SyncForkData data = { 0 };
  guint bound = AFORK_TEST_WAIT_SECONDS;
  gint64 deadline = g_get_monotonic_time () + bound * G_TIME_SPAN_SECOND;
  gboolean stalled = FALSE;
  AforkProcess *parent = template;
  GThread *thread;

  g_mutex_init (&data.lock);
  g_cond_init (&data.cond);

  afork_process_require (template, TEST_MODULE);
  afork_process_send_bytes (template, filler);
  g_string_append_printf (want, "%s\n", filler_line);
  for (guint d = 0; d < depth; d++)
    {
      g_autofree char *arg = g_strdup_printf ("own-%u", d);
      g_autofree char *line = arg_line (arg);
      AforkProcess *child = afork_process_fork (parent);

      afork_process_send_arg (child, arg);
      g_string_append_printf (want, "%s\n", line);
      g_ptr_array_add (chain, child);
      parent = child;
    }
  g_string_append (want, "global (null)\nend\n");

  data.child = parent;
  thread = g_thread_new ("sync-run", sync_fork_thread, &data);

  g_mutex_lock (&data.lock);
  while (!data.done && !stalled)
    if (!g_cond_wait_until (&data.cond, &data.lock, deadline))
      stalled = !data.done;
  g_mutex_unlock (&data.lock);

  if (stalled)
    {
      g_test_fail_printf ("afork_process_run () of a fork (depth %u) did not return "
                          "within %u s while the template's context was not iterated",
                          depth, bound);
      /* Unblock it the only way there is, so that nothing is left behind. */
      for (;;)
        {
          gboolean done;

          g_mutex_lock (&data.lock);
          done = data.done;
          g_mutex_unlock (&data.lock);
          if (done)
            break;
          g_main_context_iteration (NULL, FALSE);
          g_usleep (1000);
        }
    }

  g_thread_join (thread);
  g_assert_no_error (data.error);
  g_assert_nonnull (data.connection);
  text = afork_test_read_connection (data.connection);
  g_assert_cmpstr (text, ==, want->str);

  g_object_unref (data.connection);
  g_mutex_clear (&data.lock);
  g_cond_clear (&data.cond);
}

/* Sends a pipe's write end to @process and returns the read end: it
 * reaches end of file once the child has gone. */
static int
send_watch_pipe (AforkProcess *process)
{
  int fds[2];

  afork_test_pipe (fds);
  afork_process_send_fd (process, fds[1]);
  close (fds[1]);

  return fds[0];
}

static void
assert_child_gone (int watch)
{
  g_autofree char *got = afork_test_read_fd_to_eof (watch);

  g_assert_cmpstr (got, ==, "");
  close (watch);
}

static void
test_error_module (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  int watch = send_watch_pipe (process);
  g_autoptr(GError) error = NULL;

  afork_process_require (process, "afork-no-such-module-5f3a");
  /* Never reached: the child skips all work after a failure. */
  afork_process_require (process, TEST_MODULE);
  error = run_error (process, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "afork-no-such-module-5f3a"));

  assert_child_gone (watch);
}

static void
test_error_function (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  int watch = send_watch_pipe (process);
  g_autoptr(GError) error = NULL;

  afork_process_require (process, TEST_MODULE);
  error = run_error (process, "test_run_no_such_function");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "test_run_no_such_function"));

  assert_child_gone (watch);
}

static void
test_error_call_function (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  int watch = send_watch_pipe (process);
  g_autoptr(GError) error = NULL;

  afork_process_require (process, TEST_MODULE);
  afork_process_call (process, "test_call_no_such_function", NULL);
  error = run_error (process, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "test_call_no_such_function"));

  assert_child_gone (watch);
}

static void
test_error_call_failed (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  int watch = send_watch_pipe (process);
  g_autoptr(GError) error = NULL;
  const char * const first[] = { "xyzzy", NULL };
  const char * const second[] = { "plugh", NULL };

  afork_process_require (process, TEST_MODULE);
  afork_process_call (process, "test_call_fail", first);
  /* Only the first failure counts; what follows is skipped. */
  afork_process_call (process, "test_call_fail", second);
  afork_process_require (process, "afork-no-such-module-5f3a");
  error = run_error (process, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CALL_FAILED);
  g_assert_nonnull (strstr (error->message, "test_call_fail"));
  g_assert_nonnull (strstr (error->message, "test failure requested with xyzzy"));
  /* The child's own domain and code stay visible. */
  g_assert_nonnull (strstr (error->message, g_quark_to_string (G_FILE_ERROR)));
  g_assert_null (strstr (error->message, "plugh"));

  assert_child_gone (watch);
}

static void
test_error_call_failed_silently (void)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(GError) error = NULL;

  afork_process_require (process, TEST_MODULE);
  afork_process_call (process, "test_call_fail_silently", NULL);
  error = run_error (process, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CALL_FAILED);
  g_assert_nonnull (strstr (error->message, "test_call_fail_silently"));
}

static void
test_error_crash (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  int watch = send_watch_pipe (process);
  g_autoptr(GError) error = NULL;

  afork_process_require (process, TEST_MODULE);
  afork_process_call (process, "test_call_crash", NULL);
  error = run_error (process, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);

  assert_child_gone (watch);
}

/* A call function failing with a huge message (cut by the child, maybe
 * inside a UTF-8 sequence): still a clean, valid error. */
static void
test_error_long_message (void)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) huge = g_string_new ("start ");
  const char *args[] = { NULL, NULL };

  for (guint i = 0; i < 100 * 1024; i++)
    g_string_append (huge, "\xc3\xa9");
  g_string_append (huge, " end");
  args[0] = huge->str;

  afork_process_require (process, TEST_MODULE);
  afork_process_call (process, "test_call_fail", args);
  error = run_error (process, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CALL_FAILED);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_assert_nonnull (strstr (error->message, "test_call_fail"));
  g_assert_nonnull (strstr (error->message, "test failure requested with start \xc3\xa9\xc3\xa9"));
  g_assert_cmpuint (strlen (error->message), <=, 128 * 1024);
}

/* A descriptor that is not open is reported by run_finish; the child,
 * which got the commands queued before, exits. */
static void
test_error_bad_fd (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  int watch = send_watch_pipe (process);
  int bad = closed_fd_number ();
  g_autofree char *bad_str = g_strdup_printf ("%d", bad);
  g_autoptr(GError) error = NULL;

  afork_process_require (process, TEST_MODULE);
  g_assert_true (afork_process_send_fd (process, bad) == process);
  afork_process_send_arg (process, "ignored");
  error = run_error (process, "test_run_args");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, bad_str));

  assert_child_gone (watch);
}

/* A second run, after success or failure, is refused. */
static void
test_error_run_twice (gconstpointer data)
{
  AforkTestKind kind = GPOINTER_TO_INT (data);
  g_autoptr(AforkProcess) process = afork_test_make_process (kind);
  g_autoptr(AforkProcess) failed = afork_test_make_process (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  afork_process_require (process, TEST_MODULE);
  connection = run_ok (process, "test_run_pid");
  text = afork_test_read_connection (connection);
  g_assert_true (g_str_has_prefix (text, "pid "));

  /* Chainable calls on a process that ran are harmless. */
  g_assert_true (afork_process_send_arg (process, "late") == process);
  g_assert_true (afork_process_require (process, TEST_MODULE) == process);

  error = run_error (process, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CLOSED);
  g_clear_error (&error);

  afork_process_require (failed, "afork-no-such-module-5f3a");
  error = run_error (failed, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_clear_error (&error);
  error = run_error (failed, "test_run_pid");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CLOSED);
}

/* Cancelled before run_async starts: the run function never runs and the
 * child exits. */
static void
test_cancel_before (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *got = NULL;
  int watch;

  afork_process_require (process, TEST_MODULE);
  watch = send_watch_pipe (process);
  g_cancellable_cancel (cancellable);
  afork_process_run_async (process, "test_run_args", cancellable,
                           afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  connection = afork_process_run_finish (process, result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (connection);

  /* test_run_args would have written "fd 0" into the pipe. */
  got = afork_test_read_fd_to_eof (watch);
  g_assert_cmpstr (got, ==, "");
  close (watch);
}

/* Cancelled while the child is busy in a call function that waits for
 * the parent to hang up: the child gives up and exits. */
static void
test_cancel_blocked (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *rest = NULL;
  const char * const notify_args[] = { "ready", NULL };
  int watch;

  afork_process_require (process, TEST_MODULE);
  watch = send_watch_pipe (process);
  afork_process_call (process, "test_call_notify", notify_args);
  afork_process_call (process, "test_call_wait_hangup", NULL);
  afork_process_run_async (process, "test_run_args", cancellable,
                           afork_test_store_result_cb, &result);

  ready = afork_test_read_fd_bytes (watch, strlen ("ready\n"));
  g_assert_cmpstr (ready, ==, "ready\n");
  g_assert_null (result);

  g_cancellable_cancel (cancellable);
  afork_test_wait_result (&result);
  connection = afork_process_run_finish (process, result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (connection);

  /* The child exits without entering test_run_args, which would have
   * written into the pipe. */
  rest = afork_test_read_fd_to_eof (watch);
  g_assert_cmpstr (rest, ==, "");
  close (watch);
}

/* Cancelled while the commands before `run` are still being written (the
 * socket is full): the child never gets to its run function and exits. */
static void
test_cancel_writing (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GBytes) filler = make_binary (QUEUE_FILLER_SIZE, 13);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *got = NULL;
  int watch, gate[2];

  /* The child is held in a call function until the run is cancelled, so
   * the socket stays full and the run command unwritten, however fast or
   * slow either side is. */
  afork_test_pipe (gate);
  afork_process_require (process, TEST_MODULE);
  afork_process_send_fd (process, gate[0]);
  close (gate[0]);
  afork_process_call (process, "test_call_wait_gate", NULL);
  watch = send_watch_pipe (process);
  afork_process_send_bytes (process, filler);
  afork_process_run_async (process, "test_run_args", cancellable,
                           afork_test_store_result_cb, &result);
  g_cancellable_cancel (cancellable);
  afork_test_wait_result (&result);
  close (gate[1]);
  connection = afork_process_run_finish (process, result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (connection);

  got = afork_test_read_fd_to_eof (watch);
  g_assert_cmpstr (got, ==, "");
  close (watch);
}

static void
test_run_sync (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *want = NULL;
  g_autofree char *line = arg_line ("sync");

  afork_process_require (process, TEST_MODULE);
  afork_process_send_arg (process, "sync");
  connection = afork_process_run (process, "test_run_args", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_UNIX_CONNECTION (connection));
  g_assert_cmpint (afork_process_get_pid (process), >, 0);

  text = afork_test_read_connection (connection);
  want = g_strdup_printf ("%s\nglobal (null)\nend\n", line);
  g_assert_cmpstr (text, ==, want);
}

static void
test_run_sync_errors (void)
{
  g_autoptr(AforkProcess) missing = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(AforkProcess) cancelled = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  afork_process_require (missing, "afork-no-such-module-5f3a");
  connection = afork_process_run (missing, "test_run_pid", NULL, &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_assert_null (connection);
  g_clear_error (&error);

  g_cancellable_cancel (cancellable);
  afork_process_require (cancelled, TEST_MODULE);
  connection = afork_process_run (cancelled, "test_run_pid", cancellable, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (connection);
}

/* The connection carries both ways what the run function does. */
static void
test_run_echo (void)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GOutputStream *out;
  GInputStream *in;
  char buf[64] = { 0, };
  gsize n = 0;
  const char *want = "echo hello\n";

  afork_process_require (process, TEST_MODULE);
  connection = run_ok (process, "test_run_echo");
  out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  in = g_io_stream_get_input_stream (G_IO_STREAM (connection));

  g_output_stream_write_all (out, "hello\n", 6, NULL, NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read_all (in, buf, strlen (want), &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (buf, ==, want);

  /* Hanging up ends the run function: end of file follows. */
  g_socket_shutdown (g_socket_connection_get_socket (connection), FALSE, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_input_stream_read (in, buf, sizeof buf, NULL, &error), ==, 0);
  g_assert_no_error (error);
}

/* Dropping a process before run makes its child exit. */
static void
test_lifetime_drop (gconstpointer data)
{
  AforkProcess *process = afork_test_make_process (GPOINTER_TO_INT (data));
  int watch;

  afork_process_require (process, TEST_MODULE);
  afork_process_send_arg (process, "x");
  watch = send_watch_pipe (process);
  g_object_add_weak_pointer (G_OBJECT (process), (gpointer *) &process);
  g_object_unref (process);
  g_assert_null (process);

  assert_child_gone (watch);
}

/* Dropped while its commands are still queued (the socket is full): they
 * are all delivered first, then the child exits. */
static void
test_lifetime_drop_queued (void)
{
  AforkProcess *process = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(GBytes) filler = make_binary (QUEUE_FILLER_SIZE, 3);
  const char * const notify_args[] = { "delivered", NULL };
  g_autofree char *got = NULL;
  int watch;

  afork_process_require (process, TEST_MODULE);
  afork_process_send_bytes (process, filler);
  watch = send_watch_pipe (process);
  afork_process_call (process, "test_call_notify", notify_args);
  g_object_unref (process);

  got = afork_test_read_fd_to_eof (watch);
  g_assert_cmpstr (got, ==, "delivered\n");
  close (watch);
}

/* A template dropped while its commands (and the fork request after
 * them) are still queued: they all go, and the fork runs. */
static void
test_lifetime_forget_template (gconstpointer data)
{
  AforkProcess *template = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(AforkProcess) child = NULL;
  g_autoptr(GBytes) filler = make_binary (QUEUE_FILLER_SIZE, 17);
  g_autofree char *filler_line = bytes_line (filler);
  g_autofree char *template_line = arg_line ("T");
  g_autofree char *own_line = arg_line ("own");
  g_auto(GStrv) lines = NULL;

  afork_process_require (template, TEST_MODULE);
  afork_process_send_bytes (template, filler);
  afork_process_send_arg (template, "T");
  child = afork_process_fork (template);
  g_object_unref (template);
  afork_process_send_arg (child, "own");

  lines = run_lines (child, "test_run_args");
  assert_lines_equal (lines, (const char * const[]) {
                        filler_line, template_line, own_line, "global (null)", "end", NULL });
}

/* Configure and forget: run_async on a process whose last reference the
 * caller drops at once still completes. */
typedef struct
{
  GSocketConnection *connection;
  GError            *error;
  gboolean           done;
} ForgetData;

static void
forget_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  ForgetData *data = user_data;

  data->connection = afork_process_run_finish (AFORK_PROCESS (object), result, &data->error);
  data->done = TRUE;
}

static void
test_lifetime_forget (gconstpointer data)
{
  AforkProcess *process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GBytes) filler = make_binary (QUEUE_FILLER_SIZE, 11);
  g_autofree char *filler_line = bytes_line (filler);
  g_autofree char *last_line = arg_line ("last");
  g_autofree char *text = NULL;
  g_autofree char *want = NULL;
  ForgetData forget = { NULL, NULL, FALSE };

  g_object_add_weak_pointer (G_OBJECT (process), (gpointer *) &process);
  afork_process_run_async (afork_process_send_arg (afork_process_send_bytes (afork_process_require (process, TEST_MODULE),
                                                                             filler),
                                                   "last"),
                           "test_run_args", NULL, forget_cb, &forget);
  g_object_unref (process);

  afork_test_iterate_until (NULL, &forget.done, "afork_process_run_async");

  g_assert_no_error (forget.error);
  g_assert_true (G_IS_SOCKET_CONNECTION (forget.connection));
  text = afork_test_read_connection (forget.connection);
  want = g_strdup_printf ("%s\n%s\nglobal (null)\nend\n", filler_line, last_line);
  g_assert_cmpstr (text, ==, want);
  g_object_unref (forget.connection);

  /* Nothing keeps the process alive once the run has completed. */
  while (process != NULL && g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_null (process);
}

/* Waits until the title of @pid (its command line as ps shows it) is
 * @want: a process sets it itself, a little after it started. */
static void
assert_title_becomes (GPid        pid,
                      const char *want)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/cmdline", (int) pid);
  g_autofree char *title = NULL;
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_TIME_SPAN_SECOND;

  do
    {
      g_autofree char *contents = NULL;

      if (title != NULL)
        g_usleep (10 * 1000);
      g_clear_pointer (&title, g_free);
      g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
      /* The title fills the old argument area, padded with NULs. */
      title = g_strdup (contents);
    }
  while (!g_str_equal (title, want) && g_get_monotonic_time () < deadline);

  g_assert_cmpstr (title, ==, want);
}

/* Process titles name the owner and what the process does. */
static void
test_titles (gconstpointer data)
{
  AforkTestKind kind = GPOINTER_TO_INT (data);
  g_autoptr(AforkProcess) process = afork_test_make_process (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autofree char *template_title = g_strdup_printf ("afork-server %d template", (int) getpid ());
  g_autofree char *run_title = g_strdup_printf ("afork %d test_run_echo", (int) getpid ());

  if (kind == AFORK_TEST_KIND_NEW_EXEC)
    assert_title_becomes (afork_process_get_pid (process), template_title);

  afork_process_require (process, TEST_MODULE);
  connection = run_ok (process, "test_run_echo");
  /* The child lives until we hang up. */
  assert_title_becomes (afork_process_get_pid (process), run_title);
}

/* The default template is started again if it dies. */
static GPid
echo_child_parent (AforkProcess       *process,
                   GSocketConnection **connection)
{
  GPid pid;

  afork_process_require (process, TEST_MODULE);
  *connection = run_ok (process, "test_run_echo");
  pid = afork_process_get_pid (process);
  g_assert_cmpint (pid, >, 0);

  /* The child is alive (it waits for our hang-up), so /proc knows its
   * parent: the template. */
  return afork_test_proc_parent (pid);
}

static void
test_template_restart (void)
{
  g_autoptr(AforkProcess) first = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(AforkProcess) second = NULL;
  g_autoptr(GSocketConnection) first_connection = NULL;
  g_autoptr(GSocketConnection) second_connection = NULL;
  g_autoptr(GError) error = NULL;
  GPid template, new_template;

  template = echo_child_parent (first, &first_connection);
  g_assert_cmpint (template, >, 0);
  g_assert_cmpint (template, !=, getpid ());
  /* The template was spawned by us. */
  g_assert_cmpint (afork_test_proc_parent (template), ==, getpid ());
  g_io_stream_close (G_IO_STREAM (first_connection), NULL, &error);
  g_assert_no_error (error);

  g_assert_cmpint (kill (template, SIGKILL), ==, 0);
  g_assert_true (afork_test_wait_gone (template, AFORK_TEST_WAIT_SECONDS));

  second = afork_process_new (&error);
  g_assert_no_error (error);
  new_template = echo_child_parent (second, &second_connection);
  g_assert_cmpint (new_template, >, 0);
  g_assert_cmpint (new_template, !=, template);
  g_assert_cmpint (afork_test_proc_parent (new_template), ==, getpid ());
}

/* new () and the synchronous run from several threads at once. */
#define N_THREADS 4
#define N_PER_THREAD 5

static gpointer
thread_func (gpointer data)
{
  guint id = GPOINTER_TO_UINT (data);
  g_autoptr(GMainContext) context = g_main_context_new ();

  g_main_context_push_thread_default (context);

  for (guint i = 0; i < N_PER_THREAD; i++)
    {
      g_autofree char *arg = g_strdup_printf ("thread-%u-%u", id, i);
      g_autofree char *want = NULL;
      g_autofree char *line = arg_line (arg);
      g_autofree char *text = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) process = afork_process_new (&error);
      g_autoptr(GSocketConnection) connection = NULL;

      g_assert_no_error (error);
      afork_process_send_arg (afork_process_require (process, TEST_MODULE), arg);
      connection = afork_process_run (process, "test_run_args", NULL, &error);
      g_assert_no_error (error);
      text = afork_test_read_connection (connection);
      want = g_strdup_printf ("%s\nglobal (null)\nend\n", line);
      g_assert_cmpstr (text, ==, want);
    }

  g_main_context_pop_thread_default (context);

  return GUINT_TO_POINTER (TRUE);
}

static void
test_threads (void)
{
  GThread *threads[N_THREADS];

  for (guint i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("afork-test", thread_func, GUINT_TO_POINTER (i));
  for (guint i = 0; i < N_THREADS; i++)
    g_assert_true (GPOINTER_TO_UINT (g_thread_join (threads[i])));
}

/* Programmer errors are criticals, and leave the process usable. */
static void
test_programmer_errors (void)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_auto(GStrv) lines = NULL;

  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*fd >= 0*");
  g_assert_true (afork_process_send_fd (process, -1) == process);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*arg != NULL*");
  g_assert_true (afork_process_send_arg (process, NULL) == process);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*bytes != NULL*");
  g_assert_true (afork_process_send_bytes (process, NULL) == process);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*module != NULL*");
  g_assert_true (afork_process_require (process, NULL) == process);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*function != NULL*");
  g_assert_true (afork_process_call (process, NULL, NULL) == process);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*AFORK_IS_PROCESS*");
  g_assert_cmpint (afork_process_get_pid (NULL), ==, 0);
  g_test_assert_expected_messages ();

  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*function != NULL*");
  afork_process_run_async (process, NULL, NULL, NULL, NULL);
  g_test_assert_expected_messages ();

  afork_process_require (process, TEST_MODULE);
  lines = run_lines (process, "test_run_pid");
  g_assert_cmpuint (g_strv_length (lines), ==, 1);
  g_assert_cmpint (afork_test_parse_pid_line (lines[0]), ==, afork_process_get_pid (process));
}

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  afork_test_add_kind_tests ("/afork/process/pid", test_pid);
  afork_test_add_kind_tests ("/afork/process/args/interleaved", test_args_interleaved);
  afork_test_add_kind_tests ("/afork/process/args/binary", test_args_binary);
  afork_test_add_kind_tests ("/afork/process/args/many-fds", test_args_many_fds);
  afork_test_add_kind_tests ("/afork/process/args/many-fds-held", test_args_many_fds_held);
  afork_test_add_kind_tests ("/afork/process/args/interleaved-queued",
                             test_args_interleaved_queued);
  g_test_add_func ("/afork/process/fork/template", test_fork_template);
  g_test_add_func ("/afork/process/fork/closed", test_fork_closed);
  g_test_add_data_func ("/afork/process/fork/sync-behind-queue/1", GUINT_TO_POINTER (1),
                        test_fork_sync_behind_queue);
  g_test_add_data_func ("/afork/process/fork/sync-behind-queue/3", GUINT_TO_POINTER (3),
                        test_fork_sync_behind_queue);
  afork_test_add_kind_tests ("/afork/process/error/module", test_error_module);
  afork_test_add_kind_tests ("/afork/process/error/function", test_error_function);
  afork_test_add_kind_tests ("/afork/process/error/call-function", test_error_call_function);
  afork_test_add_kind_tests ("/afork/process/error/call-failed", test_error_call_failed);
  g_test_add_func ("/afork/process/error/call-failed-silently", test_error_call_failed_silently);
  g_test_add_func ("/afork/process/error/long-message", test_error_long_message);
  afork_test_add_kind_tests ("/afork/process/error/crash", test_error_crash);
  afork_test_add_kind_tests ("/afork/process/error/bad-fd", test_error_bad_fd);
  afork_test_add_kind_tests ("/afork/process/error/run-twice", test_error_run_twice);
  afork_test_add_kind_tests ("/afork/process/run/cancel/before", test_cancel_before);
  afork_test_add_kind_tests ("/afork/process/run/cancel/blocked", test_cancel_blocked);
  afork_test_add_kind_tests ("/afork/process/run/cancel/writing", test_cancel_writing);
  afork_test_add_kind_tests ("/afork/process/run/sync", test_run_sync);
  g_test_add_func ("/afork/process/run/sync-errors", test_run_sync_errors);
  g_test_add_func ("/afork/process/run/echo", test_run_echo);
  afork_test_add_kind_tests ("/afork/process/lifetime/drop", test_lifetime_drop);
  g_test_add_func ("/afork/process/lifetime/drop-queued", test_lifetime_drop_queued);
  afork_test_add_kind_tests ("/afork/process/lifetime/forget", test_lifetime_forget);
  afork_test_add_kind_tests ("/afork/process/lifetime/forget-template",
                             test_lifetime_forget_template);
  g_test_add_func ("/afork/process/template/restart", test_template_restart);
  afork_test_add_kind_tests ("/afork/process/titles", test_titles);
  g_test_add_func ("/afork/process/threads", test_threads);
  g_test_add_func ("/afork/process/programmer-errors", test_programmer_errors);

  return g_test_run ();
}
