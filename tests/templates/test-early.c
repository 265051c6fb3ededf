/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Early init: the program forks itself into a template as the first thing
 * in main(); processes made afterwards are forks of that copy and run
 * functions of the program itself. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "afork-test-common.h"

#define EXPORT __attribute__((visibility("default")))

/* Set before early init: the early template has it. Changed after. */
static const char *state = "before-early-init";
static gboolean early_ok;

/* A run function of the program itself. */
EXPORT void early_report (AforkChild *child);
void
early_report (AforkChild *child)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *report = g_strdup_printf ("%s %s %s", state,
                                             afork_child_get_n_args (child) > 0 ?
                                             afork_child_get_arg (child, 0, NULL) : "-",
                                             exe ? exe : "?");

  if (!afork_test_write_all (afork_child_get_fd (child), report, strlen (report)))
    _exit (1);
}

static char *
run_report (AforkProcess *p,
            const char   *arg)
{
  g_autoptr(GSocketConnection) c = NULL;
  g_autoptr(GError) error = NULL;

  c = afork_process_run (afork_process_send_arg (p, arg), "early_report", NULL, &error);
  g_assert_no_error (error);

  return afork_test_read_connection (c);
}

static void
check_report (const char *report,
              const char *arg)
{
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *expected = g_strdup_printf ("before-early-init %s %s", arg, self_exe);

  g_assert_cmpstr (report, ==, expected);
}

static void
test_early_new_exec (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) p = NULL;
  g_autofree char *report = NULL;

  g_assert_true (early_ok);
  p = afork_process_new_exec (&error);
  g_assert_no_error (error);
  /* A fork of the early template, not a spawned server. */
  g_assert_cmpint (afork_process_get_pid (p), ==, 0);

  report = run_report (p, "via-new-exec");
  check_report (report, "via-new-exec");

  g_assert_true (afork_process_wait (p, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (afork_process_get_exit_status (p), ==, 0);
}

static void
test_early_new (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) p = afork_process_new (&error);
  g_autoptr(AforkProcess) child = NULL;
  g_autofree char *report = NULL;

  g_assert_no_error (error);
  report = run_report (p, "via-new");
  check_report (report, "via-new");

  /* A user template forked from the early one. */
  p = (g_object_unref (p), afork_process_new (&error));
  g_assert_no_error (error);
  child = afork_process_fork (p);
  g_free (report);
  report = run_report (child, "via-fork");
  check_report (report, "via-fork");
}

static void
test_early_again (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (afork_early_init (&error));
  g_assert_no_error (error);
}

/* After a reset, the default template is afork-server again, which does
 * not have the program's functions. */
static void
test_early_reset (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) p = NULL;
  g_autoptr(GSocketConnection) c = NULL;

  afork_reset ();
  p = afork_process_new (&error);
  g_assert_no_error (error);
  c = afork_process_run (p, "early_report", NULL, &error);
  g_assert_null (c);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;

  /* The very first thing. */
  early_ok = afork_early_init (&error);
  if (!early_ok)
    g_printerr ("early init failed: %s\n", error->message);
  state = "after-early-init";

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/afork/early/new-exec", test_early_new_exec);
  g_test_add_func ("/afork/early/new", test_early_new);
  g_test_add_func ("/afork/early/again", test_early_again);
  g_test_add_func ("/afork/early/reset", test_early_reset);

  return g_test_run ();
}
