/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One template's queue written from two threads at once: the main thread
 * queues large calls on a template and forks processes of it; a second
 * thread runs each of those processes from its own main context, which
 * writes the fork request still queued in the template from there, while
 * the template's own write source fires in the main thread's context and
 * the main thread queues more. The template must receive every command
 * whole and in order. */
#include "rel-util.h"

#include <string.h>
#include <unistd.h>

#define N_SHARED_ROUNDS 1000
/* Processes forked but not run yet: enough to keep the template's queue
 * full while the runner works. */
#define N_SHARED_AHEAD 16

typedef struct
{
  GAsyncQueue *children;   /* AforkProcess *, then the Runner itself */
  guint        finished;   /* in the main thread */
  gboolean     done;       /* in the main thread */
} Runner;

static gboolean
runner_progress_cb (gpointer user_data)
{
  Runner *runner = user_data;

  runner->finished++;

  return G_SOURCE_REMOVE;
}

static gboolean
runner_done_cb (gpointer user_data)
{
  Runner *runner = user_data;

  runner->done = TRUE;

  return G_SOURCE_REMOVE;
}

static gpointer
runner_thread (gpointer user_data)
{
  Runner *runner = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  gpointer item;

  g_main_context_push_thread_default (context);

  while ((item = g_async_queue_pop (runner->children)) != runner)
    {
      g_autoptr(AforkProcess) child = item;
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      gboolean ok;

      connection = afork_test_run (child, "rel_run_pid", &error);
      g_assert_no_error (error);
      g_assert_cmpint (rel_read_pid_line (connection), ==, afork_process_get_pid (child));

      afork_process_wait_async (child, NULL, afork_test_store_result_cb, &result);
      afork_test_wait_result (&result);
      ok = afork_process_wait_finish (child, result, &error);
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpint (afork_process_get_exit_status (child), ==, 0);

      g_main_context_invoke (NULL, runner_progress_cb, runner);
    }

  g_main_context_pop_thread_default (context);
  g_main_context_invoke (NULL, runner_done_cb, runner);

  return NULL;
}

/* The payload of round @number: its length varies, so that frames end
 * anywhere in the socket's buffer. */
static char *
shared_payload (guint number)
{
  gsize len = 16 * 1024 + (number * 7919) % (96 * 1024);
  char *payload = g_malloc (len + 1);

  for (gsize i = 0; i < len; i++)
    payload[i] = 'a' + (number + i) % 26;
  payload[len] = '\0';

  return payload;
}

static void
test_shared_template_queue (void)
{
  g_autofree char *module = rel_module_path ("afork-rel-module");
  g_autoptr(AforkProcess) template = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *log = NULL;
  Runner runner = { g_async_queue_new (), 0, FALSE };
  GThread *thread;
  int fds[2];

  /* The template's write source runs in the main thread's context. */
  template = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_require (template, module);
  afork_test_pipe (fds);
  afork_process_send_fd (template, fds[1]);
  close (fds[1]);
  afork_process_call (template, "rel_call_log_open", NULL);

  thread = g_thread_new ("afork-runner", runner_thread, &runner);

  for (guint i = 0; i < N_SHARED_ROUNDS; i++)
    {
      g_autofree char *number = g_strdup_printf ("%u", i);
      g_autofree char *payload = shared_payload (i);
      g_autofree char *len = g_strdup_printf ("%zu", strlen (payload));
      const char *args[] = { number, len, payload, NULL };

      afork_process_call (template, "rel_call_log_record", args);
      g_async_queue_push (runner.children, afork_process_fork (template));

      while (g_main_context_iteration (NULL, FALSE))
        ;
      /* The runner's waits are bounded: so is this. */
      while (i >= runner.finished + N_SHARED_AHEAD)
        g_main_context_iteration (NULL, TRUE);
    }

  g_async_queue_push (runner.children, &runner);
  while (!runner.done)
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (thread);
  g_assert_cmpuint (runner.finished, ==, N_SHARED_ROUNDS);
  g_async_queue_unref (runner.children);

  /* Every call arrived, whole and in order. */
  afork_process_call (template, "rel_call_log_close", NULL);
  log = afork_test_read_fd_bytes (fds[0], N_SHARED_ROUNDS * 12);
  close (fds[0]);
  g_assert_cmpuint (strlen (log), ==, N_SHARED_ROUNDS * 12);
  for (guint i = 0; i < N_SHARED_ROUNDS; i++)
    {
      g_autofree char *want = g_strdup_printf ("%08u ok\n", i);
      g_autofree char *line = g_strndup (log + i * 12, 12);

      g_assert_cmpstr (line, ==, want);
    }

  rel_assert_no_sigpipe ();
}

int
main (int    argc,
      char **argv)
{
  rel_init (&argc, &argv);

  g_test_add_func ("/afork/reliability/template-queue/two-threads",
                   test_shared_template_queue);

  return g_test_run ();
}
