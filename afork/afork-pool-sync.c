/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AforkPool: the synchronous calls. The caller's thread reads its reply
 * from the worker itself when it can, waiting awake for a moment first
 * when the worker's replies have been coming quickly. */
#include "afork-private.h"

#include "afork-pool-private.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A synchronous caller waits awake this long for a worker's reply before
 * it sleeps (see _afork_ring_wait_awake ()). */
#define AWAKE_WAIT_USEC 50

static void
close_wake_fd (gpointer data)
{
  close (GPOINTER_TO_INT (data) - 1);
}

static GPrivate wake_fd_key = G_PRIVATE_INIT (close_wake_fd);

/* An eventfd of the calling thread, kept for its life; -1 if none can be
 * made. */
static int
thread_wake_fd (void)
{
  gpointer data = g_private_get (&wake_fd_key);
  int fd;

  if (data != NULL)
    return GPOINTER_TO_INT (data) - 1;

  fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd >= 0)
    g_private_set (&wake_fd_key, GINT_TO_POINTER (fd + 1));

  return fd;
}

/* Per thread: the waits left before can_wait_awake () asks again, times
 * two, plus its last answer; 0 before the first. */
static GPrivate awake_key;

#define AWAKE_ASK_EVERY 256

/* Whether the calling thread may run on more than one CPU: waiting awake
 * for a worker that shares its only CPU would only hold the worker up.
 * Asked again every AWAKE_ASK_EVERY waits (the system call costs some
 * 1 µs here, against a round trip of 20), since a program may change its
 * affinity; a stale answer costs a missed wait, which the back-off
 * absorbs. */
static gboolean
can_wait_awake (void)
{
  gsize cached = GPOINTER_TO_SIZE (g_private_get (&awake_key));
  gboolean answer;

  if (cached >= 2)
    {
      g_private_set (&awake_key, GSIZE_TO_POINTER (cached - 2));
      return (cached & 1) != 0;
    }

  {
    cpu_set_t set;

    answer = sched_getaffinity (0, sizeof set, &set) != 0 || CPU_COUNT (&set) > 1;
  }
  g_private_set (&awake_key, GSIZE_TO_POINTER ((gsize) AWAKE_ASK_EVERY * 2 + (answer ? 1 : 0)));

  return answer;
}

/* A synchronous call that its worker runs waits on the worker's socket
 * itself, and reads the reply: the round trip then costs what a
 * hand-written one does, without a hand-over through the pool thread.
 * While it is the worker's only call, the pool thread does not read that
 * socket (worker_wants_reader ()); when it does (calls behind, or before,
 * this one), whichever takes the lock first reads, and the pool thread
 * wakes the caller through its eventfd if it was first. A worker that
 * dies is left to the pool thread. Returns FALSE when the call is not in
 * that state (the caller waits on its condition, and is signalled when
 * its call becomes the worker's first). */
static gboolean
sync_read_reply_locked (Call *call)
{
  Core *core = call->core;
  Worker *worker = call->worker;
  struct pollfd pfds[2];
  gboolean pending;
  gboolean awake;
  gboolean waited = FALSE;
  gboolean woke = FALSE;
  gboolean reading;
  AforkRing *ring = NULL;   /* kept mapped by the worker's reference */
  guint64 pos = 0;
  int wake_fd;

  if (call->state != CALL_SENT || worker == NULL || worker->state != WORKER_READY ||
      worker->doomed || g_queue_peek_head (&worker->calls) != call || worker->fd < 0)
    return FALSE;

  wake_fd = call->wake_fd;
  if (wake_fd < 0)
    return FALSE;

  pfds[0].fd = worker->fd;
  pfds[0].events = POLLIN;
  pfds[1].fd = wake_fd;
  pfds[1].events = POLLIN;
  /* Bytes left in the ring by the last reader need no waiting. */
  pending = worker->ring_pending;
  /* A worker whose reply did not come while its caller waited awake is
   * waited for asleep for a while, twice as long after each miss: one
   * with long calls, or on the caller's only CPU, costs a wasted wait now
   * and then, not one at every call. */
  awake = !pending && worker->ring != NULL && worker->asleep_waits == 0;
  if (awake)
    {
      ring = worker->ring;
      pos = _afork_ring_get_pos (ring);
    }
  if (!pending && worker->asleep_waits > 0)
    worker->asleep_waits--;
  call->polling = TRUE;
  _afork_pool_worker_ref (worker);
  _afork_pool_core_unlock (core);

  pfds[0].revents = POLLIN;
  pfds[1].revents = 0;
  if (awake && can_wait_awake ())
    {
      /* TRUE leaves the worker told that its reader is awake: this
       * caller reads, or tells the pool thread to (below). */
      woke = _afork_ring_wait_awake (ring, pos, AWAKE_WAIT_USEC);
      waited = TRUE;
      pending = woke;
    }
  if (!pending)
    while (poll (pfds, 2, -1) < 0 && errno == EINTR)
      ;
  if (pfds[1].revents != 0)
    {
      guint64 count;

      if (read (wake_fd, &count, sizeof count) < 0)
        { /* nothing to drain */ }
    }

  _afork_pool_core_lock (core);
  call->polling = FALSE;
  if (waited)
    {
      worker->awake_misses = woke ? 0 : MIN (worker->awake_misses + 1, 8);
      worker->asleep_waits = woke ? 0 : 1u << worker->awake_misses;
    }
  reading = (pfds[0].revents & POLLIN) && !call->finished && worker->state == WORKER_READY;
  /* The wait saw bytes that this caller will not read (the pool thread
   * read its reply meanwhile, with those of the worker's other calls):
   * the reader is marked asleep again, and what is there left to the
   * pool thread. */
  if (woke && !reading && worker->state == WORKER_READY && _afork_ring_reader_sleeps (ring))
    {
      worker->ring_pending = TRUE;
      if (worker->source != NULL)
        g_source_set_ready_time (worker->source, 0);
    }
  if (reading)
    {
      g_autoptr(GError) error = NULL;

      /* End of stream is the pool thread's to handle: it sees the
       * hang-up. A protocol error is handed to it. */
      if (!_afork_pool_worker_read_locked (worker, &error) && error != NULL && worker->broken == NULL)
        {
          worker->broken = g_steal_pointer (&error);
          worker->doomed = TRUE;
          g_source_set_ready_time (core->timer, 0);
        }
      _afork_pool_dispatch_locked (core);
      if (worker->calls.length == 0)
        _afork_pool_worker_idle_locked (worker);
      else
        _afork_pool_worker_update_source_locked (worker);
    }
  _afork_pool_worker_unref (worker);

  return TRUE;
}

/**
 * afork_pool_call_with_fds:
 * @self: an #AforkPool
 * @function: the name of a pool function ([callback@Afork.PoolFunc])
 * @parameters: (nullable): the parameters; a floating reference is sunk;
 *   %NULL for an empty tuple
 * @fd_list: (nullable): descriptors that `h` values of @parameters index
 * @out_fd_list: (out) (optional) (nullable) (transfer full): return location
 *   for the descriptors of the reply, or %NULL
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Calls @function in a worker of the pool and waits for its reply; see
 * [method@Afork.Pool.call_with_fds_async]. It does not need any main loop
 * to run; [signal@Afork.Pool::event] is emitted in the calling thread
 * while it waits.
 *
 * When the worker's replies have been coming quickly, the calling thread
 * waits for this one awake, at most 50 µs, before it sleeps: a round trip
 * then costs no wake-up. A thread that may only run on one CPU never
 * does, and a worker whose reply did not come in time is waited for
 * asleep for a while.
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 *
 * Since: 1.0
 */
GVariant *
afork_pool_call_with_fds (AforkPool     *self,
                          const char    *function,
                          GVariant      *parameters,
                          GUnixFDList   *fd_list,
                          GUnixFDList  **out_fd_list,
                          GCancellable  *cancellable,
                          GError       **error)
{
  g_autoptr(AforkPool) keep = NULL;
  GVariant *reply = NULL;
  GUnixFDList *out_fds = NULL;
  GError *call_error = NULL;
  Core *core;
  Call *call;

  g_return_val_if_fail (AFORK_IS_POOL (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);
  g_return_val_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  keep = g_object_ref (self);
  core = self->core;
  call = _afork_pool_call_new (self, function, parameters, fd_list, cancellable);
  call->sync = TRUE;
  call->wake_fd = thread_wake_fd ();
  g_cond_init (&call->cond);

  _afork_pool_call_submit (call);

  _afork_pool_core_lock (core);
  for (;;)
    {
      if (call->events.length > 0)
        {
          GQueue events = call->events;

          g_queue_init (&call->events);
          _afork_pool_core_unlock (core);
          _afork_pool_emit_events (self, &events);
          _afork_pool_core_lock (core);
          continue;
        }
      if (call->finished)
        break;
      if (!sync_read_reply_locked (call))
        {
          call->waiting = TRUE;
          g_cond_wait (&call->cond, &core->lock);
          call->waiting = FALSE;
        }
    }
  out_fds = g_steal_pointer (&call->out_fds);
  call_error = g_steal_pointer (&call->error);
  _afork_pool_core_unlock (core);

  /* The call is this thread's alone now. */
  reply = _afork_wire_value_make (&call->reply);

  if (call->cancel_id != 0)
    g_cancellable_disconnect (call->cancellable, call->cancel_id);
  _afork_pool_call_unref (call);

  if (call_error != NULL)
    {
      g_propagate_error (error, call_error);
      g_clear_object (&out_fds);
      return NULL;
    }

  if (out_fd_list != NULL)
    *out_fd_list = g_steal_pointer (&out_fds);
  g_clear_object (&out_fds);

  return reply;
}

/**
 * afork_pool_call:
 * @self: an #AforkPool
 * @function: the name of a pool function ([callback@Afork.PoolFunc])
 * @parameters: (nullable): the parameters; a floating reference is sunk;
 *   %NULL for an empty tuple
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Calls @function in a worker of the pool and waits for its reply; see
 * [method@Afork.Pool.call_with_fds].
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 *
 * Since: 1.0
 */
GVariant *
afork_pool_call (AforkPool     *self,
                 const char    *function,
                 GVariant      *parameters,
                 GCancellable  *cancellable,
                 GError       **error)
{
  return afork_pool_call_with_fds (self, function, parameters, NULL, NULL, cancellable, error);
}
