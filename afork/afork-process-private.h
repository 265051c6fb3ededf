/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "afork-private.h"
#include "afork-process.h"

G_BEGIN_DECLS

/* The parts of an AforkProcess, one idea to a file:
 *   afork-process.c         the object, its constructors and its commands
 *   afork-command-queue.c   the queue of commands and its writer
 *   afork-process-finish.c  finishing: run, exec, hand-over
 *   afork-process-wait.c    waiting for the exit and reading the status
 *   afork-fork-self.c       forking the calling program into a template */

typedef struct
{
  int   fd;
  gsize offset;   /* of the `h` frame the descriptor goes with */
} AforkQueuedFd;

struct _AforkProcess
{
  GObject       parent_instance;

  int           fd;            /* our end of the socket, -1 once given away */
  GMainContext *context;       /* thread-default context at creation */

  /* The command queue (afork-command-queue.c), under @queue_lock: the
   * queue of a template may be written from the thread that owns it and
   * from any thread that finishes a process forked from it. */
  GRecMutex     queue_lock;
  GByteArray   *out;           /* queued commands */
  gsize         out_pos;       /* bytes of @out already written */
  GArray       *out_fds;       /* AforkQueuedFd, not yet sent, owned */
  GSource      *write_source;  /* flushes @out when the socket was full */
  AforkProcess *upstream;      /* the template whose queue still holds our
                                * fork request */
  GError       *error;         /* the first error met while queueing */

  GSubprocess  *subprocess;    /* the server, when spawned by us */
  GPid          pid;

  /* The exit status (afork-process-wait.c), under @status_lock. */
  GMutex        status_lock;
  int           status_fd;     /* the template writes the wait status here */
  guint8        status_buf[4];
  gsize         status_got;
  GPtrArray    *waiters;       /* pending waits on @status_fd */
  int           wait_status;
  guint         ran : 1;
  guint         exited : 1;    /* wait_status is known */
  guint         status_lost : 1;  /* the channel ended before the status */
};

typedef enum
{
  AFORK_FLUSH_DONE,
  AFORK_FLUSH_BLOCKED,
  AFORK_FLUSH_FAILED,
} AforkFlushResult;

/* afork-process.c */
AforkProcess     *_afork_process_new_for_fd        (int                 fd,
                                                    GSubprocess        *subprocess,
                                                    GPid                pid,
                                                    int                 status_fd);
AforkProcess     *_afork_process_new_failed        (GError             *error);
void              _afork_process_set_pid           (AforkProcess       *self,
                                                    GPid                pid);

/* afork-command-queue.c */
void              _afork_process_clear_fd          (int                *fd);
void              _afork_process_set_error         (AforkProcess       *self,
                                                    GError             *error);
void              _afork_process_discard_queue     (AforkProcess       *self);
gboolean          _afork_process_can_queue         (AforkProcess       *self);
AforkFlushResult  _afork_process_flush             (AforkProcess       *self);
void              _afork_process_flush_soon        (AforkProcess       *self);
void              _afork_process_cancel_write_source (AforkProcess     *self);
void              _afork_process_close_socket      (AforkProcess       *self);
gboolean          _afork_process_reserve           (AforkProcess       *self,
                                                    gsize               payload_len);
void              _afork_process_queue_strings     (AforkProcess       *self,
                                                    guint8              command,
                                                    const char         *first,
                                                    gsize               first_len,
                                                    const char * const *rest);
void              _afork_process_queue_frame       (AforkProcess       *self,
                                                    guint8              command,
                                                    const guint8       *payload,
                                                    gsize               len);
void              _afork_process_queue_fd          (AforkProcess       *self,
                                                    int                 fd,
                                                    gsize               offset);
gboolean          _afork_process_queue_dup_fd      (AforkProcess       *self,
                                                    int                 fd);
GPtrArray        *_afork_process_flush_upstream_in (AforkProcess       *self,
                                                    GMainContext       *context);

/* afork-exec-options.c */
void              _afork_exec_options_get          (AforkExecOptions   *self,
                                                    const char * const **env,
                                                    const char        **cwd,
                                                    int                 fds[3]);

/* afork-process-finish.c: reading helpers shared with waiting. */
AforkFlushResult  _afork_read_exactly              (int                 fd,
                                                    guint8             *buf,
                                                    gsize              *got,
                                                    gsize               want);
void              _afork_clear_source              (GSource           **source);

/* afork-process-wait.c */
void              _afork_process_set_status        (AforkProcess       *self,
                                                    int                 status);

G_END_DECLS
