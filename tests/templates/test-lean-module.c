/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A module built without linking libafork-1, using only the AforkChild
 * API: it loads and runs in every kind of server, the server providing
 * afork_child_*, and brings no libafork-1 into a server that did not have
 * it. */
#include "afork-test-common.h"

static char *
require_and_run (AforkProcess *process)
{
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  afork_process_require (process, "afork-lean-module");
  afork_process_send_arg (process, "a1");
  connection = afork_test_run (process, "lean_run_report", &error);
  g_assert_no_error (error);

  return afork_test_read_connection (connection);
}

/* In a server started from afork-server (new, new_exec, and a fork of
 * a new process), whose program exports the functions. */
static void
test_lean_module_in_server (gconstpointer data)
{
  g_autoptr(AforkProcess) process = afork_test_make_process (GPOINTER_TO_INT (data));
  g_autofree char *report = require_and_run (process);

  g_assert_cmpstr (report, ==, "args 1\ns a1\nlibafork no\n");
}

/* A template forked from this program, which links libafork-1: the
 * functions come from there. */
static void
test_lean_module_in_fork_self (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) tmpl = afork_process_fork_self (&error);
      g_autoptr(AforkProcess) child = NULL;
      g_autofree char *report = NULL;

      g_assert_no_error (error);
      child = afork_process_fork (tmpl);
      report = require_and_run (child);
      g_assert_cmpstr (report, ==, "args 1\ns a1\nlibafork yes\n");
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

  afork_test_add_kind_tests ("/lean-module/in-server", test_lean_module_in_server);
  g_test_add_func ("/lean-module/in-fork-self", test_lean_module_in_fork_self);

  return g_test_run ();
}
