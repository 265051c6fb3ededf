/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A child that dies at any step (loading a module, in a call function,
 * before or after acknowledging its run function): the parent gets a
 * clear error or end of file, its main loop keeps running, and it never
 * receives SIGPIPE. Every case runs for every kind of process. */
#include "rel-util.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct
{
  gboolean done;
  gboolean ok;
  GError  *error;
} WaitResult;

static void
wait_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  WaitResult *wait = user_data;

  wait->ok = afork_process_wait_finish (AFORK_PROCESS (object), result, &wait->error);
  wait->done = TRUE;
}

/* Waits for @process to exit, in the main loop, and checks how. */
static void
assert_wait_status (AforkProcess *process,
                    int           signum,
                    int           exit_status)
{
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  WaitResult wait = { FALSE, FALSE, NULL };

  afork_process_wait_async (process, NULL, wait_cb, &wait);
  rel_iterate_until (context, &wait.done, "afork_process_wait_async");
  g_assert_no_error (wait.error);
  g_assert_true (wait.ok);

  if (signum != 0)
    {
      g_assert_true (afork_process_get_if_signaled (process));
      g_assert_cmpint (afork_process_get_term_sig (process), ==, signum);
    }
  else
    {
      g_assert_true (afork_process_get_if_exited (process));
      g_assert_cmpint (afork_process_get_exit_status (process), ==, exit_status);
    }
}

static void
assert_run_fails (AforkProcess *process)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = NULL;

  connection = rel_run_async_wait (process, "rel_run_pid", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
  g_test_message ("run failed: %s", error->message);
}

static void
test_require_crash (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autofree char *crash = rel_module_path ("afork-rel-crash-module");

  afork_process_require (process, crash);
  afork_process_send_arg (process, "after the crash");
  assert_run_fails (process);
  assert_wait_status (process, SIGSEGV, 0);
  rel_assert_no_sigpipe ();
}

static void
run_call_death (RelKind    *kind,
                const char *function,
                int         signum,
                int         exit_status)
{
  g_autoptr(AforkProcess) process = rel_make (kind);

  afork_process_call (process, function, NULL);
  afork_process_send_arg (process, "after the call");
  assert_run_fails (process);
  assert_wait_status (process, signum, exit_status);
  rel_assert_no_sigpipe ();
}

static void
test_call_crash (gconstpointer data)
{
  run_call_death ((RelKind *) data, "rel_call_crash", SIGSEGV, 0);
}

static void
test_call_kill (gconstpointer data)
{
  run_call_death ((RelKind *) data, "rel_call_die", SIGKILL, 0);
}

static void
test_call_exit (gconstpointer data)
{
  run_call_death ((RelKind *) data, "rel_call_exit", 0, 3);
}

static void
run_done_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  WaitResult *run = user_data;
  g_autoptr(GSocketConnection) connection = NULL;

  connection = afork_process_run_finish (AFORK_PROCESS (object), result, &run->error);
  run->ok = connection != NULL;
  run->done = TRUE;
}

/* The child is inside a call function when `r` arrives, and is killed
 * there: the acknowledgement never comes. Meanwhile the loop runs. */
static void
test_killed_before_ack (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  g_autoptr(RelWatchdog) watchdog = NULL;
  WaitResult run = { FALSE, FALSE, NULL };
  GPid pid = rel_report_pid (process);
  char state = 0;
  guint beats;

  afork_process_call (process, "rel_call_stop", NULL);
  afork_process_run_async (process, "rel_run_pid", NULL, run_done_cb, &run);

  /* Stopped inside the call, with the run command waiting. */
  for (guint i = 0; i < AFORK_TEST_WAIT_SECONDS * 100 && state != 'T' && state != 't'; i++)
    {
      g_assert_true (afork_test_proc_stat (pid, &state, NULL, NULL));
      if (state != 'T' && state != 't')
        rel_iterate_for (context, 10);
    }
  g_assert_true (state == 'T' || state == 't');

  watchdog = rel_watchdog_new (context);
  rel_iterate_for (context, 100);
  beats = rel_watchdog_beats (watchdog);
  g_assert_cmpuint (beats, >, 0);
  g_assert_false (run.done);

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  rel_iterate_until (context, &run.done, "the run of a killed process");
  g_assert_false (run.ok);
  g_assert_error (run.error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
  g_clear_error (&run.error);

  assert_wait_status (process, SIGKILL, 0);
  rel_assert_no_sigpipe ();
}

/* Killed while idle, before any run: the parent keeps queueing, more than
 * a socket buffer holds, and writes into a dead socket. */
static void
test_killed_idle (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GBytes) big = g_bytes_new_take (g_malloc0 (4 * 1024 * 1024), 4 * 1024 * 1024);
  GPid pid = rel_report_pid (process);

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_true (afork_test_wait_gone (pid, AFORK_TEST_WAIT_SECONDS));

  for (guint i = 0; i < 4; i++)
    afork_process_send_bytes (process, big);
  afork_process_send_arg (process, "after the death");
  assert_run_fails (process);
  assert_wait_status (process, SIGKILL, 0);
  rel_assert_no_sigpipe ();
}

/* Dies right after the acknowledgement: the parent has its connection,
 * reads end of file, and its writes fail with an error. */
static void
run_after_ack (RelKind    *kind,
               const char *function,
               int         signum)
{
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  GOutputStream *out;
  gboolean write_failed = FALSE;
  static const char chunk[65536];

  connection = rel_run_async_wait (process, function, &error);
  g_assert_no_error (error);
  g_assert_cmpint (afork_process_get_pid (process), >, 0);

  line = rel_read_line (connection, &error);
  g_assert_no_error (error);
  g_assert_null (line);   /* end of file */

  assert_wait_status (process, signum, 0);

  /* The peer is gone: writing fails (EPIPE), it does not raise SIGPIPE. */
  out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  for (guint i = 0; i < 64 && !write_failed; i++)
    write_failed = g_output_stream_write (out, chunk, sizeof chunk, NULL, &error) < 0;
  g_assert_true (write_failed);
  g_assert_nonnull (error);
  g_test_message ("write after the death: %s", error->message);

  rel_assert_no_sigpipe ();
}

static void
test_after_ack_crash (gconstpointer data)
{
  run_after_ack ((RelKind *) data, "rel_run_crash", SIGSEGV);
}

static void
test_after_ack_exit (gconstpointer data)
{
  run_after_ack ((RelKind *) data, "rel_run_exit", 0);
}

int
main (int    argc,
      char **argv)
{
  static const struct {
    const char *name;
    GTestDataFunc func;
  } cases[] = {
    { "require-crash", test_require_crash },
    { "call-crash", test_call_crash },
    { "call-kill", test_call_kill },
    { "call-exit", test_call_exit },
    { "killed-before-ack", test_killed_before_ack },
    { "killed-idle", test_killed_idle },
    { "after-ack-crash", test_after_ack_crash },
    { "after-ack-exit", test_after_ack_exit },
  };
  int ret;

  rel_init (&argc, &argv);

  for (guint k = 0; k < rel_n_kinds; k++)
    for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
      {
        g_autofree char *path = g_strdup_printf ("/afork/reliability/child-death/%s/%s",
                                                 rel_kinds[k].name, cases[c].name);
        g_test_add_data_func (path, &rel_kinds[k], cases[c].func);
      }

  ret = g_test_run ();
  rel_kinds_reset ();

  return ret;
}
