/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Signals: whatever the parent blocked or ignored, servers, children and
 * executed programs start with no signal blocked, ignored or caught, and
 * templates reap; a parent with its own SIGCHLD handling (ignored, a
 * waitpid (-1) loop, a GChildWatch) gets results or errors, never a hang.
 *
 * The program blocks every signal it can and ignores the common ones
 * first thing in main(), before it forks itself into a template. */
#include "rel-util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static AforkProcess *self_template;

static const int ignored[] = { SIGCHLD, SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM };

static char *
read_all (GSocketConnection *connection)
{
  return afork_test_read_connection (connection);
}

/* The mask of a line "NAME:\tHEX" of /proc/PID/status. */
static guint64
status_mask (const char *state,
             const char *name)
{
  g_autofree char *key = g_strdup_printf ("%s:\t", name);
  const char *line = strstr (state, key);

  g_assert_nonnull (line);

  return g_ascii_strtoull (line + strlen (key), NULL, 16);
}

static void
assert_clean_state (const char *state,
                    const char *who)
{
  /* The C library's own signals (32 and 33, below SIGRTMIN) are not the
   * program's: no program can change them, and it keeps them. */
  guint64 libc_own = 0;

  for (int sig = 32; sig < SIGRTMIN; sig++)
    libc_own |= G_GUINT64_CONSTANT (1) << (sig - 1);

  g_test_message ("%s:\n%s", who, state);
  g_assert_cmphex (status_mask (state, "SigBlk"), ==, 0);
  g_assert_cmphex (status_mask (state, "SigIgn") & ~libc_own, ==, 0);
  g_assert_cmphex (status_mask (state, "SigCgt") & ~libc_own, ==, 0);
}

static AforkProcess *
make (const char *kind)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *module = rel_module_path ("afork-rel-module");
  AforkProcess *process;

  if (g_str_equal (kind, "new"))
    process = afork_process_new (&error);
  else if (g_str_equal (kind, "exec"))
    process = afork_process_new_exec (&error);
  else
    process = afork_process_fork (self_template);
  g_assert_no_error (error);
  afork_process_require (process, module);

  return process;
}

/* A run function starts clean, and its template reaps it. */
static void
test_state (gconstpointer data)
{
  const char *kind = data;
  g_autoptr(AforkProcess) process = make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;

  connection = rel_run_async_wait (process, "rel_run_signal_state", &error);
  g_assert_no_error (error);
  state = read_all (connection);
  assert_clean_state (state, kind);

  /* Reaped by its template (or GLib, for an executed server): a blocked
   * SIGCHLD inherited by the template would leave this wait hanging. */
  {
    GAsyncResult *result = NULL;

    afork_process_wait_async (process, NULL, afork_test_store_result_cb, &result);
    afork_test_wait_result (&result);
    g_assert_true (afork_process_wait_finish (process, result, &error));
    g_assert_no_error (error);
    g_object_unref (result);
  }
  g_assert_cmpint (afork_process_get_exit_status (process), ==, 0);
}

/* An executed program starts clean. */
static void
test_exec_state (void)
{
  g_autoptr(AforkProcess) process = make ("new");
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  const char *argv[] = { "cat", "/proc/self/status", NULL };
  int fds[2];

  afork_test_pipe (fds);
  {
    g_autoptr(AforkExecOptions) options = afork_exec_options_new ();

    afork_exec_options_set_stdout_fd (options, fds[1]);
    connection = afork_process_exec (process, argv, options, NULL, &error);
  }
  g_assert_no_error (error);
  close (fds[1]);
  out = afork_test_read_fd_to_eof (fds[0]);
  close (fds[0]);
  assert_clean_state (out, "an executed program");
}

/* --- a parent with its own SIGCHLD handling, in a subprocess each --- */

static gpointer
reap_everything (G_GNUC_UNUSED gpointer data)
{
  for (;;)
    if (waitpid (-1, NULL, 0) < 0 && errno == ECHILD)
      g_usleep (1000);
  return NULL;
}

static void
child_watch_cb (G_GNUC_UNUSED GPid pid,
                G_GNUC_UNUSED int  status,
                gpointer           user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* Runs a process of every kind and waits for it: each either works or
 * fails with an error, within the bound of every wait. */
static void
run_every_kind (void)
{
  const char *kinds[] = { "new", "exec" };

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autoptr(AforkProcess) process = make (kinds[i]);
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;
      GAsyncResult *result = NULL;

      connection = rel_run_async_wait (process, "rel_run_pid", &error);
      if (connection != NULL)
        g_assert_cmpint (rel_read_pid_line (connection), ==, afork_process_get_pid (process));
      else
        g_test_message ("%s: run: %s", kinds[i], error->message);
      g_clear_error (&error);

      afork_process_wait_async (process, NULL, afork_test_store_result_cb, &result);
      afork_test_wait_result (&result);
      if (!afork_process_wait_finish (process, result, &error))
        g_test_message ("%s: wait: %s", kinds[i], error->message);
      g_object_unref (result);
    }
}

static void
test_sigchld (gconstpointer data)
{
  const char *mode = data;

  if (g_test_subprocess ())
    {
      if (g_str_equal (mode, "ignored"))
        signal (SIGCHLD, SIG_IGN);
      else if (g_str_equal (mode, "waitpid-loop"))
        g_thread_unref (g_thread_new ("reaper", reap_everything, NULL));
      else
        {
          const char *argv[] = { "true", NULL };
          gboolean done = FALSE;
          GPid pid;
          g_autoptr(GError) error = NULL;

          g_spawn_async (NULL, (char **) argv, NULL,
                         G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                         NULL, NULL, &pid, &error);
          g_assert_no_error (error);
          g_child_watch_add (pid, child_watch_cb, &done);
          run_every_kind ();
          rel_iterate_until (NULL, &done, "the program's own child watch");
          return;
        }
      run_every_kind ();
      return;
    }

  /* Every wait inside is bounded: the subprocess fails rather than hangs,
   * and this bound is only a last resort. */
  g_test_trap_subprocess (NULL, 4 * AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  gboolean subprocess = FALSE;
  sigset_t all;

  for (int i = 1; i < argc; i++)
    subprocess |= g_str_equal (argv[i], "--GTestSubprocess");

  /* A parent that blocks and ignores what it can, before anything else
   * (the subprocesses of the SIGCHLD tests set up their own handling). */
  if (!subprocess)
    {
      sigfillset (&all);
      sigprocmask (SIG_BLOCK, &all, NULL);
      for (guint i = 0; i < G_N_ELEMENTS (ignored); i++)
        signal (ignored[i], SIG_IGN);
    }

  self_template = afork_process_fork_self (&error);
  g_assert_no_error (error);

  rel_init (&argc, &argv);

  g_test_add_data_func ("/afork/reliability/signals/state/new", "new", test_state);
  g_test_add_data_func ("/afork/reliability/signals/state/exec", "exec", test_state);
  g_test_add_data_func ("/afork/reliability/signals/state/fork-self", "fork-self", test_state);
  g_test_add_func ("/afork/reliability/signals/state/exec-program", test_exec_state);
  g_test_add_data_func ("/afork/reliability/signals/sigchld/ignored", "ignored", test_sigchld);
  g_test_add_data_func ("/afork/reliability/signals/sigchld/waitpid-loop", "waitpid-loop", test_sigchld);
  g_test_add_data_func ("/afork/reliability/signals/sigchld/child-watch", "child-watch", test_sigchld);

  {
    int ret = g_test_run ();

    g_clear_object (&self_template);
    return ret;
  }
}
