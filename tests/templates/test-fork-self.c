/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Forking the calling program into a template. Each test runs in a fresh
 * subprocess, because a program that has started a thread (GLib does, for
 * example, once it spawns) can no longer be forked. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "afork-test-common.h"

#define EXPORT __attribute__((visibility("default")))

/* Data the program loads before forking itself. */
static char *preloaded;

/* A run function of the program itself: reports the preloaded data and
 * its arguments. */
EXPORT void fork_self_report (AforkChild *child);
void
fork_self_report (AforkChild *child)
{
  g_autoptr(GString) report = g_string_new (preloaded ? preloaded : "(none)");

  for (guint i = 0; i < afork_child_get_n_args (child); i++)
    if (!afork_child_arg_is_fd (child, i))
      g_string_append_printf (report, " %s", afork_child_get_arg (child, i, NULL));

  if (!afork_test_write_all (afork_child_get_fd (child), report->str, report->len))
    _exit (1);
}

static void
test_fork_self_shares_data (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) tmpl = NULL;

      preloaded = g_strdup ("preloaded-7f3a");
      tmpl = afork_process_fork_self (&error);
      g_assert_no_error (error);
      g_assert_nonnull (tmpl);
      /* Changed after the fork: the template keeps its copy. */
      g_free (preloaded);
      preloaded = g_strdup ("changed-later");

      afork_process_send_arg (tmpl, "T");
      for (guint i = 0; i < 3; i++)
        {
          g_autoptr(AforkProcess) child = afork_process_fork (tmpl);
          g_autoptr(GSocketConnection) c = NULL;
          g_autofree char *arg = g_strdup_printf ("%u", i);
          g_autofree char *expected = g_strdup_printf ("preloaded-7f3a T %u", i);
          g_autofree char *out = NULL;

          c = afork_process_run (afork_process_send_arg (child, arg),
                                 "fork_self_report", NULL, &error);
          g_assert_no_error (error);
          out = afork_test_read_connection (c);
          g_assert_cmpstr (out, ==, expected);
        }
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static gpointer
block_thread (gpointer data)
{
  GMutex *lock = data;

  g_mutex_lock (lock);
  g_mutex_unlock (lock);

  return NULL;
}

static void
test_fork_self_refused_with_threads (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) tmpl = NULL;
      GMutex lock;
      GThread *thread;

      g_mutex_init (&lock);
      g_mutex_lock (&lock);
      thread = g_thread_new ("blocker", block_thread, &lock);

      tmpl = afork_process_fork_self (&error);
      g_assert_null (tmpl);
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_THREADED);
      g_assert_nonnull (strstr (error->message, "2"));
      g_clear_error (&error);

      g_assert_false (afork_early_init (&error));
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_THREADED);

      g_mutex_unlock (&lock);
      g_thread_join (thread);
      g_mutex_clear (&lock);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* The template is nobody's zombie, and goes away when dropped; a second
 * one does not keep the first one's connection. */
static void
test_fork_self_lifetime (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      AforkProcess *first = afork_process_fork_self (&error);
      g_autoptr(AforkProcess) second = NULL;
      GPid first_pid, second_pid;

      g_assert_no_error (error);
      second = afork_process_fork_self (&error);
      g_assert_no_error (error);

      first_pid = afork_process_get_pid (first);
      second_pid = afork_process_get_pid (second);
      g_assert_cmpint (first_pid, >, 0);
      g_assert_cmpint (second_pid, >, 0);
      g_assert_false (afork_test_proc_gone (first_pid));

      /* Not our children: waitpid has nothing to reap. */
      g_assert_cmpint (waitpid (-1, NULL, WNOHANG), ==, -1);
      g_assert_cmpint (errno, ==, ECHILD);

      g_object_unref (first);
      g_assert_true (afork_test_wait_gone (first_pid, AFORK_TEST_WAIT_SECONDS));
      g_assert_false (afork_test_proc_gone (second_pid));
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/afork/fork-self/shares-data", test_fork_self_shares_data);
  g_test_add_func ("/afork/fork-self/refused-with-threads", test_fork_self_refused_with_threads);
  g_test_add_func ("/afork/fork-self/lifetime", test_fork_self_lifetime);

  return g_test_run ();
}
