/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a template does when the system refuses it something, and what it
 * leaves to the code it runs: a fork or pipe it cannot make is reported
 * to the process that needed it, and the template goes on serving; the
 * spare never outlives a change of the template; only the children the
 * template forked are reaped; an executed program gets standard input,
 * output and error, nothing else. */
#include "rel-util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static AforkProcess *
user_template (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *module = rel_module_path ("afork-rel-module");
  AforkProcess *template = afork_process_new (&error);

  g_assert_no_error (error);
  afork_process_require (template, module);

  return template;
}

static GSocketConnection *
run_bounded (AforkProcess *process,
             const char   *function,
             GError      **error)
{
  GAsyncResult *result = NULL;
  GSocketConnection *connection;

  afork_process_run_async (process, function, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  connection = afork_process_run_finish (process, result, error);
  g_object_unref (result);

  return connection;
}

/* Waits for the end of @process, failing the test if that takes longer
 * than AFORK_TEST_WAIT_SECONDS; returns what the wait returned. */
static gboolean
wait_bounded (AforkProcess *process,
              GError      **error)
{
  GAsyncResult *result = NULL;
  gboolean ok;

  afork_process_wait_async (process, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  ok = afork_process_wait_finish (process, result, error);
  g_object_unref (result);

  return ok;
}

/* A fork of @template runs rel_run_pid, which reports the right pid. */
static void
assert_forks (AforkProcess *template)
{
  g_autoptr(AforkProcess) process = afork_process_fork (template);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connection = run_bounded (process, "rel_run_pid", &error);
  g_assert_no_error (error);
  g_assert_cmpint (rel_read_pid_line (connection), ==, afork_process_get_pid (process));
  g_assert_true (wait_bounded (process, &error));
  g_assert_no_error (error);
  g_assert_cmpint (afork_process_get_exit_status (process), ==, 0);
}

/* Calls @function in @template and waits until it returned: it writes to
 * the pipe it is sent. */
static void
call_and_wait (AforkProcess       *template,
               const char         *function,
               const char * const *args)
{
  g_autofree char *done = NULL;
  int fds[2];

  afork_test_pipe (fds);
  afork_process_send_fd (template, fds[1]);
  close (fds[1]);
  afork_process_call (template, function, args);
  done = afork_test_read_fd_to_eof (fds[0]);
  close (fds[0]);
  g_assert_cmpstr (done, ==, "done\n");
}

/* How a refused process is finished, and when. */
typedef enum
{
  REFUSED_RUN,                  /* run at once: races the refusal */
  REFUSED_REQUIRE_RUN,          /* a command first, then run at once */
  REFUSED_WAIT_RUN,             /* run once the template closed the socket */
  REFUSED_REQUIRE_WAIT_RUN,     /* the socket closed with a command unread */
  REFUSED_WAIT_EXEC,            /* exec once the template closed the socket */
  REFUSED_WAIT_HAND_OVER,       /* a command once the template closed the
                                 * socket, then hand over (which writes
                                 * nothing itself) */
  N_REFUSED_WAYS
} RefusedWay;

/* The number of refused forks per limit: enough for the race between the
 * refusal and the parent's writes to show. */
#define N_REFUSALS 200

static GSocketConnection *
exec_bounded (AforkProcess *process,
              GError      **error)
{
  const char *argv[] = { "true", NULL };
  GAsyncResult *result = NULL;
  GSocketConnection *connection;

  afork_process_exec_async (process, argv, NULL, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  connection = afork_process_exec_finish (process, result, error);
  g_object_unref (result);

  return connection;
}

static GSocketConnection *
hand_over_bounded (AforkProcess *process,
                   GError      **error)
{
  GAsyncResult *result = NULL;
  GSocketConnection *connection;

  afork_process_hand_over_async (process, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  connection = afork_process_hand_over_finish (process, result, error);
  g_object_unref (result);

  return connection;
}

/* A fork of @template that the template refuses, finished in @way: the
 * template's reply is what the parent reports, however the parent's
 * writes met the socket the template closed (written before, refused
 * with EPIPE, or with ECONNRESET when the template closed it unread). */
static void
assert_refused (AforkProcess *template,
                RefusedWay    way)
{
  g_autoptr(AforkProcess) refused = afork_process_fork (template);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *module = rel_module_path ("afork-rel-module");
  gboolean waited = FALSE;

  if (way == REFUSED_REQUIRE_RUN || way == REFUSED_REQUIRE_WAIT_RUN)
    afork_process_require (refused, module);

  /* Its wait ends with an error, as there is no status to give; it ends
   * once the template has replied and closed the socket. */
  if (way >= REFUSED_WAIT_RUN)
    {
      g_assert_false (wait_bounded (refused, &error));
      g_assert_nonnull (error);
      g_clear_error (&error);
      waited = TRUE;
    }

  if (way == REFUSED_WAIT_EXEC)
    connection = exec_bounded (refused, &error);
  else if (way == REFUSED_WAIT_HAND_OVER)
    {
      afork_process_require (refused, module);
      connection = hand_over_bounded (refused, &error);
    }
  else
    connection = run_bounded (refused, "rel_run_pid", &error);
  g_assert_null (connection);
  if (!g_error_matches (error, AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED))
    g_test_message ("refused in way %d", (int) way);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED);
  g_clear_error (&error);

  if (!waited)
    {
      g_assert_false (wait_bounded (refused, &error));
      g_assert_nonnull (error);
    }
}

/* @data names the call function that limits the template ("tight") and
 * lifts the limit ("restore"): the next fork requests fail, with the
 * template's reason for their run, exec or hand-over and an end for their
 * wait; then the template forks as before. */
static void
test_exhaustion (gconstpointer data)
{
  const char *limit = data;
  const char *tight[] = { "tight", NULL };
  const char *restore[] = { "restore", NULL };
  g_autoptr(AforkProcess) template = user_template ();

  /* The descriptor limit is met by the first fork (which makes the pipe
   * a template reaps with); the process limit by any, the spare's too. */
  if (g_str_equal (limit, "rel_call_limit_procs"))
    assert_forks (template);

  /* The fork request leaves only once the limit is set: its descriptors
   * must not be received before. */
  call_and_wait (template, limit, tight);

  for (guint i = 0; i < N_REFUSALS; i++)
    assert_refused (template, i % N_REFUSED_WAYS);

  call_and_wait (template, limit, restore);
  assert_forks (template);
  assert_forks (template);
}

/* A descriptor the template held when its spare was forked, and that a
 * call function then closed in the template, is closed everywhere: the
 * reader of the pipe sees end of file without another fork. */
static void
test_spare_dropped (void)
{
  g_autoptr(AforkProcess) template = user_template ();
  g_autofree char *rest = NULL;
  int fds[2];

  /* A template with a spare. */
  assert_forks (template);

  /* The write end becomes a pending argument; the next fork takes it
   * along (and exits, closing it), and the spare forked after that one
   * holds it too. */
  afork_test_pipe (fds);
  afork_process_send_fd (template, fds[1]);
  close (fds[1]);
  assert_forks (template);

  /* The template lets go of it: nothing else holds it. */
  afork_process_call (template, "rel_call_close_fds", NULL);
  rest = afork_test_read_fd_to_eof (fds[0]);
  g_assert_cmpstr (rest, ==, "");
  close (fds[0]);

  /* The template forks as before. */
  assert_forks (template);
}

/* A child a call function started in the template is the call
 * function's: the template, which reaps its own, leaves it alone. */
static void
test_reap_own (void)
{
  g_autoptr(AforkProcess) template = user_template ();

  /* A template that reaps. */
  assert_forks (template);

  /* The call's child has exited when the call returns; the round trip of
   * a fork makes the template go through its loop (where it reaps) before
   * the next call asks for that child. */
  afork_process_call (template, "rel_call_spawn", NULL);
  assert_forks (template);
  afork_process_call (template, "rel_call_reap", NULL);

  /* A failed call makes every later run fail: this one must not. */
  assert_forks (template);
}

/* A program executed from a process that opened descriptors without
 * close-on-exec gets none of them. */
static void
test_exec_closes (void)
{
  g_autoptr(AforkProcess) template = user_template ();
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *helper = rel_module_path ("x");
  g_autofree char *dir = g_path_get_dirname (helper);
  g_autofree char *program = g_build_filename (dir, "afork-rel-fds", NULL);
  g_autofree char *out = NULL;
  const char *at_100[] = { "100", NULL };
  const char *at_60[] = { "60", NULL };
  const char *at_101[] = { "101", NULL };
  const char *argv[] = { program, NULL };
  int fds[2];

  afork_process_call (template, "rel_call_open_inheritable", at_100);
  afork_process_call (template, "rel_call_open_inheritable", at_60);
  process = afork_process_fork (template);
  afork_process_call (process, "rel_call_open_inheritable", at_101);

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
  g_assert_cmpstr (out, ==, "0 1 2\n");
}

int
main (int    argc,
      char **argv)
{
  rel_init (&argc, &argv);

  g_test_add_data_func ("/afork/reliability/server/exhaustion/descriptors",
                        "rel_call_limit_fds", test_exhaustion);
  g_test_add_data_func ("/afork/reliability/server/exhaustion/processes",
                        "rel_call_limit_procs", test_exhaustion);
  g_test_add_func ("/afork/reliability/server/spare-dropped", test_spare_dropped);
  g_test_add_func ("/afork/reliability/server/reap-own", test_reap_own);
  g_test_add_func ("/afork/reliability/server/exec-closes", test_exec_closes);

  return g_test_run ();
}
