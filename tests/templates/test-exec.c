/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The exec built-in and waiting for processes, through real processes. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "afork-test-common.h"

/* A process of @kind; the template of a fork has an argument pending,
 * which its fork inherits. */
static AforkProcess *
make (AforkTestKind kind)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) tmpl = NULL;
  AforkProcess *p;

  if (kind != AFORK_TEST_KIND_FORK)
    return afork_test_make_process (kind);

  tmpl = afork_process_new (&error);
  g_assert_no_error (error);
  p = afork_process_fork (afork_process_send_arg (tmpl, "template arg"));
  g_assert_nonnull (p);

  return p;
}

/* stdout to a pipe, stderr to the connection. */
static void
test_exec_stdio (gconstpointer data)
{
  g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
  g_autoptr(AforkProcess) p = make (GPOINTER_TO_INT (data));
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  const char *argv[] = { "sh", "-c", "echo to-stdout; echo to-stderr >&2", NULL };
  int fds[2];

  afork_test_pipe (fds);
  afork_exec_options_set_stdout_fd (options, fds[1]);
  afork_exec_options_set_stderr_fd (options, AFORK_EXEC_FD_SOCKET);
  c = afork_process_exec (p, argv, options, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (c);
  close (fds[1]);   /* the process has its own copy */

  out = afork_test_read_fd_to_eof (fds[0]);
  close (fds[0]);
  g_assert_cmpstr (out, ==, "to-stdout\n");

  err = afork_test_read_connection (c);
  g_assert_cmpstr (err, ==, "to-stderr\n");

  g_assert_cmpint (afork_process_get_pid (p), >, 0);
  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (p));
  g_assert_cmpint (afork_process_get_exit_status (p), ==, 0);
}

static void
test_exec_missing (gconstpointer data)
{
  g_autoptr(AforkProcess) p = make (GPOINTER_TO_INT (data));
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "afork-no-such-program-anywhere", "x", NULL };

  c = afork_process_exec (p, argv, NULL, NULL, &error);
  g_assert_null (c);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "afork-no-such-program-anywhere"));

  /* The process exits at once, with 127: it is no zombie of anybody. */
  g_clear_error (&error);
  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (p));
  g_assert_cmpint (afork_process_get_exit_status (p), ==, 127);
}

static void
test_exec_not_executable (void)
{
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_NEW);
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("afork-exec-XXXXXX", &error);
  g_autofree char *path = NULL;
  const char *argv[] = { NULL, NULL };

  g_assert_no_error (error);
  path = g_build_filename (dir, "script", NULL);
  g_assert_true (g_file_set_contents (path, "#!/bin/sh\nexit 0\n", -1, &error));
  g_assert_cmpint (chmod (path, 0644), ==, 0);
  argv[0] = path;

  c = afork_process_exec (p, argv, NULL, NULL, &error);
  g_assert_null (c);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (error->message, path));

  unlink (path);
  rmdir (dir);
}

static void
test_exec_env_cwd (void)
{
  g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_NEW);
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  const char *argv[] = { "sh", "-c", "echo \"$AFORK_TEST_VALUE:$HOME:$(pwd)\"", NULL };
  const char *envp[] = { "AFORK_TEST_VALUE=42", "PATH=/usr/bin:/bin", NULL };

  afork_exec_options_set_environ (options, envp);
  afork_exec_options_set_cwd (options, "/");
  afork_exec_options_set_stdout_fd (options, AFORK_EXEC_FD_SOCKET);
  c = afork_process_exec (p, argv, options, NULL, &error);
  g_assert_no_error (error);
  out = afork_test_read_connection (c);
  /* HOME is not in the given environment. */
  g_assert_cmpstr (out, ==, "42::/\n");
}

/* The program keeps nothing but its standard descriptors. */
static void
test_exec_closes_other_fds (void)
{
  g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_FORK);
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  const char *argv[] = { "ls", "/proc/self/fd", NULL };
  int extra[2];

  g_assert_cmpint (pipe (extra), ==, 0);
  afork_process_send_fd (p, extra[0]);
  afork_process_send_fd (p, extra[1]);
  close (extra[0]);
  close (extra[1]);

  afork_exec_options_set_stdout_fd (options, AFORK_EXEC_FD_SOCKET);
  c = afork_process_exec (p, argv, options, NULL, &error);
  g_assert_no_error (error);
  out = afork_test_read_connection (c);
  lines = g_strsplit (g_strstrip (out), "\n", -1);
  /* 0, 1, 2 and the directory ls itself reads. */
  g_assert_cmpuint (g_strv_length (lines), ==, 4);
}

static void
test_wait_forked_exit_status (void)
{
  g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_FORK);
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "sh", "-c", "read line; exit 3", NULL };
  int in[2];

  afork_test_pipe (in);
  afork_exec_options_set_stdin_fd (options, in[0]);
  c = afork_process_exec (p, argv, options, NULL, &error);
  g_assert_no_error (error);
  close (in[0]);

  /* Not a child of ours: its template reaps it and tells us. */
  g_assert_cmpint (afork_test_proc_parent (afork_process_get_pid (p)), !=, getpid ());
  g_assert_cmpint (afork_test_proc_parent (afork_process_get_pid (p)), >, 1);

  close (in[1]);
  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (p));
  g_assert_false (afork_process_get_if_signaled (p));
  g_assert_cmpint (afork_process_get_exit_status (p), ==, 3);
  g_assert_cmpint (afork_process_get_status (p), ==, 3 << 8);

  /* A second wait answers at once. */
  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
}

static void
test_wait_forked_signal (void)
{
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_NEW);
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "sh", "-c", "kill -KILL $$", NULL };

  c = afork_process_exec (p, argv, NULL, NULL, &error);
  g_assert_no_error (error);

  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_signaled (p));
  g_assert_false (afork_process_get_if_exited (p));
  g_assert_cmpint (afork_process_get_term_sig (p), ==, SIGKILL);
}

/* new_exec makes a direct child: GLib reaps it and gives the status. */
static void
test_wait_direct_child (void)
{
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_NEW_EXEC);
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "sh", "-c", "exit 4", NULL };
  GPid pid = afork_process_get_pid (p);

  g_assert_cmpint (pid, >, 0);
  g_assert_cmpint (afork_test_proc_parent (pid), ==, getpid ());

  c = afork_process_exec (p, argv, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (afork_process_get_pid (p), ==, pid);

  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (p));
  g_assert_cmpint (afork_process_get_exit_status (p), ==, 4);
}

/* A run function's process, whose template was dropped before it ran:
 * the template stays to report it. */
static void
test_wait_template_dropped (void)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *tmpl = afork_process_new (&error);
  g_autoptr(AforkProcess) p = NULL;
  g_autoptr(GSocketConnection) c = NULL;
  g_autofree char *out = NULL;

  g_assert_no_error (error);
  afork_process_require (tmpl, "afork-test-module");
  p = afork_process_fork (tmpl);
  g_object_unref (tmpl);

  c = afork_process_run (p, "test_run_pid", NULL, &error);
  g_assert_no_error (error);
  out = afork_test_read_connection (c);
  g_assert_true (g_str_has_prefix (out, "pid "));

  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (p));
  g_assert_cmpint (afork_process_get_exit_status (p), ==, 0);
}

static void
test_wait_cancel (void)
{
  g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_NEW);
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "sh", "-c", "read line", NULL };
  int in[2];

  afork_test_pipe (in);
  afork_exec_options_set_stdin_fd (options, in[0]);
  c = afork_process_exec (p, argv, options, NULL, &error);
  g_assert_no_error (error);
  close (in[0]);

  afork_process_wait_async (p, cancellable, afork_test_store_result_cb, &result);
  g_cancellable_cancel (cancellable);
  afork_test_wait_result (&result);

  g_assert_false (afork_process_wait_finish (p, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* Waiting again still works once it exits. */
  close (in[1]);
  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (afork_process_get_exit_status (p), ==, 1);
}

static void
test_wait_unknown (void)
{
  g_autoptr(AforkProcess) p = make (AFORK_TEST_KIND_NEW);
  g_autoptr(AforkProcess) q = NULL;
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;

  c = afork_process_hand_over (p, NULL, &error);
  g_assert_no_error (error);
  q = afork_process_new_from_connection (c, &error);
  g_assert_no_error (error);

  g_assert_false (afork_process_wait (q, NULL, &error));
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_STATUS_UNKNOWN);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  afork_test_add_kind_tests ("/afork/exec/stdio", test_exec_stdio);
  afork_test_add_kind_tests ("/afork/exec/missing", test_exec_missing);
  g_test_add_func ("/afork/exec/not-executable", test_exec_not_executable);
  g_test_add_func ("/afork/exec/env-cwd", test_exec_env_cwd);
  g_test_add_func ("/afork/exec/closes-other-fds", test_exec_closes_other_fds);
  g_test_add_func ("/afork/wait/forked/exit-status", test_wait_forked_exit_status);
  g_test_add_func ("/afork/wait/forked/signal", test_wait_forked_signal);
  g_test_add_func ("/afork/wait/direct-child", test_wait_direct_child);
  g_test_add_func ("/afork/wait/template-dropped", test_wait_template_dropped);
  g_test_add_func ("/afork/wait/cancel", test_wait_cancel);
  g_test_add_func ("/afork/wait/unknown", test_wait_unknown);

  return g_test_run ();
}
