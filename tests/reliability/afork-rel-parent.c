/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A parent for test-parent-death: creates servers and processes of every
 * kind, leaves them in preparation (one runs), prints their pids, then
 * waits to be killed.
 *
 *   afork-rel-parent [--early | --fork-holds]
 *
 * With --fork-holds, a fork of the parent that never executes (and holds
 * every socket the parent had) outlives it: line "holder PID".
 *
 * Output: one line "KIND PID" per process, then "ready". */
#include "rel-util.h"

#include <stdio.h>
#include <unistd.h>

static GPtrArray *keep;

static void
report (const char *kind,
        GPid        pid)
{
  printf ("%s %d\n", kind, (int) pid);
}

static AforkProcess *
prepared (AforkProcess *process,
          const char   *kind)
{
  g_autofree char *module = rel_module_path ("afork-rel-module");

  afork_process_require (process, module);
  afork_process_send_arg (process, "prepared, never run");
  report (kind, rel_report_pid (process));
  g_ptr_array_add (keep, process);

  return process;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) running = NULL;
  g_autoptr(GBytes) big = NULL;
  AforkProcess *process, *template, *self_template;
  gboolean early = argc > 1 && g_str_equal (argv[1], "--early");
  gboolean holds = argc > 1 && g_str_equal (argv[1], "--fork-holds");

  keep = g_ptr_array_new_with_free_func (g_object_unref);

  /* Forks of this program first, while it runs a single thread. */
  if (early)
    {
      afork_early_init (&error);
      g_assert_no_error (error);
    }
  self_template = afork_process_fork_self (&error);
  g_assert_no_error (error);
  prepared (self_template, "fork-self-template");
  prepared (afork_process_fork (self_template), "fork-self");

  /* The default (or early) template and its children. */
  for (guint i = 0; i < 3; i++)
    {
      process = afork_process_new (&error);
      g_assert_no_error (error);
      prepared (process, "new");
    }

  /* Servers of their own, one used as a template. */
  process = afork_process_new_exec (&error);
  g_assert_no_error (error);
  template = prepared (process, "exec");
  prepared (afork_process_fork (template), "fork");
  prepared (afork_process_fork (template), "fork");

  /* One in the middle of a command: more than the socket takes, and this
   * program never iterates its main loop to write the rest. */
  process = afork_process_new (&error);
  g_assert_no_error (error);
  prepared (process, "partial");
  big = g_bytes_new_take (g_malloc0 (8 * 1024 * 1024), 8 * 1024 * 1024);
  afork_process_send_bytes (process, big);

  /* One that runs: its run function reads until end of file. */
  process = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_require (process, rel_module_path ("afork-rel-module"));
  running = afork_process_run (process, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  report ("running", rel_read_pid_line (running));
  g_ptr_array_add (keep, process);

  if (holds)
    {
      pid_t holder;

      fflush (stdout);
      holder = fork ();
      g_assert_cmpint (holder, >=, 0);
      if (holder == 0)
        {
          /* Not the test's output: only the sockets. */
          close (0);
          close (1);
          close (2);
          alarm (120);
          for (;;)
            pause ();
        }
      report ("holder", holder);
    }

  printf ("ready\n");
  fflush (stdout);

  for (;;)
    pause ();
}
