/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The rest of AforkProcess, once each through real processes: waiting for
 * an exit and reading its status, exec, handing a connection over, and
 * forking the calling program. */
#include "core-util.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void
run_and_drain (AforkProcess *process,
               const char   *function)
{
  g_autoptr(GSocketConnection) connection = run_ok (process, function);
  g_autofree char *text = afork_test_read_connection (connection);

  g_assert_cmpstr (text, ==, "");
}

/* An exit status, with the synchronous wait. */
static void
test_wait_exit (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GError) error = NULL;

  afork_process_send_arg (afork_process_require (process, TEST_MODULE), "7");
  run_and_drain (process, "test_run_exit");

  g_assert_true (afork_process_wait (process, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (process));
  g_assert_cmpint (afork_process_get_exit_status (process), ==, 7);
  g_assert_false (afork_process_get_if_signaled (process));
  g_assert_true (WIFEXITED (afork_process_get_status (process)));
  g_assert_cmpint (WEXITSTATUS (afork_process_get_status (process)), ==, 7);
}

/* A death by signal, with the asynchronous wait. */
static void
test_wait_signal (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  afork_process_send_arg (afork_process_require (process, TEST_MODULE), "signal 9");
  run_and_drain (process, "test_run_exit");

  afork_process_wait_async (process, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  g_assert_true (afork_process_wait_finish (process, result, &error));
  g_assert_no_error (error);
  g_assert_false (afork_process_get_if_exited (process));
  g_assert_true (afork_process_get_if_signaled (process));
  g_assert_cmpint (afork_process_get_term_sig (process), ==, SIGKILL);
  g_assert_true (WIFSIGNALED (afork_process_get_status (process)));
}

/* The process becomes a program, with the descriptors it was given as
 * standard output and error. */
static void
test_exec (gconstpointer data)
{
  g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  const char * const argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
  int out_pipe[2], err_pipe[2];

  afork_test_pipe (out_pipe);
  afork_test_pipe (err_pipe);
  afork_exec_options_set_stdout_fd (options, out_pipe[1]);
  afork_exec_options_set_stderr_fd (options, err_pipe[1]);
  connection = afork_process_exec (process, argv, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_SOCKET_CONNECTION (connection));
  g_assert_cmpint (afork_process_get_pid (process), >, 0);
  close (out_pipe[1]);
  close (err_pipe[1]);

  out = afork_test_read_fd_to_eof (out_pipe[0]);
  err = afork_test_read_fd_to_eof (err_pipe[0]);
  g_assert_cmpstr (out, ==, "out\n");
  g_assert_cmpstr (err, ==, "err\n");
  close (out_pipe[0]);
  close (err_pipe[0]);

  g_assert_true (afork_process_wait (process, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (process));
  g_assert_cmpint (afork_process_get_exit_status (process), ==, 3);
}

/* A program that does not exist, with the asynchronous exec. */
static void
test_exec_missing (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  const char * const argv[] = { "/nonexistent-afork-dir/program", NULL };

  afork_process_exec_async (process, argv, NULL, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  connection = afork_process_exec_finish (process, result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_null (connection);
}

/* A process handed over through its connection goes on where it was:
 * arguments sent before and after the hand-over arrive, in order. */
static void
test_handover (gconstpointer data)
{
  gboolean async = GPOINTER_TO_INT (data);
  g_autoptr(AforkProcess) process = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(AforkProcess) taken = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *before = arg_line ("before");
  g_autofree char *after = arg_line ("after");
  g_auto(GStrv) lines = NULL;

  afork_process_send_arg (afork_process_require (process, TEST_MODULE), "before");

  if (async)
    {
      g_autoptr(GAsyncResult) result = NULL;

      afork_process_hand_over_async (process, NULL, afork_test_store_result_cb, &result);
      afork_test_wait_result (&result);
      connection = afork_process_hand_over_finish (process, result, &error);
      g_assert_no_error (error);
      /* As another program would, from the bare descriptor. */
      taken = afork_process_new_from_fd (g_socket_get_fd (g_socket_connection_get_socket (connection)),
                                         &error);
      g_assert_no_error (error);
    }
  else
    {
      connection = afork_process_hand_over (process, NULL, &error);
      g_assert_no_error (error);
      taken = afork_process_new_from_connection (connection, &error);
      g_assert_no_error (error);
    }

  /* The new object has its own copy of the socket. */
  g_io_stream_close (G_IO_STREAM (connection), NULL, &error);
  g_assert_no_error (error);

  /* The old one is done with. */
  g_clear_error (&error);
  error = run_error (process, "test_run_args");
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CLOSED);

  afork_process_send_arg (taken, "after");
  lines = run_lines (taken, "test_run_args");
  assert_lines_equal (lines, (const char * const[]) { before, after, "global (null)", "end", NULL });
  g_assert_cmpint (afork_process_get_pid (taken), >, 0);
}

/* Forking the calling program: refused once it has threads, possible in a
 * program that has none, whose own exported functions then run. */
static gpointer
idle_thread (gpointer data)
{
  GCancellable *stop = data;

  while (!g_cancellable_is_cancelled (stop))
    g_usleep (1000);

  return NULL;
}

static void
test_fork_self (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) template = afork_process_fork_self (&error);
      g_autoptr(AforkProcess) child = NULL;
      g_auto(GStrv) lines = NULL;

      g_assert_no_error (error);
      g_assert_true (AFORK_IS_PROCESS (template));
      child = afork_process_fork (template);
      afork_process_require (child, TEST_MODULE);
      lines = run_lines (child, "test_run_pid");
      g_assert_cmpuint (g_strv_length (lines), ==, 1);
      g_assert_cmpint (afork_test_parse_pid_line (lines[0]), ==, afork_process_get_pid (child));
      return;
    }

  {
    g_autoptr(GCancellable) stop = g_cancellable_new ();
    g_autoptr(GError) error = NULL;
    g_autoptr(AforkProcess) template = NULL;
    GThread *thread = g_thread_new ("idle", idle_thread, stop);

    template = afork_process_fork_self (&error);
    g_assert_error (error, AFORK_ERROR, AFORK_ERROR_THREADED);
    g_assert_null (template);

    g_cancellable_cancel (stop);
    g_thread_join (thread);
  }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  afork_test_add_kind_tests ("/afork/process/wait/exit", test_wait_exit);
  afork_test_add_kind_tests ("/afork/process/wait/signal", test_wait_signal);
  afork_test_add_kind_tests ("/afork/process/exec/run", test_exec);
  afork_test_add_kind_tests ("/afork/process/exec/missing", test_exec_missing);
  g_test_add_data_func ("/afork/process/handover/sync", GINT_TO_POINTER (FALSE), test_handover);
  g_test_add_data_func ("/afork/process/handover/async", GINT_TO_POINTER (TRUE), test_handover);
  g_test_add_func ("/afork/process/fork-self", test_fork_self);

  return g_test_run ();
}
