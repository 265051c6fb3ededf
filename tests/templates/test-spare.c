/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The spare: a template that has forked forks the next process ahead
 * while it is idle, and hands it the socket of the next request. These tests check that a new
 * process never sees a template older than its request, that there is one
 * spare per template, and that no spare outlives its template or stays
 * behind a template that runs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "afork-test-common.h"

#define EXPORT __attribute__((visibility("default")))

/* Forks @tmpl, runs @function in the new process and returns all it
 * writes. */
static char *
fork_and_read (AforkProcess *tmpl,
               const char   *function)
{
  g_autoptr(AforkProcess) child = afork_process_fork (tmpl);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connection = afork_test_run (child, function, &error);
  g_assert_no_error (error);
  return afork_test_read_connection (connection);
}

/* The children of @pid, from /proc/PID/task/PID/children. */
static GArray *
children_of (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task/%d/children", (int) pid, (int) pid);
  g_autofree char *contents = NULL;
  g_auto(GStrv) fields = NULL;
  GArray *children = g_array_new (FALSE, FALSE, sizeof (GPid));

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return children;

  fields = g_strsplit (g_strstrip (contents), " ", -1);
  for (guint i = 0; fields[i] != NULL; i++)
    {
      gint64 child;

      if (g_ascii_string_to_signed (fields[i], 10, 1, G_MAXINT, &child, NULL))
        {
          GPid p = (GPid) child;
          g_array_append_val (children, p);
        }
    }

  return children;
}

/* The spares among the children of @tmpl_pid: processes named
 * "afork OWNER spare" (as far as the 15 characters of a process name go:
 * a template forked from a program has no title of its own). */
static GArray *
spares_of (GPid tmpl_pid)
{
  g_autofree char *wanted = g_strdup_printf ("afork %d spare", (int) getpid ());
  g_autoptr(GArray) children = children_of (tmpl_pid);
  GArray *spares = g_array_new (FALSE, FALSE, sizeof (GPid));

  if (strlen (wanted) > 15)
    wanted[15] = '\0';

  for (guint i = 0; i < children->len; i++)
    {
      GPid child = g_array_index (children, GPid, i);
      g_autofree char *path = g_strdup_printf ("/proc/%d/comm", (int) child);
      g_autofree char *name = NULL;

      if (g_file_get_contents (path, &name, NULL, NULL) &&
          strcmp (g_strchomp (name), wanted) == 0)
        g_array_append_val (spares, child);
    }

  return spares;
}

/* Waits until @tmpl_pid has exactly one spare, and returns its pid. */
static GPid
wait_for_one_spare (GPid tmpl_pid)
{
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr(GArray) spares = spares_of (tmpl_pid);

      g_assert_cmpuint (spares->len, <=, 1);
      if (spares->len == 1)
        return g_array_index (spares, GPid, 0);

      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (1000);
    }
}

/* Every change of a template between two forks reaches the second one,
 * though a spare was forked before the change. */
static void
test_spare_sees_every_change (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) tmpl = afork_process_new (&error);
  g_autofree char *first = NULL, *required = NULL, *with_arg = NULL;
  g_autofree char *called = NULL, *with_fd = NULL, *again = NULL;
  g_autofree char *from_pipe = NULL;
  int fds[2];

  g_assert_no_error (error);

  /* A first fork leaves a spare that has no module. */
  first = fork_and_read (tmpl, "_exit");
  g_assert_cmpstr (first, ==, "");

  afork_process_require (tmpl, "afork-test-module");
  required = fork_and_read (tmpl, "test_run_args");
  g_assert_cmpstr (required, ==, "global (null)\nend\n");

  afork_process_send_arg (tmpl, "late");
  with_arg = fork_and_read (tmpl, "test_run_args");
  g_assert_nonnull (strstr (with_arg, " late\n"));
  g_assert_true (g_str_has_suffix (with_arg, "global (null)\nend\n"));

  afork_process_call (tmpl, "test_call_set_global", (const char * const[]) { "g1", NULL });
  called = fork_and_read (tmpl, "test_run_args");
  g_assert_nonnull (strstr (called, " late\n"));
  g_assert_true (g_str_has_suffix (called, "global g1\nend\n"));

  afork_test_pipe (fds);
  afork_process_send_fd (tmpl, fds[1]);
  close (fds[1]);
  with_fd = fork_and_read (tmpl, "test_run_args");
  g_assert_true (g_str_has_suffix (with_fd, "f\nglobal g1\nend\n"));

  /* Nothing changed since: the spare is taken, and sees the same. */
  again = fork_and_read (tmpl, "test_run_args");
  g_assert_cmpstr (again, ==, with_fd);

  /* Both got the descriptor (argument 1, after "late"). */
  g_clear_object (&tmpl);
  from_pipe = afork_test_read_fd_to_eof (fds[0]);
  close (fds[0]);
  g_assert_cmpstr (from_pipe, ==, "fd 1\nfd 1\n");
}

/* Waits until @pid has been reaped: not even a zombie is left. */
static void
assert_reaped_soon (GPid pid)
{
  g_autofree char *dir = g_strdup_printf ("/proc/%d", (int) pid);
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;

  while (g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (2000);
    }
}

/* A template has one spare at a time, and the processes forked from it
 * are not disturbed by it. When the template goes, it reaps its spare
 * itself: this program is made the subreaper of its descendants, so a
 * spare left to exit on its own would stay here as a zombie. */
static void
test_spare_one_per_template (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) tmpl = NULL;
      g_autoptr(AforkProcess) child = NULL;
      g_autoptr(GSocketConnection) connection = NULL;
      g_autofree char *out = NULL;
      GPid tmpl_pid, spare, child_pid;
      GOutputStream *output;

      g_assert_cmpint (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), ==, 0);

      tmpl = afork_process_new (&error);
      g_assert_no_error (error);
      afork_process_require (tmpl, "afork-test-module");

      for (guint i = 0; i < 3; i++)
        {
          g_autofree char *pid_line = fork_and_read (tmpl, "test_run_pid");
          g_assert_true (g_str_has_prefix (pid_line, "pid "));
        }

      child = afork_process_fork (tmpl);
      connection = afork_test_run (child, "test_run_echo", &error);
      g_assert_no_error (error);
      child_pid = afork_process_get_pid (child);
      tmpl_pid = afork_test_proc_parent (child_pid);
      g_assert_cmpint (tmpl_pid, >, 0);

      spare = wait_for_one_spare (tmpl_pid);
      g_assert_cmpint (spare, !=, child_pid);

      output = g_io_stream_get_output_stream (G_IO_STREAM (connection));
      g_output_stream_write_all (output, "hi\n", 3, NULL, NULL, &error);
      g_assert_no_error (error);
      g_socket_shutdown (g_socket_connection_get_socket (connection), FALSE, TRUE, &error);
      g_assert_no_error (error);
      out = afork_test_read_connection (connection);
      g_assert_cmpstr (out, ==, "echo hi\n");
      g_assert_true (afork_process_wait (child, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (afork_process_get_if_exited (child));

      /* Nothing left to report on: the template exits at once. */
      g_clear_object (&tmpl);
      assert_reaped_soon (tmpl_pid);
      assert_reaped_soon (spare);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* Run functions of this program, for a template forked from it. */
/* Writes its pid and its parent's. */
EXPORT void report_pids (AforkChild *child);
void
report_pids (AforkChild *child)
{
  g_autofree char *line = g_strdup_printf ("%d %d", (int) getpid (), (int) getppid ());

  afork_test_write_all (afork_child_get_fd (child), line, strlen (line));
}

/* Writes "child N" for each child of this process, living or zombie, then
 * "end". */
EXPORT void report_children (AforkChild *child);
void
report_children (AforkChild *child)
{
  g_autoptr(GArray) children = children_of (getpid ());
  g_autoptr(GString) report = g_string_new (NULL);

  for (guint i = 0; i < children->len; i++)
    g_string_append_printf (report, "child %d\n", (int) g_array_index (children, GPid, i));
  g_string_append (report, "end\n");

  afork_test_write_all (afork_child_get_fd (child), report->str, report->len);
}

/* A template that is run after forking reaps its spare first: the run
 * function finds no child but the one it forked (which may not be reaped
 * yet). A template forked from this program, so that the functions are
 * found. */
static void
test_spare_gone_when_template_runs (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) tmpl = afork_process_fork_self (&error);
      g_autoptr(GSocketConnection) connection = NULL;
      g_autofree char *first = NULL, *report = NULL, *expected = NULL;
      int first_pid = 0, tmpl_pid = 0;

      g_assert_no_error (error);
      first = fork_and_read (tmpl, "report_pids");
      g_assert_cmpint (sscanf (first, "%d %d", &first_pid, &tmpl_pid), ==, 2);
      /* The spare exists before the template runs. */
      wait_for_one_spare (tmpl_pid);

      connection = afork_test_run (tmpl, "report_children", &error);
      g_assert_no_error (error);
      report = afork_test_read_connection (connection);
      expected = g_strdup_printf ("child %d\nend\n", (int) first_pid);
      g_assert_true (g_str_equal (report, "end\n") || g_str_equal (report, expected));
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  g_test_add_func ("/spare/sees-every-change", test_spare_sees_every_change);
  g_test_add_func ("/spare/one-per-template", test_spare_one_per_template);
  g_test_add_func ("/spare/gone-when-template-runs", test_spare_gone_when_template_runs);

  return g_test_run ();
}
