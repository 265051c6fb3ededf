/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The call loop of a pool worker: reads call frames from the parent, runs
 * each named function in order and writes its reply (and the events it
 * emits) back. Blocking I/O: a worker does nothing else. */
#include "afork-private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "afork-child-private.h"
#include "afork-loader-private.h"
#include "afork-pool-worker-private.h"
#include "afork-ring-private.h"
#include "afork-wire-private.h"

#define READ_CHUNK (64 * 1024)

typedef struct
{
  AforkChild *child;
  int         sock;
  GByteArray *in;
  GArray     *fds;        /* received, not yet claimed by a call */
  GHashTable *functions;  /* name → AforkFunction *, or NULL if not found */
  GByteArray *out;
  AforkRing  *ring;       /* where replies go, once the pool sent one */
  GArray     *lost;       /* LostFds, oldest first: calls whose descriptors were lost */
} Worker;

/* Descriptors of a call that were lost (MSG_CTRUNC): they would have
 * followed the first @ahead descriptors of Worker.fds. What came of them
 * is closed at once: the table has room again for the next call's. */
typedef struct
{
  guint ahead;
  int   lost_errno;
} LostFds;

G_GNUC_NORETURN static void
worker_die (const char *message)
{
  /* TRANSLATORS: %s is the reason a pool worker stops */
  g_printerr (_("afork pool worker: %s\n"), message);
  _exit (2);
}

/* Reads what is there, with its descriptors; exits at end of stream. */
static void
worker_receive (Worker *worker,
                gsize   want)
{
  guint n_fds = worker->fds->len;
  gboolean truncated;
  gssize res;

  res = _afork_recv_fds (worker->sock, worker->in, want, worker->fds, 0, &truncated);
  if (res <= 0)
    {
      if (res < 0 && errno != ECONNRESET)
        worker_die (g_strerror (errno));
      /* The parent closed the connection: the pool is done with us. */
      fflush (NULL);
      _exit (0);
    }

  /* The descriptors that came belong to the frame this read started: the
   * next frame with descriptors once those ahead are taken. That call
   * fails, and the worker goes on. */
  if (truncated)
    {
      LostFds lost = { n_fds, _afork_fds_lost_errno (worker->sock) };

      for (guint i = n_fds; i < worker->fds->len; i++)
        close (g_array_index (worker->fds, int, i));
      g_array_set_size (worker->fds, n_fds);
      g_array_append_val (worker->lost, lost);
    }
}

/* Takes the descriptors of a frame that announces @n_fds: FALSE when they
 * were lost (*@lost_errno says why), else appended to @to. */
static gboolean
worker_take_fds (Worker *worker,
                 guint   n_fds,
                 GArray *to,
                 int    *lost_errno)
{
  if (n_fds == 0)
    return TRUE;

  if (worker->lost->len > 0 && g_array_index (worker->lost, LostFds, 0).ahead == 0)
    {
      *lost_errno = g_array_index (worker->lost, LostFds, 0).lost_errno;
      g_array_remove_index (worker->lost, 0);
      return FALSE;
    }

  if (n_fds > worker->fds->len ||
      (worker->lost->len > 0 && n_fds > g_array_index (worker->lost, LostFds, 0).ahead))
    worker_die (_("Call without the descriptors it announces"));
  g_array_append_vals (to, worker->fds->data, n_fds);
  g_array_remove_range (worker->fds, 0, n_fds);
  for (guint i = 0; i < worker->lost->len; i++)
    g_array_index (worker->lost, LostFds, i).ahead -= n_fds;

  return TRUE;
}

/* The pool went away, or the socket failed. */
G_GNUC_NORETURN static void
worker_send_failed (void)
{
  if (errno == EPIPE || errno == ECONNRESET)
    _exit (0);
  worker_die (g_strerror (errno));
}

/* With a ring, the bytes go there and the socket carries the descriptors
 * (ahead of the bytes of their frame) and wake-ups. */
static void
worker_send_ring (Worker       *worker,
                  const guint8 *data,
                  gsize         len,
                  const int    *fds,
                  guint         n_fds)
{
  if (n_fds > 0 && _afork_sendmsg_fds (worker->sock, "f", 1, fds, n_fds, MSG_NOSIGNAL) != 1)
    worker_send_failed ();

  if (!_afork_ring_write (worker->ring, worker->sock, data, len))
    worker_send_failed ();
}

static void
worker_send (Worker       *worker,
             const guint8 *data,
             gsize         len,
             const int    *fds,
             guint         n_fds)
{
  if (worker->ring != NULL)
    {
      worker_send_ring (worker, data, len, fds, n_fds);
      return;
    }

  while (len > 0)
    {
      gssize res = _afork_sendmsg_fds (worker->sock, data, len, fds, n_fds, MSG_NOSIGNAL);

      if (res < 0 && errno == EINTR)
        continue;
      if (res < 0)
        worker_send_failed ();
      data += res;
      len -= res;
      fds = NULL;
      n_fds = 0;
    }
}

/* Writes the replies held back. */
static void
worker_flush (Worker *worker)
{
  if (worker->out->len == 0)
    return;

  worker_send (worker, worker->out->data, worker->out->len, NULL, 0);

  /* Keep a large reply's buffer from staying around. */
  if (worker->out->len <= 4 * READ_CHUNK)
    g_byte_array_set_size (worker->out, 0);
  else
    {
      g_byte_array_unref (worker->out);
      worker->out = g_byte_array_new ();
      worker->child->pool_out = worker->out;
    }
}

static const AforkFunction *
worker_resolve (Worker      *worker,
                const char  *name,
                GError     **error)
{
  AforkFunction *function;
  gpointer found;

  if (g_hash_table_lookup_extended (worker->functions, name, NULL, &found) && found != NULL)
    return found;

  function = g_new0 (AforkFunction, 1);
  if (!_afork_server_resolve_function (name, function, error))
    {
      g_free (function);
      return NULL;
    }

  g_hash_table_insert (worker->functions, g_strdup (name), function);

  return function;
}

static void
close_fds (GArray *fds)
{
  for (guint i = 0; i < fds->len; i++)
    if (g_array_index (fds, int, i) >= 0)
      close (g_array_index (fds, int, i));
  g_array_set_size (fds, 0);
}

/* The pool's first frame, when it wants the replies in shared memory. */
static void
worker_handle_ring (Worker             *worker,
                    AforkWirePoolFrame *frame)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (int));
  int lost_errno = 0;
  int fd;

  if (worker->ring != NULL || worker->out->len > 0 ||
      (worker->fds->len < 1 && worker->lost->len == 0))
    worker_die (_("Unexpected ring frame from the parent"));
  if (!worker_take_fds (worker, 1, fds, &lost_errno))
    {
      /* TRANSLATORS: %s is the reason, as in "this process has reached
       * its limit of open files" */
      g_autofree char *message = g_strdup_printf (_("Descriptors from the parent were lost: %s"),
                                                  _afork_fds_lost_reason (lost_errno));
      worker_die (message);
    }

  fd = g_array_index (fds, int, 0);
  worker->ring = _afork_ring_map (fd, frame->ring_size, &error);
  close (fd);
  if (worker->ring == NULL)
    worker_die (error->message);
  worker->child->pool_ring = worker->ring;
}

static void
worker_handle_call (Worker             *worker,
                    AforkWirePoolFrame *frame)
{
  AforkChild *child = worker->child;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const AforkFunction *function;
  int lost_errno = 0;
  gsize start;

  g_array_set_size (child->call_fds, 0);
  g_array_set_size (child->reply_fds, 0);

  /* A call whose descriptors were lost fails without running. */
  if (!worker_take_fds (worker, frame->n_fds, child->call_fds, &lost_errno))
    {
      /* TRANSLATORS: %s is a function name, %d a process id, then the
       * reason, as in "this process has reached its limit of open files" */
      g_autofree char *message = g_strdup_printf (_("The descriptors of the call to “%s” were lost in worker process %d: %s"),
                                                  frame->function, (int) getpid (),
                                                  _afork_fds_lost_reason (lost_errno));

      _afork_fds_lost_set_error (&error, lost_errno, message);
    }

  /* The replies before go first: a function that crashes the worker must
   * not take them along. */
  worker_flush (worker);

  /* A pool that went away wants no more calls run; on the socket, the
   * flush above would have failed. */
  if (worker->ring != NULL && _afork_ring_reader_gone (worker->ring))
    {
      fflush (NULL);
      _exit (0);
    }

  function = error == NULL ? worker_resolve (worker, frame->function, &error) : NULL;
  if (function != NULL)
    {
      GVariant *result;

      if (function->loader != NULL)
        {
          if (function->loader->pool_call != NULL)
            result = function->loader->pool_call (function->symbol, child, frame->value, &error);
          else
            {
              result = NULL;
              g_set_error (&error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND,
                           _("The loader of “%s” cannot run pool functions"), frame->function);
            }
        }
      else
        result = ((AforkPoolFunc) function->symbol) (child, frame->value, &error);

      if (result != NULL)
        {
          reply = g_variant_ref_sink (result);
          if (error != NULL)
            g_clear_error (&error);
        }
      else if (error == NULL)
        reply = g_variant_ref_sink (g_variant_new ("()"));
    }

  /* What the function did not steal is closed after the call. */
  close_fds (child->call_fds);

  /* Replies wait in worker->out while more calls are buffered; one with
   * descriptors goes at once, after them. */
  if (child->reply_fds->len > 0)
    worker_flush (worker);
  start = worker->out->len;
  if (reply != NULL && child->reply_fds->len > AFORK_MAX_FDS_PER_MESSAGE)
    g_set_error (&error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                 _("The reply of “%s” has %u descriptors; at most %u can be sent"),
                 frame->function, child->reply_fds->len, AFORK_MAX_FDS_PER_MESSAGE);
  else if (reply != NULL &&
           !_afork_wire_put_pool_result (worker->out, reply, child->reply_fds->len))
    g_set_error (&error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                 _("The reply of “%s” is too large"), frame->function);

  if (error != NULL)
    {
      close_fds (child->reply_fds);
      g_byte_array_set_size (worker->out, start);
      _afork_wire_put_pool_error (worker->out, error);
    }

  if (child->reply_fds->len > 0)
    {
      worker_send (worker, worker->out->data, worker->out->len,
                   (const int *) (gpointer) child->reply_fds->data, child->reply_fds->len);
      g_byte_array_set_size (worker->out, 0);
      close_fds (child->reply_fds);
    }
  else if (worker->out->len >= READ_CHUNK)
    worker_flush (worker);
}

void
_afork_pool_worker_run (AforkChild *child)
{
  Worker worker = { 0 };
  gsize pos = 0;

  worker.child = child;
  worker.sock = child->fd;
  worker.in = g_byte_array_sized_new (READ_CHUNK);
  worker.fds = g_array_new (FALSE, FALSE, sizeof (int));
  worker.lost = g_array_new (FALSE, FALSE, sizeof (LostFds));
  worker.functions = g_hash_table_new (g_str_hash, g_str_equal);
  worker.out = g_byte_array_new ();
  child->call_fds = g_array_new (FALSE, FALSE, sizeof (int));
  child->reply_fds = g_array_new (FALSE, FALSE, sizeof (int));
  child->pool_out = worker.out;

  /* Run arguments are the template's business, not the calls'. */
  afork_child_clear_args (child);

  for (;;)
    {
      g_autoptr(GError) error = NULL;
      guint8 command = 0;
      guint32 plen = 0;
      gsize want = READ_CHUNK;
      AforkWireStatus status;

      status = _afork_wire_parse_pool_header (worker.in->data + pos, worker.in->len - pos,
                                              FALSE, &command, &plen, &error);
      if (status == AFORK_WIRE_STATUS_INVALID)
        worker_die (error->message);

      if (status == AFORK_WIRE_STATUS_OK &&
          worker.in->len - pos >= AFORK_WIRE_HEADER_SIZE + (gsize) plen)
        {
          AforkWirePoolFrame frame;

          if (!_afork_wire_parse_pool_frame (command,
                                             worker.in->data + pos + AFORK_WIRE_HEADER_SIZE,
                                             plen, &frame, &error))
            worker_die (error->message);
          pos += AFORK_WIRE_HEADER_SIZE + plen;

          if (frame.command == AFORK_WIRE_POOL_RING)
            worker_handle_ring (&worker, &frame);
          else
            worker_handle_call (&worker, &frame);
          _afork_wire_pool_frame_clear (&frame);
          continue;
        }

      if (pos > 0)
        {
          g_byte_array_remove_range (worker.in, 0, pos);
          pos = 0;
        }
      if (status == AFORK_WIRE_STATUS_OK)
        want = MAX (want, MIN ((gsize) plen + AFORK_WIRE_HEADER_SIZE - worker.in->len,
                               (gsize) 4 * 1024 * 1024));

      /* Nothing more to run for now: the replies go. */
      worker_flush (&worker);
      worker_receive (&worker, want);
    }
}
