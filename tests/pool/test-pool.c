/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AforkPool through real workers: values, descriptors, errors, deaths,
 * cancellation, closing, the workers' life, events and threads. */
#include <afork/afork.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "afork-test-common.h"

/* A pool of a template with the test module, in which @call_function (if
 * not NULL) ran first. */
static AforkPool *
make_pool_after_call (const char *call_function)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template_process = afork_process_new (&error);

  g_assert_no_error (error);
  afork_process_require (template_process, POOL_TEST_MODULE);
  if (call_function != NULL)
    afork_process_call (template_process, call_function, NULL);

  return afork_pool_new (template_process);
}

static AforkPool *
make_pool (void)
{
  return make_pool_after_call (NULL);
}

/* Waits (bounded) until *counter reaches zero, iterating @context. */
static void
iterate_until_zero (GMainContext *context,
                    const guint  *counter)
{
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;

  while (*counter > 0)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out waiting for %u calls", *counter);
      g_main_context_iteration (context, FALSE) || (g_usleep (500), TRUE);
    }
}

typedef struct
{
  guint      pending;
  guint      ok;
  GPtrArray *errors;     /* GError *, of failed calls */
  GPtrArray *replies;    /* GVariant *, by completion order */
} Batch;

static void
batch_init (Batch *batch)
{
  memset (batch, 0, sizeof *batch);
  batch->errors = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);
  batch->replies = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
}

static void
batch_clear (Batch *batch)
{
  g_ptr_array_unref (batch->errors);
  g_ptr_array_unref (batch->replies);
}

static void
batch_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Batch *batch = user_data;
  GError *error = NULL;
  GVariant *reply = afork_pool_call_finish (AFORK_POOL (object), result, &error);

  if (reply != NULL)
    {
      batch->ok++;
      g_ptr_array_add (batch->replies, reply);
    }
  else
    g_ptr_array_add (batch->errors, error);
  batch->pending--;
}

static void
test_types (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  const char *values[] = {
    "(true, false)",
    "(byte 0x00, byte 0xff)",
    "(int16 -32768, uint16 65535)",
    "(int32 -2147483648, uint32 4294967295)",
    "(int64 -9223372036854775808, uint64 18446744073709551615)",
    "(handle 7,)",
    "(3.25, -0.0)",
    "('a string', '')",
    "(objectpath '/org/gnome/Afork', signature 'a{sv}')",
    "(<42>, <<'nested'>>)",
    "([1, 2, 3], @ai [])",
    "({'a': <1>, 'b': <'two'>},)",
    "(@ms 'just', @ms nothing, @mmi just nothing)",
    "([(1, 'x', [2.5])], {1: {'k': [true]}})",
    "((((((((((1,),),),),),),),),),)",
    "([@aay [], [b'bytes']],)",
  };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = g_variant_parse (NULL, values[i], NULL, NULL, &error);
      g_autoptr(GVariant) reply = NULL;

      g_assert_no_error (error);
      reply = afork_pool_call (pool, "pool_echo", value, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_variant_equal (value, reply));
    }

  /* Not a tuple: what the caller passed, as is. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_echo", g_variant_new_string ("bare"),
                                                 NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (g_variant_get_string (reply, NULL), ==, "bare");
  }
}

static void
test_null (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
  g_autoptr(GVariant) nothing = NULL;

  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reply), ==, "()");

  nothing = afork_pool_call (pool, "pool_nothing", g_variant_new ("(i)", 1), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (nothing), ==, "()");
}

static void
test_large (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GError) error = NULL;
  gsize size = 1024 * 1024;
  g_autofree guint8 *data = g_malloc (size);
  GVariant *value;
  g_autoptr(GVariant) sunk = NULL;
  g_autoptr(GVariant) reply = NULL;

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (i * 7 + 3);
  value = g_variant_new ("(@ay)", g_variant_new_from_data (G_VARIANT_TYPE ("ay"), data, size,
                                                          TRUE, NULL, NULL));
  sunk = g_variant_ref_sink (value);

  for (guint round = 0; round < 3; round++)
    {
      g_clear_pointer (&reply, g_variant_unref);
      reply = afork_pool_call (pool, "pool_echo", sunk, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_variant_equal (sunk, reply));
    }
}

static void
test_fds (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new ();
  g_autoptr(GUnixFDList) out_fds = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) made = NULL;
  GVariantBuilder builder;
  gsize n_bytes;
  const guint8 *bytes;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("ah"));
  for (guint i = 0; i < 100; i++)
    {
      int fds[2];
      guint8 byte = (guint8) (200 - i);
      int handle;

      afork_test_pipe (fds);
      g_assert_cmpint (write (fds[1], &byte, 1), ==, 1);
      handle = g_unix_fd_list_append (fd_list, fds[0], &error);
      g_assert_no_error (error);
      close (fds[0]);
      close (fds[1]);
      g_variant_builder_add (&builder, "h", handle);
    }

  reply = afork_pool_call_with_fds (pool, "pool_read_fds", g_variant_new ("(ah)", &builder),
                                    fd_list, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (reply), ==, "(ay)");
  {
    g_autoptr(GVariant) ay = g_variant_get_child_value (reply, 0);

    bytes = g_variant_get_fixed_array (ay, &n_bytes, 1);
    g_assert_cmpuint (n_bytes, ==, 100);
    for (guint i = 0; i < 100; i++)
      g_assert_cmpuint (bytes[i], ==, 200 - i);
  }

  made = afork_pool_call_with_fds (pool, "pool_make_fds", g_variant_new ("(u)", 100),
                                   NULL, &out_fds, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (out_fds);
  g_assert_cmpint (g_unix_fd_list_get_length (out_fds), ==, 100);
  {
    g_autoptr(GVariant) handles = g_variant_get_child_value (made, 0);

    g_assert_cmpuint (g_variant_n_children (handles), ==, 100);
    for (guint i = 0; i < 100; i++)
      {
        gint32 handle;
        guint8 byte = 0;
        int fd;

        g_variant_get_child (handles, i, "h", &handle);
        fd = g_unix_fd_list_get (out_fds, handle, &error);
        g_assert_no_error (error);
        g_assert_cmpint (read (fd, &byte, 1), ==, 1);
        g_assert_cmpuint (byte, ==, i % 256);
        close (fd);
      }
  }

  /* The worker closed what it was sent and did not steal. */
  {
    g_autoptr(GVariant) before = afork_pool_call (pool, "pool_count_fds", NULL, NULL, &error);
    g_autoptr(GVariant) again = NULL;
    g_autoptr(GVariant) after = NULL;
    guint32 n_before, n_after;

    g_assert_no_error (error);
    again = afork_pool_call_with_fds (pool, "pool_echo", g_variant_new ("(h)", 0), fd_list,
                                      NULL, NULL, &error);
    g_assert_no_error (error);
    after = afork_pool_call (pool, "pool_count_fds", NULL, NULL, &error);
    g_assert_no_error (error);
    g_variant_get (before, "(u)", &n_before);
    g_variant_get (after, "(u)", &n_after);
    g_assert_cmpuint (n_before, ==, n_after);
  }
}

static void
test_error_domain (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = afork_pool_call (pool, "pool_fail", g_variant_new ("(s)", "the worker's message"),
                           NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, g_quark_from_string ("afork-pool-test-worker-error"), 42);
  g_assert_cmpstr (error->message, ==, "the worker's message");
}

static void
test_not_found (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) pid1 = NULL;
  g_autoptr(GVariant) pid2 = NULL;
  g_autoptr(GVariant) reply = NULL;

  pid1 = afork_pool_call (pool, "pool_pid", NULL, NULL, &error);
  g_assert_no_error (error);

  reply = afork_pool_call (pool, "pool_no_such_function", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_clear_error (&error);

  /* A loader's name: the function is not found, or (where the loader is
   * not installed, as in this test's environment) the loader is not. */
  reply = afork_pool_call (pool, "python:nothing.here", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_assert_true (g_error_matches (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND) ||
                 g_error_matches (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND));
  g_clear_error (&error);

  /* The same worker keeps serving. */
  pid2 = afork_pool_call (pool, "pool_pid", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (pid1, pid2));
}

typedef enum
{
  DEATH_ABORT,
  DEATH_EXIT,
  DEATH_KILL,
  DEATH_TIMEOUT,
} Death;

static void
killed_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  GError **slot = user_data;
  g_autoptr(GVariant) reply = afork_pool_call_finish (AFORK_POOL (object), result, slot);

  g_assert_null (reply);
  g_assert_nonnull (*slot);
}

static void
pid_event_cb (G_GNUC_UNUSED AforkPool *pool,
              G_GNUC_UNUSED const char *name,
              GVariant                 *value,
              G_GNUC_UNUSED gpointer    user_data)
{
  gint32 pid;

  g_variant_get (value, "(i)", &pid);
  g_assert_cmpint (kill ((pid_t) pid, SIGKILL), ==, 0);
}

static void
test_death (gconstpointer user_data)
{
  Death death = GPOINTER_TO_INT (user_data);
  g_autoptr(AforkPool) pool = make_pool ();
  GMainContext *context = g_main_context_default ();
  GError *dying_error = NULL;
  Batch batch;
  guint n = 1000;

  batch_init (&batch);
  afork_pool_set_max_workers (pool, 2);
  afork_pool_set_load (pool, 4);
  if (death == DEATH_TIMEOUT)
    afork_pool_set_call_timeout (pool, 300);
  g_signal_connect (pool, "event::pid", G_CALLBACK (pid_event_cb), NULL);

  for (guint i = 0; i < n; i++)
    {
      if (i == n / 3)
        {
          switch (death)
            {
            case DEATH_ABORT:
              afork_pool_call_async (pool, "pool_abort", NULL, NULL, killed_cb, &dying_error);
              break;
            case DEATH_EXIT:
              afork_pool_call_async (pool, "pool_exit", g_variant_new ("(i)", 7), NULL,
                                     killed_cb, &dying_error);
              break;
            case DEATH_KILL:
              /* Killed from outside once it tells its pid (pid_event_cb). */
              afork_pool_call_async (pool, "pool_announce_sleep", g_variant_new ("(u)", 100000),
                                     NULL, killed_cb, &dying_error);
              break;
            case DEATH_TIMEOUT:
              afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 100000), NULL,
                                     killed_cb, &dying_error);
              break;
            }
        }
      batch.pending++;
      afork_pool_call_async (pool, "pool_echo", g_variant_new ("(u)", i), NULL, batch_cb, &batch);
    }

  iterate_until_zero (context, &batch.pending);
  while (dying_error == NULL)
    g_main_context_iteration (context, TRUE);

  g_assert_cmpuint (batch.ok, ==, n);
  g_assert_cmpuint (batch.errors->len, ==, 0);

  switch (death)
    {
    case DEATH_ABORT:
      g_assert_error (dying_error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
      g_assert_nonnull (strstr (dying_error->message, "signal 6"));
      break;
    case DEATH_EXIT:
      g_assert_error (dying_error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
      g_assert_nonnull (strstr (dying_error->message, "status 7"));
      break;
    case DEATH_KILL:
      g_assert_error (dying_error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
      g_assert_nonnull (strstr (dying_error->message, "signal 9"));
      break;
    case DEATH_TIMEOUT:
      g_assert_error (dying_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      break;
    }
  g_test_message ("dying call: %s", dying_error->message);

  /* The pool still serves. */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);

    g_assert_no_error (error);
  }

  g_error_free (dying_error);
  batch_clear (&batch);
}

static void
test_cancel_queued (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GMainContext *context = g_main_context_default ();
  GError *cancelled_error = NULL;
  Batch batch;

  batch_init (&batch);
  afork_pool_set_max_workers (pool, 1);

  batch.pending++;
  afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 300), NULL, batch_cb, &batch);
  afork_pool_call_async (pool, "pool_exit", g_variant_new ("(i)", 1), cancellable,
                         killed_cb, &cancelled_error);
  batch.pending++;
  afork_pool_call_async (pool, "pool_echo", NULL, NULL, batch_cb, &batch);
  g_assert_cmpuint (afork_pool_get_n_queued (pool), >=, 1);
  g_cancellable_cancel (cancellable);

  iterate_until_zero (context, &batch.pending);
  while (cancelled_error == NULL)
    g_main_context_iteration (context, TRUE);

  g_assert_error (cancelled_error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* The cancelled call never ran: the worker did not exit. */
  g_assert_cmpuint (batch.ok, ==, 2);
  {
    gint32 pid1, pid2;

    g_variant_get (batch.replies->pdata[0], "(i)", &pid1);
    g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 1);
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_pid", NULL, NULL, &error);

      g_assert_no_error (error);
      g_variant_get (reply, "(i)", &pid2);
    }
    g_assert_cmpint (pid1, ==, pid2);
  }

  g_error_free (cancelled_error);
  batch_clear (&batch);
}

static gpointer
cancel_thread (gpointer user_data)
{
  g_usleep (200 * 1000);
  g_cancellable_cancel (user_data);
  return NULL;
}

static void
test_cancel_running_sync (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) after = NULL;
  GThread *thread;

  afork_pool_set_max_workers (pool, 1);
  thread = g_thread_new ("canceller", cancel_thread, cancellable);
  reply = afork_pool_call (pool, "pool_sleep", g_variant_new ("(u)", 100000), cancellable, &error);
  g_thread_join (thread);
  g_assert_null (reply);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  after = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
close_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (afork_pool_close_finish (AFORK_POOL (object), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

static void
test_close (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GMainContext *context = g_main_context_default ();
  gboolean closed = FALSE;
  Batch batch;

  batch_init (&batch);
  afork_pool_set_max_workers (pool, 2);
  for (guint i = 0; i < 20; i++)
    {
      batch.pending++;
      afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 10), NULL, batch_cb, &batch);
    }
  afork_pool_close_async (pool, NULL, close_cb, &closed);

  reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_CLOSED);

  afork_test_iterate_until (context, &closed, "the pool to close");
  g_assert_cmpuint (batch.pending, ==, 0);
  if (batch.errors->len > 0)
    g_test_message ("first error: %s", ((GError *) batch.errors->pdata[0])->message);
  g_assert_cmpuint (batch.ok, ==, 20);
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 0);

  /* Every worker has exited. */
  for (guint i = 0; i < batch.replies->len; i++)
    {
      gint32 pid;

      g_variant_get (batch.replies->pdata[i], "(i)", &pid);
      g_assert_true (afork_test_wait_gone (pid, AFORK_TEST_WAIT_SECONDS));
    }

  batch_clear (&batch);
}

static void
test_missing_module (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) template_process = afork_process_new (&error);
  g_autoptr(AforkPool) pool = NULL;
  GMainContext *context = g_main_context_default ();
  Batch batch;

  g_assert_no_error (error);
  afork_process_require (template_process, "/nonexistent/libafork-no-such-module.so");
  pool = afork_pool_new (template_process);

  batch_init (&batch);
  for (guint i = 0; i < 50; i++)
    {
      batch.pending++;
      afork_pool_call_async (pool, "pool_echo", NULL, NULL, batch_cb, &batch);
    }
  iterate_until_zero (context, &batch.pending);
  g_assert_cmpuint (batch.ok, ==, 0);
  g_assert_cmpuint (batch.errors->len, ==, 50);
  for (guint i = 0; i < batch.errors->len; i++)
    g_assert_error ((GError *) batch.errors->pdata[i], AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);

  /* And later calls, without a loop of respawns. */
  {
    g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);

    g_assert_null (reply);
    g_assert_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND);
  }
  /* Workers that were being started fail too, and none replaces them. */
  {
    gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;

    while (afork_pool_get_n_workers (pool) > 0 && g_get_monotonic_time () < deadline)
      g_usleep (10 * 1000);
  }
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 0);
  g_usleep (200 * 1000);
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 0);

  batch_clear (&batch);
}

static void
test_grow_shrink (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  GMainContext *context = g_main_context_default ();
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *meeting = g_dir_make_tmp ("afork-pool-meet-XXXXXX", &error);
  guint max_seen = 0;
  gint64 deadline;
  Batch batch;

  g_assert_no_error (error);
  batch_init (&batch);
  afork_pool_set_max_workers (pool, 4);
  afork_pool_set_min_workers (pool, 1);
  afork_pool_set_idle_timeout (pool, 200);
  g_assert_cmpuint (afork_pool_get_max_workers (pool), ==, 4);
  g_assert_cmpuint (afork_pool_get_min_workers (pool), ==, 1);
  g_assert_cmpuint (afork_pool_get_idle_timeout (pool), ==, 200);

  /* Each of the first four calls waits for the other three, so the pool
   * must run four workers at once however long they take to start; the
   * four calls queued behind them must not bring a fifth. */
  for (guint i = 0; i < 8; i++)
    {
      batch.pending++;
      afork_pool_call_async (pool, "pool_meet", g_variant_new ("(su)", meeting, 4), NULL,
                             batch_cb, &batch);
    }
  while (batch.pending > 0)
    {
      max_seen = MAX (max_seen, afork_pool_get_n_workers (pool));
      g_main_context_iteration (context, TRUE);
    }
  if (batch.errors->len > 0)
    g_error ("A call failed: %s", ((GError *) batch.errors->pdata[0])->message);
  g_assert_cmpuint (max_seen, ==, 4);
  for (guint i = 0; i < batch.replies->len; i++)
    {
      gint32 pid;
      g_autofree char *mark = NULL;

      g_variant_get (batch.replies->pdata[i], "(i)", &pid);
      g_hash_table_add (pids, GINT_TO_POINTER (pid));
      mark = g_strdup_printf ("%s/%d", meeting, (int) pid);
      g_unlink (mark);
    }
  g_assert_cmpuint (g_hash_table_size (pids), ==, 4);
  g_assert_cmpint (g_rmdir (meeting), ==, 0);

  /* Idle: down to min-workers. */
  deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;
  while (afork_pool_get_n_workers (pool) > 1 && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 1);
  g_usleep (500 * 1000);
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 1);

  batch_clear (&batch);
}

typedef struct
{
  GPtrArray *log;
} EventLog;

static void
event_cb (G_GNUC_UNUSED AforkPool *pool,
          const char              *name,
          GVariant                *value,
          gpointer                 user_data)
{
  GPtrArray *log = user_data;
  g_autofree char *printed = g_variant_print (value, FALSE);

  g_ptr_array_add (log, g_strdup_printf ("%s %s", name, printed));
}

static void
events_reply_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GPtrArray *log = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call_finish (AFORK_POOL (object), result, &error);

  g_autofree char *printed = NULL;

  g_assert_no_error (error);
  printed = g_variant_print (reply, FALSE);
  g_ptr_array_add (log, g_strdup_printf ("reply %s", printed));
}

static void
test_events (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  GMainContext *context = g_main_context_default ();
  gulong id;

  id = g_signal_connect (pool, "event::progress", G_CALLBACK (event_cb), log);
  afork_pool_call_async (pool, "pool_events", g_variant_new ("(u)", 3), NULL, events_reply_cb, log);
  while (log->len < 4)
    g_main_context_iteration (context, TRUE);
  g_assert_cmpstr (log->pdata[0], ==, "progress (0,)");
  g_assert_cmpstr (log->pdata[1], ==, "progress (1,)");
  g_assert_cmpstr (log->pdata[2], ==, "progress (2,)");
  g_assert_cmpstr (log->pdata[3], ==, "reply (3,)");

  /* Synchronously: emitted in the calling thread before the return. */
  g_ptr_array_set_size (log, 0);
  reply = afork_pool_call (pool, "pool_events", g_variant_new ("(u)", 2), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (log->len, ==, 2);
  g_signal_handler_disconnect (pool, id);
}

typedef struct
{
  AforkPool *pool;
  guint      index;
  guint      ok;
  gboolean   sync_only;
} ThreadData;

static void
thread_call_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  ThreadData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call_finish (AFORK_POOL (object), result, &error);
  guint32 a, b;

  g_assert_no_error (error);
  /* In this thread's own context. */
  g_assert_true (g_main_context_is_owner (g_main_context_get_thread_default ()));
  g_variant_get (reply, "(uu)", &a, &b);
  g_assert_cmpuint (a, ==, data->index);
  /* Calls numbered from 0, each thread's answered in its order. */
  g_assert_cmpuint (b, ==, data->ok);
  data->ok++;
}

static gpointer
thread_func (gpointer user_data)
{
  ThreadData *data = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  guint n = 300;

  g_main_context_push_thread_default (context);
  for (guint i = 0; i < n; i++)
    {
      guint before = data->ok;

      if (i % 2 == 0 && !data->sync_only)
        {
          afork_pool_call_async (data->pool, "pool_echo", g_variant_new ("(uu)", data->index, i),
                                 NULL, thread_call_cb, data);
          while (data->ok == before)
            g_main_context_iteration (context, TRUE);
        }
      else
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GVariant) reply = afork_pool_call (data->pool, "pool_echo",
                                                       g_variant_new ("(uu)", data->index, i),
                                                       NULL, &error);
          g_assert_no_error (error);
          data->ok++;
        }
    }
  g_main_context_pop_thread_default (context);

  return NULL;
}

#define FLOOD_CALLS 3000

static gpointer
flood_thread_func (gpointer user_data)
{
  ThreadData *data = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  guint32 a, b;

  g_main_context_push_thread_default (context);
  for (guint i = 0; i < FLOOD_CALLS; i++)
    afork_pool_call_async (data->pool, "pool_echo", g_variant_new ("(uu)", data->index, i),
                           NULL, thread_call_cb, data);

  /* A synchronous call made after them runs after them. */
  reply = afork_pool_call (data->pool, "pool_echo",
                           g_variant_new ("(uu)", data->index, FLOOD_CALLS), NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(uu)", &a, &b);
  g_assert_cmpuint (b, ==, FLOOD_CALLS);

  while (data->ok < FLOOD_CALLS)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  return NULL;
}

/* Four threads submit thousands of asynchronous calls each without
 * waiting, to one worker: none is lost, none runs twice and each thread's
 * run in its order, whoever takes them in. */
static void
test_threads_flood (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  ThreadData data[4];
  GThread *threads[4];

  afork_pool_set_max_workers (pool, 1);
  afork_pool_set_load (pool, 32);
  for (guint i = 0; i < G_N_ELEMENTS (data); i++)
    {
      data[i].pool = pool;
      data[i].index = i;
      data[i].ok = 0;
      data[i].sync_only = FALSE;
      threads[i] = g_thread_new ("flood", flood_thread_func, &data[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (data); i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (data[i].ok, ==, FLOOD_CALLS);
    }
  g_assert_cmpuint (afork_pool_get_n_queued (pool), ==, 0);
}

typedef enum
{
  THREADS_MIXED,       /* three workers taking one call each */
  THREADS_ONE_WORKER,  /* one worker taking eight calls at once */
  THREADS_SYNC_ONLY,   /* the same, with synchronous calls only */
} Threads;

/* Eight threads, each alternating synchronous and asynchronous calls (or
 * making synchronous ones only). On one worker, synchronous callers wait
 * behind each other and behind asynchronous calls. */
static void
test_threads (gconstpointer user_data)
{
  Threads mode = GPOINTER_TO_INT (user_data);
  g_autoptr(AforkPool) pool = make_pool ();
  ThreadData data[8];
  GThread *threads[8];

  /* A caller that waits behind another and finds itself alone with the
   * worker must be told to read its reply: the last calls of a round show
   * whether it is. */
  guint rounds = mode == THREADS_SYNC_ONLY ? 10 : 1;

  afork_pool_set_max_workers (pool, mode == THREADS_MIXED ? 3 : 1);
  afork_pool_set_load (pool, mode == THREADS_MIXED ? 1 : 8);
  for (guint round = 0; round < rounds; round++)
    {
      for (guint i = 0; i < 8; i++)
        {
          data[i].pool = pool;
          data[i].index = i;
          data[i].ok = 0;
          data[i].sync_only = mode == THREADS_SYNC_ONLY;
          threads[i] = g_thread_new ("caller", thread_func, &data[i]);
        }
      for (guint i = 0; i < 8; i++)
        {
          g_thread_join (threads[i]);
          g_assert_cmpuint (data[i].ok, ==, 300);
        }
    }
}

static guint
count_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (g_dir_read_name (dir) != NULL)
    n++;

  return n;
}

/* Lowers this process's RLIMIT_NOFILE to leave room for @room more
 * descriptors than it has open; the limit before goes to *@saved. */
static void
leave_room_for_fds (guint          room,
                    struct rlimit *saved)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  struct rlimit tight;
  const char *name;
  int highest = 0;

  while ((name = g_dir_read_name (dir)) != NULL)
    highest = MAX (highest, atoi (name));
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, saved), ==, 0);
  tight = *saved;
  tight.rlim_cur = (rlim_t) highest + 1 + room;
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &tight), ==, 0);
}

/* This process at its limit of open files when a reply brings 100
 * descriptors: the kernel drops those it cannot install. The call fails
 * and says why, the descriptors that did come are closed, and once there
 * is room again the pool works. With a ring for the replies (max-calls 0)
 * and without (a worker per call has none). */
static void
test_fds_at_limit (gconstpointer data)
{
  guint max_calls = GPOINTER_TO_UINT (data);
  g_autoptr(AforkPool) pool = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GUnixFDList) out = NULL;
  g_autoptr(GError) error = NULL;
  struct rlimit limit;
  guint before;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  pool = make_pool ();
  afork_pool_set_max_calls_per_worker (pool, max_calls);
  reply = afork_pool_call (pool, "pool_nothing", NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  before = count_fds ();
  leave_room_for_fds (20, &limit);

  reply = afork_pool_call_with_fds (pool, "pool_make_fds", g_variant_new ("(u)", 100), NULL,
                                    &out, NULL, &error);
  g_assert_null (reply);
  g_assert_null (out);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
  g_assert_nonnull (strstr (error->message, "limit of open files"));
  g_clear_error (&error);
  /* Some 20 came; a new worker's socket may be open. */
  g_assert_cmpuint (count_fds (), <, before + 5);

  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
  reply = afork_pool_call_with_fds (pool, "pool_make_fds", g_variant_new ("(u)", 100), NULL,
                                    &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_unix_fd_list_get_length (out), ==, 100);
}

/* The parameters of pool_read_fds with @n pipes, each holding one
 * byte, @n + 1, in @fd_list; with @padding bytes more (which that
 * function does not take: for a call that must not run). */
static GVariant *
read_fds_parameters (guint        n,
                     gsize        padding,
                     GUnixFDList *fd_list)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("ah"));
  for (guint i = 0; i < n; i++)
    {
      int fds[2];
      guint8 byte = (guint8) (n + 1);
      int handle;

      afork_test_pipe (fds);
      g_assert_cmpint (write (fds[1], &byte, 1), ==, 1);
      handle = g_unix_fd_list_append (fd_list, fds[0], NULL);
      g_assert_cmpint (handle, >=, 0);
      close (fds[0]);
      close (fds[1]);
      g_variant_builder_add (&builder, "h", handle);
    }

  if (padding == 0)
    return g_variant_new ("(ah)", &builder);

  {
    g_autoptr(GBytes) bytes = g_bytes_new_take (g_malloc0 (padding), padding);

    return g_variant_new ("(ah@ay)", &builder,
                          g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE));
  }
}

static GVariant *
call_read_fds (AforkPool *pool,
               guint      n,
               GError   **error)
{
  g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new ();
  GVariant *parameters = read_fds_parameters (n, 0, fd_list);

  return afork_pool_call_with_fds (pool, "pool_read_fds", parameters, fd_list, NULL, NULL,
                                   error);
}

static gint32
call_get_int (AforkPool  *pool,
              const char *function)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = afork_pool_call (pool, function, NULL, NULL, &error);
  gint32 value = 0;

  g_assert_no_error (error);
  if (g_variant_is_of_type (reply, G_VARIANT_TYPE ("(i)")))
    g_variant_get (reply, "(i)", &value);
  else
    g_variant_get (reply, "(u)", &value);

  return value;
}

/* A worker at its limit of open files when a call brings 100
 * descriptors: that call fails, saying so, without running; the worker
 * closes what came of them and takes the next calls, with descriptors
 * too, and fails the next such call alike. Last, the call that loses its
 * descriptors is large (80 KB), so that the worker reads the rest of it
 * and the next call, sent behind it (load 2), in later reads: that
 * call's descriptors find room, and it succeeds. */
static void
test_fds_at_limit_in_worker (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gint32 pid;
  guint32 open_fds;

  afork_pool_set_max_workers (pool, 1);
  pid = call_get_int (pool, "pool_pid");
  reply = afork_pool_call (pool, "pool_limit_fds", g_variant_new ("(u)", 20), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  open_fds = (guint32) call_get_int (pool, "pool_count_fds");

  for (guint round = 0; round < 2; round++)
    {
      g_autofree char *expected = g_strdup_printf ("were lost in worker process %d", (int) pid);
      gsize n_bytes = 0;

      reply = call_read_fds (pool, 100, &error);
      g_assert_null (reply);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
      g_assert_nonnull (strstr (error->message, expected));
      g_assert_nonnull (strstr (error->message, "limit of open files"));
      g_clear_error (&error);

      /* The same worker, with what it had open, and calls with
       * descriptors work. */
      g_assert_cmpint (call_get_int (pool, "pool_pid"), ==, pid);
      g_assert_cmpuint ((guint32) call_get_int (pool, "pool_count_fds"), ==, open_fds);
      reply = call_read_fds (pool, 3, &error);
      g_assert_no_error (error);
      {
        g_autoptr(GVariant) ay = g_variant_get_child_value (reply, 0);
        const guint8 *bytes = g_variant_get_fixed_array (ay, &n_bytes, 1);

        g_assert_cmpuint (n_bytes, ==, 3);
        g_assert_cmpuint (bytes[2], ==, 4);
      }
      g_clear_pointer (&reply, g_variant_unref);
    }

  afork_pool_set_load (pool, 2);
  for (guint round = 0; round < 5; round++)
    {
      g_autoptr(GUnixFDList) large_fds = g_unix_fd_list_new ();
      g_autoptr(GUnixFDList) small_fds = g_unix_fd_list_new ();
      GVariant *large = read_fds_parameters (100, 80 * 1024, large_fds);
      GVariant *small = read_fds_parameters (3, 0, small_fds);
      Batch batch;

      batch_init (&batch);
      batch.pending = 2;
      afork_pool_call_with_fds_async (pool, "pool_read_fds", large, large_fds, NULL,
                                      batch_cb, &batch);
      afork_pool_call_with_fds_async (pool, "pool_read_fds", small, small_fds, NULL,
                                      batch_cb, &batch);
      iterate_until_zero (g_main_context_default (), &batch.pending);
      g_assert_cmpuint (batch.errors->len, ==, 1);
      g_assert_error ((GError *) batch.errors->pdata[0], G_IO_ERROR,
                      G_IO_ERROR_TOO_MANY_OPEN_FILES);
      g_assert_cmpuint (batch.ok, ==, 1);
      {
        g_autoptr(GVariant) ay = g_variant_get_child_value (batch.replies->pdata[0], 0);

        g_assert_cmpuint (g_variant_n_children (ay), ==, 3);
      }
      batch_clear (&batch);
      g_assert_cmpint (call_get_int (pool, "pool_pid"), ==, pid);
    }
}

/* The pool thread, made to run only when nothing else would: replies
 * then pile up on the socket or in the ring before it reads them. */
static void
slow_down_pool_thread (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  const char *name;
  gboolean found = FALSE;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/task", name, "comm", NULL);
      g_autofree char *comm = NULL;
      struct sched_param param = { 0 };

      if (g_file_get_contents (path, &comm, NULL, NULL) && g_str_has_prefix (comm, "afork-pool"))
        {
          g_assert_cmpint (sched_setscheduler (atoi (name), SCHED_IDLE, &param), ==, 0);
          found = TRUE;
        }
    }
  g_assert_true (found);
}

static void
count_event_cb (G_GNUC_UNUSED AforkPool  *pool,
                G_GNUC_UNUSED const char *name,
                G_GNUC_UNUSED GVariant   *value,
                gpointer                  user_data)
{
  guint *count = user_data;

  (*count)++;
}

/* As above, with what the worker wrote before the descriptors that are
 * lost: an event of the same call, and, with a ring (which lets the
 * worker take two calls, load 2), the reply to the call before. All on
 * one CPU where the pool thread runs last, so that they are often read
 * in one go with the descriptors. What came before is delivered (the
 * call before succeeds, the event arrives), and the call whose
 * descriptors were lost fails, once: its event comes once. */
static void
test_fds_at_limit_behind (gconstpointer data)
{
  guint max_calls = GPOINTER_TO_UINT (data);
  g_autoptr(AforkPool) pool = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  struct rlimit limit;
  cpu_set_t one_cpu;
  guint n_ahead = 0;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  /* The template, forked from this process, and its workers too. */
  CPU_ZERO (&one_cpu);
  CPU_SET (sched_getcpu (), &one_cpu);
  g_assert_cmpint (sched_setaffinity (0, sizeof one_cpu, &one_cpu), ==, 0);

  pool = make_pool ();
  afork_pool_set_max_calls_per_worker (pool, max_calls);
  afork_pool_set_max_workers (pool, 1);
  afork_pool_set_load (pool, 2);
  reply = afork_pool_call (pool, "pool_nothing", NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  slow_down_pool_thread ();
  leave_room_for_fds (20, &limit);

  g_signal_connect (pool, "event::ahead", G_CALLBACK (count_event_cb), &n_ahead);
  for (guint i = 0; i < 10; i++)
    {
      Batch batch;
      GError *lost;

      batch_init (&batch);
      batch.pending = 2;
      afork_pool_call_async (pool, "pool_echo", g_variant_new ("(u)", i), NULL, batch_cb, &batch);
      afork_pool_call_with_fds_async (pool, "pool_event_then_fds", g_variant_new ("(u)", 100),
                                      NULL, NULL, batch_cb, &batch);
      iterate_until_zero (g_main_context_default (), &batch.pending);
      g_assert_cmpuint (n_ahead, ==, i + 1);
      g_assert_cmpuint (batch.ok, ==, 1);
      g_assert_cmpuint (batch.errors->len, ==, 1);
      lost = batch.errors->pdata[0];
      g_assert_error (lost, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES);
      g_assert_nonnull (strstr (lost->message, "limit of open files"));
      batch_clear (&batch);
    }
}

/* Children of @parent that are zombies. */
static guint
count_zombies (GPid parent)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint n = 0;

  while ((name = g_dir_read_name (dir)) != NULL)
    {
      gint64 pid;
      char state;
      GPid ppid;

      if (g_ascii_string_to_signed (name, 10, 1, G_MAXINT, &pid, NULL) &&
          afork_test_proc_stat ((GPid) pid, &state, &ppid, NULL) &&
          ppid == parent && state == 'Z')
        n++;
    }

  return n;
}

/* One pool of @n calls, 1 in 100 of which kill their worker; returns
 * once the pool's template (and with it every worker) is gone. */
static void
random_deaths_round (guint n)
{
  GMainContext *context = g_main_context_default ();
  GPid template_pid = 0;
  guint n_died = 0;
  Batch batch;

  batch_init (&batch);
  {
    g_autoptr(AforkPool) pool = make_pool ();
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = NULL;
    gint32 pid;

    afork_pool_set_max_workers (pool, 3);
    afork_pool_set_load (pool, 8);
    reply = afork_pool_call (pool, "pool_pid", NULL, NULL, &error);
    g_assert_no_error (error);
    g_variant_get (reply, "(i)", &pid);
    template_pid = afork_test_proc_parent (pid);

    for (guint i = 0; i < n; i++)
      {
        batch.pending++;
        if (g_test_rand_int_range (0, 100) == 0)
          afork_pool_call_async (pool, "pool_exit", g_variant_new ("(i)", 5), NULL, batch_cb, &batch);
        else
          afork_pool_call_async (pool, "pool_echo", g_variant_new ("(u)", i), NULL, batch_cb, &batch);
        if (i % 500 == 0)
          g_main_context_iteration (context, FALSE);
      }
    iterate_until_zero (context, &batch.pending);
    for (guint i = 0; i < batch.errors->len; i++)
      {
        g_assert_error ((GError *) batch.errors->pdata[i], AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
        n_died++;
      }
    g_assert_cmpuint (batch.ok + n_died, ==, n);
    g_test_message ("%u calls, %u workers died", n, n_died);
  }

  /* The pool is gone: its workers and template exit. */
  g_assert_true (afork_test_wait_gone (template_pid, AFORK_TEST_WAIT_SECONDS));
  batch_clear (&batch);
}

static void
test_random_deaths (void)
{
  const char *count_env = g_getenv ("AFORK_TEST_POOL_CALLS");
  guint n = count_env != NULL ? (guint) g_ascii_strtoull (count_env, NULL, 10) : 10000;
  gint64 deadline;
  guint fds_before;

  /* A first round opens what stays for the program's life (the default
   * template, the pool thread). */
  random_deaths_round (200);
  fds_before = count_fds ();

  random_deaths_round (n);

  deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;
  while (count_fds () > fds_before && g_get_monotonic_time () < deadline)
    {
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10 * 1000);
    }
  if (count_fds () > fds_before)
    {
      g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
      const char *name;

      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
          g_autofree char *target = g_file_read_link (path, NULL);

          g_test_message ("open: %s -> %s", name, target);
        }
    }
  g_assert_cmpuint (count_fds (), <=, fds_before);
  g_assert_cmpuint (count_zombies (getpid ()), ==, 0);
}

/* Synchronous calls to one worker, in runs of quick ones (whose replies
 * the caller waits for awake), slow ones (which its awake wait misses,
 * so that it waits asleep for a while) and ones that send events first:
 * every reply is the call's own, every event arrives, and the worker is
 * the same one throughout. */
static void
test_sync_waits (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  gint32 first_pid = 0;
  guint ticks = 0;

  afork_pool_set_max_workers (pool, 1);
  g_signal_connect (pool, "event::progress", G_CALLBACK (count_event_cb), &ticks);

  for (guint round = 0; round < 6; round++)
    {
      for (guint i = 0; i < 40; i++)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_echo",
                                                       g_variant_new ("(uu)", round, i),
                                                       NULL, &error);
          guint32 a, b;

          g_assert_no_error (error);
          g_variant_get (reply, "(uu)", &a, &b);
          g_assert_cmpuint (a, ==, round);
          g_assert_cmpuint (b, ==, i);
        }
      for (guint i = 0; i < 3; i++)
        {
          g_autoptr(GError) error = NULL;
          g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_sleep",
                                                       g_variant_new ("(u)", 2), NULL, &error);
          gint32 pid;

          g_assert_no_error (error);
          g_variant_get (reply, "(i)", &pid);
          if (first_pid == 0)
            first_pid = pid;
          g_assert_cmpint (pid, ==, first_pid);
        }
      for (guint i = 0; i < 5; i++)
        {
          g_autoptr(GError) error = NULL;
          guint before = ticks;
          g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_events",
                                                       g_variant_new ("(u)", 10), NULL, &error);
          guint32 n;

          g_assert_no_error (error);
          g_variant_get (reply, "(u)", &n);
          g_assert_cmpuint (n, ==, 10);
          g_assert_cmpuint (ticks - before, ==, 10);
        }
    }
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 1);
}

/* A worker that sends events without end, as fast as it can, still has
 * its call timed out, and the pool serves the next call. */
static void
test_event_storm_timeout (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GVariant) after = NULL;
  GMainContext *context = g_main_context_default ();
  GError *storm_error = NULL;
  GError *error = NULL;
  guint ticks = 0;

  afork_pool_set_max_workers (pool, 1);
  afork_pool_set_call_timeout (pool, 300);
  g_signal_connect (pool, "event::tick", G_CALLBACK (count_event_cb), &ticks);
  afork_pool_call_async (pool, "pool_event_storm", g_variant_new ("(u)", G_MAXUINT32), NULL,
                         killed_cb, &storm_error);

  while (storm_error == NULL)
    g_main_context_iteration (context, TRUE);
  g_assert_error (storm_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&storm_error);
  g_assert_cmpuint (ticks, >, 0);

  after = afork_pool_call (pool, "pool_echo", g_variant_new ("(i)", 5), NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (after);
}

/* A worker that breaks the protocol (@user_data names how: garbage on its
 * socket, an impossible position in the ring of its replies) fails its
 * call with a protocol error; the pool goes on with another. */
static void
test_protocol_error (gconstpointer user_data)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) after = NULL;

  afork_pool_set_max_workers (pool, 1);
  reply = afork_pool_call (pool, user_data, NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL);
  g_clear_error (&error);

  after = afork_pool_call (pool, "pool_echo", g_variant_new ("(i)", 9), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (after), ==, "(i)");
}

static void
test_default_template (void)
{
  g_autoptr(AforkPool) pool = afork_pool_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  /* Workers of the default template: nothing loaded, but they serve. */
  reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 1);
}

static void
notify_cb (G_GNUC_UNUSED GObject    *object,
           G_GNUC_UNUSED GParamSpec *pspec,
           gpointer                  user_data)
{
  (*(guint *) user_data)++;
}

static void
test_properties (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  guint notified = 0;
  guint value = 0;

  GParamSpec *pspec;

  g_assert_cmpuint (afork_pool_get_max_workers (pool), ==, MAX (g_get_num_processors (), 1));
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (pool), "max-workers");
  g_assert_cmpuint (G_PARAM_SPEC_UINT (pspec)->default_value, ==, MAX (g_get_num_processors (), 1));
  g_assert_cmpuint (afork_pool_get_min_workers (pool), ==, 0);
  g_assert_cmpuint (afork_pool_get_load (pool), ==, 1);
  g_assert_cmpuint (afork_pool_get_idle_timeout (pool), ==, 10000);
  g_assert_cmpuint (afork_pool_get_max_calls_per_worker (pool), ==, 0);
  g_assert_cmpuint (afork_pool_get_call_timeout (pool), ==, 0);

  g_signal_connect (pool, "notify::load", G_CALLBACK (notify_cb), &notified);
  afork_pool_set_load (pool, 8);
  afork_pool_set_load (pool, 8);
  g_assert_cmpuint (notified, ==, 1);
  g_object_get (pool, "load", &value, NULL);
  g_assert_cmpuint (value, ==, 8);
  g_object_set (pool, "max-calls-per-worker", 3, "call-timeout", 500, NULL);
  g_assert_cmpuint (afork_pool_get_max_calls_per_worker (pool), ==, 3);
  g_assert_cmpuint (afork_pool_get_call_timeout (pool), ==, 500);
}

static void
test_fresh_process_per_call (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);

  afork_pool_set_max_calls_per_worker (pool, 1);
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = afork_pool_call (pool, "pool_pid", NULL, NULL, &error);
      gint32 pid;

      g_assert_no_error (error);
      g_variant_get (reply, "(i)", &pid);
      g_assert_false (g_hash_table_contains (pids, GINT_TO_POINTER (pid)));
      g_hash_table_add (pids, GINT_TO_POINTER (pid));
    }
}

/* With a fresh process per call, calls queued behind busy workers all run:
 * each used-up worker leaves room for its replacement. */
static void
test_fresh_process_per_call_queued (void)
{
  const guint max_workers[] = { 1, 2 };
  const guint n_calls[] = { 3, 50 };

  for (guint w = 0; w < G_N_ELEMENTS (max_workers); w++)
    for (guint n = 0; n < G_N_ELEMENTS (n_calls); n++)
      {
        g_autoptr(AforkPool) pool = make_pool ();
        g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
        Batch batch;

        g_test_message ("max-workers %u, %u calls", max_workers[w], n_calls[n]);
        afork_pool_set_max_workers (pool, max_workers[w]);
        afork_pool_set_max_calls_per_worker (pool, 1);
        batch_init (&batch);
        for (guint i = 0; i < n_calls[n]; i++)
          {
            batch.pending++;
            afork_pool_call_async (pool, "pool_echo", g_variant_new ("(u)", i), NULL,
                                   batch_cb, &batch);
          }
        iterate_until_zero (NULL, &batch.pending);

        g_assert_cmpuint (batch.errors->len, ==, 0);
        g_assert_cmpuint (batch.ok, ==, n_calls[n]);
        for (guint i = 0; i < batch.replies->len; i++)
          {
            guint32 value;

            g_variant_get (batch.replies->pdata[i], "(u)", &value);
            g_assert_cmpuint (value, <, n_calls[n]);
            g_assert_false (g_hash_table_contains (seen, GUINT_TO_POINTER (value)));
            g_hash_table_add (seen, GUINT_TO_POINTER (value));
          }
        g_assert_cmpuint (afork_pool_get_n_queued (pool), ==, 0);
        batch_clear (&batch);
      }
}

/* When a call started (+1) or ended (-1). */
typedef struct
{
  gint64 time;
  int    delta;
} Edge;

/* By time; at the same time, an end before a start. */
static int
compare_edges (gconstpointer a,
               gconstpointer b)
{
  const Edge *x = a, *y = b;

  if (x->time != y->time)
    return x->time < y->time ? -1 : 1;
  return x->delta - y->delta;
}

/* A worker given its last call is replaced at once: while that call
 * runs, its replacement starts. However many worker processes that
 * makes, no more than max-workers run calls at once: calls that each
 * record when they ran never overlap more. */
static void
test_fresh_process_ahead (void)
{
  const guint max_workers[] = { 1, 2 };

  for (guint w = 0; w < G_N_ELEMENTS (max_workers); w++)
    {
      g_autoptr(AforkPool) pool = make_pool ();
      g_autoptr(GArray) edges = g_array_new (FALSE, FALSE, sizeof (Edge));
      gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;
      int running = 0, most = 0;
      Batch batch;

      g_test_message ("max-workers %u", max_workers[w]);
      afork_pool_set_max_workers (pool, max_workers[w]);
      afork_pool_set_max_calls_per_worker (pool, 1);

      /* While a call sleeps, its worker's replacement starts. */
      batch_init (&batch);
      batch.pending++;
      afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 1500), NULL,
                             batch_cb, &batch);
      while (afork_pool_get_n_workers (pool) != 2 && batch.pending > 0)
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("no replacement started while the call ran");
          g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
        }
      g_assert_cmpuint (batch.pending, ==, 1);
      iterate_until_zero (NULL, &batch.pending);
      g_assert_cmpuint (batch.ok, ==, 1);
      batch_clear (&batch);

      batch_init (&batch);
      for (guint i = 0; i < 6 * max_workers[w]; i++)
        {
          batch.pending++;
          afork_pool_call_async (pool, "pool_interval", g_variant_new ("(u)", 30), NULL,
                                 batch_cb, &batch);
        }
      iterate_until_zero (NULL, &batch.pending);
      g_assert_cmpuint (batch.errors->len, ==, 0);

      for (guint i = 0; i < batch.replies->len; i++)
        {
          Edge start = { 0, +1 }, end = { 0, -1 };

          g_variant_get (batch.replies->pdata[i], "(xx)", &start.time, &end.time);
          g_array_append_val (edges, start);
          g_array_append_val (edges, end);
        }
      g_array_sort (edges, compare_edges);
      for (guint i = 0; i < edges->len; i++)
        {
          running += g_array_index (edges, Edge, i).delta;
          most = MAX (most, running);
        }
      g_assert_cmpint (most, <=, (int) max_workers[w]);
      batch_clear (&batch);
    }
}

/* Waits up to @ms, iterating the default context, and returns the
 * largest number of workers seen meanwhile. */
static guint
most_workers_during (AforkPool *pool,
                     guint      ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  guint most = 0;

  while (g_get_monotonic_time () < end)
    {
      most = MAX (most, afork_pool_get_n_workers (pool));
      g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
    }

  return most;
}

/* As most_workers_during (), then on, bounded, until the pool has
 * @n_workers: a worker killed takes a moment to go (longer under ASan). */
static guint
most_workers_until (AforkPool *pool,
                    guint      ms,
                    guint      n_workers)
{
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;
  guint most = most_workers_during (pool, ms);

  while (afork_pool_get_n_workers (pool) != n_workers && g_get_monotonic_time () < deadline)
    most = MAX (most, most_workers_during (pool, 10));

  return most;
}

/* What could go wrong around a replacement started early: a worker
 * killed with its last call is not replaced twice; a replacement that
 * waits while max-workers run calls is not stopped by idle-timeout. */
static void
test_fresh_process_ahead_edges (void)
{
  {
    g_autoptr(AforkPool) pool = make_pool ();
    Batch batch;

    g_test_message ("a used-up worker killed");
    afork_pool_set_max_workers (pool, 4);
    afork_pool_set_max_calls_per_worker (pool, 1);
    afork_pool_set_call_timeout (pool, 300);
    batch_init (&batch);
    batch.pending++;
    afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 60000), NULL,
                           batch_cb, &batch);
    iterate_until_zero (NULL, &batch.pending);
    g_assert_cmpuint (batch.errors->len, ==, 1);
    /* Its replacement, and no other, once its hang-up is seen. */
    g_assert_cmpuint (most_workers_until (pool, 500, 1), <=, 2);
    g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 1);
    batch_clear (&batch);
  }

  {
    g_autoptr(AforkPool) pool = make_pool ();
    Batch batch;

    g_test_message ("a replacement waiting longer than idle-timeout");
    afork_pool_set_max_workers (pool, 1);
    afork_pool_set_max_calls_per_worker (pool, 1);
    afork_pool_set_idle_timeout (pool, 50);
    batch_init (&batch);
    batch.pending += 2;
    afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 1000), NULL,
                           batch_cb, &batch);
    afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 0), NULL,
                           batch_cb, &batch);
    while (afork_pool_get_n_workers (pool) != 2 && batch.ok == 0)
      g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
    /* Well past idle-timeout, with the first call still running. */
    most_workers_during (pool, 400);
    if (batch.ok == 0)
      g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 2);
    iterate_until_zero (NULL, &batch.pending);
    g_assert_cmpuint (batch.ok, ==, 2);
    batch_clear (&batch);
  }
}

static void
helper_cb (G_GNUC_UNUSED AforkPool *pool,
           G_GNUC_UNUSED const char *name,
           GVariant                *value,
           gpointer                 user_data)
{
  gint32 *pid = user_data;

  g_variant_get (value, "(i)", pid);
}

/* A worker killed at its call's time-out runs nothing more, even while a
 * process it forked keeps its socket open (for 20 s): the next call does
 * not wait for that process, and, started by the same housekeeping that
 * killed the worker, it has a deadline too. With load 2 the next call was
 * sent to the killed worker already, behind the call that hung: it goes
 * to another worker once the killed one has exited, not when its socket
 * closes. */
static void
test_killed_worker_not_busy (void)
{
  const guint32 next_ms[] = { 0, 60000, 0, 60000 };

  for (guint n = 0; n < G_N_ELEMENTS (next_ms); n++)
    {
      g_autoptr(AforkPool) pool = make_pool ();
      gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
      guint load = n < 2 ? 1 : 2;
      gint32 helper = 0;
      Batch batch;

      g_test_message ("load %u, the next call sleeps %u ms", load, next_ms[n]);
      afork_pool_set_max_workers (pool, 1);
      afork_pool_set_load (pool, load);
      /* Long enough for the worker to fork its helper and say so first,
       * even where a fork takes hundreds of milliseconds (a loaded
       * machine, a sanitizer build); short enough that both calls end
       * well before the helper lets the socket go. */
      afork_pool_set_call_timeout (pool, 1500);
      g_signal_connect (pool, "event::helper", G_CALLBACK (helper_cb), &helper);
      batch_init (&batch);
      batch.pending += 2;
      afork_pool_call_async (pool, "pool_fork_hang", NULL, NULL, batch_cb, &batch);
      afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", next_ms[n]), NULL,
                             batch_cb, &batch);
      while (batch.pending > 0)
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("the call after a killed worker did not end within 10 s");
          g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
        }
      g_assert_cmpint (helper, >, 0);
      kill (helper, SIGKILL);
      g_assert_cmpuint (batch.ok, ==, next_ms[n] == 0 ? 1 : 0);
      g_assert_cmpuint (batch.errors->len, ==, next_ms[n] == 0 ? 1 : 2);
      for (guint i = 0; i < batch.errors->len; i++)
        g_assert_error ((GError *) batch.errors->pdata[i], G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      batch_clear (&batch);
    }
}

/* The same with the hanging call cancelled: the call sent behind it to the
 * same worker (load 2) runs on another once the killed worker has exited,
 * while a process it forked keeps its socket open. */
static void
test_cancelled_worker_not_busy (void)
{
  g_autoptr(AforkPool) pool = make_pool ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gint32 helper = 0;
  Batch batch;

  afork_pool_set_max_workers (pool, 1);
  afork_pool_set_load (pool, 2);
  g_signal_connect (pool, "event::helper", G_CALLBACK (helper_cb), &helper);
  batch_init (&batch);
  batch.pending += 2;
  afork_pool_call_async (pool, "pool_fork_hang", NULL, cancellable, batch_cb, &batch);
  afork_pool_call_async (pool, "pool_pid", NULL, NULL, batch_cb, &batch);
  while (batch.pending > 0)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("the call behind a cancelled one did not end within 10 s");
      if (helper > 0 && !g_cancellable_is_cancelled (cancellable))
        g_cancellable_cancel (cancellable);
      g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
    }
  g_assert_cmpint (helper, >, 0);
  kill (helper, SIGKILL);
  g_assert_cmpuint (batch.ok, ==, 1);
  g_assert_cmpuint (batch.errors->len, ==, 1);
  g_assert_error ((GError *) batch.errors->pdata[0], G_IO_ERROR, G_IO_ERROR_CANCELLED);
  batch_clear (&batch);
}

/* The owner for /afork/pool/workers/owner-death: a call that sleeps for
 * five minutes; the worker's pid on stdout once it runs. */
static void
owner_pid_cb (G_GNUC_UNUSED AforkPool *pool,
              G_GNUC_UNUSED const char *name,
              GVariant                *value,
              G_GNUC_UNUSED gpointer   user_data)
{
  gint32 pid;

  g_variant_get (value, "(i)", &pid);
  printf ("%d\n", (int) pid);
  fflush (stdout);
}

static int
run_owner (void)
{
  g_autoptr(AforkPool) pool = make_pool ();

  g_signal_connect (pool, "event::pid", G_CALLBACK (owner_pid_cb), NULL);
  afork_pool_call_async (pool, "pool_announce_sleep", g_variant_new ("(u)", 300000), NULL,
                         NULL, NULL);
  for (;;)
    g_main_context_iteration (NULL, TRUE);

  return 0;
}

/* The processes of this program titled "afork PID @name" (not zombies). */
static GArray *
titled_pids (const char *name)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  g_autofree char *title = g_strdup_printf ("afork %d %s", (int) getpid (), name);
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  const char *entry;

  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *cmdline = NULL;
      gint64 pid;
      gsize len;
      char state;

      if (!g_ascii_string_to_signed (entry, 10, 1, G_MAXINT, &pid, NULL))
        continue;
      path = g_strdup_printf ("/proc/%s/cmdline", entry);
      if (!g_file_get_contents (path, &cmdline, &len, NULL))
        continue;
      for (gsize i = 0; i < len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      g_strchomp (cmdline);
      if (g_str_equal (cmdline, title) &&
          afork_test_proc_stat ((GPid) pid, &state, NULL, NULL) && state != 'Z')
        {
          GPid p = (GPid) pid;

          g_array_append_val (pids, p);
        }
    }

  return pids;
}

static gboolean
pid_in (GArray *pids,
        GPid    pid)
{
  for (guint i = 0; i < pids->len; i++)
    if (g_array_index (pids, GPid, i) == pid)
      return TRUE;

  return FALSE;
}

/* A process titled @name, not in @before, whose parent is not @not_parent,
 * waited for (bounded); 0 if none came. */
static GPid
wait_titled (const char *name,
             GArray     *before,
             GPid        not_parent)
{
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;

  do
    {
      g_autoptr(GArray) pids = titled_pids (name);

      for (guint i = 0; i < pids->len; i++)
        {
          GPid pid = g_array_index (pids, GPid, i);
          GPid parent = afork_test_proc_parent (pid);

          if (!pid_in (before, pid) && parent > 1 && parent != not_parent)
            return pid;
        }
      g_usleep (10 * 1000);
    }
  while (g_get_monotonic_time () < deadline);

  return 0;
}

static void
wait_no_workers (AforkPool *pool)
{
  gint64 deadline = g_get_monotonic_time () + AFORK_TEST_WAIT_SECONDS * G_USEC_PER_SEC;

  while (afork_pool_get_n_workers (pool) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 0);
}

typedef enum
{
  TEMPLATE_DEATH_CALLERS,        /* killed with a worker in a call */
  TEMPLATE_DEATH_OWN,            /* the pool's own, killed with calls coming */
  TEMPLATE_DEATH_CALLERS_EARLY,  /* killed before its first worker */
  TEMPLATE_DEATH_OWN_EARLY,
} TemplateDeath;

/* Every call of @batch was served by a worker of the default template,
 * which knows no test function, but those sent to a worker of the dead
 * template (@at_most of them): they say so. */
static void
assert_served (Batch *batch,
               guint  n,
               guint  at_most)
{
  guint n_lost = 0;

  g_assert_cmpuint (batch->errors->len, ==, n);
  for (guint i = 0; i < batch->errors->len; i++)
    {
      GError *e = batch->errors->pdata[i];

      if (g_error_matches (e, AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED))
        n_lost++;
      else
        g_assert_error (e, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
    }
  g_assert_cmpuint (n_lost, <=, at_most);
}

/* The pool's template is killed. A template of the caller's cannot be
 * made again: the call in flight and every later call fail with
 * AFORK_ERROR_TEMPLATE_EXITED, without a loop of respawns. The pool's own
 * template (none given) is made again, and the pool serves the calls that
 * were waiting and the next ones. */
static void
test_template_death (gconstpointer data)
{
  TemplateDeath death = GPOINTER_TO_INT (data);
  gboolean own = death == TEMPLATE_DEATH_OWN || death == TEMPLATE_DEATH_OWN_EARLY;
  gboolean early = death == TEMPLATE_DEATH_CALLERS_EARLY || death == TEMPLATE_DEATH_OWN_EARLY;
  g_autoptr(GArray) workers_before = titled_pids ("afork:pool-worker");
  g_autoptr(GArray) children_before = titled_pids ("child");
  g_autoptr(AforkPool) pool = own ? afork_pool_new (NULL) : make_pool ();
  GMainContext *context = g_main_context_default ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GPid worker = 0, template_pid;
  Batch batch, running;

  afork_pool_set_max_workers (pool, 2);
  batch_init (&batch);
  batch_init (&running);

  if (early)
    {
      /* Its template, before any call: the one new child of this program. */
      template_pid = wait_titled ("child", children_before, 0);
    }
  else
    {
      afork_pool_set_min_workers (pool, 1);
      if (own)
        {
          reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
          g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
          g_clear_error (&error);
          worker = wait_titled ("afork:pool-worker", workers_before, 0);
        }
      else
        {
          gint32 pid;

          reply = afork_pool_call (pool, "pool_pid", NULL, NULL, &error);
          g_assert_no_error (error);
          g_variant_get (reply, "(i)", &pid);
          worker = (GPid) pid;

          /* A call in flight when the template dies. */
          running.pending++;
          afork_pool_call_async (pool, "pool_sleep", g_variant_new ("(u)", 100000), NULL,
                                 batch_cb, &running);
          while (afork_pool_get_n_queued (pool) > 0)
            g_main_context_iteration (context, FALSE);
          g_usleep (100 * 1000);
        }
      g_assert_cmpint (worker, >, 0);
      template_pid = afork_test_proc_parent (worker);
    }
  g_assert_cmpint (template_pid, >, 1);

  g_assert_cmpint (kill (template_pid, SIGKILL), ==, 0);
  g_assert_true (afork_test_wait_gone (template_pid, AFORK_TEST_WAIT_SECONDS));

  if (own)
    {
      /* Calls made at once, while the template is made again. */
      for (guint i = 0; i < 20; i++)
        {
          batch.pending++;
          afork_pool_call_async (pool, "pool_echo", NULL, NULL, batch_cb, &batch);
        }
      iterate_until_zero (context, &batch.pending);
      g_assert_cmpuint (batch.ok, ==, 0);
      assert_served (&batch, 20, 2);
      /* By a worker of a new template. */
      worker = wait_titled ("afork:pool-worker", workers_before, template_pid);
      g_assert_cmpint (worker, >, 0);
      g_clear_pointer (&reply, g_variant_unref);
      reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND);
      batch_clear (&batch);
      batch_clear (&running);
      return;
    }

  if (!early)
    {
      /* Its workers go with it, and the call in flight says that the
       * template went, not that the call failed. */
      g_assert_true (afork_test_wait_gone (worker, AFORK_TEST_WAIT_SECONDS));
      iterate_until_zero (context, &running.pending);
      g_assert_cmpuint (running.ok, ==, 0);
      g_assert_cmpuint (running.errors->len, ==, 1);
      g_assert_error ((GError *) running.errors->pdata[0], AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED);
      wait_no_workers (pool);
    }

  for (guint i = 0; i < 20; i++)
    {
      batch.pending++;
      afork_pool_call_async (pool, "pool_echo", NULL, NULL, batch_cb, &batch);
    }
  iterate_until_zero (context, &batch.pending);
  g_assert_cmpuint (batch.ok, ==, 0);
  g_assert_cmpuint (batch.errors->len, ==, 20);
  for (guint i = 0; i < batch.errors->len; i++)
    {
      GError *e = batch.errors->pdata[i];

      g_assert_error (e, AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED);
      g_assert_nonnull (strstr (e->message, "template of the pool"));
      g_assert_nonnull (strstr (e->message, "signal 9"));
    }

  /* Later calls fail at once, the same way, and nothing is respawned. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED);
  for (guint i = 0; i < 20; i++)
    {
      g_assert_cmpuint (afork_pool_get_n_workers (pool), ==, 0);
      g_usleep (10 * 1000);
    }
  batch_clear (&batch);
  batch_clear (&running);
}

/* Workers that die as they start, while their template lives: after a
 * moment (the template's death would show), the calls fail with
 * AFORK_ERROR_SPAWN_FAILED naming why, and for good, as the template never
 * made a worker. */
static void
test_start_fails (void)
{
  g_autoptr(AforkPool) pool = make_pool_after_call ("pool_call_children_exit");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED);
  g_assert_nonnull (strstr (error->message, "No worker could be started"));
  g_clear_error (&error);

  reply = afork_pool_call (pool, "pool_echo", NULL, NULL, &error);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED);
  wait_no_workers (pool);
}

/* The owner is killed while its worker is in a long call: the worker does
 * not live on. */
static void
test_owner_death (void)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autoptr(GSubprocess) owner = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  gboolean gone;
  GPid worker;

  g_assert_nonnull (exe);
  owner = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, exe, "--pool-owner", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (owner));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  worker = (GPid) g_ascii_strtoll (line, NULL, 10);
  g_assert_cmpint (worker, >, 0);
  g_assert_false (afork_test_proc_gone (worker));

  g_subprocess_force_exit (owner);
  g_subprocess_wait (owner, NULL, &error);
  g_assert_no_error (error);

  gone = afork_test_wait_gone (worker, AFORK_TEST_WAIT_SECONDS);
  if (!gone)
    kill (worker, SIGKILL);
  g_assert_true (gone);
}

int
main (int    argc,
      char **argv)
{
  if (argc == 2 && g_str_equal (argv[1], "--pool-owner"))
    return run_owner ();

  afork_test_init (&argc, &argv);

  g_test_add_func ("/afork/pool/call/types", test_types);
  g_test_add_func ("/afork/pool/call/null", test_null);
  g_test_add_func ("/afork/pool/call/large", test_large);
  g_test_add_func ("/afork/pool/call/fds", test_fds);
  g_test_add_func ("/afork/pool/call/error-domain", test_error_domain);
  g_test_add_func ("/afork/pool/call/not-found", test_not_found);
  g_test_add_data_func ("/afork/pool/death/abort", GINT_TO_POINTER (DEATH_ABORT), test_death);
  g_test_add_data_func ("/afork/pool/death/exit", GINT_TO_POINTER (DEATH_EXIT), test_death);
  g_test_add_data_func ("/afork/pool/death/kill", GINT_TO_POINTER (DEATH_KILL), test_death);
  g_test_add_data_func ("/afork/pool/death/timeout", GINT_TO_POINTER (DEATH_TIMEOUT), test_death);
  g_test_add_func ("/afork/pool/cancel/queued", test_cancel_queued);
  g_test_add_func ("/afork/pool/cancel/running", test_cancel_running_sync);
  g_test_add_func ("/afork/pool/close", test_close);
  g_test_add_func ("/afork/pool/template/missing-module", test_missing_module);
  g_test_add_func ("/afork/pool/workers/grow-shrink", test_grow_shrink);
  g_test_add_func ("/afork/pool/events", test_events);
  g_test_add_data_func ("/afork/pool/threads", GINT_TO_POINTER (THREADS_MIXED), test_threads);
  g_test_add_data_func ("/afork/pool/threads-one-worker", GINT_TO_POINTER (THREADS_ONE_WORKER),
                        test_threads);
  g_test_add_data_func ("/afork/pool/threads-sync-only", GINT_TO_POINTER (THREADS_SYNC_ONLY),
                        test_threads);
  g_test_add_func ("/afork/pool/threads-flood", test_threads_flood);
  g_test_add_func ("/afork/pool/sync-waits", test_sync_waits);
  g_test_add_func ("/afork/pool/random-deaths", test_random_deaths);
  g_test_add_data_func ("/afork/pool/call/protocol-error", "pool_garbage", test_protocol_error);
  g_test_add_data_func ("/afork/pool/call/broken-ring", "pool_break_ring", test_protocol_error);
  g_test_add_func ("/afork/pool/events/storm-timeout", test_event_storm_timeout);
  g_test_add_func ("/afork/pool/template/default", test_default_template);
  g_test_add_func ("/afork/pool/properties", test_properties);
  g_test_add_func ("/afork/pool/workers/fresh-per-call", test_fresh_process_per_call);
  g_test_add_func ("/afork/pool/workers/fresh-per-call-queued", test_fresh_process_per_call_queued);
  g_test_add_func ("/afork/pool/workers/fresh-ahead", test_fresh_process_ahead);
  g_test_add_func ("/afork/pool/workers/fresh-ahead-edges", test_fresh_process_ahead_edges);
  g_test_add_func ("/afork/pool/workers/killed-not-busy", test_killed_worker_not_busy);
  g_test_add_func ("/afork/pool/workers/cancelled-not-busy", test_cancelled_worker_not_busy);
  g_test_add_data_func ("/afork/pool/fds/at-limit/ring", GUINT_TO_POINTER (0), test_fds_at_limit);
  g_test_add_data_func ("/afork/pool/fds/at-limit/socket", GUINT_TO_POINTER (1), test_fds_at_limit);
  g_test_add_func ("/afork/pool/fds/at-limit-in-worker", test_fds_at_limit_in_worker);
  g_test_add_data_func ("/afork/pool/fds/at-limit-behind/ring", GUINT_TO_POINTER (0),
                        test_fds_at_limit_behind);
  g_test_add_data_func ("/afork/pool/fds/at-limit-behind/socket", GUINT_TO_POINTER (1),
                        test_fds_at_limit_behind);
  g_test_add_func ("/afork/pool/workers/owner-death", test_owner_death);
  g_test_add_data_func ("/afork/pool/template/death", GINT_TO_POINTER (TEMPLATE_DEATH_CALLERS),
                        test_template_death);
  g_test_add_data_func ("/afork/pool/template/death-own", GINT_TO_POINTER (TEMPLATE_DEATH_OWN),
                        test_template_death);
  g_test_add_data_func ("/afork/pool/template/death-early",
                        GINT_TO_POINTER (TEMPLATE_DEATH_CALLERS_EARLY), test_template_death);
  g_test_add_data_func ("/afork/pool/template/death-own-early",
                        GINT_TO_POINTER (TEMPLATE_DEATH_OWN_EARLY), test_template_death);
  g_test_add_func ("/afork/pool/template/start-fails", test_start_fails);

  return g_test_run ();
}
