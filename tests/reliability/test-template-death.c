/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A template killed with SIGKILL at any moment: running processes go on,
 * processes waiting for it fail with a clear error, and the next
 * afork_process_new() starts a new default template. */
#include "rel-util.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static void
kill_and_wait (GPid pid)
{
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_true (afork_test_wait_gone (pid, AFORK_TEST_WAIT_SECONDS));
}

static void
assert_echo (GSocketConnection *connection,
             const char        *text)
{
  GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *sent = g_strconcat (text, "\n", NULL);

  g_assert_true (g_output_stream_write_all (out, sent, strlen (sent), NULL, NULL, &error));
  g_assert_no_error (error);
  line = rel_read_line (connection, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (line, ==, text);
}

/* The run must fail with a GError, in the main loop, without hanging. */
static void
assert_run_fails (AforkProcess *process)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = NULL;

  connection = rel_run_async_wait (process, "rel_run_pid", &error);
  g_assert_null (connection);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
  g_assert_nonnull (error->message);
  g_assert_cmpstr (error->message, !=, "");
  g_test_message ("run failed as expected: %s", error->message);
}

/* Processes that run already, or that the template forked already, do not
 * depend on it; the next process comes from a new template. */
static void
test_idle (void)
{
  GPid template = rel_default_template_pid ();
  g_autoptr(AforkProcess) running = rel_make (&rel_kinds[0]);
  g_autoptr(AforkProcess) forked = rel_make (&rel_kinds[0]);
  g_autoptr(AforkProcess) after = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GPid forked_pid, new_template;

  connection = afork_process_run (running, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (rel_read_pid_line (connection), ==, afork_process_get_pid (running));
  forked_pid = rel_report_pid (forked);

  kill_and_wait (template);

  assert_echo (connection, "still there after the template died");
  g_assert_false (afork_test_proc_gone (forked_pid));
  rel_assert_runs (forked);
  g_assert_cmpint (afork_process_get_pid (forked), ==, forked_pid);

  /* A new default template, by itself. */
  after = afork_process_new (&error);
  g_assert_no_error (error);
  g_clear_object (&after);
  new_template = rel_default_template_pid ();
  g_assert_cmpint (new_template, !=, template);
  g_assert_false (afork_test_proc_gone (new_template));

  assert_echo (connection, "and after a new one started");
  rel_assert_no_sigpipe ();
}

/* Fork requests the template never read: every one of those processes
 * fails at run_finish. */
static void
test_queued_forks (void)
{
  GPid template = rel_default_template_pid ();
  AforkProcess *queued[8];
  g_autoptr(AforkProcess) after = NULL;

  g_assert_cmpint (kill (template, SIGSTOP), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (queued); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *arg = g_strdup_printf ("queued %u", i);

      queued[i] = afork_process_new (&error);
      g_assert_no_error (error);
      /* Commands queue on the new process's own socket meanwhile. */
      afork_process_send_arg (queued[i], arg);
    }

  kill_and_wait (template);

  for (guint i = 0; i < G_N_ELEMENTS (queued); i++)
    {
      assert_run_fails (queued[i]);
      g_object_unref (queued[i]);
    }

  after = rel_make (&rel_kinds[0]);
  rel_assert_runs (after);
  g_assert_cmpint (rel_default_template_pid (), !=, template);
  rel_assert_no_sigpipe ();
}

/* A process used as a template (afork_process_fork) dies between
 * commands: itself and the forks it had not made yet fail; forks it had
 * made go on. */
static void
test_user_template (void)
{
  g_autoptr(AforkProcess) template = rel_make (&rel_kinds[0]);
  g_autoptr(AforkProcess) made = NULL;
  g_autoptr(AforkProcess) pending_a = NULL;
  g_autoptr(AforkProcess) pending_b = NULL;
  g_autoptr(GBytes) big = NULL;
  GPid template_pid;
  gpointer filler;

  template_pid = rel_report_pid (template);

  made = afork_process_fork (template);
  rel_report_pid (made);   /* the fork has happened */

  g_assert_cmpint (kill (template_pid, SIGSTOP), ==, 0);
  pending_a = afork_process_fork (template);
  afork_process_send_arg (pending_a, "a");
  pending_b = afork_process_fork (template);
  kill_and_wait (template_pid);

  /* More commands after the death: more than a socket buffer holds, so
   * the library writes into a dead socket (EPIPE, never SIGPIPE). */
  filler = g_malloc0 (4 * 1024 * 1024);
  big = g_bytes_new_take (filler, 4 * 1024 * 1024);
  afork_process_send_bytes (template, big);
  afork_process_send_bytes (pending_b, big);

  assert_run_fails (template);
  assert_run_fails (pending_a);
  assert_run_fails (pending_b);
  rel_assert_runs (made);
  rel_assert_no_sigpipe ();
}

/* A thread keeps creating and running processes while the main thread
 * kills the default template again and again: every run either works or
 * fails with a clear error, none hangs, and new templates keep coming. */
typedef struct
{
  gint     stop;
  guint    ok;
  guint    failed;
} Churn;

static gpointer
churn_thread (gpointer user_data)
{
  Churn *churn = user_data;
  g_autofree char *module = rel_module_path ("afork-rel-module");

  while (!g_atomic_int_get (&churn->stop))
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) process = afork_process_new (&error);
      g_autoptr(GSocketConnection) connection = NULL;

      g_assert_no_error (error);
      afork_process_require (process, module);
      connection = afork_process_run (process, "rel_run_pid", NULL, &error);
      if (connection != NULL)
        {
          g_autofree char *line = rel_read_line (connection, &error);

          g_assert_no_error (error);
          g_assert_true (g_str_has_prefix (line, "pid "));
          churn->ok++;
        }
      else
        {
          g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
          churn->failed++;
        }
    }

  return NULL;
}

static void
test_churn (void)
{
  Churn churn = { 0, 0, 0 };
  GThread *thread = g_thread_new ("churn", churn_thread, &churn);
  guint rounds = 20;

  for (guint i = 0; i < rounds; i++)
    {
      GPid template = 0;

      /* Wait for the thread to have started a template. */
      for (guint tries = 0; template == 0 && tries < AFORK_TEST_WAIT_SECONDS * 100; tries++)
        {
          g_autoptr(GArray) pids = rel_proc_list ();

          for (guint j = 0; j < pids->len; j++)
            {
              GPid pid = g_array_index (pids, GPid, j);
              g_autofree char *cmdline = NULL;
              GPid ppid;
              char state;

              if (!afork_test_proc_stat (pid, &state, &ppid, NULL) ||
                  ppid != getpid () || state == 'Z')
                continue;
              cmdline = rel_proc_cmdline (pid);
              if (cmdline != NULL && g_str_has_prefix (cmdline, "afork-server ") &&
                  g_str_has_suffix (cmdline, " template"))
                template = pid;
            }
          if (template == 0)
            g_usleep (10000);
        }
      g_assert_cmpint (template, !=, 0);

      g_usleep (g_test_rand_int_range (0, 20000));
      kill_and_wait (template);
    }

  g_atomic_int_set (&churn.stop, 1);
  g_thread_join (thread);

  g_test_message ("%u runs succeeded, %u failed with a clear error across %u template deaths",
                  churn.ok, churn.failed, rounds);
  g_assert_cmpuint (churn.ok, >, 0);
  rel_assert_no_sigpipe ();
}

/* A template started while the program has SIGPIPE at its default (the
 * first afork_process_new() of a program comes before GSocket ignores
 * it) survives the exit of a child whose process object was dropped. */
static void
test_sigpipe_default (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(AforkProcess) process = NULL;
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;
      GPid template, child;

      rel_unblock_sigpipe ();
      template = rel_default_template_pid ();

      process = rel_make (&rel_kinds[0]);
      connection = afork_process_run (process, "rel_run_pid", NULL, &error);
      g_assert_no_error (error);
      child = rel_read_pid_line (connection);
      g_clear_object (&process);
      g_free (afork_test_read_connection (connection));
      g_clear_object (&connection);

      /* Reaped by the template: it has written (or tried to write) the
       * wait status by now. */
      for (guint i = 0;
           i < AFORK_TEST_WAIT_SECONDS * 100 && afork_test_proc_stat (child, NULL, NULL, NULL);
           i++)
        g_usleep (10000);
      g_usleep (200000);
      g_assert_false (afork_test_proc_gone (template));
      return;
    }

  /* A template that dies of SIGPIPE when it reports the wait status of
   * a child whose process object was dropped fails here. */
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  rel_init (&argc, &argv);

  g_test_add_func ("/afork/reliability/template-death/sigpipe-default", test_sigpipe_default);
  g_test_add_func ("/afork/reliability/template-death/idle", test_idle);
  g_test_add_func ("/afork/reliability/template-death/queued-forks", test_queued_forks);
  g_test_add_func ("/afork/reliability/template-death/user-template", test_user_template);
  g_test_add_func ("/afork/reliability/template-death/churn", test_churn);

  return g_test_run ();
}
