/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-process-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "afork-template-private.h"
#include "afork-wire-private.h"

/* The largest reply a child may send to `r`: an error message is cut at
 * 64 KiB by the server. */
#define MAX_REPLY_PAYLOAD (128 * 1024)

/**
 * AforkProcess:
 *
 * A process created by afork, seen from the parent.
 *
 * An `AforkProcess` is made by [ctor@Afork.Process.new] (a fork of the
 * default template), [ctor@Afork.Process.new_exec] (a fresh `afork-server`)
 * or [method@Afork.Process.fork] (a fork of another process, which then
 * serves as a template). Until it runs a function, the process only
 * executes commands: the chainable methods [method@Afork.Process.require],
 * [method@Afork.Process.call], [method@Afork.Process.send_arg],
 * [method@Afork.Process.send_bytes] and [method@Afork.Process.send_fd]
 * queue them, and they are written to the process in the background, in
 * order. [method@Afork.Process.run_async] sends the last command and gives
 * back the connection to the process once it has entered its run
 * function.
 *
 * ```c
 * afork_process_run_async (afork_process_send_arg (
 *                            afork_process_require (process, "mymodule"), "42"),
 *                          "mymodule_worker", NULL, on_worker_ready, NULL);
 * g_object_unref (process);   // configure and forget
 * ```
 *
 * Errors met while queueing, such as a closed descriptor passed to
 * [method@Afork.Process.send_fd], are kept and reported by
 * [method@Afork.Process.run_finish]; so are errors in the child, such as a
 * module that cannot be loaded, with a code from [error@Afork.Error].
 *
 * Dropping the last reference before running makes the process exit once
 * it has read the commands queued so far. An `AforkProcess` is used from
 * one thread at a time; [ctor@Afork.Process.new] may be called from any
 * thread.
 *
 * Since: 1.0
 */

typedef struct
{
  int   fd;
  gsize offset;   /* of the `h` frame the descriptor goes with */
} QueuedFd;

struct _AforkProcess
{
  GObject       parent_instance;

  int           fd;            /* our end of the socket, -1 once given away */
  GMainContext *context;       /* thread-default context at creation */
  GByteArray   *out;           /* queued commands */
  gsize         out_pos;       /* bytes of @out already written */
  GArray       *out_fds;       /* QueuedFd, not yet sent, owned */
  GSource      *write_source;  /* flushes @out when the socket was full */
  GError       *error;         /* the first error met while queueing */
  GSubprocess  *subprocess;    /* the server, when spawned by us */
  GPid          pid;
  int           status_fd;     /* the template writes the wait status here */
  int           wait_status;
  guint         ran : 1;
  guint         exited : 1;    /* wait_status is known */
};

G_DEFINE_FINAL_TYPE (AforkProcess, afork_process, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_PID,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

typedef enum
{
  FLUSH_DONE,
  FLUSH_BLOCKED,
  FLUSH_FAILED,
} FlushResult;

/* Closes a descriptor the library holds and forgets it. */
static void
clear_fd (int *fd)
{
  if (*fd >= 0)
    {
      _afork_untrack_fd (*fd);
      close (*fd);
      *fd = -1;
    }
}

static void
queued_fd_clear (gpointer data)
{
  QueuedFd *q = data;

  clear_fd (&q->fd);
}

static void
set_error (AforkProcess *self,
           GError       *error)
{
  if (self->error == NULL)
    self->error = error;
  else
    g_error_free (error);
}

/* Drops everything queued: after an error nothing more is worth sending. */
static void
discard_queue (AforkProcess *self)
{
  g_byte_array_set_size (self->out, 0);
  self->out_pos = 0;
  g_array_set_size (self->out_fds, 0);
}

/* Writes as much of the queue as the socket takes without blocking. A
 * descriptor always travels no later than the bytes of its `h` frame. */
static FlushResult
flush (AforkProcess *self)
{
  if (self->fd < 0)
    return self->out_pos < self->out->len ? FLUSH_FAILED : FLUSH_DONE;

  while (self->out_pos < self->out->len)
    {
      int fds[AFORK_MAX_FDS_PER_MESSAGE];
      guint n_fds = MIN (self->out_fds->len, AFORK_MAX_FDS_PER_MESSAGE);
      gsize len = self->out->len - self->out_pos;
      gssize res;

      if (n_fds < self->out_fds->len)
        len = g_array_index (self->out_fds, QueuedFd, n_fds).offset - self->out_pos;

      for (guint i = 0; i < n_fds; i++)
        fds[i] = g_array_index (self->out_fds, QueuedFd, i).fd;

      res = _afork_sendmsg_fds (self->fd, self->out->data + self->out_pos, len,
                                fds, n_fds, MSG_DONTWAIT);
      if (res < 0)
        {
          int saved_errno = errno;

          if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)
            return FLUSH_BLOCKED;

          if (saved_errno == EPIPE || saved_errno == ECONNRESET)
            set_error (self, g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                                                  _("The process exited before it read its commands")));
          else
            {
              GError *error = NULL;
              _afork_set_error_errno (&error, AFORK_ERROR_FAILED, saved_errno,
                                      _("Writing to the process"));
              set_error (self, error);
            }
          discard_queue (self);
          return FLUSH_FAILED;
        }

      g_array_remove_range (self->out_fds, 0, n_fds);   /* closes the sent copies */
      self->out_pos += res;
    }

  /* Everything went: start the buffer afresh. */
  g_byte_array_set_size (self->out, 0);
  self->out_pos = 0;

  return FLUSH_DONE;
}

static gboolean
write_source_cb (G_GNUC_UNUSED int           fd,
                 G_GNUC_UNUSED GIOCondition  condition,
                 gpointer      user_data)
{
  AforkProcess *self = user_data;

  if (flush (self) == FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;

  g_clear_pointer (&self->write_source, g_source_unref);

  return G_SOURCE_REMOVE;
}

/* Writes what can be written now; if the socket is full, the rest goes
 * from the process's main context. The source holds a reference, so a
 * process dropped at once still delivers its commands. */
static void
flush_soon (AforkProcess *self)
{
  if (self->write_source != NULL)
    return;

  if (flush (self) != FLUSH_BLOCKED)
    return;

  self->write_source = g_unix_fd_source_new (self->fd, G_IO_OUT);
  g_source_set_static_name (self->write_source, "[afork] process write");
  g_source_set_callback (self->write_source, (GSourceFunc) G_CALLBACK (write_source_cb),
                         g_object_ref (self), g_object_unref);
  g_source_attach (self->write_source, self->context);
}

static void
cancel_write_source (AforkProcess *self)
{
  if (self->write_source != NULL)
    {
      GSource *source = g_steal_pointer (&self->write_source);

      g_source_destroy (source);
      g_source_unref (source);
    }
}

static gboolean
can_queue (AforkProcess *self)
{
  return self->error == NULL && self->fd >= 0 && !self->ran;
}

static void
queue_strings (AforkProcess       *self,
               guint8              command,
               const char         *first,
               gsize               first_len,
               const char * const *rest)
{
  gsize start;

  if (!can_queue (self))
    return;

  start = _afork_wire_begin (self->out, command);
  if (first != NULL)
    _afork_wire_put_string (self->out, first, first_len);
  for (guint i = 0; rest != NULL && rest[i] != NULL; i++)
    _afork_wire_put_string (self->out, rest[i], strlen (rest[i]));

  if (!_afork_wire_end (self->out, start))
    {
      set_error (self, g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                    _("A command for the process is larger than %u bytes"),
                                    AFORK_WIRE_MAX_PAYLOAD));
      discard_queue (self);
      return;
    }

  flush_soon (self);
}

/* Queues an `h` frame carrying @fd, which the queue then owns. */
static void
queue_fd (AforkProcess *self,
          int           fd)
{
  QueuedFd q = { fd, self->out->len };

  _afork_track_fd (fd);

  _afork_wire_put_empty (self->out, AFORK_WIRE_FD);
  g_array_append_val (self->out_fds, q);
}

static void
afork_process_dispose (GObject *object)
{
  AforkProcess *self = (AforkProcess *) object;

  cancel_write_source (self);
  if (self->fd >= 0)
    {
      /* A last try; closing the socket then makes the process exit. */
      flush (self);
      clear_fd (&self->fd);
    }
  discard_queue (self);
  clear_fd (&self->status_fd);

  G_OBJECT_CLASS (afork_process_parent_class)->dispose (object);
}

static void
afork_process_finalize (GObject *object)
{
  AforkProcess *self = (AforkProcess *) object;

  g_clear_pointer (&self->out, g_byte_array_unref);
  g_clear_pointer (&self->out_fds, g_array_unref);
  g_clear_error (&self->error);
  g_clear_object (&self->subprocess);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (afork_process_parent_class)->finalize (object);
}

static void
afork_process_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  AforkProcess *self = AFORK_PROCESS (object);

  switch (prop_id)
    {
    case PROP_PID:
      g_value_set_int (value, self->pid);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
afork_process_class_init (AforkProcessClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = afork_process_dispose;
  object_class->finalize = afork_process_finalize;
  object_class->get_property = afork_process_get_property;

  /**
   * AforkProcess:pid:
   *
   * The process id of the child, known once
   * [method@Afork.Process.run_async] has completed (the child sends it
   * with its acknowledgement), and from the start for a process spawned
   * by [ctor@Afork.Process.new_exec]. 0 while unknown.
   *
   * Since: 1.0
   */
  properties[PROP_PID] =
    g_param_spec_int ("pid", NULL, NULL,
                      0, G_MAXINT, 0,
                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  _afork_i18n_init ();
}

static void
afork_process_init (AforkProcess *self)
{
  self->fd = -1;
  self->status_fd = -1;
  self->context = g_main_context_ref_thread_default ();
  self->out = g_byte_array_new ();
  self->out_fds = g_array_new (FALSE, FALSE, sizeof (QueuedFd));
  g_array_set_clear_func (self->out_fds, queued_fd_clear);
}

AforkProcess *
_afork_process_new_for_fd (int          fd,
                           GSubprocess *subprocess,
                           GPid         pid,
                           int          status_fd)
{
  AforkProcess *self = g_object_new (AFORK_TYPE_PROCESS, NULL);

  self->fd = fd;
  if (fd >= 0)
    {
      _afork_track_fd (fd);
      _afork_fd_set_blocking (fd, FALSE);
    }
  self->subprocess = subprocess;
  self->pid = pid;
  self->status_fd = status_fd;
  if (status_fd >= 0)
    {
      _afork_track_fd (status_fd);
      _afork_fd_set_blocking (status_fd, FALSE);
    }

  return self;
}

static AforkProcess *
new_failed (GError *error)
{
  AforkProcess *self = _afork_process_new_for_fd (-1, NULL, 0, -1);

  self->error = error;

  return self;
}

/* Forks a shared template (the early one, or the default one) into a new
 * process. With @for_exec and no early template, returns NULL without an
 * error: the caller spawns a server instead. */
static AforkProcess *
new_from_shared_template (gboolean   for_exec,
                          GError   **error)
{
  AforkForkRequest request;
  AforkProcess *self;
  gboolean forked;

  if (!_afork_fork_request_init (&request, error))
    return NULL;

  if (!_afork_registry_fork (&request, for_exec, &forked, error) || !forked)
    {
      _afork_fork_request_clear (&request);
      return NULL;
    }

  self = _afork_process_new_for_fd (request.sock, NULL, 0, request.status);
  request.sock = request.status = -1;

  return self;
}

/**
 * afork_process_new:
 * @error: return location for a #GError
 *
 * Creates a new process by forking the default template: a small
 * `afork-server` started on first use and shared by every caller in the
 * program. Forking it is fast, whatever the size of the calling program,
 * and never forks the calling program itself. If the default template has
 * died, a new one is started.
 *
 * Returns: (transfer full): the new process, or %NULL if the default
 *   template could not be started
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_new (GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return new_from_shared_template (FALSE, error);
}

/**
 * afork_process_new_exec:
 * @error: return location for a #GError
 *
 * Creates a new process by executing a fresh `afork-server` (see
 * [func@Afork.get_server_path]). The program is started with
 * `posix_spawn()`, so the calling program is never forked; the server
 * closes every descriptor it inherited besides its socket and standard
 * input, output and error.
 *
 * This is slower than [ctor@Afork.Process.new] but leaves no template
 * behind. The process is a direct child of the caller, reaped by GLib.
 *
 * Returns: (transfer full): the new process, or %NULL if the server could
 *   not be started
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_new_exec (GError **error)
{
  GSubprocess *subprocess = NULL;
  AforkProcess *self;
  GError *local_error = NULL;
  int fd;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = new_from_shared_template (TRUE, &local_error);
  if (self != NULL || local_error != NULL)
    {
      if (local_error != NULL)
        g_propagate_error (error, local_error);
      return self;
    }

  if (!_afork_spawn_server (&fd, &subprocess, error))
    return NULL;

  return _afork_process_new_for_fd (fd, subprocess,
                                    (GPid) g_ascii_strtoll (g_subprocess_get_identifier (subprocess),
                                                            NULL, 10),
                                    -1);
}

/**
 * afork_process_fork:
 * @self: an #AforkProcess
 *
 * Creates a new process by forking @self, which thereby serves as a
 * template: the new process inherits the modules @self loaded, the effects
 * of its call functions and the run arguments sent to it so far, and gets
 * its own commands after that. For example, send a listening socket to a
 * template and fork a pool of workers from it.
 *
 * The request is queued like any command and the new process can be
 * prepared at once, without waiting for the fork. If @self has failed or
 * has already run, the new process reports that error at
 * [method@Afork.Process.run_finish].
 *
 * Returns: (transfer full): the new process
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_fork (AforkProcess *self)
{
  g_autoptr(GError) error = NULL;
  AforkForkRequest request;
  AforkProcess *child;
  gsize offsets[2];

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);

  if (self->error != NULL)
    return new_failed (g_error_copy (self->error));

  if (self->fd < 0 || self->ran)
    return new_failed (g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CLOSED,
                                            _("Cannot fork a process that was already run or handed over")));

  if (!_afork_fork_request_init (&request, &error))
    return new_failed (g_steal_pointer (&error));

  _afork_fork_request_put_frames (self->out, offsets);
  for (guint i = 0; i < 2; i++)
    {
      QueuedFd q = { request.send_fds[i], offsets[i] };

      _afork_track_fd (q.fd);
      g_array_append_val (self->out_fds, q);
      request.send_fds[i] = -1;
    }
  flush_soon (self);

  child = _afork_process_new_for_fd (request.sock, NULL, 0, request.status);

  return child;
}

/**
 * afork_process_require:
 * @self: an #AforkProcess
 * @module: (type filename): the module to load
 *
 * Loads a module (a shared library) into the process with `GModule`, so
 * that its functions can be called by [method@Afork.Process.call] and
 * run by [method@Afork.Process.run_async].
 *
 * @module is a path if it contains a slash. Otherwise it is looked up in
 * each directory of the `AFORK_MODULE_PATH` environment variable (as
 * `DIR/module`, `DIR/libmodule.so` and `DIR/module.so`), then by the
 * dynamic linker's usual search. A module that cannot be loaded makes
 * [method@Afork.Process.run_finish] fail with
 * %AFORK_ERROR_MODULE_NOT_FOUND.
 *
 * Returns: (transfer none): @self, to chain calls
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_require (AforkProcess *self,
                       const char   *module)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (module != NULL, self);

  queue_strings (self, AFORK_WIRE_REQUIRE, module, strlen (module), NULL);

  return self;
}

/**
 * afork_process_call:
 * @self: an #AforkProcess
 * @function: the name of a call function
 * @args: (array zero-terminated=1) (nullable): strings to pass to it
 *
 * Calls @function in the process, with @args. It must be an exported
 * [callback@Afork.CallFunc] of a module loaded with
 * [method@Afork.Process.require] or of the server program. This is the
 * place for initialisation; the function returns to afork's command loop
 * when done. If it fails, the process reports its error at
 * [method@Afork.Process.run_finish] (with %AFORK_ERROR_CALL_FAILED) and
 * skips all further work.
 *
 * Returns: (transfer none): @self, to chain calls
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_call (AforkProcess       *self,
                    const char         *function,
                    const char * const *args)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (function != NULL, self);

  queue_strings (self, AFORK_WIRE_CALL, function, strlen (function), args);

  return self;
}

/**
 * afork_process_send_arg:
 * @self: an #AforkProcess
 * @arg: a string
 *
 * Appends a string to the process's run arguments, which the run function
 * and later call functions read through [struct@Afork.Child]. Use
 * [method@Afork.Process.send_bytes] for binary data.
 *
 * Returns: (transfer none): @self, to chain calls
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_send_arg (AforkProcess *self,
                        const char   *arg)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (arg != NULL, self);

  queue_strings (self, AFORK_WIRE_ARGS, arg, strlen (arg), NULL);

  return self;
}

/**
 * afork_process_send_bytes:
 * @self: an #AforkProcess
 * @bytes: the argument's data
 *
 * Appends a binary-safe argument to the process's run arguments: the
 * child gets exactly the bytes of @bytes, NUL bytes included (see
 * [method@Afork.Child.get_arg]). An argument is meant for parameters, not
 * bulk data, and may be at most 256 MiB.
 *
 * Returns: (transfer none): @self, to chain calls
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_send_bytes (AforkProcess *self,
                          GBytes       *bytes)
{
  gconstpointer data;
  gsize size;

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (bytes != NULL, self);

  data = g_bytes_get_data (bytes, &size);
  queue_strings (self, AFORK_WIRE_ARGS, data ? data : "", size, NULL);

  return self;
}

/**
 * afork_process_send_fd:
 * @self: an #AforkProcess
 * @fd: a file descriptor
 *
 * Appends a file descriptor to the process's run arguments. The
 * descriptor is duplicated at once, so the caller may close @fd as soon as
 * this returns. A descriptor that is not open is reported by
 * [method@Afork.Process.run_finish] with %AFORK_ERROR_INVALID_ARGUMENT.
 *
 * Returns: (transfer none): @self, to chain calls
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_send_fd (AforkProcess *self,
                       int           fd)
{
  int copy;

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (fd >= 0, self);

  if (!can_queue (self))
    return self;

  copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    {
      int saved_errno = errno;

      set_error (self, g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                    /* TRANSLATORS: %d is a file descriptor number */
                                    _("Cannot send file descriptor %d: %s"),
                                    fd, g_strerror (saved_errno)));
      discard_queue (self);
      return self;
    }

  queue_fd (self, copy);
  flush_soon (self);

  return self;
}

/* The state of a run, from the `r` command to the child's reply. */
typedef struct
{
  GSource *io_source;
  GSource *cancel_source;
  guint8   header[AFORK_WIRE_HEADER_SIZE];
  gsize    header_got;
  guint8   command;
  guint8  *payload;
  guint32  payload_len;
  gsize    payload_got;
} RunData;

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
run_data_free (RunData *data)
{
  clear_source (&data->io_source);
  clear_source (&data->cancel_source);
  g_free (data->payload);
  g_free (data);
}

static void
close_socket (AforkProcess *self)
{
  clear_fd (&self->fd);
  discard_queue (self);
}

/* Completes the run: with @connection on success, else with @error, after
 * closing the socket, which makes a process that has not started its
 * function exit: nothing is left behind. */
static void
run_return (GTask             *task,
            GSocketConnection *connection,
            GError            *error)
{
  AforkProcess *self = g_task_get_source_object (task);
  RunData *data = g_task_get_task_data (task);

  clear_source (&data->io_source);
  clear_source (&data->cancel_source);

  if (error != NULL)
    {
      close_socket (self);
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, connection, g_object_unref);
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
    res = recv (fd, buf, want, MSG_DONTWAIT);
  while (res < 0 && errno == EINTR);

  return res;
}

/* Reads into @buf until @got reaches @want. Returns FLUSH_DONE, or
 * FLUSH_BLOCKED to wait, or FLUSH_FAILED at end of stream. */
static FlushResult
read_exactly (int     fd,
              guint8 *buf,
              gsize  *got,
              gsize   want)
{
  while (*got < want)
    {
      gssize res = read_some (fd, buf + *got, want - *got);

      if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return FLUSH_BLOCKED;
      if (res <= 0)
        return FLUSH_FAILED;
      *got += res;
    }

  return FLUSH_DONE;
}

static gboolean
run_reply_cb (int                         fd,
              G_GNUC_UNUSED GIOCondition  condition,
              gpointer      user_data)
{
  GTask *task = user_data;
  AforkProcess *self = g_task_get_source_object (task);
  RunData *data = g_task_get_task_data (task);
  GError *error = NULL;
  GSocket *socket;
  GPid pid = 0;
  FlushResult res;

  if (data->payload == NULL)
    {
      res = read_exactly (fd, data->header, &data->header_got, AFORK_WIRE_HEADER_SIZE);
      if (res == FLUSH_BLOCKED)
        return G_SOURCE_CONTINUE;
      if (res == FLUSH_FAILED)
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
      data->payload = g_malloc (MAX (data->payload_len, 1));
    }

  res = read_exactly (fd, data->payload, &data->payload_got, data->payload_len);
  if (res == FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;
  if (res == FLUSH_FAILED)
    goto exited;

  if (!_afork_wire_parse_reply (data->command, data->payload, data->payload_len,
                                &pid, &error))
    goto failed;

  socket = g_socket_new_from_fd (self->fd, &error);
  if (socket == NULL)
    goto failed;
  _afork_untrack_fd (self->fd);
  self->fd = -1;

  if (self->pid != pid)
    {
      self->pid = pid;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
    }

  run_return (task, g_socket_connection_factory_create_connection (socket), NULL);
  g_object_unref (socket);

  return G_SOURCE_REMOVE;

exited:
  error = g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                               _("The process exited before it could run its function"));
failed:
  run_return (task, NULL, error);

  return G_SOURCE_REMOVE;
}

static void
run_watch (GTask             *task,
           GIOCondition       condition,
           GUnixFDSourceFunc  callback)
{
  AforkProcess *self = g_task_get_source_object (task);
  RunData *data = g_task_get_task_data (task);

  clear_source (&data->io_source);
  data->io_source = g_unix_fd_source_new (self->fd, condition);
  g_task_attach_source (task, data->io_source, (GSourceFunc) G_CALLBACK (callback));
}

static gboolean
run_write_cb (G_GNUC_UNUSED int           fd,
              G_GNUC_UNUSED GIOCondition  condition,
              gpointer      user_data)
{
  GTask *task = user_data;
  AforkProcess *self = g_task_get_source_object (task);

  if (flush (self) == FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;

  /* Written, or the process went away: either way its reply (or its
   * reason for leaving) is what counts now. */
  discard_queue (self);
  run_watch (task, G_IO_IN, run_reply_cb);

  return G_SOURCE_REMOVE;
}

static gboolean
run_cancelled_cb (G_GNUC_UNUSED GCancellable *cancellable,
                  gpointer      user_data)
{
  run_return (user_data, NULL,
              g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   _("Operation was cancelled")));

  return G_SOURCE_REMOVE;
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
 * @self cannot be used for anything else afterwards.
 *
 * Cancelling closes the connection: a process that has not entered its
 * run function yet exits.
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
  g_autoptr(GTask) task = NULL;
  RunData *data;

  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, afork_process_run_async);
  g_task_set_name (task, "[afork] process run");
  data = g_new0 (RunData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);

  if (self->ran || (self->fd < 0 && self->error == NULL))
    {
      g_task_return_new_error (task, AFORK_ERROR, AFORK_ERROR_CLOSED,
                               _("The process was already run or handed over"));
      return;
    }

  queue_strings (self, AFORK_WIRE_RUN, function, strlen (function), NULL);
  self->ran = TRUE;
  /* From now on the run's own sources, in the caller's context, write. */
  cancel_write_source (self);

  if (self->error != NULL)
    {
      run_return (task, NULL, g_steal_pointer (&self->error));
      return;
    }

  if (g_task_return_error_if_cancelled (task))
    {
      close_socket (self);
      return;
    }

  if (cancellable != NULL)
    {
      data->cancel_source = g_cancellable_source_new (cancellable);
      g_task_attach_source (task, data->cancel_source,
                            (GSourceFunc) G_CALLBACK (run_cancelled_cb));
    }

  /* queue_strings() wrote what it could; wait for room for the rest, if
   * any, then for the reply. */
  run_watch (task, self->out_pos < self->out->len ? G_IO_OUT : G_IO_IN,
             self->out_pos < self->out->len ? run_write_cb : run_reply_cb);
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
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == afork_process_run_async, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
run_sync_cb (G_GNUC_UNUSED GObject *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

/**
 * afork_process_run:
 * @self: an #AforkProcess
 * @function: the name of the run function
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The synchronous form of [method@Afork.Process.run_async]: blocks until
 * the process has entered @function, or failed.
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_run (AforkProcess  *self,
                   const char    *function,
                   GCancellable  *cancellable,
                   GError       **error)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  context = g_main_context_new ();
  g_main_context_push_thread_default (context);

  afork_process_run_async (self, function, cancellable, run_sync_cb, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);

  g_main_context_pop_thread_default (context);

  return afork_process_run_finish (self, result, error);
}

/**
 * afork_process_get_pid:
 * @self: an #AforkProcess
 *
 * Gets the process id of the child. It is known once
 * [method@Afork.Process.run_async] has completed, for every kind of
 * process, and from the start for a process made by
 * [ctor@Afork.Process.new_exec], which is a direct child of the caller.
 * Processes forked from a template are not the caller's children: the
 * template reaps them.
 *
 * Returns: the process id, or 0 while unknown
 *
 * Since: 1.0
 */
GPid
afork_process_get_pid (AforkProcess *self)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), 0);

  return self->pid;
}
