/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bad input from the caller: programmer errors are GLib criticals, not
 * crashes, and leave the process usable; bad descriptors and oversized
 * arguments are reported by run_finish, and the child goes away. */
#include "rel-util.h"

#include <fcntl.h>
#include <unistd.h>

#define EXPECT_CRITICAL() \
  g_test_expect_message ("Afork", G_LOG_LEVEL_CRITICAL, "*assertion*failed*")

static void
test_criticals (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) set = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "already set");
  GError *preset = set;

  EXPECT_CRITICAL ();
  g_assert_null (afork_process_fork (NULL));
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_require (NULL, "module"));
  EXPECT_CRITICAL ();
  g_assert_true (afork_process_require (process, NULL) == process);
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_call (NULL, "rel_call_report_pid", NULL));
  EXPECT_CRITICAL ();
  g_assert_true (afork_process_call (process, NULL, NULL) == process);
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_send_arg (NULL, "arg"));
  EXPECT_CRITICAL ();
  g_assert_true (afork_process_send_arg (process, NULL) == process);
  EXPECT_CRITICAL ();
  g_assert_true (afork_process_send_bytes (process, NULL) == process);
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_send_fd (NULL, 0));
  EXPECT_CRITICAL ();
  g_assert_true (afork_process_send_fd (process, -1) == process);
  EXPECT_CRITICAL ();
  g_assert_true (afork_process_send_fd (process, -42) == process);
  EXPECT_CRITICAL ();
  afork_process_run_async (NULL, "rel_run_pid", NULL, NULL, NULL);
  EXPECT_CRITICAL ();
  afork_process_run_async (process, NULL, NULL, NULL, NULL);
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_run (process, NULL, NULL, &error));
  g_assert_no_error (error);
  EXPECT_CRITICAL ();
  g_assert_cmpint (afork_process_get_pid (NULL), ==, 0);
  EXPECT_CRITICAL ();
  afork_process_wait_async (NULL, NULL, NULL, NULL);
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_new (&preset));
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_new_exec (&preset));
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_new_from_fd (-1, NULL));
  EXPECT_CRITICAL ();
  g_assert_null (afork_process_new_from_connection (NULL, NULL));
  g_test_assert_expected_messages ();

  /* None of it harmed the process. */
  afork_process_send_arg (process, "still fine");
  rel_assert_runs (process);
  rel_assert_no_sigpipe ();
}

/* A descriptor that is not open: reported at run_finish, and the child,
 * which never gets a run command, exits. */
static void
test_closed_fd (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) process = rel_make (kind);
  g_autoptr(AforkProcess) high = rel_make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid = rel_report_pid (process);
  int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (close (fd), ==, 0);

  afork_process_send_fd (process, fd);
  afork_process_send_arg (process, "after the bad descriptor");
  connection = rel_run_async_wait (process, "rel_run_pid", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);
  g_test_message ("closed descriptor: %s", error->message);
  g_clear_error (&error);
  g_assert_true (afork_test_wait_gone (pid, AFORK_TEST_WAIT_SECONDS));

  /* A number far above any open descriptor. */
  afork_process_send_fd (high, 1000000);
  connection = rel_run_async_wait (high, "rel_run_pid", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);
  rel_assert_no_sigpipe ();
}

/* An argument larger than the protocol carries is refused in the parent,
 * before anything is sent. */
static void
test_oversized (void)
{
  g_autoptr(AforkProcess) process = rel_make (&rel_kinds[0]);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  gsize size = 256 * 1024 * 1024 + 1;
  g_autoptr(GBytes) huge = g_bytes_new_take (g_malloc0 (size), size);

  afork_process_send_bytes (process, huge);
  connection = rel_run_async_wait (process, "rel_run_pid", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);
  g_test_message ("oversized argument: %s", error->message);
}

/* Names that do not exist, and a second run: clear errors. */
static void
test_bad_names (void)
{
  g_autoptr(AforkProcess) no_module = rel_make (&rel_kinds[0]);
  g_autoptr(AforkProcess) no_function = rel_make (&rel_kinds[0]);
  g_autoptr(AforkProcess) twice = rel_make (&rel_kinds[0]);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  afork_process_require (no_module, "/nonexistent/afork-no-such-module.so");
  connection = rel_run_async_wait (no_module, "rel_run_pid", &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  g_clear_error (&error);

  connection = rel_run_async_wait (no_function, "rel_no_such_function", &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_clear_error (&error);

  rel_assert_runs (twice);
  connection = rel_run_async_wait (twice, "rel_run_pid", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CLOSED);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  rel_init (&argc, &argv);

  rel_add_kind_tests ("/afork/reliability/caller-input/criticals", test_criticals);
  rel_add_kind_tests ("/afork/reliability/caller-input/closed-fd", test_closed_fd);
  g_test_add_func ("/afork/reliability/caller-input/oversized", test_oversized);
  g_test_add_func ("/afork/reliability/caller-input/bad-names", test_bad_names);

  ret = g_test_run ();
  rel_kinds_reset ();

  return ret;
}
