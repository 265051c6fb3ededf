/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Threads: afork_process_new() from 8 threads at once, each process used
 * from its own thread through that thread's own GMainContext.
 *
 * AFORK_TEST_THREAD_COUNT sets the processes per thread (default 1000). */
#include "rel-util.h"

#include <string.h>

#define N_THREADS 8

typedef struct
{
  GThread      *thread;     /* the thread that started the run */
  GMainContext *context;
  gboolean      done;
  GSocketConnection *connection;
  GError       *error;
} Run;

static void
run_cb (GObject      *object,
        GAsyncResult *result,
        gpointer      user_data)
{
  Run *run = user_data;

  /* Called back in the thread, and context, that started it. */
  g_assert_true (run->thread == g_thread_self ());
  g_assert_true (g_main_context_is_owner (run->context));
  run->connection = afork_process_run_finish (AFORK_PROCESS (object), result, &run->error);
  run->done = TRUE;
}

typedef struct
{
  guint   count;
  GMutex *start_lock;
  GCond  *start_cond;
  gint   *started;
  guint   ok;
} Worker;

static gpointer
worker_thread (gpointer user_data)
{
  Worker *worker = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autofree char *module = rel_module_path ("afork-rel-module");
  g_autoptr(GBytes) big = g_bytes_new_take (g_malloc0 (1024 * 1024), 1024 * 1024);

  g_main_context_push_thread_default (context);

  /* Start together. */
  g_mutex_lock (worker->start_lock);
  (*worker->started)++;
  g_cond_broadcast (worker->start_cond);
  while (*worker->started < N_THREADS)
    g_cond_wait (worker->start_cond, worker->start_lock);
  g_mutex_unlock (worker->start_lock);

  for (guint i = 0; i < worker->count; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AforkProcess) process = afork_process_new (&error);
      g_autofree char *line = NULL;
      Run run = { g_thread_self (), context, FALSE, NULL, NULL };

      g_assert_no_error (error);
      g_assert_nonnull (process);
      afork_process_require (process, module);
      if (i % 50 == 0)
        /* More than the socket takes at once: the rest is written from
         * this thread's context. */
        afork_process_send_bytes (process, big);

      afork_process_run_async (process, "rel_run_pid", NULL, run_cb, &run);
      afork_test_iterate_until (context, &run.done, "afork_process_run_async");

      g_assert_no_error (run.error);
      line = rel_read_line (run.connection, &error);
      g_assert_no_error (error);
      g_assert_nonnull (line);
      g_assert_cmpint (g_ascii_strtoll (line + strlen ("pid "), NULL, 10), ==,
                       afork_process_get_pid (process));
      g_object_unref (run.connection);
      worker->ok++;
    }

  g_main_context_pop_thread_default (context);

  return NULL;
}

static void
test_new_from_threads (void)
{
  guint count = rel_env_uint ("AFORK_TEST_THREAD_COUNT", 1000);
  Worker workers[N_THREADS];
  GThread *threads[N_THREADS];
  GMutex lock;
  GCond cond;
  gint started = 0;
  gint64 start = g_get_monotonic_time ();
  guint total = 0;

  g_mutex_init (&lock);
  g_cond_init (&cond);

  for (guint i = 0; i < N_THREADS; i++)
    {
      workers[i] = (Worker) { count, &lock, &cond, &started, 0 };
      threads[i] = g_thread_new ("afork-worker", worker_thread, &workers[i]);
    }
  for (guint i = 0; i < N_THREADS; i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (workers[i].ok, ==, count);
      total += workers[i].ok;
    }

  g_test_message ("%u processes from %d threads in %.1f s", total, N_THREADS,
                  (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);

  g_mutex_clear (&lock);
  g_cond_clear (&cond);
  rel_assert_no_sigpipe ();
}

int
main (int    argc,
      char **argv)
{
  rel_init (&argc, &argv);

  g_test_add_func ("/afork/reliability/threads/new", test_new_from_threads);

  return g_test_run ();
}
