/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AforkPool: a queue of calls, the workers that run them and their life.
 *
 * Every worker's socket is served by one thread of the library (the pool
 * thread, with a main context of its own), so a pool never depends on the
 * caller iterating a particular context. Callers write calls themselves
 * when a worker can take them (one sendmsg, no hand-over); the pool thread
 * reads the replies, and hands each to its caller's context (or wakes the
 * synchronous caller). The state is shared under one mutex per pool.
 *
 * What the pool does when its template exits is in afork-pool-template.c,
 * the synchronous calls in afork-pool-sync.c, the reading and writing of
 * the workers' sockets and rings in afork-pool-io.c. */
#include "afork-private.h"

#include "afork-enum-types.h"
#include "afork-pool.h"
#include "afork-process.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib-unix.h>

#include "afork-pool-private.h"
#include "afork-pool-worker-private.h"
#include "afork-process-private.h"
#include "afork-ring-private.h"
#include "afork-wire-private.h"

G_DEFINE_FINAL_TYPE (AforkPool, afork_pool, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_MAX_WORKERS,
  PROP_MIN_WORKERS,
  PROP_LOAD,
  PROP_IDLE_TIMEOUT,
  PROP_MAX_CALLS_PER_WORKER,
  PROP_CALL_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_EVENT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* The pool thread ---------------------------------------------------------- */

static void submit_locked (Call *call);

/* The lock ---------------------------------------------------------------
 *
 * An asynchronous call does not wait for the lock: it is pushed onto
 * core->submitted, and whoever holds the lock takes it in before letting
 * go (_afork_pool_core_unlock ()). A thread that submits a flood of calls
 * while the pool thread reads replies is then never put to sleep, and the
 * pool thread sends the calls in batches. */

/* Moves the submitted calls, oldest first, to the queue. */
static void
take_submitted_locked (Core *core)
{
  Call *call, *fifo = NULL;

  /* Every turn of the lock comes here: a load, not an exchange, when the
   * list is empty. */
  if (g_atomic_pointer_get (&core->submitted) == NULL)
    return;
  call = g_atomic_pointer_exchange (&core->submitted, NULL);
  if (call == NULL)
    return;

  while (call != NULL)
    {
      Call *next = call->next_submitted;

      call->next_submitted = fifo;
      fifo = call;
      call = next;
    }

  while (fifo != NULL)
    {
      call = fifo;
      fifo = call->next_submitted;
      call->next_submitted = NULL;
      submit_locked (call);
    }

  _afork_pool_dispatch_locked (core);
}

void
_afork_pool_core_lock (Core *core)
{
  g_mutex_lock (&core->lock);
  take_submitted_locked (core);
}

void
_afork_pool_core_unlock (Core *core)
{
  do
    {
      take_submitted_locked (core);
      g_mutex_unlock (&core->lock);
      /* A call pushed while the lock was held, by a thread that found it
       * taken, is this thread's to take in. */
      __atomic_thread_fence (__ATOMIC_SEQ_CST);
    }
  while (g_atomic_pointer_get (&core->submitted) != NULL &&
         g_mutex_trylock (&core->lock));
}

static gpointer
pool_thread_func (gpointer data)
{
  GMainContext *context = data;

  g_main_context_push_thread_default (context);
  for (;;)
    g_main_context_iteration (context, TRUE);

  return NULL;
}

GMainContext *
_afork_pool_context (void)
{
  static GMainContext *context;

  if (g_once_init_enter (&context))
    {
      GMainContext *new_context = g_main_context_new ();

      g_thread_unref (g_thread_new ("afork-pool", pool_thread_func, new_context));
      g_once_init_leave (&context, new_context);
    }

  return context;
}

/* Calls ---------------------------------------------------------------- */

static void
event_free (Event *event)
{
  g_free (event->name);
  _afork_wire_value_clear (&event->value);
  g_free (event);
}

/* Emits ::event for each of @events, in the thread the call is handed
 * to, and frees them. */
void
_afork_pool_emit_events (AforkPool *pool,
                         GQueue    *events)
{
  Event *event;

  while ((event = g_queue_pop_head (events)) != NULL)
    {
      g_autoptr(GVariant) value = _afork_wire_value_make (&event->value);

      g_signal_emit (pool, signals[SIGNAL_EVENT], g_quark_from_string (event->name),
                     event->name, value);
      event_free (event);
    }
}

static Call *
call_ref (Call *call)
{
  g_atomic_ref_count_inc (&call->ref);
  return call;
}

void
_afork_pool_call_unref (Call *call)
{
  if (!g_atomic_ref_count_dec (&call->ref))
    return;

  g_free (call->function);
  g_clear_pointer (&call->frame, g_byte_array_unref);
  g_clear_object (&call->fd_list);
  g_clear_object (&call->cancellable);
  g_queue_clear_full (&call->events, (GDestroyNotify) event_free);
  _afork_wire_value_clear (&call->reply);
  g_clear_object (&call->out_fds);
  g_clear_error (&call->error);
  g_clear_object (&call->pool);
  g_clear_pointer (&call->context, g_main_context_unref);
  if (call->sync)
    g_cond_clear (&call->cond);
  _afork_pool_core_unref (call->core);
  g_free (call);
}

static gboolean deliveries_cb (gpointer user_data);

/* Calls with something to deliver in one main context, handed over by
 * one source however many there are. */
typedef struct
{
  GQueue   calls;    /* Call * (owned) */
  GSource *source;   /* pending, or NULL */
} Delivery;

typedef struct
{
  Core         *core;
  GMainContext *context;
} DeliveryKey;

static void
delivery_free (Delivery *delivery)
{
  g_queue_clear_full (&delivery->calls, (GDestroyNotify) _afork_pool_call_unref);
  g_free (delivery);
}

static void delivery_key_free (DeliveryKey *key);

void
_afork_pool_call_wake_locked (Call *call)
{
  Core *core = call->core;
  GMainContext *context;
  Delivery *delivery;

  if (call->sync)
    {
      if (call->polling)
        {
          guint64 one = 1;

          if (write (call->wake_fd, &one, sizeof one) < 0)
            { /* already signalled: the counter is not zero */ }
        }
      else if (call->waiting)
        g_cond_signal (&call->cond);
      return;
    }

  if (call->deliver_scheduled || call->pool == NULL)
    return;

  call->deliver_scheduled = TRUE;
  context = call->context;
  delivery = g_hash_table_lookup (core->deliveries, context);
  if (delivery == NULL)
    {
      delivery = g_new0 (Delivery, 1);
      g_hash_table_insert (core->deliveries, g_main_context_ref (context), delivery);
    }
  g_queue_push_tail (&delivery->calls, call_ref (call));

  if (delivery->source == NULL)
    {
      DeliveryKey *key = g_new (DeliveryKey, 1);

      g_atomic_ref_count_inc (&core->ref);
      key->core = core;
      key->context = g_main_context_ref (context);
      delivery->source = g_idle_source_new ();
      g_source_set_priority (delivery->source, G_PRIORITY_DEFAULT);
      g_source_set_static_name (delivery->source, "[afork] pool calls");
      g_source_set_callback (delivery->source, deliveries_cb, key,
                             (GDestroyNotify) delivery_key_free);
      g_source_attach (delivery->source, context);
      g_source_unref (delivery->source);
    }
}

/* Sets the outcome of @call (taking what @reply holds, @out_fds and
 * @error), unless it has one already. */
void
_afork_pool_call_finish_locked (Call           *call,
                                AforkWireValue *reply,
                                GUnixFDList    *out_fds,
                                GError         *error)
{
  if (call->finished)
    {
      if (reply != NULL)
        _afork_wire_value_clear (reply);
      g_clear_object (&out_fds);
      g_clear_error (&error);
      return;
    }

  call->finished = TRUE;
  if (reply != NULL)
    {
      call->reply = *reply;
      memset (reply, 0, sizeof *reply);
    }
  call->out_fds = out_fds;
  call->error = error;
  _afork_pool_call_wake_locked (call);
}

/* The outcome of an asynchronous call, made only when it is handed to
 * its caller: a call waiting in the queue stays small, and the object is
 * freed soon after it is made, in the same thread. */
typedef struct
{
  GObject      parent_instance;
  AforkPool   *pool;
  gpointer     user_data;
  GVariant    *reply;
  GUnixFDList *out_fds;
  GError      *error;
  gboolean     propagated;
} AforkPoolResult;

typedef GObjectClass AforkPoolResultClass;

G_GNUC_INTERNAL GType afork_pool_result_get_type (void);
static void afork_pool_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AforkPoolResult, afork_pool_result, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                      afork_pool_result_iface_init))

static void
afork_pool_result_finalize (GObject *object)
{
  AforkPoolResult *self = (AforkPoolResult *) object;

  g_clear_object (&self->pool);
  g_clear_pointer (&self->reply, g_variant_unref);
  g_clear_object (&self->out_fds);
  g_clear_error (&self->error);

  G_OBJECT_CLASS (afork_pool_result_parent_class)->finalize (object);
}

static void
afork_pool_result_class_init (AforkPoolResultClass *klass)
{
  klass->finalize = afork_pool_result_finalize;
}

static void
afork_pool_result_init (G_GNUC_UNUSED AforkPoolResult *self)
{
}

static gpointer
afork_pool_result_get_user_data (GAsyncResult *result)
{
  return ((AforkPoolResult *) result)->user_data;
}

static GObject *
afork_pool_result_get_source_object (GAsyncResult *result)
{
  return g_object_ref (G_OBJECT (((AforkPoolResult *) result)->pool));
}

static gboolean
afork_pool_result_is_tagged (G_GNUC_UNUSED GAsyncResult *result,
                             gpointer                    source_tag)
{
  return source_tag == afork_pool_call_with_fds_async;
}

static void
afork_pool_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_user_data = afork_pool_result_get_user_data;
  iface->get_source_object = afork_pool_result_get_source_object;
  iface->is_tagged = afork_pool_result_is_tagged;
}

/* What one call has to hand its caller, taken under the lock. */
typedef struct
{
  Call      *call;      /* owned */
  GQueue     events;    /* Event * */
  AforkPool *pool;      /* owned, or NULL: nothing more to hand over */
  gboolean   finished;  /* the outcome goes too */
} Handover;

static void
handover_take_locked (Handover *handover,
                      Call     *call)
{
  handover->call = call;
  call->deliver_scheduled = FALSE;
  handover->events = call->events;
  g_queue_init (&call->events);
  handover->finished = call->finished && call->pool != NULL;
  if (handover->finished)
    handover->pool = g_steal_pointer (&call->pool);
  else
    handover->pool = call->pool != NULL ? g_object_ref (call->pool) : NULL;
}

/* Emits the events of a call and hands over its outcome, in the caller's
 * context, outside the lock. */
static void
handover_deliver (Handover *handover)
{
  Call *call = handover->call;
  AforkPool *pool = handover->pool;

  if (pool != NULL)
    {
      _afork_pool_emit_events (pool, &handover->events);

      if (handover->finished)
        {
          AforkPoolResult *result = g_object_new (afork_pool_result_get_type (), NULL);

          if (call->cancel_id != 0)
            g_cancellable_disconnect (call->cancellable, call->cancel_id);
          call->cancel_id = 0;

          result->pool = g_steal_pointer (&pool);
          result->user_data = call->user_data;
          if (call->callback != NULL)
            result->reply = _afork_wire_value_make (&call->reply);
          result->out_fds = g_steal_pointer (&call->out_fds);
          result->error = g_steal_pointer (&call->error);
          if (call->callback != NULL)
            call->callback (G_OBJECT (result->pool), G_ASYNC_RESULT (result), call->user_data);
          g_object_unref (result);
        }
      g_clear_object (&pool);
    }

  g_queue_clear_full (&handover->events, (GDestroyNotify) event_free);
  _afork_pool_call_unref (call);
}

static gboolean
deliveries_cb (gpointer user_data)
{
  DeliveryKey *key = user_data;
  Core *core = key->core;
  Handover *handovers;
  Delivery *delivery;
  guint n = 0;

  /* One turn of the lock for all the calls the source hands over. */
  _afork_pool_core_lock (core);
  delivery = g_hash_table_lookup (core->deliveries, key->context);
  handovers = g_new (Handover, MAX (delivery->calls.length, 1));
  for (Call *call; (call = g_queue_pop_head (&delivery->calls)) != NULL; n++)
    handover_take_locked (&handovers[n], call);
  delivery->source = NULL;
  _afork_pool_core_unlock (core);

  for (guint i = 0; i < n; i++)
    handover_deliver (&handovers[i]);
  g_free (handovers);

  return G_SOURCE_REMOVE;
}

static void
delivery_key_free (DeliveryKey *key)
{
  g_main_context_unref (key->context);
  _afork_pool_core_unref (key->core);
  g_free (key);
}

static void
cancelled_cb (G_GNUC_UNUSED GCancellable *cancellable,
              gpointer                    user_data)
{
  Call *call = user_data;
  Core *core = call->core;
  GError *error;

  _afork_pool_core_lock (core);
  if (call->finished)
    {
      _afork_pool_core_unlock (core);
      return;
    }

  error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The call was cancelled"));

  if (call->state == CALL_QUEUED)
    {
      if (g_queue_remove (&core->queue, call))
        _afork_pool_call_unref (call);
      call->state = CALL_DONE;
    }
  else if (call->state == CALL_SENT)
    {
      Worker *worker = call->worker;

      /* A call the worker runs can be stopped only with the worker; one
       * waiting behind it is skipped when its reply comes. */
      if (g_queue_peek_head (&worker->calls) == call && worker->pid > 0)
        {
          kill ((pid_t) worker->pid, SIGKILL);
          worker->doomed = TRUE;
          g_source_set_ready_time (core->timer, 0);
        }
      call->abandoned = TRUE;
    }

  _afork_pool_call_finish_locked (call, NULL, NULL, error);
  _afork_pool_core_unlock (core);
}

/* Workers ---------------------------------------------------------------- */

Worker *
_afork_pool_worker_ref (Worker *worker)
{
  g_atomic_ref_count_inc (&worker->ref);
  return worker;
}

void
_afork_pool_worker_unref (Worker *worker)
{
  if (!g_atomic_ref_count_dec (&worker->ref))
    return;

  g_assert (worker->source == NULL);
  g_queue_clear_full (&worker->out, (GDestroyNotify) _afork_pool_call_unref);
  g_byte_array_unref (worker->in);
  g_clear_error (&worker->broken);
  for (guint i = 0; i < worker->in_fds->len; i++)
    close (g_array_index (worker->in_fds, int, i));
  g_array_unref (worker->in_fds);
  g_clear_pointer (&worker->ring, _afork_ring_free);
  g_clear_pointer (&worker->wakes, g_byte_array_unref);
  g_clear_object (&worker->connection);
  g_clear_object (&worker->process);
  _afork_pool_core_unref (worker->core);
  g_free (worker);
}

/* Whether @worker has been given all the calls it may run. */
static gboolean
worker_used_up (Core   *core,
                Worker *worker)
{
  return core->max_calls > 0 && worker->n_assigned >= core->max_calls;
}

/* Room for more calls on @worker, or 0. */
static guint
worker_room (Core   *core,
             Worker *worker)
{
  guint room;

  if (worker->state != WORKER_READY || worker->doomed || worker->write_failed ||
      core->disposed)
    return 0;

  room = worker->calls.length < core->load ? core->load - worker->calls.length : 0;
  if (core->max_calls > 0)
    room = MIN (room, worker->n_assigned < core->max_calls ?
                      core->max_calls - worker->n_assigned : 0);

  return room;
}

/* @call has become its worker's first: its time counts from now, and a
 * synchronous caller waiting on its condition reads the reply from now on
 * (sync_read_reply_locked () in afork-pool-sync.c). */
void
_afork_pool_call_starts_locked (Call *call)
{
  call->started = g_get_monotonic_time ();
  if (call->sync && call->waiting)
    g_cond_signal (&call->cond);
}

/* Sends the oldest queued calls to the least loaded workers that have
 * room. Any thread, under the lock. */
void
_afork_pool_dispatch_locked (Core *core)
{
  gboolean kick = FALSE;
  guint n_busy = 0;
  guint n_fresh = 0;

  /* A used-up worker is replaced as soon as it has its last call, so
   * there may be more workers than max-workers, but never more of them
   * running calls. (Without max-calls-per-worker, the live workers are at
   * most max-workers, and nothing is to count.) */
  for (guint i = 0; core->max_calls > 0 && i < core->workers->len; i++)
    {
      Worker *worker = core->workers->pdata[i];

      /* A worker killed (or whose socket failed) runs nothing more, even
       * while its socket lingers (a process it forked may hold it). */
      if (worker->calls.length > 0 && !worker->doomed && !worker->write_failed)
        n_busy++;
    }

  while (core->queue.length > 0)
    {
      Worker *best = NULL;
      guint best_room = 0;
      Call *call;

      for (guint i = 0; i < core->workers->len; i++)
        {
          Worker *worker = core->workers->pdata[i];
          guint room = worker_room (core, worker);

          if (worker->calls.length == 0 && n_busy >= MAX (core->max_workers, 1))
            continue;
          if (room > best_room)
            {
              best = worker;
              best_room = room;
            }
        }

      if (best == NULL)
        break;

      call = g_queue_pop_head (&core->queue);
      call->frame_pos = 0;
      call->fds_sent = FALSE;

      call->state = CALL_SENT;
      call->worker = best;
      g_queue_push_tail (&best->calls, call);
      best->n_assigned++;
      if (best->calls.length == 1)
        {
          n_busy++;
          _afork_pool_call_starts_locked (call);
          if (core->call_timeout > 0)
            kick = TRUE;
        }
      /* Its last call: the pool thread starts the worker that takes its
       * place now, rather than when the next call finds no room, so that
       * the next call finds it ready (a pool of fresh workers always has
       * one). */
      if (worker_used_up (core, best))
        {
          core->n_to_replace++;
          kick = TRUE;
        }

      g_queue_push_tail (&best->out, call_ref (call));
    }

  /* One write per worker for all the calls just sent to it. */
  for (guint i = 0; i < core->workers->len; i++)
    {
      Worker *worker = core->workers->pdata[i];

      if (worker->out.length > 0 && !worker->write_failed &&
          _afork_pool_worker_flush_locked (worker) != WRITE_DONE)
        kick = TRUE;
      _afork_pool_worker_update_source_locked (worker);
    }

  /* Calls left waiting: the pool thread may start a worker for them. When
   * it cannot, a worker that answers, dies or starts is what lets them
   * go, and the pool thread hears of that by itself. */
  for (guint i = 0; i < core->workers->len; i++)
    if (!worker_used_up (core, core->workers->pdata[i]))
      n_fresh++;
  if (core->queue.length > 0 && n_fresh < MAX (core->max_workers, 1))
    kick = TRUE;

  if (kick)
    g_source_set_ready_time (core->timer, 0);
}

/* Stops watching @worker and forgets it; the worker exits when it sees its
 * socket close. Pool thread. */
static void
worker_remove_locked (Worker *worker)
{
  Core *core = worker->core;

  g_ptr_array_remove (core->workers, worker);
  worker->state = WORKER_GONE;
  /* A worker writing into its ring would not see the socket close. */
  if (worker->ring != NULL)
    _afork_ring_close_reader (worker->ring);
  if (worker->source != NULL)
    {
      g_source_destroy (worker->source);
      g_clear_pointer (&worker->source, g_source_unref);
    }
  if (worker->connection != NULL)
    g_io_stream_close (G_IO_STREAM (worker->connection), NULL, NULL);
}

typedef struct
{
  Call  *call;
  GPid   pid;
  guint  generation;   /* of the worker's template */
} LostData;

static void
lost_wait_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  AforkProcess *process = AFORK_PROCESS (object);
  LostData *data = user_data;
  Core *core = data->call->core;
  GError *error;

  if (afork_process_wait_finish (process, result, NULL))
    {
      if (afork_process_get_if_signaled (process))
        {
          int sig = afork_process_get_term_sig (process);

          error = g_error_new (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                               /* TRANSLATORS: %d is a process id, then a signal number and its name */
                               _("Worker process %d was killed by signal %d (%s) during the call"),
                               (int) data->pid, sig, g_strsignal (sig));
        }
      else
        error = g_error_new (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                             /* TRANSLATORS: %d is a process id, then an exit status */
                             _("Worker process %d exited with status %d during the call"),
                             (int) data->pid, afork_process_get_exit_status (process));
    }
  else
    error = NULL;

  _afork_pool_core_lock (core);
  /* No status: its template, which reports it, has gone (or was made
   * again since), and a worker goes with its template. */
  if (error == NULL &&
      (data->generation != core->template_generation || core->template_lost ||
       _afork_pool_template_gone_locked (core)))
    error = g_error_new (AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED,
                         _("Worker process %d went with the template of the pool, "
                           "which exited during the call"), (int) data->pid);
  else if (error == NULL)
    error = g_error_new (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                         _("Worker process %d exited during the call"), (int) data->pid);
  _afork_pool_call_finish_locked (data->call, NULL, NULL, error);
  _afork_pool_core_unlock (core);

  _afork_pool_call_unref (data->call);
  g_free (data);
}

/* The worker died or broke the protocol: its first call fails (with
 * @head_error, or with how it died), the calls behind it go back to the
 * queue. Pool thread. */
void
_afork_pool_worker_lost_locked (Worker *worker,
                                GError *head_error)
{
  Core *core = worker->core;
  Call *head;
  Call *call;

  _afork_pool_worker_ref (worker);
  worker_remove_locked (worker);
  /* Calls not all written are sent again, whole, to another worker. */
  g_queue_clear_full (&worker->out, (GDestroyNotify) _afork_pool_call_unref);
  /* The pool replaces it now, not when the next call finds no room: the
   * call after a crash then finds a worker ready, or nearly. A used-up
   * worker's replacement was started with its last call. */
  if (!worker_used_up (core, worker))
    core->n_to_replace++;

  if (head_error != NULL && worker->pid > 0 && !worker->exited)
    kill ((pid_t) worker->pid, SIGKILL);

  head = g_queue_pop_head (&worker->calls);
  while ((call = g_queue_pop_tail (&worker->calls)) != NULL)
    {
      call->worker = NULL;
      if (call->abandoned || call->finished)
        {
          call->state = CALL_DONE;
          _afork_pool_call_unref (call);
          continue;
        }
      call->state = CALL_QUEUED;
      call->started = 0;
      g_queue_push_head (&core->queue, call);
      if (call->sync && call->polling)
        _afork_pool_call_wake_locked (call);
    }

  if (head != NULL)
    {
      head->state = CALL_DONE;
      head->worker = NULL;
      if (head->finished || head->abandoned)
        {
          g_clear_error (&head_error);
          _afork_pool_call_unref (head);
        }
      else if (head_error != NULL)
        {
          _afork_pool_call_finish_locked (head, NULL, NULL, g_steal_pointer (&head_error));
          _afork_pool_call_unref (head);
        }
      else
        {
          LostData *data = g_new0 (LostData, 1);

          data->call = head;
          data->pid = worker->pid;
          data->generation = worker->generation;
          afork_process_wait_async (worker->process, NULL, lost_wait_cb, data);
        }
    }

  g_clear_error (&head_error);
  /* The reference taken above, and the list's. */
  _afork_pool_worker_unref (worker);
  _afork_pool_worker_unref (worker);
}

void
_afork_pool_fail_queue_locked (Core         *core,
                               const GError *error)
{
  Call *call;

  while ((call = g_queue_pop_head (&core->queue)) != NULL)
    {
      call->state = CALL_DONE;
      _afork_pool_call_finish_locked (call, NULL, NULL, g_error_copy (error));
      _afork_pool_call_unref (call);
    }
}

static void
worker_run_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  Worker *worker = user_data;
  Core *core = worker->core;
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;

  connection = afork_process_run_finish (AFORK_PROCESS (object), result, &error);

  _afork_pool_core_lock (core);

  /* A worker of a template that was made again since, ready or not,
   * tells nothing about the new one: it goes (its socket closed, it
   * leaves). */
  if (connection == NULL || worker->state == WORKER_GONE || core->disposed ||
      worker->generation != core->template_generation)
    {
      g_clear_object (&connection);
      if (worker->state != WORKER_GONE)
        {
          worker_remove_locked (worker);
          _afork_pool_worker_unref (worker);  /* the list's; the run's is dropped below */
        }
      if (error != NULL && !core->disposed && worker->generation == core->template_generation)
        _afork_pool_start_failed_locked (core, error);
    }
  else
    {
      worker->connection = connection;
      worker->fd = g_socket_get_fd (g_socket_connection_get_socket (connection));
      /* A worker for one call has no use for a ring. */
      if (core->max_calls != 1)
        _afork_pool_worker_start_ring (worker);
      worker->pid = afork_process_get_pid (worker->process);
      worker->state = WORKER_READY;
      worker->idle_since = g_get_monotonic_time ();
      core->ever_ready = TRUE;
      _afork_pool_template_watch_locked (core);

      _afork_pool_worker_watch_locked (worker);
      _afork_pool_dispatch_locked (core);
      _afork_pool_worker_update_source_locked (worker);
    }

  _afork_pool_maintain_locked (core);
  _afork_pool_core_unlock (core);

  _afork_pool_worker_unref (worker);
}

static void
worker_spawn_locked (Core *core)
{
  Worker *worker = g_new0 (Worker, 1);

  g_atomic_ref_count_init (&worker->ref);
  g_atomic_ref_count_inc (&core->ref);
  worker->core = core;
  worker->state = WORKER_STARTING;
  worker->generation = core->template_generation;
  worker->fd = -1;
  worker->in = g_byte_array_new ();
  worker->in_fds = g_array_new (FALSE, FALSE, sizeof (int));
  g_ptr_array_add (core->workers, worker);

  worker->process = afork_process_fork (core->template_process);
  afork_process_run_async (worker->process, AFORK_POOL_WORKER_FUNCTION, NULL,
                           worker_run_cb, _afork_pool_worker_ref (worker));
}

static void
exit_wait_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Core *core = user_data;

  afork_process_wait_finish (AFORK_PROCESS (object), result, NULL);

  _afork_pool_core_lock (core);
  core->n_exiting--;
  _afork_pool_maintain_locked (core);
  _afork_pool_core_unlock (core);

  _afork_pool_core_unref (core);
}

/* Lets an idle worker go; with @wait, close waits for it to exit. */
static void
worker_retire_locked (Worker   *worker,
                      gboolean  wait)
{
  Core *core = worker->core;

  worker_remove_locked (worker);
  if (wait && worker->process != NULL)
    {
      core->n_exiting++;
      g_atomic_ref_count_inc (&core->ref);
      afork_process_wait_async (worker->process, NULL, exit_wait_cb, core);
    }
  _afork_pool_worker_unref (worker);
}

/* A worker the pool killed has exited: all it wrote can be read now. The
 * calls sent to it behind the one it was killed for go to another worker
 * at once, even if a process it forked keeps its socket open. Pool
 * thread. */
static void
doomed_exit_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Worker *worker = user_data;
  Core *core = worker->core;

  if (afork_process_wait_finish (AFORK_PROCESS (object), result, NULL))
    {
      _afork_pool_core_lock (core);
      /* Its pid may be another process's now. */
      worker->exited = TRUE;
      if (worker->state == WORKER_READY)
        {
          GError *error = NULL;

          _afork_pool_worker_read_locked (worker, &error);
          _afork_pool_worker_lost_locked (worker, error);
          _afork_pool_maintain_locked (core);
        }
      _afork_pool_core_unlock (core);
    }

  _afork_pool_worker_unref (worker);
}

/* Kills the workers whose running call is past call-timeout, failing that
 * call. Returns the earliest deadline of the others, or -1. */
static gint64
time_out_calls_locked (Core   *core,
                       gint64  now)
{
  gint64 next = -1;

  for (guint i = 0; i < core->workers->len; i++)
    {
      Worker *worker = core->workers->pdata[i];
      Call *head = g_queue_peek_head (&worker->calls);

      if (worker->state == WORKER_READY && head != NULL && !head->abandoned &&
          core->call_timeout > 0 && head->started > 0)
        {
          gint64 deadline = head->started + (gint64) core->call_timeout * 1000;

          if (now >= deadline)
            {
              kill ((pid_t) worker->pid, SIGKILL);
              worker->doomed = TRUE;
              head->abandoned = TRUE;
              _afork_pool_call_finish_locked (head, NULL, NULL,
                                              g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                                           _("The call to “%s” did not finish within %u ms"),
                                                           head->function, core->call_timeout));
            }
          else if (next < 0 || deadline < next)
            next = deadline;
        }

      _afork_pool_worker_update_source_locked (worker);
    }

  return next;
}

/* The pool thread's housekeeping: time-outs, new workers, idle workers,
 * closing. */
void
_afork_pool_maintain_locked (Core *core)
{
  gint64 now = g_get_monotonic_time ();
  gint64 next = -1;
  guint n_live = 0;
  guint n_ready = 0;
  guint starting_room = 0;
  guint new_room;

#define AT(t) G_STMT_START { if (next < 0 || (t) < next) next = (t); } G_STMT_END

  for (guint i = core->workers->len; i > 0; i--)
    {
      Worker *worker = core->workers->pdata[i - 1];

      if (worker->broken != NULL && worker->state == WORKER_READY)
        _afork_pool_worker_lost_locked (worker, g_steal_pointer (&worker->broken));
    }

  time_out_calls_locked (core, now);

  if (core->template_error != NULL)
    _afork_pool_fail_queue_locked (core, core->template_error);

  _afork_pool_dispatch_locked (core);
  /* Again, for the deadlines of the calls just started. */
  next = time_out_calls_locked (core, now);

  /* A worker could not start: the template has exited, or the calls get
   * that worker's error. */
  if (core->spawn_error != NULL && !core->disposed && _afork_pool_template_gone_locked (core))
    _afork_pool_template_lost_locked (core);
  else if (core->spawn_error != NULL && now >= core->spawn_error_until)
    {
      g_autoptr(GError) spawn_error = g_steal_pointer (&core->spawn_error);

      _afork_pool_fail_start_locked (core, spawn_error);
    }
  else if (core->spawn_error != NULL)
    AT (MIN (core->spawn_error_until, now + SPAWN_ERROR_POLL_USEC));

  for (guint i = 0; i < core->workers->len; i++)
    {
      Worker *worker = core->workers->pdata[i];

      if (worker->doomed && !worker->exit_watched && worker->process != NULL)
        {
          worker->exit_watched = TRUE;
          afork_process_wait_async (worker->process, NULL, doomed_exit_cb, _afork_pool_worker_ref (worker));
        }
      if (worker->doomed || worker->write_failed)
        continue;
      /* A used-up worker leaves room for the worker that takes its place
       * (_afork_pool_dispatch_locked () keeps the calls running within
       * max-workers); idle, it is retired below. */
      if (worker_used_up (core, worker))
        continue;
      n_live++;
      if (worker->state == WORKER_STARTING)
        starting_room += core->max_calls > 0 ? MIN (core->load, core->max_calls) : core->load;
      else
        n_ready++;
    }

  /* New workers for the calls that found no room. */
  new_room = core->max_calls > 0 ? MIN (core->load, core->max_calls) : core->load;
  if (!core->disposed && core->template_error == NULL && !core->template_lost &&
      core->spawn_error == NULL)
    {
      guint waiting = core->queue.length;

      waiting = waiting > starting_room ? waiting - starting_room : 0;
      while (waiting > 0 && n_live < MAX (core->max_workers, 1))
        {
          worker_spawn_locked (core);
          n_live++;
          waiting = waiting > new_room ? waiting - new_room : 0;
        }
      while (!core->closing && n_live < MIN (core->min_workers, MAX (core->max_workers, 1)))
        {
          worker_spawn_locked (core);
          n_live++;
        }
      while (!core->closing && core->n_to_replace > 0 && n_live < MAX (core->max_workers, 1))
        {
          worker_spawn_locked (core);
          n_live++;
          core->n_to_replace--;
        }
    }
  core->n_to_replace = 0;

  /* Idle workers: those used up, those above min-workers for too long,
   * and all of them when closing. */
  for (guint i = core->workers->len; i > 0; i--)
    {
      Worker *worker = core->workers->pdata[i - 1];
      gboolean used_up;

      if (worker->state != WORKER_READY || worker->calls.length > 0)
        continue;

      used_up = worker_used_up (core, worker);
      if (core->disposed || worker->doomed || worker->write_failed)
        worker_retire_locked (worker, FALSE);
      else if (core->closing && core->queue.length == 0)
        worker_retire_locked (worker, TRUE);
      else if (used_up)
        worker_retire_locked (worker, FALSE);
      /* An idle worker while calls wait is one they may not use yet
       * (max-workers run calls already): it will take the next. */
      else if (n_ready > core->min_workers && core->queue.length == 0)
        {
          gint64 deadline = worker->idle_since + (gint64) core->idle_timeout * 1000;

          if (now >= deadline)
            {
              worker_retire_locked (worker, FALSE);
              n_ready--;
            }
          else
            AT (deadline);
        }
    }

  if (core->closing && core->queue.length == 0 && core->workers->len == 0 &&
      core->n_exiting == 0 && core->close_tasks->len > 0)
    {
      for (guint i = 0; i < core->close_tasks->len; i++)
        g_task_return_boolean (core->close_tasks->pdata[i], TRUE);
      g_ptr_array_set_size (core->close_tasks, 0);
    }

#undef AT

  /* The object is gone: once its workers are, the template goes too, and
   * the timer drops the pool thread's reference. */
  if (core->disposed && core->workers->len == 0)
    {
      _afork_pool_template_unwatch_locked (core);
      g_clear_object (&core->template_process);
      next = now;
    }

  g_source_set_ready_time (core->timer, next >= 0 ? MAX (next, now) : -1);
}

/* @worker has just answered its last call, outside the pool thread. The
 * pool thread is woken only when something is to be done now; for the idle
 * timeout, its timer is moved only when it would come too late, so a
 * round trip after a round trip wakes nobody. */
void
_afork_pool_worker_idle_locked (Worker *worker)
{
  Core *core = worker->core;
  gint64 deadline, ready;

  if (core->closing || core->disposed || core->queue.length > 0 ||
      worker->doomed || worker->write_failed ||
      worker_used_up (core, worker))
    {
      g_source_set_ready_time (core->timer, 0);
      return;
    }

  _afork_pool_worker_update_source_locked (worker);

  deadline = worker->idle_since + (gint64) core->idle_timeout * 1000;
  ready = g_source_get_ready_time (core->timer);
  if (ready < 0 || ready > deadline)
    g_source_set_ready_time (core->timer, deadline);
}

/* The core ------------------------------------------------------------ */

typedef struct
{
  GSource  source;
  Core    *core;
} TimerSource;

static gboolean
timer_dispatch (GSource                  *source,
                G_GNUC_UNUSED GSourceFunc callback,
                G_GNUC_UNUSED gpointer    user_data)
{
  Core *core = ((TimerSource *) source)->core;
  gboolean done;

  g_source_set_ready_time (source, -1);

  _afork_pool_core_lock (core);
  _afork_pool_maintain_locked (core);
  done = core->disposed && core->workers->len == 0;
  if (done)
    {
      _afork_pool_template_unwatch_locked (core);
      g_clear_object (&core->template_process);
    }
  _afork_pool_core_unlock (core);

  if (done)
    {
      /* The pool thread's reference, taken at creation. */
      g_source_destroy (source);
      _afork_pool_core_unref (core);
    }

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_funcs = {
  NULL, NULL, timer_dispatch, NULL, NULL, NULL,
};

void
_afork_pool_core_unref (Core *core)
{
  if (!g_atomic_ref_count_dec (&core->ref))
    return;

  g_assert (core->workers->len == 0);
  g_assert (core->queue.length == 0);
  _afork_pool_template_unwatch_locked (core);
  g_clear_object (&core->template_process);
  g_clear_error (&core->template_error);
  g_clear_error (&core->spawn_error);
  g_ptr_array_unref (core->workers);
  g_ptr_array_unref (core->close_tasks);
  g_hash_table_unref (core->deliveries);
  g_clear_pointer (&core->timer, g_source_unref);
  g_mutex_clear (&core->lock);
  g_free (core);
}

/* The object ----------------------------------------------------------- */

static void
afork_pool_dispose (GObject *object)
{
  AforkPool *self = AFORK_POOL (object);
  Core *core = self->core;

  if (core != NULL)
    {
      /* No call is pending (each holds a reference): let the workers go
       * without waiting for them. The pool thread drops the rest. */
      _afork_pool_core_lock (core);
      core->closing = TRUE;
      core->disposed = TRUE;
      g_source_set_ready_time (core->timer, 0);
      _afork_pool_core_unlock (core);
      self->core = NULL;
      _afork_pool_core_unref (core);
    }

  G_OBJECT_CLASS (afork_pool_parent_class)->dispose (object);
}

static void
afork_pool_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  AforkPool *self = AFORK_POOL (object);

  switch (prop_id)
    {
    case PROP_MAX_WORKERS:
      g_value_set_uint (value, afork_pool_get_max_workers (self));
      break;
    case PROP_MIN_WORKERS:
      g_value_set_uint (value, afork_pool_get_min_workers (self));
      break;
    case PROP_LOAD:
      g_value_set_uint (value, afork_pool_get_load (self));
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint (value, afork_pool_get_idle_timeout (self));
      break;
    case PROP_MAX_CALLS_PER_WORKER:
      g_value_set_uint (value, afork_pool_get_max_calls_per_worker (self));
      break;
    case PROP_CALL_TIMEOUT:
      g_value_set_uint (value, afork_pool_get_call_timeout (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
afork_pool_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  AforkPool *self = AFORK_POOL (object);

  switch (prop_id)
    {
    case PROP_MAX_WORKERS:
      afork_pool_set_max_workers (self, g_value_get_uint (value));
      break;
    case PROP_MIN_WORKERS:
      afork_pool_set_min_workers (self, g_value_get_uint (value));
      break;
    case PROP_LOAD:
      afork_pool_set_load (self, g_value_get_uint (value));
      break;
    case PROP_IDLE_TIMEOUT:
      afork_pool_set_idle_timeout (self, g_value_get_uint (value));
      break;
    case PROP_MAX_CALLS_PER_WORKER:
      afork_pool_set_max_calls_per_worker (self, g_value_get_uint (value));
      break;
    case PROP_CALL_TIMEOUT:
      afork_pool_set_call_timeout (self, g_value_get_uint (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
afork_pool_class_init (AforkPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->dispose = afork_pool_dispose;
  object_class->get_property = afork_pool_get_property;
  object_class->set_property = afork_pool_set_property;

  /**
   * AforkPool:max-workers:
   *
   * The largest number of workers running calls at once. The default is
   * the number of processors. With
   * [property@Afork.Pool:max-calls-per-worker], a worker that has been
   * given its last call is replaced at once, so that the next call finds
   * its replacement ready: for that time there may be more worker
   * processes than this, but no more of them running calls.
   *
   * Since: 1.0
   */
  properties[PROP_MAX_WORKERS] =
    g_param_spec_uint ("max-workers", NULL, NULL, 1, G_MAXUINT,
                       MAX (g_get_num_processors (), 1), flags);

  /**
   * AforkPool:min-workers:
   *
   * The number of workers kept while the pool is idle: they are started
   * at once, and [property@Afork.Pool:idle-timeout] does not stop them.
   *
   * Since: 1.0
   */
  properties[PROP_MIN_WORKERS] =
    g_param_spec_uint ("min-workers", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * AforkPool:load:
   *
   * The number of calls sent to a worker before the worker has answered
   * them: beyond 1, calls wait in the worker's socket rather than in the
   * pool, which hides the round trip. A new worker is started when every
   * worker has this many calls.
   *
   * Since: 1.0
   */
  properties[PROP_LOAD] =
    g_param_spec_uint ("load", NULL, NULL, 1, G_MAXUINT, 1, flags);

  /**
   * AforkPool:idle-timeout:
   *
   * How long, in milliseconds, a worker above
   * [property@Afork.Pool:min-workers] may stay idle before it is stopped.
   *
   * Since: 1.0
   */
  properties[PROP_IDLE_TIMEOUT] =
    g_param_spec_uint ("idle-timeout", NULL, NULL, 0, G_MAXUINT, 10000, flags);

  /**
   * AforkPool:max-calls-per-worker:
   *
   * The number of calls after which a worker is replaced by a new one; 0
   * means no limit. With 1, every call runs in a process forked for it.
   * The replacement is started when the worker is given its last call,
   * and waits for the next call (if none comes, it leaves after
   * [property@Afork.Pool:idle-timeout], as any idle worker above
   * [property@Afork.Pool:min-workers]).
   *
   * Since: 1.0
   */
  properties[PROP_MAX_CALLS_PER_WORKER] =
    g_param_spec_uint ("max-calls-per-worker", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * AforkPool:call-timeout:
   *
   * How long, in milliseconds, a call may run; 0 means no limit. A call
   * that runs longer fails with %G_IO_ERROR_TIMED_OUT and its worker is
   * killed (the calls waiting behind it go to another worker).
   *
   * Since: 1.0
   */
  properties[PROP_CALL_TIMEOUT] =
    g_param_spec_uint ("call-timeout", NULL, NULL, 0, G_MAXUINT, 0, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * AforkPool::event:
   * @self: the pool
   * @name: the name of the event
   * @value: the value of the event
   *
   * Emitted when a pool function sends an event with
   * [method@Afork.Child.emit_event], in the thread-default main context
   * of the call's caller, before the call's own reply. The signal's detail
   * is the event's name.
   *
   * Since: 1.0
   */
  signals[SIGNAL_EVENT] =
    g_signal_new ("event", G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST | G_SIGNAL_DETAILED,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_VARIANT);
}

static void
afork_pool_init (AforkPool *self)
{
  Core *core = g_new0 (Core, 1);

  g_atomic_ref_count_init (&core->ref);
  g_mutex_init (&core->lock);
  g_queue_init (&core->queue);
  core->workers = g_ptr_array_new ();
  core->deliveries = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) g_main_context_unref,
                                            (GDestroyNotify) delivery_free);
  core->close_tasks = g_ptr_array_new_with_free_func (g_object_unref);
  core->max_workers = G_PARAM_SPEC_UINT (properties[PROP_MAX_WORKERS])->default_value;
  core->min_workers = 0;
  core->load = 1;
  core->idle_timeout = 10000;

  /* The pool thread's reference, dropped once the object is gone and its
   * workers with it. */
  g_atomic_ref_count_inc (&core->ref);
  core->timer = g_source_new (&timer_funcs, sizeof (TimerSource));
  ((TimerSource *) core->timer)->core = core;
  g_source_set_static_name (core->timer, "[afork] pool");
  g_source_set_ready_time (core->timer, -1);
  g_source_attach (core->timer, _afork_pool_context ());

  self->core = core;
}

/**
 * AforkPool:
 *
 * A pool of worker processes forked from one template, and a queue of
 * calls to the functions of the template's modules.
 *
 * A call names a pool function ([callback@Afork.PoolFunc]) and passes it a
 * #GVariant; the reply is the #GVariant the function returns, or its
 * #GError (with its domain, code and message). Descriptors travel in a
 * #GUnixFDList, indexed by `h` values, as with
 * g_dbus_proxy_call_with_unix_fd_list().
 *
 * Workers are started when calls wait and fewer than
 * [property@Afork.Pool:max-workers] run, and stopped after
 * [property@Afork.Pool:idle-timeout]. A worker that dies costs the call it
 * was running, which fails with %AFORK_ERROR_CHILD_EXITED; the calls
 * waiting behind it go to another worker.
 *
 * A pool may be shared by threads: each call completes in the
 * thread-default main context of its caller. The workers are served by a
 * thread of the library, so a pool never waits for its caller's main loop.
 *
 * Since: 1.0
 */

/**
 * afork_pool_new:
 * @template_process: (nullable) (transfer none): the template the workers are
 *   forked from, or %NULL for a new process of the default template
 *
 * Creates a pool whose workers are forks of @template_process, which must
 * not have been run: load the modules the calls need into it with
 * [method@Afork.Process.require] first. The pool takes the template over:
 * do not use it afterwards.
 *
 * If the template exits (killed from outside, say), its workers go with it
 * and the pool cannot start others: the calls they were running and every
 * later call fail with %AFORK_ERROR_TEMPLATE_EXITED. Make a new pool from a new
 * template. A pool made with %NULL makes a new process of the default
 * template itself and goes on (once, if the new one dies before it made a
 * worker).
 *
 * Returns: (transfer full): a new pool
 *
 * Since: 1.0
 */
AforkPool *
afork_pool_new (AforkProcess *template_process)
{
  AforkPool *self;
  Core *core;

  g_return_val_if_fail (template_process == NULL || AFORK_IS_PROCESS (template_process), NULL);

  self = g_object_new (AFORK_TYPE_POOL, NULL);
  core = self->core;

  if (template_process != NULL)
    core->template_process = g_object_ref (template_process);
  else
    {
      core->template_process = afork_process_new (&core->template_error);
      core->own_template = TRUE;
    }
  _afork_pool_core_lock (core);
  _afork_pool_template_watch_locked (core);
  _afork_pool_core_unlock (core);

  return self;
}

Call *
_afork_pool_call_new (AforkPool    *self,
                      const char   *function,
                      GVariant     *parameters,
                      GUnixFDList  *fd_list,
                      GCancellable *cancellable)
{
  Call *call = g_new0 (Call, 1);

  g_atomic_ref_count_init (&call->ref);
  g_atomic_ref_count_inc (&self->core->ref);
  call->core = self->core;
  call->function = g_strdup (function);
  if (fd_list != NULL && g_unix_fd_list_get_length (fd_list) > 0)
    call->fd_list = g_object_ref (fd_list);

  /* Made here, in the caller's thread: what GVariant allocates to
   * serialise the parameters is freed in the thread that allocated it. */
  if (parameters != NULL)
    g_variant_ref_sink (parameters);
  else
    parameters = g_variant_ref_sink (g_variant_new ("()"));
  call->frame = g_byte_array_new ();
  if (!_afork_wire_put_pool_call (call->frame, function, parameters,
                                  call->fd_list != NULL ?
                                  (guint32) g_unix_fd_list_get_length (call->fd_list) : 0))
    g_clear_pointer (&call->frame, g_byte_array_unref);
  g_variant_unref (parameters);
  call->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  call->state = CALL_QUEUED;
  g_queue_init (&call->events);

  return call;
}

/* Takes @call, and a reference to it, into the queue unless it cannot be
 * made. _afork_pool_dispatch_locked () sends it. */
static void
submit_locked (Call *call)
{
  Core *core = call->core;

  if (call->finished)
    ;  /* cancelled already */
  else if (call->frame == NULL)
    _afork_pool_call_finish_locked (call, NULL, NULL,
                                    g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                                 _("The parameters of “%s” are too large"),
                                                 call->function));
  else if (call->fd_list != NULL &&
           g_unix_fd_list_get_length (call->fd_list) > AFORK_MAX_FDS_PER_MESSAGE)
    _afork_pool_call_finish_locked (call, NULL, NULL,
                                    g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                                 _("A call can carry at most %u descriptors"),
                                                 AFORK_MAX_FDS_PER_MESSAGE));
  else if (core->closing)
    _afork_pool_call_finish_locked (call, NULL, NULL,
                                    g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CLOSED,
                                                         _("The pool is closed")));
  else if (core->template_error != NULL)
    _afork_pool_call_finish_locked (call, NULL, NULL, g_error_copy (core->template_error));
  else
    {
      g_queue_push_tail (&core->queue, call);
      return;
    }

  _afork_pool_call_unref (call);
}

/* Queues @call (the caller keeps its own reference). */
void
_afork_pool_call_submit (Call *call)
{
  Core *core = call->core;
  Call *head;

  if (call->cancellable != NULL)
    call->cancel_id = g_cancellable_connect (call->cancellable, G_CALLBACK (cancelled_cb),
                                             call_ref (call), (GDestroyNotify) _afork_pool_call_unref);

  if (call->sync)
    {
      /* It waits for the lock anyway. */
      _afork_pool_core_lock (core);
      submit_locked (call_ref (call));
      _afork_pool_dispatch_locked (core);
      _afork_pool_core_unlock (core);
      return;
    }

  call_ref (call);
  do
    {
      head = g_atomic_pointer_get (&core->submitted);
      call->next_submitted = head;
    }
  while (!g_atomic_pointer_compare_and_exchange (&core->submitted, head, call));

  if (g_mutex_trylock (&core->lock))
    _afork_pool_core_unlock (core);
  else if (head == NULL)
    {
      /* The holder takes it in, unless it lets go of the lock in
       * g_cond_wait (): the pool thread then does. */
      g_source_set_ready_time (core->timer, 0);
    }
}

/**
 * afork_pool_call_with_fds_async:
 * @self: an #AforkPool
 * @function: the name of a pool function ([callback@Afork.PoolFunc])
 * @parameters: (nullable): the parameters; a floating reference is sunk;
 *   %NULL for an empty tuple
 * @fd_list: (nullable): descriptors that `h` values of @parameters index
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when the call is done
 * @user_data: data for @callback
 *
 * Calls @function in a worker of the pool, with @parameters and the
 * descriptors of @fd_list (the worker receives copies; @fd_list stays the
 * caller's). Calls run in the order they are made when the pool has one
 * worker, and start in that order in any case.
 *
 * Cancelling a call that waits in the queue removes it; cancelling a call
 * that runs kills its worker. Both fail with %G_IO_ERROR_CANCELLED.
 *
 * @callback is called in the thread-default main context of the caller;
 * [signal@Afork.Pool::event] is emitted there for the events of the call
 * before it.
 *
 * Since: 1.0
 */
void
afork_pool_call_with_fds_async (AforkPool           *self,
                                const char          *function,
                                GVariant            *parameters,
                                GUnixFDList         *fd_list,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  Call *call;

  g_return_if_fail (AFORK_IS_POOL (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (fd_list == NULL || G_IS_UNIX_FD_LIST (fd_list));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  call = _afork_pool_call_new (self, function, parameters, fd_list, cancellable);
  /* As a GTask would: the pool lives until the call is handed over, in
   * the thread-default context of now. */
  call->pool = g_object_ref (self);
  call->callback = callback;
  call->user_data = user_data;
  call->context = g_main_context_ref_thread_default ();

  _afork_pool_call_submit (call);
  _afork_pool_call_unref (call);
}

/**
 * afork_pool_call_with_fds_finish:
 * @self: an #AforkPool
 * @out_fd_list: (out) (optional) (nullable) (transfer full): return location
 *   for the descriptors of the reply, or %NULL
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes a call started with [method@Afork.Pool.call_with_fds_async].
 * The `h` values of the reply index @out_fd_list, which is %NULL when the
 * reply carries no descriptors.
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 *
 * Since: 1.0
 */
GVariant *
afork_pool_call_with_fds_finish (AforkPool     *self,
                                 GUnixFDList  **out_fd_list,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  AforkPoolResult *res = (AforkPoolResult *) result;

  g_return_val_if_fail (AFORK_IS_POOL (self), NULL);
  g_return_val_if_fail (G_TYPE_CHECK_INSTANCE_TYPE (result, afork_pool_result_get_type ()), NULL);
  g_return_val_if_fail (res->pool == self, NULL);
  g_return_val_if_fail (!res->propagated, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  res->propagated = TRUE;
  if (out_fd_list != NULL)
    *out_fd_list = NULL;

  if (res->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&res->error));
      return NULL;
    }

  if (out_fd_list != NULL)
    *out_fd_list = g_steal_pointer (&res->out_fds);

  return g_steal_pointer (&res->reply);
}

/**
 * afork_pool_call_async:
 * @self: an #AforkPool
 * @function: the name of a pool function ([callback@Afork.PoolFunc])
 * @parameters: (nullable): the parameters; a floating reference is sunk;
 *   %NULL for an empty tuple
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when the call is done
 * @user_data: data for @callback
 *
 * Calls @function in a worker of the pool; see
 * [method@Afork.Pool.call_with_fds_async].
 *
 * Since: 1.0
 */
void
afork_pool_call_async (AforkPool           *self,
                       const char          *function,
                       GVariant            *parameters,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  afork_pool_call_with_fds_async (self, function, parameters, NULL,
                                  cancellable, callback, user_data);
}

/**
 * afork_pool_call_finish:
 * @self: an #AforkPool
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes a call started with [method@Afork.Pool.call_async].
 *
 * Returns: (transfer full): the reply, or %NULL with @error set
 *
 * Since: 1.0
 */
GVariant *
afork_pool_call_finish (AforkPool     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  return afork_pool_call_with_fds_finish (self, NULL, result, error);
}

/**
 * afork_pool_close_async:
 * @self: an #AforkPool
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when the pool is closed
 * @user_data: data for @callback
 *
 * Closes the pool: new calls fail with %AFORK_ERROR_CLOSED, the calls
 * already made complete, then the workers exit and @callback is called
 * in the thread-default main context of the caller.
 *
 * Dropping the last reference to a pool closes it without waiting.
 *
 * Since: 1.0
 */
void
afork_pool_close_async (AforkPool           *self,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  Core *core;
  GTask *task;

  g_return_if_fail (AFORK_IS_POOL (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  core = self->core;
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, afork_pool_close_async);
  g_task_set_name (task, "[afork] pool close");

  _afork_pool_core_lock (core);
  core->closing = TRUE;
  g_ptr_array_add (core->close_tasks, task);
  g_source_set_ready_time (core->timer, 0);
  _afork_pool_core_unlock (core);
}

/**
 * afork_pool_close_finish:
 * @self: an #AforkPool
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Afork.Pool.close_async].
 *
 * Returns: %TRUE once the pool is closed and its workers have exited
 *
 * Since: 1.0
 */
gboolean
afork_pool_close_finish (AforkPool     *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (AFORK_IS_POOL (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * afork_pool_get_n_workers:
 * @self: an #AforkPool
 *
 * Gets the number of workers of the pool, including those being started.
 *
 * Returns: the number of workers
 *
 * Since: 1.0
 */
guint
afork_pool_get_n_workers (AforkPool *self)
{
  guint n;

  g_return_val_if_fail (AFORK_IS_POOL (self), 0);

  _afork_pool_core_lock (self->core);
  n = self->core->workers->len;
  _afork_pool_core_unlock (self->core);

  return n;
}

/**
 * afork_pool_get_n_queued:
 * @self: an #AforkPool
 *
 * Gets the number of calls waiting for a worker (not counting those sent
 * to a worker already).
 *
 * Returns: the number of queued calls
 *
 * Since: 1.0
 */
guint
afork_pool_get_n_queued (AforkPool *self)
{
  guint n;

  g_return_val_if_fail (AFORK_IS_POOL (self), 0);

  _afork_pool_core_lock (self->core);
  n = self->core->queue.length;
  _afork_pool_core_unlock (self->core);

  return n;
}

static guint
get_uint (AforkPool *self,
          gsize      offset)
{
  guint value;

  _afork_pool_core_lock (self->core);
  value = G_STRUCT_MEMBER (guint, self->core, offset);
  _afork_pool_core_unlock (self->core);

  return value;
}

static void
set_uint (AforkPool *self,
          gsize      offset,
          guint      value,
          guint      prop_id)
{
  gboolean changed;

  _afork_pool_core_lock (self->core);
  changed = G_STRUCT_MEMBER (guint, self->core, offset) != value;
  G_STRUCT_MEMBER (guint, self->core, offset) = value;
  if (changed)
    g_source_set_ready_time (self->core->timer, 0);
  _afork_pool_core_unlock (self->core);

  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

#define DEFINE_UINT_PROPERTY(name, field, prop_id, min)                      \
  guint                                                                       \
  afork_pool_get_##name (AforkPool *self)                                     \
  {                                                                           \
    g_return_val_if_fail (AFORK_IS_POOL (self), 0);                           \
    return get_uint (self, G_STRUCT_OFFSET (Core, field));                    \
  }                                                                           \
  void                                                                        \
  afork_pool_set_##name (AforkPool *self,                                     \
                         guint      value)                                    \
  {                                                                           \
    g_return_if_fail (AFORK_IS_POOL (self));                                  \
    set_uint (self, G_STRUCT_OFFSET (Core, field), MAX (value, min), prop_id); \
  }

/**
 * afork_pool_get_max_workers:
 * @self: an #AforkPool
 *
 * Gets [property@Afork.Pool:max-workers].
 *
 * Returns: the largest number of workers
 *
 * Since: 1.0
 */
/**
 * afork_pool_set_max_workers:
 * @self: an #AforkPool
 * @max_workers: the largest number of workers, at least 1
 *
 * Sets [property@Afork.Pool:max-workers].
 *
 * Since: 1.0
 */
DEFINE_UINT_PROPERTY (max_workers, max_workers, PROP_MAX_WORKERS, 1)

/**
 * afork_pool_get_min_workers:
 * @self: an #AforkPool
 *
 * Gets [property@Afork.Pool:min-workers].
 *
 * Returns: the number of workers kept while idle
 *
 * Since: 1.0
 */
/**
 * afork_pool_set_min_workers:
 * @self: an #AforkPool
 * @min_workers: the number of workers kept while idle
 *
 * Sets [property@Afork.Pool:min-workers].
 *
 * Since: 1.0
 */
DEFINE_UINT_PROPERTY (min_workers, min_workers, PROP_MIN_WORKERS, 0)

/**
 * afork_pool_get_load:
 * @self: an #AforkPool
 *
 * Gets [property@Afork.Pool:load].
 *
 * Returns: the number of calls in flight per worker
 *
 * Since: 1.0
 */
/**
 * afork_pool_set_load:
 * @self: an #AforkPool
 * @load: the number of calls in flight per worker, at least 1
 *
 * Sets [property@Afork.Pool:load].
 *
 * Since: 1.0
 */
DEFINE_UINT_PROPERTY (load, load, PROP_LOAD, 1)

/**
 * afork_pool_get_idle_timeout:
 * @self: an #AforkPool
 *
 * Gets [property@Afork.Pool:idle-timeout].
 *
 * Returns: the idle time-out, in milliseconds
 *
 * Since: 1.0
 */
/**
 * afork_pool_set_idle_timeout:
 * @self: an #AforkPool
 * @idle_timeout: the idle time-out, in milliseconds
 *
 * Sets [property@Afork.Pool:idle-timeout].
 *
 * Since: 1.0
 */
DEFINE_UINT_PROPERTY (idle_timeout, idle_timeout, PROP_IDLE_TIMEOUT, 0)

/**
 * afork_pool_get_max_calls_per_worker:
 * @self: an #AforkPool
 *
 * Gets [property@Afork.Pool:max-calls-per-worker].
 *
 * Returns: the number of calls a worker runs, or 0 for no limit
 *
 * Since: 1.0
 */
/**
 * afork_pool_set_max_calls_per_worker:
 * @self: an #AforkPool
 * @max_calls: the number of calls a worker runs, or 0 for no limit
 *
 * Sets [property@Afork.Pool:max-calls-per-worker].
 *
 * Since: 1.0
 */
DEFINE_UINT_PROPERTY (max_calls_per_worker, max_calls, PROP_MAX_CALLS_PER_WORKER, 0)

/**
 * afork_pool_get_call_timeout:
 * @self: an #AforkPool
 *
 * Gets [property@Afork.Pool:call-timeout].
 *
 * Returns: the call time-out, in milliseconds, or 0 for none
 *
 * Since: 1.0
 */
/**
 * afork_pool_set_call_timeout:
 * @self: an #AforkPool
 * @call_timeout: the call time-out, in milliseconds, or 0 for none
 *
 * Sets [property@Afork.Pool:call-timeout].
 *
 * Since: 1.0
 */
DEFINE_UINT_PROPERTY (call_timeout, call_timeout, PROP_CALL_TIMEOUT, 0)
