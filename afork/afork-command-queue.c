/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command queue of an AforkProcess and its writer.
 *
 * Commands are encoded into a buffer as they are queued and written to
 * the process's socket as far as it takes them without blocking; the rest
 * goes from the process's main context when the socket has room again.
 * A descriptor travels with the first byte of its `h` frame.
 *
 * A template's queue may be flushed from two threads at once: from its
 * own main context, and from the context of a process forked from it,
 * which writes its fork request itself rather than wait for a context
 * nobody may iterate (see _afork_process_flush_upstream_in()). Every
 * function here takes the process's queue lock, a recursive one since
 * they call each other, so that this is safe. */
#include "afork-process-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "afork-template-private.h"
#include "afork-wire-private.h"

/* Closes a descriptor the library holds and forgets it. */
void
_afork_process_clear_fd (int *fd)
{
  if (*fd >= 0)
    {
      _afork_untrack_fd (*fd);
      close (*fd);
      *fd = -1;
    }
}

void
_afork_process_set_error (AforkProcess *self,
                          GError       *error)
{
  g_rec_mutex_lock (&self->queue_lock);
  if (self->error == NULL)
    self->error = error;
  else
    g_error_free (error);
  g_rec_mutex_unlock (&self->queue_lock);
}

/* Drops everything queued: after an error nothing more is worth sending. */
void
_afork_process_discard_queue (AforkProcess *self)
{
  g_rec_mutex_lock (&self->queue_lock);
  g_byte_array_set_size (self->out, 0);
  self->out_pos = 0;
  g_array_set_size (self->out_fds, 0);
  g_rec_mutex_unlock (&self->queue_lock);
}

gboolean
_afork_process_can_queue (AforkProcess *self)
{
  return self->error == NULL && self->fd >= 0 && !self->ran;
}

/* Writes as much of the queue as the socket takes without blocking. A
 * descriptor always travels no later than the bytes of its `h` frame. */
static AforkFlushResult
flush_locked (AforkProcess *self)
{
  if (self->fd < 0)
    return self->out_pos < self->out->len ? AFORK_FLUSH_FAILED : AFORK_FLUSH_DONE;

  while (self->out_pos < self->out->len)
    {
      int fds[AFORK_MAX_FDS_PER_MESSAGE];
      guint n_fds = MIN (self->out_fds->len, AFORK_MAX_FDS_PER_MESSAGE);
      gsize len = self->out->len - self->out_pos;
      gssize res;

      if (n_fds < self->out_fds->len)
        len = g_array_index (self->out_fds, AforkQueuedFd, n_fds).offset - self->out_pos;

      for (guint i = 0; i < n_fds; i++)
        fds[i] = g_array_index (self->out_fds, AforkQueuedFd, i).fd;

      res = _afork_sendmsg_fds (self->fd, self->out->data + self->out_pos, len,
                                fds, n_fds, MSG_DONTWAIT);
      if (res < 0)
        {
          int saved_errno = errno;

          if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)
            return AFORK_FLUSH_BLOCKED;

          if (saved_errno == EPIPE || saved_errno == ECONNRESET)
            _afork_process_set_error (self, g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                                                                 _("The process exited before it read its commands")));
          else
            {
              GError *error = NULL;
              _afork_set_error_errno (&error, AFORK_ERROR_FAILED, saved_errno,
                                      _("Writing to the process"));
              _afork_process_set_error (self, error);
            }
          _afork_process_discard_queue (self);
          return AFORK_FLUSH_FAILED;
        }

      g_array_remove_range (self->out_fds, 0, n_fds);   /* closes the sent copies */
      self->out_pos += res;
    }

  /* Everything went: start the buffer afresh. */
  g_byte_array_set_size (self->out, 0);
  self->out_pos = 0;

  return AFORK_FLUSH_DONE;
}

AforkFlushResult
_afork_process_flush (AforkProcess *self)
{
  AforkFlushResult res;

  g_rec_mutex_lock (&self->queue_lock);
  res = flush_locked (self);
  g_rec_mutex_unlock (&self->queue_lock);

  return res;
}

static gboolean
write_source_cb (G_GNUC_UNUSED int           fd,
                 G_GNUC_UNUSED GIOCondition  condition,
                 gpointer      user_data)
{
  AforkProcess *self = user_data;

  g_rec_mutex_lock (&self->queue_lock);
  if (flush_locked (self) == AFORK_FLUSH_BLOCKED)
    {
      g_rec_mutex_unlock (&self->queue_lock);
      return G_SOURCE_CONTINUE;
    }

  g_clear_pointer (&self->write_source, g_source_unref);
  g_rec_mutex_unlock (&self->queue_lock);

  return G_SOURCE_REMOVE;
}

/* Writes what can be written now; if the socket is full, the rest goes
 * from the process's main context. The source holds a reference, so a
 * process dropped at once still delivers its commands. */
void
_afork_process_flush_soon (AforkProcess *self)
{
  g_rec_mutex_lock (&self->queue_lock);

  if (self->write_source != NULL || flush_locked (self) != AFORK_FLUSH_BLOCKED)
    {
      g_rec_mutex_unlock (&self->queue_lock);
      return;
    }

  self->write_source = g_unix_fd_source_new (self->fd, G_IO_OUT);
  g_source_set_static_name (self->write_source, "[afork] process write");
  g_source_set_callback (self->write_source, (GSourceFunc) G_CALLBACK (write_source_cb),
                         g_object_ref (self), g_object_unref);
  g_source_attach (self->write_source, self->context);

  g_rec_mutex_unlock (&self->queue_lock);
}

void
_afork_process_cancel_write_source (AforkProcess *self)
{
  GSource *source;

  g_rec_mutex_lock (&self->queue_lock);
  source = g_steal_pointer (&self->write_source);
  g_rec_mutex_unlock (&self->queue_lock);

  if (source != NULL)
    {
      g_source_destroy (source);
      g_source_unref (source);
    }
}

/* Closes the socket, which makes a process that has not started its
 * function exit, and drops what was still queued. */
void
_afork_process_close_socket (AforkProcess *self)
{
  g_rec_mutex_lock (&self->queue_lock);
  _afork_process_clear_fd (&self->fd);
  _afork_process_discard_queue (self);
  g_rec_mutex_unlock (&self->queue_lock);
}

/* Checks, before anything is copied, that a frame with @payload_len bytes
 * of payload may be queued: within the protocol's limit, and within what
 * the queue can hold. Otherwise the command is refused: the process's
 * error is set and nothing more is sent to it. */
gboolean
_afork_process_reserve (AforkProcess *self,
                        gsize         payload_len)
{
  if (payload_len > AFORK_WIRE_MAX_PAYLOAD)
    {
      _afork_process_set_error (self, g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                                   _("A command for the process is larger than %u bytes"),
                                                   AFORK_WIRE_MAX_PAYLOAD));
      _afork_process_discard_queue (self);
      return FALSE;
    }

  /* A GByteArray counts in guint: a queue that nobody reads (a stopped
   * process) must not wrap around. */
  if (self->out->len > G_MAXUINT - AFORK_WIRE_HEADER_SIZE - payload_len)
    {
      _afork_process_set_error (self, g_error_new_literal (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                                           _("Too many commands are waiting for the process")));
      _afork_process_discard_queue (self);
      return FALSE;
    }

  return TRUE;
}

void
_afork_process_queue_strings (AforkProcess       *self,
                              guint8              command,
                              const char         *first,
                              gsize               first_len,
                              const char * const *rest)
{
  gsize payload_len = 0;
  gsize start;

  if (!_afork_process_can_queue (self))
    return;

  g_rec_mutex_lock (&self->queue_lock);

  /* Sizes first, with every sum bounded: nothing is copied for a command
   * that cannot be sent. */
  if (first != NULL)
    payload_len = first_len > AFORK_WIRE_MAX_PAYLOAD ? G_MAXSIZE : 4 + first_len;
  for (guint i = 0; rest != NULL && rest[i] != NULL && payload_len <= AFORK_WIRE_MAX_PAYLOAD; i++)
    {
      gsize len = strlen (rest[i]);

      payload_len = len > AFORK_WIRE_MAX_PAYLOAD ? G_MAXSIZE : payload_len + 4 + len;
    }
  if (_afork_process_reserve (self, payload_len))
    {
      start = _afork_wire_begin (self->out, command);
      if (first != NULL)
        _afork_wire_put_string (self->out, first, first_len);
      for (guint i = 0; rest != NULL && rest[i] != NULL; i++)
        _afork_wire_put_string (self->out, rest[i], strlen (rest[i]));

      _afork_wire_end (self->out, start);
      _afork_process_flush_soon (self);
    }

  g_rec_mutex_unlock (&self->queue_lock);
}

/* Queues a frame of @command with a payload already encoded (by the
 * codec), for the commands other files of the library add (the sandbox). */
void
_afork_process_queue_frame (AforkProcess *self,
                            guint8        command,
                            const guint8 *payload,
                            gsize         len)
{
  gsize start;

  if (!_afork_process_can_queue (self))
    return;

  g_rec_mutex_lock (&self->queue_lock);
  if (_afork_process_reserve (self, len))
    {
      start = _afork_wire_begin (self->out, command);
      g_byte_array_append (self->out, payload, len);

      _afork_wire_end (self->out, start);
      _afork_process_flush_soon (self);
    }
  g_rec_mutex_unlock (&self->queue_lock);
}

/* Makes @fd, which the queue then owns, travel with the `h` frame at
 * @offset of the queue. */
void
_afork_process_queue_fd (AforkProcess *self,
                         int           fd,
                         gsize         offset)
{
  AforkQueuedFd q = { fd, offset };

  _afork_track_fd (fd);
  g_rec_mutex_lock (&self->queue_lock);
  g_array_append_val (self->out_fds, q);
  g_rec_mutex_unlock (&self->queue_lock);
}

/* Queues an `h` frame carrying a copy of @fd. Returns FALSE, with the
 * process's error set, when @fd cannot be duplicated. */
gboolean
_afork_process_queue_dup_fd (AforkProcess *self,
                             int           fd)
{
  gsize offset;
  int copy;

  copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    {
      int saved_errno = errno;

      _afork_process_set_error (self, g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                                   /* TRANSLATORS: %d is a file descriptor number */
                                                   _("Cannot send file descriptor %d: %s"),
                                                   fd, g_strerror (saved_errno)));
      return FALSE;
    }

  g_rec_mutex_lock (&self->queue_lock);
  if (!_afork_process_reserve (self, 0))
    {
      g_rec_mutex_unlock (&self->queue_lock);
      close (copy);
      return FALSE;
    }
  offset = self->out->len;
  _afork_wire_put_empty (self->out, AFORK_WIRE_FD);
  _afork_process_queue_fd (self, copy, offset);
  g_rec_mutex_unlock (&self->queue_lock);

  return TRUE;
}

static gboolean
upstream_write_cb (G_GNUC_UNUSED int           fd,
                   G_GNUC_UNUSED GIOCondition  condition,
                   gpointer                    user_data)
{
  return _afork_process_flush (user_data) == AFORK_FLUSH_BLOCKED ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void
destroy_source (GSource *source)
{
  g_source_destroy (source);
  g_source_unref (source);
}

/* Our fork request (or that of a template up the chain) may still wait in
 * a template's queue, written from that template's context: write it from
 * @context too, so that a synchronous run (or a run in another context of
 * the same thread) cannot wait for a context nobody iterates. Returns the
 * sources attached, which the caller destroys when done, or NULL. */
GPtrArray *
_afork_process_flush_upstream_in (AforkProcess *self,
                                  GMainContext *context)
{
  GPtrArray *sources = NULL;

  for (AforkProcess *up = self->upstream; up != NULL; up = up->upstream)
    {
      gboolean pending;

      g_rec_mutex_lock (&up->queue_lock);
      pending = up->fd >= 0 && up->out_pos < up->out->len;
      g_rec_mutex_unlock (&up->queue_lock);

      if (pending)
      {
        GSource *source = g_unix_fd_source_new (up->fd, G_IO_OUT);

        if (sources == NULL)
          sources = g_ptr_array_new_with_free_func ((GDestroyNotify) destroy_source);
        g_source_set_static_name (source, "[afork] upstream write");
        g_source_set_callback (source, (GSourceFunc) G_CALLBACK (upstream_write_cb),
                               g_object_ref (up), g_object_unref);
        g_source_attach (source, context);
        g_ptr_array_add (sources, source);
      }
    }

  return sources;
}
