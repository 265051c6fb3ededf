/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parent dies (SIGKILL): every server and every child that has not
 * reached its run function exits within the second the documentation
 * promises (they learn of it from their socket or from the owner's pidfd,
 * never by polling); the test reports the time it took, and how long the
 * stragglers needed when some were late. The parent runs as afork-rel-parent, in a process group
 * of its own; what is left is found by process group and by the owner pid
 * in process titles. */
#include "rel-util.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROMISED_MS 1000
/* How long stragglers are waited for, to report their delay: not a
 * tolerance, the test fails past PROMISED_MS. */
#define REPORT_MS   5000

static void
child_setup (G_GNUC_UNUSED gpointer data)
{
  setpgid (0, 0);
}

/* Live processes (not zombies) of group @pgrp, or whose title names
 * @owner. */
static GArray *
leftovers (GPid pgrp,
           GPid owner,
           GPid holder)
{
  g_autoptr(GArray) pids = rel_proc_list ();
  GArray *left = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autofree char *server_title = g_strdup_printf ("afork-server %d ", (int) owner);
  g_autofree char *child_title = g_strdup_printf ("afork %d ", (int) owner);

  for (guint i = 0; i < pids->len; i++)
    {
      GPid pid = g_array_index (pids, GPid, i);
      g_autofree char *cmdline = NULL;
      GPid group = 0;
      char state;

      if (pid == owner || pid == holder || !afork_test_proc_stat (pid, &state, NULL, &group) ||
          state == 'Z' || state == 'X')
        continue;
      cmdline = rel_proc_cmdline (pid);
      if (group == pgrp ||
          (cmdline != NULL && (g_str_has_prefix (cmdline, server_title) ||
                               g_str_has_prefix (cmdline, child_title))))
        g_array_append_val (left, pid);
    }

  return left;
}

/* Whether something besides @running is left. */
static gboolean
any_but (GArray *left,
         GPid    running)
{
  return left->len > 1 || (left->len == 1 && g_array_index (left, GPid, 0) != running);
}

static void
run_parent (const char *mode)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GSubprocess) parent = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GArray) expected = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr(GArray) left = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *helper = NULL;
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = g_path_get_dirname (exe);
  GPid owner, running = 0, holder = 0;
  gint64 killed, elapsed_ms;
  const char *argv[3] = { NULL, mode, NULL };

  helper = g_build_filename (dir, "afork-rel-parent", NULL);
  argv[0] = helper;
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  parent = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  owner = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (parent), NULL, 10);

  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (parent));
  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line (out, NULL, NULL, &error);
      g_auto(GStrv) words = NULL;
      GPid pid;

      g_assert_no_error (error);
      g_assert_nonnull (line);   /* the helper failed before it was ready */
      if (g_str_equal (line, "ready"))
        break;
      words = g_strsplit (line, " ", 2);
      g_assert_cmpuint (g_strv_length (words), ==, 2);
      pid = (GPid) g_ascii_strtoll (words[1], NULL, 10);
      g_assert_false (afork_test_proc_gone (pid));
      if (g_str_equal (words[0], "running"))
        running = pid;
      else if (g_str_equal (words[0], "holder"))
        holder = pid;
      else
        g_array_append_val (expected, pid);
    }

  left = leftovers (owner, owner, holder);
  g_test_message ("%u processes in preparation, %u processes of the parent's in all",
                  expected->len, left->len);
  g_assert_cmpuint (left->len, >=, expected->len);
  g_clear_pointer (&left, g_array_unref);

  g_assert_cmpint (kill (owner, SIGKILL), ==, 0);
  killed = g_get_monotonic_time ();
  g_subprocess_wait (parent, NULL, &error);
  g_assert_no_error (error);

  do
    {
      g_clear_pointer (&left, g_array_unref);
      left = leftovers (owner, owner, holder);
      if (left->len > 0)
        g_usleep (5000);
    }
  while (any_but (left, running) && g_get_monotonic_time () - killed < PROMISED_MS * 1000);
  elapsed_ms = (g_get_monotonic_time () - killed) / 1000;

  /* Late (the running process may stay: it belongs to its run
   * function)? Learn by how much, then fail below. */
  if (any_but (left, running))
    {
      GArray *late = NULL;

      do
        {
          g_clear_pointer (&late, g_array_unref);
          late = leftovers (owner, owner, holder);
          if (any_but (late, running))
            g_usleep (5000);
        }
      while (any_but (late, running) && g_get_monotonic_time () - killed < REPORT_MS * 1000);
      g_test_message ("%u process(es) still there after %d ms, %u after %" G_GINT64_FORMAT " ms",
                      left->len, PROMISED_MS, late->len,
                      (g_get_monotonic_time () - killed) / 1000);
      g_array_unref (late);
    }

  for (guint i = 0; i < left->len; i++)
    {
      GPid pid = g_array_index (left, GPid, i);
      g_autofree char *cmdline = rel_proc_cmdline (pid);

      g_test_message ("still there after %" G_GINT64_FORMAT " ms: %d %s%s", elapsed_ms,
                      (int) pid, cmdline, pid == running ? " (the running one)" : "");
    }
  g_test_message ("everything of the parent's gone %" G_GINT64_FORMAT " ms after its death%s",
                  elapsed_ms, elapsed_ms > PROMISED_MS ? " (slower than the promised second)" : "");

  /* Every unrun process is gone (the running one may live on: it belongs
   * to its run function; this one reads to end of file, so it goes too). */
  for (guint i = 0; i < expected->len; i++)
    g_assert_true (afork_test_proc_gone (g_array_index (expected, GPid, i)));
  for (guint i = 0; i < left->len; i++)
    g_assert_cmpint (g_array_index (left, GPid, i), ==, running);

  if (holder != 0)
    {
      kill (holder, SIGKILL);
      waitpid (holder, NULL, 0);
    }

  /* Orphans came to this test, a subreaper: reap them. */
  for (guint i = 0; i < expected->len; i++)
    waitpid (g_array_index (expected, GPid, i), NULL, WNOHANG);
  if (running != 0 && afork_test_wait_gone (running, REPORT_MS / 1000))
    waitpid (running, NULL, WNOHANG);
}

static void
test_default (void)
{
  run_parent (NULL);
}

static void
test_early (void)
{
  run_parent ("--early");
}

/* A fork of the parent that never executed holds every socket: servers
 * and processes in preparation watch the parent itself. */
static void
test_fork_holds (void)
{
  run_parent ("--fork-holds");
}

int
main (int    argc,
      char **argv)
{
  rel_init (&argc, &argv);

  /* Servers orphaned by the parent's death come here rather than to
   * init, so that the test can reap them. */
  prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  g_test_add_func ("/afork/reliability/parent-death/default", test_default);
  g_test_add_func ("/afork/reliability/parent-death/early", test_early);
  g_test_add_func ("/afork/reliability/parent-death/fork-holds", test_fork_holds);

  return g_test_run ();
}
