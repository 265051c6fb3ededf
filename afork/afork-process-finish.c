/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Finishing a process: the last command (run a function, execute a
 * program) or none (hand the connection over), then the child's reply,
 * and for an exec the end of its status channel.
 *
 * One state machine serves both forms. The asynchronous one completes a
 * GTask; the synchronous one iterates a private main context and creates
 * no GTask, because GLib starts a thread pool the first time a GTask is
 * made, and a synchronous call must leave a single-threaded program
 * single-threaded (afork_process_fork_self() and afork_early_init() need
 * it to be). */
#include "afork-process-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <unistd.h>

#include "afork-template-private.h"
#include "afork-wire-private.h"

/* The largest reply a child may send to `r`: an error message is cut at
 * 64 KiB by the server. */
#define MAX_REPLY_PAYLOAD (128 * 1024)

/* How a process is finished: entering a run function, becoming another
 * program, or being handed over as it is. */
typedef enum
{
  FINISH_RUN,
  FINISH_EXEC,
  FINISH_HAND_OVER,
} FinishMode;

/* The state of a finish, from the last command to the child's reply (and
 * for an exec, to the end of its status channel). */
typedef struct
{
  AforkProcess *self;           /* owned */
  GMainContext *context;        /* where the sources run, owned */
  GCancellable *cancellable;    /* nullable, owned */
  GTask        *task;           /* the asynchronous form, owned until it returns */
  gboolean      completed;      /* the synchronous form: result below */
  GSocketConnection *result;
  GError       *error;
  FinishMode mode;
  GSource   *io_source;
  GSource   *cancel_source;
  GPtrArray *upstream_sources;  /* GSource *: write the templates' queues from here */
  guint8     header[AFORK_WIRE_HEADER_SIZE + 4];   /* and the first 4 payload bytes */
  gsize      header_got;
  guint8     command;
  guint8    *payload;
  guint32    payload_len;
  gsize      payload_got;
  int        exec_status_fd;      /* read end: EOF once the program started */
  guint8     exec_status[AFORK_WIRE_EXEC_STATUS_SIZE];
  gsize      exec_status_got;
  char      *exec_program;
  char      *exec_cwd;
  GSocketConnection *connection;  /* ready, for an exec waiting on its status */
} FinishData;

void
_afork_clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
finish_data_free (FinishData *data)
{
  g_clear_object (&data->self);
  g_clear_pointer (&data->context, g_main_context_unref);
  g_clear_object (&data->cancellable);
  g_clear_object (&data->result);
  g_clear_error (&data->error);
  _afork_clear_source (&data->io_source);
  _afork_clear_source (&data->cancel_source);
  g_clear_pointer (&data->upstream_sources, g_ptr_array_unref);
  if (data->exec_status_fd >= 0)
    close (data->exec_status_fd);
  g_free (data->payload);
  g_free (data->exec_program);
  g_free (data->exec_cwd);
  g_clear_object (&data->connection);
  g_free (data);
}

/* Completes: with @connection on success, else with @error. */
static void
finish_complete (FinishData        *data,
                 GSocketConnection *connection,
                 GError            *error)
{
  GTask *task;

  _afork_clear_source (&data->io_source);
  _afork_clear_source (&data->cancel_source);
  g_clear_pointer (&data->upstream_sources, g_ptr_array_unref);

  task = g_steal_pointer (&data->task);
  if (task == NULL)
    {
      /* The synchronous form: its loop picks the result up. */
      data->result = connection;
      data->error = error;
      data->completed = TRUE;
      return;
    }

  /* The task owns @data, which may be gone once the task is. */
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, connection, g_object_unref);
  g_object_unref (task);
}

/* Completes, and on error closes the socket first, which makes a process
 * that has not started its function exit: nothing is left behind. */
static void
finish_return (FinishData        *data,
               GSocketConnection *connection,
               GError            *error)
{
  if (error != NULL)
    {
      g_clear_object (&connection);
      _afork_process_close_socket (data->self);
    }

  finish_complete (data, connection, error);
}

/* Reads into @buf up to @want bytes. Returns -1 with errno when nothing
 * could be read, 0 at end of stream. */
static gssize
read_some (int     fd,
           guint8 *buf,
           gsize   want)
{
  gssize res;

  do
    res = read (fd, buf, want);
  while (res < 0 && errno == EINTR);

  return res;
}

/* Reads into @buf until @got reaches @want. Returns AFORK_FLUSH_DONE, or
 * AFORK_FLUSH_BLOCKED to wait, or AFORK_FLUSH_FAILED at end of stream. */
AforkFlushResult
_afork_read_exactly (int     fd,
              guint8 *buf,
              gsize  *got,
              gsize   want)
{
  while (*got < want)
    {
      gssize res = read_some (fd, buf + *got, want - *got);

      if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return AFORK_FLUSH_BLOCKED;
      if (res <= 0)
        return AFORK_FLUSH_FAILED;
      *got += res;
    }

  return AFORK_FLUSH_DONE;
}

/* Gives the socket away as a connection. */
static GSocketConnection *
take_connection (AforkProcess  *self,
                 GError       **error)
{
  GSocketConnection *connection;
  GSocket *socket;

  socket = g_socket_new_from_fd (self->fd, error);
  if (socket == NULL)
    return NULL;
  g_rec_mutex_lock (&self->queue_lock);
  _afork_untrack_fd (self->fd);
  self->fd = -1;
  g_rec_mutex_unlock (&self->queue_lock);

  connection = g_socket_connection_factory_create_connection (socket);
  g_object_unref (socket);

  return connection;
}

static void finish_watch (FinishData        *data,
                          int                fd,
                          GIOCondition       condition,
                          GUnixFDSourceFunc  callback);

static GError *
exec_error (const char *program,
            const char *cwd,
            guint32     step,
            int         code)
{
  GQuark domain = G_IO_ERROR;
  int io_code = g_io_error_from_errno (code);

  switch (step)
    {
    case AFORK_WIRE_EXEC_STEP_CHDIR:
      return g_error_new (domain, io_code,
                          /* TRANSLATORS: the first %s is a directory, the second a
                           * program, the third a reason */
                          _("Cannot change to the directory “%s” to execute “%s”: %s"),
                          cwd ? cwd : "", program, g_strerror (code));
    case AFORK_WIRE_EXEC_STEP_STDIO:
      return g_error_new (domain, io_code,
                          /* TRANSLATORS: the first %s is a program, the second a reason */
                          _("Cannot set up the standard descriptors of “%s”: %s"),
                          program, g_strerror (code));
    case AFORK_WIRE_EXEC_STEP_EXEC:
      return g_error_new (domain, io_code,
                          /* TRANSLATORS: the first %s is a program, the second a reason */
                          _("Cannot execute “%s”: %s"),
                          program, g_strerror (code));
    default:
      return g_error_new (AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                          /* TRANSLATORS: %s is a program, %u a number */
                          _("Executing “%s” failed at an unknown step %u"),
                          program, step);
    }
}

/* The status channel of an exec: end of file with nothing read once the
 * program started; else the step that failed and the errno, 4 bytes each
 * (a server of this version writes both; only the errno of a failed exec
 * is accepted as well). */
static gboolean
exec_status_cb (int                         fd,
                G_GNUC_UNUSED GIOCondition  condition,
                gpointer                    user_data)
{
  FinishData *data = user_data;
  for (;;)
    {
      gssize res;

      if (data->exec_status_got == sizeof data->exec_status)
        break;

      do
        res = read (fd, data->exec_status + data->exec_status_got,
                    sizeof data->exec_status - data->exec_status_got);
      while (res < 0 && errno == EINTR);

      if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return G_SOURCE_CONTINUE;

      if (res < 0)
        {
          GError *error = NULL;

          /* Not knowing is not success. */
          _afork_set_error_errno (&error, AFORK_ERROR_FAILED, errno,
                                  _("Reading the exec status of the process"));
          finish_return (data, NULL, error);
          return G_SOURCE_REMOVE;
        }

      if (res == 0)
        break;
      data->exec_status_got += res;
    }

  switch (data->exec_status_got)
    {
    case 0:
      /* End of file at once: the program replaced the server. */
      finish_return (data, g_steal_pointer (&data->connection), NULL);
      break;

    case 4:
      finish_return (data, NULL,
                     exec_error (data->exec_program, data->exec_cwd, AFORK_WIRE_EXEC_STEP_EXEC,
                                 (int) _afork_wire_read_u32 (data->exec_status)));
      break;

    case AFORK_WIRE_EXEC_STATUS_SIZE:
      finish_return (data, NULL,
                     exec_error (data->exec_program, data->exec_cwd,
                                 _afork_wire_read_u32 (data->exec_status),
                                 (int) _afork_wire_read_u32 (data->exec_status + 4)));
      break;

    default:
      finish_return (data, NULL,
                     g_error_new_literal (AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                                          _("Truncated exec status from the process")));
    }

  return G_SOURCE_REMOVE;
}

static gboolean
finish_reply_cb (int                         fd,
                 G_GNUC_UNUSED GIOCondition  condition,
                 gpointer                    user_data)
{
  FinishData *data = user_data;
  AforkProcess *self = data->self;
  GSocketConnection *connection;
  GError *error = NULL;
  GPid pid = 0;
  AforkFlushResult res;

  if (data->payload == NULL)
    {
      /* Every reply has at least 4 bytes of payload (an acknowledgement
       * has exactly that: the pid), so reading them with the header never
       * takes anything the run function wrote. One read, usually. */
      res = _afork_read_exactly (fd, data->header, &data->header_got, sizeof data->header);
      if (res == AFORK_FLUSH_BLOCKED)
        return G_SOURCE_CONTINUE;
      if (res == AFORK_FLUSH_FAILED)
        goto exited;

      if (_afork_wire_parse_header (data->header, AFORK_WIRE_HEADER_SIZE, TRUE,
                                    &data->command, &data->payload_len,
                                    &error) != AFORK_WIRE_STATUS_OK)
        goto failed;
      if (data->payload_len > MAX_REPLY_PAYLOAD)
        {
          error = g_error_new_literal (AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                                       _("The process sent an oversized reply"));
          goto failed;
        }
      data->payload = g_malloc (MAX (data->payload_len, 4));
      data->payload_got = MIN (data->payload_len, 4);
      memcpy (data->payload, data->header + AFORK_WIRE_HEADER_SIZE, data->payload_got);
    }

  res = _afork_read_exactly (fd, data->payload, &data->payload_got, data->payload_len);
  if (res == AFORK_FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;
  if (res == AFORK_FLUSH_FAILED)
    goto exited;

  if (!_afork_wire_parse_reply (data->command, data->payload, data->payload_len,
                                &pid, &error))
    goto failed;

  /* A hand-over reads a reply only after its process left (see
   * finish_written()): an acknowledgement does not bring it back. */
  if (data->mode == FINISH_HAND_OVER)
    goto exited;

  _afork_process_set_pid (self, pid);

  connection = take_connection (self, &error);
  if (connection == NULL)
    goto failed;

  if (data->mode == FINISH_EXEC)
    {
      data->connection = connection;
      finish_watch (data, data->exec_status_fd, G_IO_IN, exec_status_cb);
    }
  else
    finish_return (data, connection, NULL);

  return G_SOURCE_REMOVE;

exited:
  error = g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                               _("The process exited before it could run its function"));
failed:
  finish_return (data, NULL, error);

  return G_SOURCE_REMOVE;
}

static void
finish_watch (FinishData        *data,
              int                fd,
              GIOCondition       condition,
              GUnixFDSourceFunc  callback)
{
  _afork_clear_source (&data->io_source);
  data->io_source = g_unix_fd_source_new (fd, condition);
  g_source_set_static_name (data->io_source, "[afork] process finish");
  g_source_set_callback (data->io_source, (GSourceFunc) G_CALLBACK (callback), data, NULL);
  g_source_attach (data->io_source, data->context);
}

/* Everything is written, or the process went away. */
static void
finish_written (FinishData *data)
{
  AforkProcess *self = data->self;
  GError *error = NULL;
  GSocketConnection *connection;

  /* Writing failed for another reason than the process leaving (which
   * its reply, or its end of file, tells better): the process never got
   * its last command, so no reply will come; nor when the socket is
   * closed already. */
  if (self->error != NULL &&
      (self->fd < 0 || !g_error_matches (self->error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED)))
    {
      finish_return (data, NULL, g_steal_pointer (&self->error));
      return;
    }

  /* Either way, the reply (or the reason for leaving) counts now. A
   * hand-over waits for no reply, but when the process left while its
   * commands were written, what it said before leaving (a template that
   * could not fork it replies with the reason, then closes the socket)
   * is read all the same: the socket is closed at the other end, so this
   * ends at once. */
  if (data->mode != FINISH_HAND_OVER || self->error != NULL)
    {
      _afork_process_discard_queue (self);
      finish_watch (data, self->fd, G_IO_IN, finish_reply_cb);
      return;
    }

  connection = take_connection (self, &error);
  finish_return (data, connection, error);
}

static gboolean
finish_write_cb (G_GNUC_UNUSED int           fd,
                 G_GNUC_UNUSED GIOCondition  condition,
                 gpointer                    user_data)
{
  FinishData *data = user_data;

  if (_afork_process_flush (data->self) == AFORK_FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;

  finish_written (data);

  return G_SOURCE_REMOVE;
}

static gboolean
finish_cancelled_cb (G_GNUC_UNUSED GCancellable *cancellable,
                     gpointer                    user_data)
{
  finish_return (user_data, NULL,
                 g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                      _("Operation was cancelled")));

  return G_SOURCE_REMOVE;
}

/* Queues the last command of a finish; @arg is the operation's own. */
typedef void (*QueueLastFunc) (FinishData    *data,
                               gconstpointer  arg);

/* Checks the process can be finished, lets @queue_last queue the last
 * command, then writes and waits, from the thread-default main context. */
static void
finish_begin (FinishData    *data,
              QueueLastFunc  queue_last,
              gconstpointer  arg)
{
  AforkProcess *self = data->self;
  GError *error = NULL;

  if (self->ran || (self->fd < 0 && self->error == NULL))
    {
      finish_complete (data, NULL,
                       g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CLOSED,
                                            _("The process was already run or handed over")));
      return;
    }

  /* Checked before the last command is queued: once it is written, the
   * child may start its function before the socket is closed. */
  if (self->error == NULL && g_cancellable_set_error_if_cancelled (data->cancellable, &error))
    {
      self->ran = TRUE;
      _afork_process_cancel_write_source (self);
      _afork_process_close_socket (self);
      finish_complete (data, NULL, error);
      return;
    }

  if (queue_last != NULL)
    queue_last (data, arg);

  self->ran = TRUE;
  /* From now on the finish's own sources, in the caller's context, write. */
  _afork_process_cancel_write_source (self);

  data->upstream_sources = _afork_process_flush_upstream_in (self, data->context);
  g_clear_object (&self->upstream);

  /* A process that left while its commands were written may have said
   * why before it closed the socket (a template that could not fork it
   * does): finish_written() reads that. Any other error is final. */
  if (self->error != NULL &&
      !g_error_matches (self->error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED))
    {
      finish_return (data, NULL, g_steal_pointer (&self->error));
      return;
    }

  if (g_cancellable_set_error_if_cancelled (data->cancellable, &error))
    {
      finish_return (data, NULL, error);
      return;
    }

  if (data->cancellable != NULL)
    {
      data->cancel_source = g_cancellable_source_new (data->cancellable);
      g_source_set_callback (data->cancel_source, (GSourceFunc) G_CALLBACK (finish_cancelled_cb),
                             data, NULL);
      g_source_attach (data->cancel_source, data->context);
    }

  /* The commands were written as far as the socket took them; wait for
   * room for the rest, if any. */
  if (self->out_pos < self->out->len)
    finish_watch (data, self->fd, G_IO_OUT, finish_write_cb);
  else
    finish_written (data);
}

static FinishData *
finish_data_new (AforkProcess *self,
                 FinishMode    mode,
                 GCancellable *cancellable)
{
  FinishData *data = g_new0 (FinishData, 1);

  data->self = g_object_ref (self);
  data->context = g_main_context_ref_thread_default ();
  data->cancellable = cancellable ? g_object_ref (cancellable) : NULL;
  data->mode = mode;
  data->exec_status_fd = -1;

  return data;
}

/* The asynchronous form: a GTask owns the state and reports the result
 * in the caller's thread-default main context. */
static void
finish_async (AforkProcess        *self,
              FinishMode           mode,
              QueueLastFunc        queue_last,
              gconstpointer        arg,
              GCancellable        *cancellable,
              gpointer             source_tag,
              const char          *name,
              GAsyncReadyCallback  callback,
              gpointer             user_data)
{
  FinishData *data = finish_data_new (self, mode, cancellable);

  data->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (data->task, source_tag);
  g_task_set_name (data->task, name);
  g_task_set_task_data (data->task, data, (GDestroyNotify) finish_data_free);

  finish_begin (data, queue_last, arg);
}

/* The synchronous form: the same state machine in a private main
 * context, without a GTask (see the top of this file). */
static GSocketConnection *
finish_sync (AforkProcess  *self,
             FinishMode     mode,
             QueueLastFunc  queue_last,
             gconstpointer  arg,
             GCancellable  *cancellable,
             GError       **error)
{
  GMainContext *context = g_main_context_new ();
  GSocketConnection *connection;
  FinishData *data;

  g_main_context_push_thread_default (context);
  data = finish_data_new (self, mode, cancellable);
  finish_begin (data, queue_last, arg);
  while (!data->completed)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  connection = g_steal_pointer (&data->result);
  if (data->error != NULL)
    g_propagate_error (error, g_steal_pointer (&data->error));
  finish_data_free (data);
  g_main_context_unref (context);

  return connection;
}

static GSocketConnection *
finish_finish (AforkProcess  *self,
               GAsyncResult  *result,
               gpointer       source_tag,
               GError       **error)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
queue_run (FinishData    *data,
           gconstpointer  arg)
{
  const char *function = arg;

  _afork_process_queue_strings (data->self, AFORK_WIRE_RUN, function, strlen (function), NULL);
}

/**
 * afork_process_run_async:
 * @self: an #AforkProcess
 * @function: the name of the run function
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when the process runs
 * @user_data: data for @callback
 *
 * Makes the process enter @function, an exported [callback@Afork.RunFunc]
 * of a module loaded with [method@Afork.Process.require] or of the server
 * program, after all the commands queued before. The function takes the
 * process over; when it returns, the process exits.
 *
 * @callback is called in the thread-default main context of the caller
 * once the process has acknowledged the command, or has failed; call
 * [method@Afork.Process.run_finish] there to get the connection to it.
 * @self cannot be used for anything else afterwards, but
 * [method@Afork.Process.get_pid] and [method@Afork.Process.wait_async].
 *
 * Cancelling closes the connection: a process that has not entered its
 * run function yet exits, and one that has (the acknowledgement was on its
 * way) sees its connection closed. With a cancellable that is already
 * cancelled, the run command is not even sent.
 *
 * Since: 1.0
 */
void
afork_process_run_async (AforkProcess        *self,
                         const char          *function,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  finish_async (self, FINISH_RUN, queue_run, function, cancellable,
                afork_process_run_async, "[afork] process run", callback, user_data);
}

/**
 * afork_process_run_finish:
 * @self: an #AforkProcess
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Afork.Process.run_async].
 *
 * The returned connection is a [class@Gio.UnixConnection], so descriptors
 * can be passed on it too. Everything the run function writes arrives on
 * it; close it when done to spare kernel memory. Its end of file also
 * tells when the process has exited (unless it passed the socket on).
 *
 * Keep the connection itself for as long as its streams are used: its
 * input and output streams do not keep it alive, and dropping the last
 * reference to the connection closes the socket under them (reads then
 * fail with %G_IO_ERROR_CLOSED, "Stream is already closed"). In Python or
 * JavaScript, store the connection next to its streams, not just a
 * stream of it.
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_run_finish (AforkProcess  *self,
                          GAsyncResult  *result,
                          GError       **error)
{
  return finish_finish (self, result, afork_process_run_async, error);
}

/**
 * afork_process_run:
 * @self: an #AforkProcess
 * @function: the name of the run function
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The synchronous form of [method@Afork.Process.run_async]: blocks until
 * the process has entered @function, or failed. It iterates a main
 * context of its own, and starts no thread: a program that uses only the
 * synchronous calls on processes of an early or own template stays
 * single-threaded.
 *
 * Returns: (transfer full): the connection to the process (keep it while
 *   its streams are used, see [method@Afork.Process.run_finish]), or
 *   %NULL with @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_run (AforkProcess  *self,
                   const char    *function,
                   GCancellable  *cancellable,
                   GError       **error)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return finish_sync (self, FINISH_RUN, queue_run, function, cancellable, error);
}

/* Queues a descriptor for the exec built-in; returns its stdio letter. */
static char
queue_exec_fd (AforkProcess *self,
               int           fd)
{
  if (fd == AFORK_EXEC_FD_SOCKET)
    return 's';
  if (fd < 0)
    return 'i';

  return _afork_process_queue_dup_fd (self, fd) ? 'f' : 'i';
}

typedef struct
{
  const char * const *argv;
  AforkExecOptions   *options;   /* nullable */
} ExecArgs;

static void
queue_exec (FinishData    *data,
            gconstpointer  arg)
{
  const ExecArgs *args = arg;
  AforkProcess *self = data->self;
  const char * const *envp = NULL;
  const char *cwd = NULL;
  int fds[3] = { AFORK_EXEC_FD_INHERIT, AFORK_EXEC_FD_INHERIT, AFORK_EXEC_FD_INHERIT };
  char stdio[3] = { 0 };
  int status[2];

  if (args->options != NULL)
    _afork_exec_options_get (args->options, &envp, &cwd, fds);

  g_rec_mutex_lock (&self->queue_lock);

  data->exec_program = g_strdup (args->argv[0]);
  data->exec_cwd = g_strdup (cwd);

  if (_afork_process_can_queue (self))
    {
      stdio[0] = queue_exec_fd (self, fds[0]);
      stdio[1] = queue_exec_fd (self, fds[1]);
      stdio[2] = queue_exec_fd (self, fds[2]);
    }

  if (_afork_process_can_queue (self))
    {
      if (pipe2 (status, O_CLOEXEC | O_NONBLOCK) != 0)
        {
          GError *error = NULL;

          _afork_set_error_errno (&error, AFORK_ERROR_FAILED, errno, "pipe2()");
          _afork_process_set_error (self, error);
        }
      else
        {
          gsize offset = self->out->len;

          /* The pipe's reader is ours whatever happens next. */
          data->exec_status_fd = status[0];
          if (!_afork_process_reserve (self, 0))
            close (status[1]);
          else
            {
              _afork_wire_put_empty (self->out, AFORK_WIRE_FD);
              _afork_process_queue_fd (self, status[1], offset);
            }
        }
    }

  if (_afork_process_can_queue (self))
    {
      /* The codec measures the frame before it copies anything. */
      if (_afork_process_reserve (self, AFORK_WIRE_MAX_PAYLOAD))
        {
          if (_afork_wire_put_exec (self->out, stdio, cwd, args->argv, envp))
            _afork_process_flush_soon (self);
          else
            _afork_process_set_error (self, g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                                         _("A command for the process is larger than %u bytes"),
                                                         AFORK_WIRE_MAX_PAYLOAD));
        }
    }

  g_rec_mutex_unlock (&self->queue_lock);
}

/**
 * afork_process_exec_async:
 * @self: an #AforkProcess
 * @argv: (array zero-terminated=1) (element-type filename): the program
 *   and its arguments; the program is searched in `PATH` if it has no slash
 * @options: (nullable): the environment, working directory and standard
 *   descriptors of the program, or %NULL to keep the process's own
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when the program started
 * @user_data: data for @callback
 *
 * Makes the process execute a program: the faster fork+exec. How the
 * program starts is set on an [class@Afork.ExecOptions], in the manner
 * of a [class@Gio.SubprocessLauncher]: its standard descriptors
 * (duplicated now, so the caller may close its own as soon as this
 * returns), its environment and its working directory. Every other
 * descriptor, the run arguments included, is closed; signal handlers and
 * the signal mask are reset.
 *
 * The callback runs once the program has started, or has failed to:
 * [method@Afork.Process.exec_finish] reports a program that cannot be
 * executed with an error in the %G_IO_ERROR domain made from the errno
 * (%G_IO_ERROR_NOT_FOUND for a missing program,
 * %G_IO_ERROR_PERMISSION_DENIED for one that is not executable), and its
 * message says which step failed: changing to the working directory,
 * setting up the standard descriptors, or executing the program. The
 * program's process id is then [method@Afork.Process.get_pid], and
 * [method@Afork.Process.wait_async] reports its exit.
 *
 * Since: 1.0
 */
void
afork_process_exec_async (AforkProcess        *self,
                          const char * const  *argv,
                          AforkExecOptions    *options,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  ExecArgs args = { argv, options };

  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (argv != NULL && argv[0] != NULL);
  g_return_if_fail (options == NULL || AFORK_IS_EXEC_OPTIONS (options));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  finish_async (self, FINISH_EXEC, queue_exec, &args, cancellable,
                afork_process_exec_async, "[afork] process exec", callback, user_data);
}

/**
 * afork_process_exec_finish:
 * @self: an #AforkProcess
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Afork.Process.exec_async].
 *
 * Returns: (transfer full): the connection to the process, which the
 *   program uses where %AFORK_EXEC_FD_SOCKET was given and which is closed
 *   in it otherwise; or %NULL with @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_exec_finish (AforkProcess  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  return finish_finish (self, result, afork_process_exec_async, error);
}

/**
 * afork_process_exec:
 * @self: an #AforkProcess
 * @argv: (array zero-terminated=1) (element-type filename): the program
 *   and its arguments
 * @options: (nullable): the environment, working directory and standard
 *   descriptors of the program, or %NULL to keep the process's own
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The synchronous form of [method@Afork.Process.exec_async]; it starts no
 * thread (see [method@Afork.Process.run]).
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_exec (AforkProcess        *self,
                    const char * const  *argv,
                    AforkExecOptions    *options,
                    GCancellable        *cancellable,
                    GError             **error)
{
  ExecArgs args = { argv, options };

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (argv != NULL && argv[0] != NULL, NULL);
  g_return_val_if_fail (options == NULL || AFORK_IS_EXEC_OPTIONS (options), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return finish_sync (self, FINISH_EXEC, queue_exec, &args, cancellable, error);
}

/**
 * afork_process_hand_over_async:
 * @self: an #AforkProcess
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when done
 * @user_data: data for @callback
 *
 * Writes every queued command to the process, then hands its connection
 * over: the process keeps what was done to it so far and waits for more
 * commands, from whoever holds the connection. Pass the connection's
 * socket to another program (with [method@Gio.UnixConnection.send_fd]) and
 * make a new #AforkProcess of it there with
 * [ctor@Afork.Process.new_from_fd], or here with
 * [ctor@Afork.Process.new_from_connection].
 *
 * It is asynchronous because the queued commands are written first: the
 * connection is handed over with nothing of @self's still pending.
 *
 * @self cannot be used afterwards, but [method@Afork.Process.wait_async]
 * still reports the process's exit.
 *
 * Since: 1.0
 */
void
afork_process_hand_over_async (AforkProcess        *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  finish_async (self, FINISH_HAND_OVER, NULL, NULL, cancellable,
                afork_process_hand_over_async, "[afork] process hand over",
                callback, user_data);
}

/**
 * afork_process_hand_over_finish:
 * @self: an #AforkProcess
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Afork.Process.hand_over_async].
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_hand_over_finish (AforkProcess  *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  return finish_finish (self, result, afork_process_hand_over_async, error);
}

/**
 * afork_process_hand_over:
 * @self: an #AforkProcess
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The synchronous form of [method@Afork.Process.hand_over_async]; it
 * starts no thread (see [method@Afork.Process.run]).
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_hand_over (AforkProcess  *self,
                         GCancellable  *cancellable,
                         GError       **error)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return finish_sync (self, FINISH_HAND_OVER, NULL, NULL, cancellable, error);
}
