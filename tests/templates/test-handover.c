/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Handing processes over: a connection taken from one AforkProcess becomes
 * another, here or in another process. */
#include <string.h>
#include <unistd.h>

#include "afork-test-common.h"

static AforkProcess *
new_with (const char *module)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *p = afork_process_new (&error);

  g_assert_no_error (error);
  return afork_process_require (p, module);
}

/* The process keeps what was done before the hand-over. */
static void
test_handover_continue (void)
{
  g_autoptr(AforkProcess) p = new_with ("afork-test-module");
  g_autoptr(AforkProcess) q = NULL;
  g_autoptr(GSocketConnection) taken = NULL;
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  afork_process_send_arg (p, "before");
  taken = afork_process_hand_over (p, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_UNIX_CONNECTION (taken));

  /* Both are used up. */
  c = afork_process_hand_over (p, NULL, &error);
  g_assert_null (c);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CLOSED);
  g_clear_error (&error);

  q = afork_process_new_from_connection (taken, &error);
  g_assert_no_error (error);
  g_clear_object (&taken);   /* q holds its own copy */

  afork_process_send_arg (q, "after");
  c = afork_process_run (q, "test_run_args", NULL, &error);
  g_assert_no_error (error);
  out = afork_test_read_connection (c);
  g_assert_nonnull (strstr (out, " before\n"));
  g_assert_nonnull (strstr (out, " after\n"));
  g_assert_true (strstr (out, " before\n") < strstr (out, " after\n"));
  g_assert_cmpint (afork_process_get_pid (q), >, 0);
}

/* One process takes the connections of two others and a pipe, makes
 * processes of them and has them write 172 and 174 into the pipe. */
static void
test_handover_tofrom (void)
{
  g_autoptr(AforkProcess) p1 = new_with ("afork-handover-module");
  g_autoptr(AforkProcess) p2 = new_with ("afork-handover-module");
  g_autoptr(AforkProcess) p3 = new_with ("afork-handover-module");
  g_autoptr(GSocketConnection) c1 = NULL;
  g_autoptr(GSocketConnection) c2 = NULL;
  g_autoptr(GSocketConnection) c3 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *written = NULL;
  g_autofree char *report = NULL;
  int fds[2];

  c1 = afork_process_hand_over (p1, NULL, &error);
  g_assert_no_error (error);
  c2 = afork_process_hand_over (p2, NULL, &error);
  g_assert_no_error (error);
  afork_test_pipe (fds);

  afork_process_send_fd (p3, g_socket_get_fd (g_socket_connection_get_socket (c1)));
  afork_process_send_fd (p3, g_socket_get_fd (g_socket_connection_get_socket (c2)));
  afork_process_send_fd (p3, fds[1]);
  c3 = afork_process_run (p3, "handover_run_tofrom", NULL, &error);
  g_assert_no_error (error);

  /* Only the processes hold the sockets and the pipe now. */
  g_clear_object (&c1);
  g_clear_object (&c2);
  close (fds[1]);

  report = afork_test_read_connection (c3);
  g_assert_cmpstr (report, ==, "ok");

  written = afork_test_read_fd_to_eof (fds[0]);
  close (fds[0]);
  g_assert_cmpint (strlen (written), ==, 6);
  g_assert_true (g_str_equal (written, "172174") || g_str_equal (written, "174172"));
}

static void
test_handover_not_a_socket (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) p = NULL;
  int fds[2];

  g_assert_cmpint (pipe (fds), ==, 0);
  p = afork_process_new_from_fd (fds[0], &error);
  g_assert_null (p);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);
  close (fds[0]);
  close (fds[1]);
}

/* Errors queued before the hand-over are reported by it. */
static void
test_handover_error (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) p = afork_process_new (&error);
  g_autoptr(GSocketConnection) c = NULL;
  int fds[2];

  g_assert_no_error (error);
  g_assert_cmpint (pipe (fds), ==, 0);
  close (fds[0]);
  close (fds[1]);
  afork_process_send_fd (p, fds[0]);

  c = afork_process_hand_over (p, NULL, &error);
  g_assert_null (c);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/afork/handover/continue", test_handover_continue);
  g_test_add_func ("/afork/handover/tofrom", test_handover_tofrom);
  g_test_add_func ("/afork/handover/not-a-socket", test_handover_not_a_socket);
  g_test_add_func ("/afork/handover/error", test_handover_error);

  return g_test_run ();
}
