/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the files of AforkPool share: its state (a Core per pool, shared
 * under its lock with the pool thread), its calls and its workers
 * (afork-pool.c), the I/O on the workers' sockets and rings
 * (afork-pool-io.c), the handling of a template that exits
 * (afork-pool-template.c) and the synchronous calls (afork-pool-sync.c). */
#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>

#include "afork-pool.h"
#include "afork-ring-private.h"
#include "afork-wire-private.h"

G_BEGIN_DECLS

/* How long a worker that could not start holds the queue, while the
 * template's exit would show, and how often the template is looked at. */
#define SPAWN_ERROR_WAIT_USEC (G_USEC_PER_SEC)
#define SPAWN_ERROR_POLL_USEC (10 * 1000)

typedef struct _Core   Core;
typedef struct _Worker Worker;
typedef struct _Call   Call;

typedef enum
{
  CALL_QUEUED,
  CALL_SENT,
  CALL_DONE,
} CallState;

/* Values come as the worker sent them, type and serialised form, and
 * become GVariants in the thread they are handed to: making one takes
 * GLib's global lock of type information, which the pool thread then
 * does not contend for with the callers. */
typedef struct
{
  char           *name;
  AforkWireValue  value;
} Event;

struct _Call
{
  gatomicrefcount  ref;
  Core            *core;          /* owned */
  char            *function;
  GByteArray      *frame;         /* the call frame, or NULL when it cannot be made */
  gsize            frame_pos;     /* what its worker took of it */
  gboolean         fds_sent;
  GUnixFDList     *fd_list;
  GCancellable    *cancellable;
  gulong           cancel_id;
  CallState        state;
  Worker          *worker;        /* while sent */
  gint64           started;       /* when it became its worker's first call */
  gboolean         abandoned;     /* finished while its worker still has it */
  GQueue           events;        /* Event *, not delivered yet */
  gboolean         finished;
  AforkWireValue   reply;         /* not made into a GVariant yet */
  GUnixFDList     *out_fds;
  GError          *error;
  AforkPool           *pool;      /* an asynchronous call not handed over yet */
  GAsyncReadyCallback  callback;
  gpointer             user_data;
  GMainContext        *context;   /* where it is handed over */
  gboolean         deliver_scheduled;
  gboolean         sync;
  GCond            cond;          /* a synchronous caller waits on it */
  int              wake_fd;       /* … or polls this and its worker's socket */
  gboolean         polling;
  gboolean         waiting;       /* on cond: only then is it signalled */
  Call            *next_submitted;
};

typedef enum
{
  WORKER_STARTING,
  WORKER_READY,
  WORKER_GONE,
} WorkerState;

typedef struct
{
  GSource  source;
  Worker      *worker;
  gpointer     tag;
  GIOCondition cond;
} WorkerSource;

struct _Worker
{
  gatomicrefcount    ref;
  Core              *core;        /* owned */
  WorkerState        state;
  AforkProcess      *process;
  GSocketConnection *connection;
  int                fd;
  GPid               pid;
  GQueue             calls;       /* Call *, sent, oldest first */
  guint              n_assigned;
  gint64             idle_since;
  guint              generation;  /* of the template it was forked from */
  gboolean           doomed;      /* killed: takes no more calls */
  gboolean           exit_watched; /* doomed, and waited for */
  gboolean           exited;       /* known to have exited (and been reaped) */
  gboolean           fds_lost;     /* descriptors it sent were lost */
  int                fds_lost_errno; /* why: _afork_fds_lost_errno () */
  GError            *broken;      /* a protocol error met outside the pool thread */
  gboolean           write_failed;
  GQueue             out;         /* Call * (owned) whose frames are not all written */
  GByteArray        *in;
  GArray            *in_fds;
  AforkRing         *ring;        /* its replies, when not on the socket */
  gboolean           ring_pending; /* a reader stopped with bytes left there */
  guint              awake_misses; /* waits awake in a row the reply missed */
  guint              asleep_waits; /* waits left to make asleep */
  GByteArray        *wakes;       /* with a ring, what the socket carries */
  GSource           *source;
};

struct _Core
{
  gatomicrefcount  ref;
  GMutex           lock;
  Call            *submitted;        /* atomic: asynchronous calls not taken in yet, newest first */
  AforkProcess    *template_process;
  GError          *template_error;   /* the template cannot produce workers */
  gboolean         own_template;     /* made by the pool, which can make it again */
  gboolean         template_replaced; /* the pool made this one again */
  guint            template_generation; /* which template workers are forked from */
  gboolean         template_lost;    /* it has exited: no worker is started until
                                      * its status is in */
  GSource         *template_watch;   /* in the pool thread: its connection hangs up */
  GError          *spawn_error;      /* a worker could not start, and the template
                                      * may be exiting: no worker is started until
                                      * spawn_error_until, when the calls get it */
  gint64           spawn_error_until;
  gboolean         ever_ready;
  GQueue           queue;            /* Call *, not sent, oldest first */
  GPtrArray       *workers;          /* Worker * */
  guint            n_exiting;        /* workers whose exit close waits for */
  guint            n_to_replace;     /* workers lost or used up, to start again at once */
  guint            max_workers;
  guint            min_workers;
  guint            load;
  guint            idle_timeout;
  guint            max_calls;
  guint            call_timeout;
  gboolean         closing;
  gboolean         disposed;
  GPtrArray       *close_tasks;
  GSource         *timer;            /* in the pool thread: timer_dispatch () */
  GHashTable      *deliveries;       /* GMainContext * → Delivery * */
};

struct _AforkPool
{
  GObject  parent_instance;
  Core    *core;
};


/* The lock, and the pool's state (afork-pool.c). */
void           _afork_pool_core_lock                   (Core *core);
void           _afork_pool_core_unlock                 (Core *core);
void           _afork_pool_core_unref                  (Core *core);
void           _afork_pool_maintain_locked             (Core *core);
void           _afork_pool_fail_queue_locked           (Core         *core,
                                                        const GError *error);
GMainContext * _afork_pool_context                     (void);

/* What a flush of a worker's frames came to (afork-pool-io.c). */
typedef enum
{
  WRITE_DONE,
  WRITE_BLOCKED,
  WRITE_FAILED,
} WriteResult;

/* Calls (afork-pool.c). */
Call *         _afork_pool_call_new                    (AforkPool    *self,
                                                        const char   *function,
                                                        GVariant     *parameters,
                                                        GUnixFDList  *fd_list,
                                                        GCancellable *cancellable);
void           _afork_pool_call_submit                 (Call *call);
void           _afork_pool_call_unref                  (Call *call);
void           _afork_pool_emit_events                 (AforkPool *pool,
                                                        GQueue    *events);
void           _afork_pool_call_wake_locked            (Call *call);
void           _afork_pool_call_starts_locked          (Call *call);
void           _afork_pool_call_finish_locked          (Call           *call,
                                                        AforkWireValue *reply,
                                                        GUnixFDList    *out_fds,
                                                        GError         *error);

/* Workers (afork-pool.c). */
Worker *       _afork_pool_worker_ref                  (Worker *worker);
void           _afork_pool_worker_unref                (Worker *worker);
void           _afork_pool_dispatch_locked             (Core *core);
void           _afork_pool_worker_idle_locked          (Worker *worker);
void           _afork_pool_worker_lost_locked          (Worker *worker,
                                                        GError *head_error);

/* Workers' sockets and rings (afork-pool-io.c). */
WriteResult    _afork_pool_worker_flush_locked         (Worker *worker);
gboolean       _afork_pool_worker_read_locked          (Worker *worker,
                                                        GError **error);
void           _afork_pool_worker_update_source_locked (Worker *worker);
void           _afork_pool_worker_start_ring           (Worker *worker);
void           _afork_pool_worker_watch_locked         (Worker *worker);

/* The template (afork-pool-template.c). */
gboolean       _afork_pool_template_gone_locked        (Core *core);
void           _afork_pool_template_lost_locked        (Core *core);
void           _afork_pool_template_watch_locked       (Core *core);
void           _afork_pool_template_unwatch_locked     (Core *core);
void           _afork_pool_fail_start_locked           (Core   *core,
                                                        GError *error);
void           _afork_pool_start_failed_locked         (Core   *core,
                                                        GError *error);

G_END_DECLS
