/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool's side of its workers' sockets and rings, under the pool's
 * lock: writing the calls' frames, reading what a worker wrote (from its
 * socket, or from its ring and the descriptors on its socket), decoding
 * replies and events, and the source that watches a worker from the pool
 * thread. The pool thread runs it; so does a synchronous caller reading
 * its own reply (afork-pool-sync.c). */
#include "afork-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <gio/gunixfdlist.h>

#include "afork-pool-private.h"
#include "afork-ring-private.h"
#include "afork-wire-private.h"

#define READ_CHUNK (64 * 1024)
#define MAX_IOV    64

/* Writes what the socket takes of @worker's frames, without blocking. */
WriteResult
_afork_pool_worker_flush_locked (Worker *worker)
{
  while (worker->out.length > 0)
    {
      AforkFdControl control;
      struct iovec iov[MAX_IOV];
      struct msghdr msg = { 0 };
      guint n_iov = 0;
      gssize res;

      for (GList *l = worker->out.head; l != NULL && n_iov < MAX_IOV; l = l->next)
        {
          Call *call = l->data;

          if (call->fd_list != NULL && !call->fds_sent)
            {
              int n_fds;
              const int *fds;

              /* Descriptors ride on the first bytes of their frame. */
              if (n_iov > 0)
                break;
              fds = g_unix_fd_list_peek_fds (call->fd_list, &n_fds);
              _afork_msg_put_fds (&msg, &control, fds, (guint) n_fds);
            }

          iov[n_iov].iov_base = call->frame->data + call->frame_pos;
          iov[n_iov].iov_len = call->frame->len - call->frame_pos;
          n_iov++;
        }

      msg.msg_iov = iov;
      msg.msg_iovlen = n_iov;

      do
        res = sendmsg (worker->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      while (res < 0 && errno == EINTR);

      if (res < 0)
        {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return WRITE_BLOCKED;
          /* The worker is gone: its hang-up tells the rest. */
          worker->write_failed = TRUE;
          return WRITE_FAILED;
        }

      while (res > 0)
        {
          Call *call = g_queue_peek_head (&worker->out);
          gsize left = call->frame->len - call->frame_pos;

          call->fds_sent = TRUE;
          if ((gsize) res < left)
            {
              call->frame_pos += res;
              break;
            }
          res -= left;
          _afork_pool_call_unref (g_queue_pop_head (&worker->out));
        }
    }

  return WRITE_DONE;
}

/* Whether the pool thread reads @worker's socket. It does, except while
 * the only call the worker has is a synchronous one: its caller reads the
 * reply itself (sync_read_reply_locked () in afork-pool-sync.c), and a
 * second reader would only be woken for nothing, once a call. An idle
 * worker keeps what it had, so that calls of one kind in a row change
 * nothing. A hang-up is seen either way. */
static gboolean
worker_wants_reader (Worker *worker)
{
  WorkerSource *ws = (WorkerSource *) worker->source;
  Call *head = g_queue_peek_head (&worker->calls);

  if (head == NULL)
    return (ws->cond & G_IO_IN) != 0;

  return worker->calls.length > 1 || !head->sync || head->wake_fd < 0;
}

void
_afork_pool_worker_update_source_locked (Worker *worker)
{
  WorkerSource *ws;
  GIOCondition cond = 0;

  if (worker->source == NULL)
    return;

  ws = (WorkerSource *) worker->source;
  if (worker_wants_reader (worker))
    cond |= G_IO_IN;
  if (worker->out.length > 0 && !worker->write_failed)
    cond |= G_IO_OUT;
  /* Each change wakes the pool thread: only when there is one. */
  if (cond != ws->cond)
    {
      ws->cond = cond;
      g_source_modify_unix_fd (worker->source, ws->tag, cond);
    }
}

/* Descriptors the worker sent were lost (MSG_CTRUNC): the frames read
 * before are delivered, the one they belonged to fails the call, and
 * nothing more is read, as the frames after would take the wrong
 * descriptors. The reason is taken at once, while those that came are
 * still open. */
static void
note_fds_lost (Worker *worker)
{
  if (!worker->fds_lost)
    worker->fds_lost_errno = _afork_fds_lost_errno (worker->fd);
  worker->fds_lost = TRUE;
}

static void
set_fds_lost_error (Worker  *worker,
                    GError **error)
{
  /* TRANSLATORS: %s is the reason, as in "this process has reached its
   * limit of open files" */
  g_autofree char *message = g_strdup_printf (_("Descriptors from a pool worker were lost: %s"),
                                              _afork_fds_lost_reason (worker->fds_lost_errno));

  _afork_fds_lost_set_error (error, worker->fds_lost_errno, message);
}

/* Decodes what the worker wrote. Returns FALSE when the worker must go. */
static gboolean
worker_handle_input_locked (Worker  *worker,
                            GError **error)
{
  gsize pos = 0;
  gboolean ok = TRUE;

  for (;;)
    {
      AforkWirePoolFrame frame;
      AforkWireStatus status;
      guint8 command = 0;
      guint32 plen = 0;
      Call *head;

      status = _afork_wire_parse_pool_header (worker->in->data + pos, worker->in->len - pos,
                                              TRUE, &command, &plen, error);
      if (status == AFORK_WIRE_STATUS_INVALID)
        {
          ok = FALSE;
          break;
        }
      if (status == AFORK_WIRE_STATUS_NEED_MORE ||
          worker->in->len - pos < AFORK_WIRE_HEADER_SIZE + (gsize) plen)
        break;

      if (!_afork_wire_parse_pool_frame_full (command, worker->in->data + pos + AFORK_WIRE_HEADER_SIZE,
                                              plen, TRUE, &frame, error))
        {
          ok = FALSE;
          break;
        }
      pos += AFORK_WIRE_HEADER_SIZE + plen;

      head = g_queue_peek_head (&worker->calls);
      if (head == NULL || frame.n_fds > worker->in_fds->len)
        {
          _afork_wire_pool_frame_clear (&frame);
          if (head != NULL && worker->fds_lost)
            set_fds_lost_error (worker, error);
          else
            g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                                 _("A pool worker answered a call that was not made"));
          ok = FALSE;
          break;
        }

      if (command == AFORK_WIRE_POOL_EVENT)
        {
          if (!head->abandoned && !head->finished)
            {
              Event *event = g_new (Event, 1);

              event->name = g_steal_pointer (&frame.name);
              event->value = frame.raw;
              memset (&frame.raw, 0, sizeof frame.raw);
              g_queue_push_tail (&head->events, event);
              _afork_pool_call_wake_locked (head);
            }
        }
      else
        {
          GUnixFDList *fds = NULL;
          GError *call_error = NULL;

          if (frame.n_fds > 0)
            {
              fds = g_unix_fd_list_new_from_array ((const int *) (gpointer) worker->in_fds->data,
                                                   (int) frame.n_fds);
              g_array_remove_range (worker->in_fds, 0, frame.n_fds);
            }

          if (command == AFORK_WIRE_POOL_ERROR)
            call_error = g_error_new_literal (g_quark_from_string (frame.domain),
                                              (int) frame.code, frame.message);

          g_queue_pop_head (&worker->calls);
          head->state = CALL_DONE;
          head->worker = NULL;
          _afork_pool_call_finish_locked (head, &frame.raw, fds, call_error);
          _afork_pool_call_unref (head);

          head = g_queue_peek_head (&worker->calls);
          if (head != NULL)
            _afork_pool_call_starts_locked (head);
          else
            worker->idle_since = g_get_monotonic_time ();
        }

      _afork_wire_pool_frame_clear (&frame);
    }

  if (pos > 0)
    g_byte_array_remove_range (worker->in, 0, pos);

  return ok;
}

/* Reads the socket of a worker with a ring: the descriptors, and the
 * bytes that carry them or wake the reader, which are dropped. *@open
 * turns FALSE at end of stream. Returns FALSE on other bytes. */
static gboolean
worker_drain_socket_locked (Worker    *worker,
                            gboolean  *open,
                            GError   **error)
{
  *open = TRUE;

  for (;;)
    {
      guint n_fds = worker->in_fds->len;
      gboolean truncated;
      gssize res;

      g_byte_array_set_size (worker->wakes, 0);
      res = _afork_recv_fds (worker->fd, worker->wakes, 64, worker->in_fds, MSG_DONTWAIT,
                             &truncated);
      if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return TRUE;
      if (res <= 0)
        {
          *open = FALSE;
          return TRUE;
        }
      for (gssize i = 0; i < res; i++)
        if (worker->wakes->data[i] != 'w' && worker->wakes->data[i] != 'f')
          {
            g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                                 _("A pool worker wrote on its socket what belongs in its ring"));
            return FALSE;
          }
      if (truncated)
        {
          note_fds_lost (worker);
          return TRUE;
        }
      /* A read stops after descriptors; short of that, a short read
       * took all there was. */
      if (worker->in_fds->len == n_fds && res < 64)
        return TRUE;
    }
}

/* _afork_pool_worker_read_locked () with a ring. The descriptors of a
 * frame are on the socket before the frame is published, so the socket is
 * read after the ring's head and before its bytes. Before it returns, it
 * marks the reader asleep: the worker writes a byte to the socket for
 * what it publishes from then on. A worker that keeps publishing (events
 * in a loop) does not keep the reader, and the lock, for ever: after a
 * few turns the rest waits for the next reader, which the pool thread is
 * told to be at once. */
static gboolean
worker_read_ring_locked (Worker  *worker,
                         GError **error)
{
  worker->ring_pending = FALSE;

  for (guint turn = 0; ; turn++)
    {
      guint64 head = _afork_ring_get_head (worker->ring);
      gboolean open;

      if (!worker_drain_socket_locked (worker, &open, error))
        return FALSE;
      /* At end of stream, all the worker published is there; once
       * descriptors were lost, all it published before them. */
      if (!open || worker->fds_lost)
        head = _afork_ring_get_head (worker->ring);
      if (!_afork_ring_read (worker->ring, head, worker->in, error) ||
          !worker_handle_input_locked (worker, error) || !open)
        return FALSE;
      if (worker->fds_lost)
        {
          set_fds_lost_error (worker, error);
          return FALSE;
        }
      if (!_afork_ring_reader_sleeps (worker->ring))
        return TRUE;
      if (turn == 8)
        {
          worker->ring_pending = TRUE;
          if (worker->source != NULL)
            g_source_set_ready_time (worker->source, 0);
          return TRUE;
        }
    }
}

/* Reads what is there. Returns FALSE at end of stream or on an error. */
gboolean
_afork_pool_worker_read_locked (Worker  *worker,
                                GError **error)
{
  /* Nothing more is read once descriptors were lost: a later frame's
   * would follow what came of them. */
  if (worker->fds_lost)
    {
      set_fds_lost_error (worker, error);
      return FALSE;
    }

  if (worker->ring != NULL)
    return worker_read_ring_locked (worker, error);

  for (;;)
    {
      guint old_len = worker->in->len;
      gsize want = READ_CHUNK;
      gboolean truncated;
      gssize res;

      /* A large frame is read in larger steps. */
      if (old_len >= AFORK_WIRE_HEADER_SIZE)
        want = MAX (want, MIN ((gsize) _afork_wire_read_u32 (worker->in->data + 1) +
                               AFORK_WIRE_HEADER_SIZE - old_len, (gsize) 4 * 1024 * 1024));

      res = _afork_recv_fds (worker->fd, worker->in, want, worker->in_fds, MSG_DONTWAIT,
                             &truncated);
      if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return TRUE;
      if (res <= 0)
        return FALSE;
      if (truncated)
        note_fds_lost (worker);
      if (!worker_handle_input_locked (worker, error))
        return FALSE;
      if (worker->fds_lost)
        {
          set_fds_lost_error (worker, error);
          return FALSE;
        }
      if ((gsize) res < want)
        return TRUE;
    }
}

static gboolean
worker_source_dispatch (GSource                 *source,
                        G_GNUC_UNUSED GSourceFunc callback,
                        G_GNUC_UNUSED gpointer    user_data)
{
  WorkerSource *ws = (WorkerSource *) source;
  Worker *worker = ws->worker;
  Core *core = worker->core;
  GIOCondition revents = g_source_query_unix_fd (source, ws->tag);
  g_autoptr(GError) error = NULL;

  _afork_pool_core_lock (core);

  if (worker->ring_pending)
    {
      g_source_set_ready_time (source, -1);
      revents |= G_IO_IN;
    }

  if ((revents & G_IO_OUT) && _afork_pool_worker_flush_locked (worker) == WRITE_DONE)
    _afork_pool_dispatch_locked (core);

  if (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR))
    {
      if (!_afork_pool_worker_read_locked (worker, &error))
        {
          _afork_pool_worker_lost_locked (worker, g_steal_pointer (&error));
          _afork_pool_maintain_locked (core);
          _afork_pool_core_unlock (core);
          return G_SOURCE_CONTINUE;
        }
      _afork_pool_dispatch_locked (core);
      /* An idle worker may have to go, or to be timed. */
      if (worker->calls.length == 0)
        {
          _afork_pool_maintain_locked (core);
          _afork_pool_core_unlock (core);
          return G_SOURCE_CONTINUE;
        }
    }

  _afork_pool_worker_update_source_locked (worker);
  _afork_pool_core_unlock (core);

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs worker_source_funcs = {
  NULL, NULL, worker_source_dispatch, NULL, NULL, NULL,
};

/* Gives @worker a ring for its replies: the first frame it reads. Without
 * one (no memfd here), the replies come on the socket. */
void
_afork_pool_worker_start_ring (Worker *worker)
{
  g_autoptr(GByteArray) frame = g_byte_array_new ();
  AforkRing *ring;
  int memfd = -1;
  gssize res;

  ring = _afork_ring_new (AFORK_RING_SIZE, &memfd, NULL);
  if (ring == NULL)
    return;

  _afork_wire_put_pool_ring (frame, AFORK_RING_SIZE);
  /* On a socket nothing was written to yet: all of it goes, or nothing. */
  res = _afork_sendmsg_fds (worker->fd, frame->data, frame->len, &memfd, 1, MSG_DONTWAIT);
  close (memfd);
  if (res != (gssize) frame->len)
    {
      _afork_ring_free (ring);
      /* The worker is gone, or going: its hang-up tells the rest. Short
       * of that nothing was written, and the replies use the socket. */
      if (res >= 0 || errno == EPIPE || errno == ECONNRESET)
        worker->write_failed = TRUE;
      return;
    }

  worker->ring = ring;
  worker->wakes = g_byte_array_sized_new (64);
}

/* Watches @worker's socket from the pool thread. */
void
_afork_pool_worker_watch_locked (Worker *worker)
{
  WorkerSource *ws;

  worker->source = g_source_new (&worker_source_funcs, sizeof (WorkerSource));
  ws = (WorkerSource *) worker->source;
  ws->worker = worker;
  ws->tag = g_source_add_unix_fd (worker->source, worker->fd, G_IO_IN);
  ws->cond = G_IO_IN;
  g_source_set_static_name (worker->source, "[afork] pool worker");
  /* Not blocked while dispatched: blocking takes the descriptor out of
   * the context's poll set and puts it back, and each of those changes
   * wakes the pool thread again for nothing. Nothing iterates the pool
   * context from inside a dispatch. */
  g_source_set_can_recurse (worker->source, TRUE);
  g_source_attach (worker->source, _afork_pool_context ());
}
