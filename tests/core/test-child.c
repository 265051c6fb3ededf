/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AforkChild, the child's view of its arguments, checked by run and call
 * functions of the test module that report what each accessor returns. */
#include "core-util.h"

#include <string.h>
#include <unistd.h>

static char *
str_line (guint       index,
          const void *data,
          gsize       len)
{
  g_autofree char *sum = sha256_string (data, len);

  /* index, is_fd, length, NUL-terminated, peek_fd, steal_fd, checksum */
  return g_strdup_printf ("str %u 0 %" G_GSIZE_FORMAT " 1 -1 -1 %s", index, len, sum);
}

static char *
fd_line (guint index)
{
  /* index, is_fd, open, close-on-exec, steal == peek, second steal,
   * peek after steal, get_arg NULL, get_arg length */
  return g_strdup_printf ("fd %u 1 1 1 1 -1 -1 1 0", index);
}

/* Every accessor, on strings (plain, binary, empty) and descriptors. */
static void
test_accessors (gconstpointer data)
{
  AforkTestKind kind = GPOINTER_TO_INT (data);
  g_autoptr(AforkProcess) process = afork_test_make_process (kind);
  static const char binary[] = "a\0b\0c";
  g_autoptr(GBytes) binary_bytes = g_bytes_new_static (binary, 5);
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  g_autofree char *owner = g_strdup_printf ("owner %d", (int) getpid ());
  g_autofree char *line0 = str_line (0, "alpha", 5);
  g_autofree char *line1 = fd_line (1);
  g_autofree char *line2 = str_line (2, binary, 5);
  g_autofree char *line3 = fd_line (3);
  g_autofree char *line4 = str_line (4, "", 0);
  g_auto(GStrv) lines = NULL;
  int first[2], second[2];

  afork_test_pipe (first);
  afork_test_pipe (second);

  afork_process_require (process, TEST_MODULE);
  afork_process_send_arg (process, "alpha");
  afork_process_send_fd (process, first[1]);
  afork_process_send_bytes (process, binary_bytes);
  afork_process_send_fd (process, second[1]);
  afork_process_send_bytes (process, empty);
  close (first[1]);
  close (second[1]);

  lines = run_lines (process, "test_run_child_api");
  /* The socket is blocking and close-on-exec; the owner is us. */
  assert_lines_equal (lines, (const char * const[]) {
                        "sock 1 1 0 1", owner, "n 5",
                        line0, line1, line2, line3, line4, "end", NULL });

  {
    g_autofree char *got_first = afork_test_read_fd_to_eof (first[0]);
    g_autofree char *got_second = afork_test_read_fd_to_eof (second[0]);

    g_assert_cmpstr (got_first, ==, "fd 1\n");
    g_assert_cmpstr (got_second, ==, "fd 3\n");
  }

  close (first[0]);
  close (second[0]);
}

/* A call function sees the arguments pending at its time; once it clears
 * them, the run function sees only those sent later, and the cleared
 * descriptors are closed at once. */
static void
test_clear_args (gconstpointer data)
{
  AforkTestKind kind = GPOINTER_TO_INT (data);
  g_autoptr(AforkProcess) process = afork_test_make_process (kind);
  g_autoptr(AforkProcess) echo = afork_test_make_process (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *after_line = arg_line ("after");
  g_autofree char *got = NULL;
  g_auto(GStrv) lines = NULL;
  int before[2], later[2], cleared[2];
  char buf[32] = { 0, };
  gsize n = 0;

  afork_test_pipe (before);
  afork_test_pipe (later);

  afork_process_require (process, TEST_MODULE);
  afork_process_send_arg (process, "before");
  afork_process_send_fd (process, before[1]);
  afork_process_send_arg (process, "before too");
  afork_process_call (process, "test_call_count_args", NULL);
  afork_process_call (process, "test_call_clear_args", NULL);
  afork_process_send_arg (process, "after");
  afork_process_send_fd (process, later[1]);
  close (before[1]);
  close (later[1]);

  lines = run_lines (process, "test_run_args");
  assert_lines_equal (lines, (const char * const[]) {
                        after_line, "f", "global n_args=3", "end", NULL });

  got = afork_test_read_fd_to_eof (before[0]);
  g_assert_cmpstr (got, ==, "");
  g_clear_pointer (&got, g_free);
  got = afork_test_read_fd_to_eof (later[0]);
  g_assert_cmpstr (got, ==, "fd 1\n");
  close (before[0]);
  close (later[0]);

  /* While the child lives on in its run function, the descriptor it
   * cleared has reached end of file: it was closed by clear_args. */
  afork_test_pipe (cleared);
  afork_process_require (echo, TEST_MODULE);
  afork_process_send_fd (echo, cleared[1]);
  close (cleared[1]);
  afork_process_call (echo, "test_call_clear_args", NULL);
  connection = run_ok (echo, "test_run_echo");

  g_clear_pointer (&got, g_free);
  got = afork_test_read_fd_to_eof (cleared[0]);
  g_assert_cmpstr (got, ==, "");
  close (cleared[0]);

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (connection)),
                             "alive\n", 6, NULL, NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                           buf, strlen ("echo alive\n"), &n, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (buf, ==, "echo alive\n");
}

/* Call functions get their string arguments, NULL meaning none. */
static void
test_call_args (void)
{
  g_autoptr(AforkProcess) with_args = afork_test_make_process (AFORK_TEST_KIND_NEW);
  g_autoptr(AforkProcess) without_args = afork_test_make_process (AFORK_TEST_KIND_NEW);
  const char * const args[] = { "a", "b c", "", "d", NULL };
  g_auto(GStrv) lines = NULL;

  afork_process_require (with_args, TEST_MODULE);
  afork_process_call (with_args, "test_call_set_global", args);
  lines = run_lines (with_args, "test_run_args");
  assert_lines_equal (lines, (const char * const[]) { "global a,b c,,d", "end", NULL });
  g_clear_pointer (&lines, g_strfreev);

  afork_process_require (without_args, TEST_MODULE);
  afork_process_call (without_args, "test_call_set_global", NULL);
  lines = run_lines (without_args, "test_run_args");
  assert_lines_equal (lines, (const char * const[]) { "global ", "end", NULL });
}

/* A forked child inherits its template's owner and pending arguments,
 * descriptors included. */
static void
test_fork_inherits (void)
{
  g_autoptr(AforkProcess) template = afork_test_make_process (AFORK_TEST_KIND_NEW_EXEC);
  g_autoptr(AforkProcess) child = NULL;
  g_autofree char *owner = g_strdup_printf ("owner %d", (int) getpid ());
  g_autofree char *line0 = str_line (0, "from template", 13);
  g_autofree char *line1 = fd_line (1);
  g_autofree char *line2 = str_line (2, "own", 3);
  g_autofree char *got = NULL;
  g_auto(GStrv) lines = NULL;
  int fds[2];

  afork_test_pipe (fds);
  afork_process_require (template, TEST_MODULE);
  afork_process_send_arg (template, "from template");
  afork_process_send_fd (template, fds[1]);
  close (fds[1]);

  child = afork_process_fork (template);
  g_clear_object (&template);
  afork_process_send_arg (child, "own");

  lines = run_lines (child, "test_run_child_api");
  assert_lines_equal (lines, (const char * const[]) {
                        "sock 1 1 0 1", owner, "n 3", line0, line1, line2, "end", NULL });

  got = afork_test_read_fd_to_eof (fds[0]);
  g_assert_cmpstr (got, ==, "fd 1\n");
  close (fds[0]);
}

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  afork_test_add_kind_tests ("/afork/child/accessors", test_accessors);
  afork_test_add_kind_tests ("/afork/child/clear-args", test_clear_args);
  g_test_add_func ("/afork/child/call-args", test_call_args);
  g_test_add_func ("/afork/child/fork-inherits", test_fork_inherits);

  return g_test_run ();
}
