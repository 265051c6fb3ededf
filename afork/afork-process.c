/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-process-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
  AforkProcess *upstream;      /* the template whose queue still holds our
                                * fork request */
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

/* Queues a frame of @command with a payload already encoded (by the
 * codec), for the commands other files of the library add (the sandbox). */
void
_afork_process_queue_frame (AforkProcess *self,
                            guint8        command,
                            const guint8 *payload,
                            gsize         len)
{
  gsize start;

  if (!can_queue (self))
    return;

  start = _afork_wire_begin (self->out, command);
  g_byte_array_append (self->out, payload, len);

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
  g_clear_object (&self->upstream);
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

  /* Both descriptors were made non-blocking. */
  self->fd = fd;
  if (fd >= 0)
    _afork_track_fd (fd);
  self->subprocess = subprocess;
  self->pid = pid;
  self->status_fd = status_fd;
  if (status_fd >= 0)
    _afork_track_fd (status_fd);

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
 * The request is written at once; the template handles requests in
 * order. Only when several hundred requests are waiting for it (a burst
 * of calls from a loop that does not let the processes run) does this
 * call wait for the template to catch up, as a write to a full pipe
 * would.
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
  /* Our request waits for self's queue, or for self to exist at all. */
  if (self->write_source != NULL || self->upstream != NULL)
    child->upstream = g_object_ref (self);

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

/* How a process is finished: entering a run function, becoming another
 * program, or being handed over as it is. */
typedef enum
{
  FINISH_RUN,
  FINISH_EXEC,
  FINISH_STEAL,
} FinishMode;

/* The state of a finish, from the last command to the child's reply (and
 * for an exec, to the end of its status channel). */
typedef struct
{
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
  guint8     exec_errno[AFORK_WIRE_EXEC_STATUS_SIZE];
  gsize      exec_errno_got;
  char      *exec_program;
  GSocketConnection *connection;  /* ready, for an exec waiting on its status */
} FinishData;

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
destroy_source (GSource *source)
{
  g_source_destroy (source);
  g_source_unref (source);
}

static void
finish_data_free (FinishData *data)
{
  clear_source (&data->io_source);
  clear_source (&data->cancel_source);
  g_clear_pointer (&data->upstream_sources, g_ptr_array_unref);
  if (data->exec_status_fd >= 0)
    close (data->exec_status_fd);
  g_free (data->payload);
  g_free (data->exec_program);
  g_clear_object (&data->connection);
  g_free (data);
}

static void
close_socket (AforkProcess *self)
{
  clear_fd (&self->fd);
  discard_queue (self);
}

/* Completes: with @connection on success, else with @error, after closing
 * the socket, which makes a process that has not started its function
 * exit: nothing is left behind. */
static void
finish_return (GTask             *task,
               GSocketConnection *connection,
               GError            *error)
{
  AforkProcess *self = g_task_get_source_object (task);
  FinishData *data = g_task_get_task_data (task);

  clear_source (&data->io_source);
  clear_source (&data->cancel_source);
  g_clear_pointer (&data->upstream_sources, g_ptr_array_unref);

  if (error != NULL)
    {
      g_clear_object (&connection);
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
    res = read (fd, buf, want);
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
  _afork_untrack_fd (self->fd);
  self->fd = -1;

  connection = g_socket_connection_factory_create_connection (socket);
  g_object_unref (socket);

  return connection;
}

static void finish_watch (GTask             *task,
                          int                fd,
                          GIOCondition       condition,
                          GUnixFDSourceFunc  callback);

static gboolean
exec_status_cb (int                         fd,
                G_GNUC_UNUSED GIOCondition  condition,
                gpointer                    user_data)
{
  GTask *task = user_data;
  FinishData *data = g_task_get_task_data (task);
  FlushResult res;
  int code;

  res = read_exactly (fd, data->exec_errno, &data->exec_errno_got, sizeof data->exec_errno);
  if (res == FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;

  if (data->exec_errno_got == 0)
    {
      /* End of file at once: the program replaced the server. */
      finish_return (task, g_steal_pointer (&data->connection), NULL);
      return G_SOURCE_REMOVE;
    }

  if (res == FLUSH_DONE)
    {
      code = (int) _afork_wire_read_u32 (data->exec_errno + 4);
      finish_return (task, NULL,
                     g_error_new (G_IO_ERROR, g_io_error_from_errno (code),
                                  /* TRANSLATORS: the first %s is a program, the second a reason */
                                  _("Cannot execute “%s”: %s"),
                                  data->exec_program, g_strerror (code)));
    }
  else
    finish_return (task, NULL,
                   g_error_new_literal (AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                                        _("Truncated exec status from the process")));

  return G_SOURCE_REMOVE;
}

static gboolean
finish_reply_cb (int                         fd,
                 G_GNUC_UNUSED GIOCondition  condition,
                 gpointer                    user_data)
{
  GTask *task = user_data;
  AforkProcess *self = g_task_get_source_object (task);
  FinishData *data = g_task_get_task_data (task);
  GSocketConnection *connection;
  GError *error = NULL;
  GPid pid = 0;
  FlushResult res;

  if (data->payload == NULL)
    {
      /* Every reply has at least 4 bytes of payload (an acknowledgement
       * has exactly that: the pid), so reading them with the header never
       * takes anything the run function wrote. One read, usually. */
      res = read_exactly (fd, data->header, &data->header_got, sizeof data->header);
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
      data->payload = g_malloc (MAX (data->payload_len, 4));
      data->payload_got = MIN (data->payload_len, 4);
      memcpy (data->payload, data->header + AFORK_WIRE_HEADER_SIZE, data->payload_got);
    }

  res = read_exactly (fd, data->payload, &data->payload_got, data->payload_len);
  if (res == FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;
  if (res == FLUSH_FAILED)
    goto exited;

  if (!_afork_wire_parse_reply (data->command, data->payload, data->payload_len,
                                &pid, &error))
    goto failed;

  if (self->pid != pid)
    {
      self->pid = pid;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
    }

  connection = take_connection (self, &error);
  if (connection == NULL)
    goto failed;

  if (data->mode == FINISH_EXEC)
    {
      data->connection = connection;
      finish_watch (task, data->exec_status_fd, G_IO_IN, exec_status_cb);
    }
  else
    finish_return (task, connection, NULL);

  return G_SOURCE_REMOVE;

exited:
  error = g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CHILD_EXITED,
                               _("The process exited before it could run its function"));
failed:
  finish_return (task, NULL, error);

  return G_SOURCE_REMOVE;
}

static void
finish_watch (GTask             *task,
              int                fd,
              GIOCondition       condition,
              GUnixFDSourceFunc  callback)
{
  FinishData *data = g_task_get_task_data (task);

  clear_source (&data->io_source);
  data->io_source = g_unix_fd_source_new (fd, condition);
  g_task_attach_source (task, data->io_source, (GSourceFunc) G_CALLBACK (callback));
}

/* Everything is written, or the process went away. */
static void
finish_written (GTask *task)
{
  AforkProcess *self = g_task_get_source_object (task);
  FinishData *data = g_task_get_task_data (task);
  GError *error = NULL;
  GSocketConnection *connection;

  if (data->mode != FINISH_STEAL)
    {
      /* Either way, the reply (or the reason for leaving) counts now. */
      discard_queue (self);
      finish_watch (task, self->fd, G_IO_IN, finish_reply_cb);
      return;
    }

  if (self->error != NULL)
    {
      finish_return (task, NULL, g_steal_pointer (&self->error));
      return;
    }

  connection = take_connection (self, &error);
  finish_return (task, connection, error);
}

static gboolean
finish_write_cb (G_GNUC_UNUSED int           fd,
                 G_GNUC_UNUSED GIOCondition  condition,
                 gpointer                    user_data)
{
  GTask *task = user_data;
  AforkProcess *self = g_task_get_source_object (task);

  if (flush (self) == FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;

  finish_written (task);

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

/* Starts finishing the process: checks it can be, lets @queue_last queue
 * the last command, then writes and waits. Returns the task, or NULL if it
 * completed already. */
static GTask *
finish_begin (AforkProcess        *self,
              FinishMode           mode,
              gpointer             source_tag,
              GCancellable        *cancellable,
              GAsyncReadyCallback  callback,
              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  FinishData *data;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, source_tag);
  data = g_new0 (FinishData, 1);
  data->mode = mode;
  data->exec_status_fd = -1;
  g_task_set_task_data (task, data, (GDestroyNotify) finish_data_free);

  if (self->ran || (self->fd < 0 && self->error == NULL))
    {
      g_task_return_new_error (task, AFORK_ERROR, AFORK_ERROR_CLOSED,
                               _("The process was already run or handed over"));
      return NULL;
    }

  /* Checked before the last command is queued: once it is written, the
   * child may start its function before the socket is closed. */
  if (self->error == NULL && g_task_return_error_if_cancelled (task))
    {
      self->ran = TRUE;
      cancel_write_source (self);
      close_socket (self);
      return NULL;
    }

  return g_steal_pointer (&task);
}

static gboolean
upstream_write_cb (G_GNUC_UNUSED int           fd,
                   G_GNUC_UNUSED GIOCondition  condition,
                   gpointer                    user_data)
{
  return flush (user_data) == FLUSH_BLOCKED ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void
finish_start (GTask *task)
{
  AforkProcess *self = g_task_get_source_object (task);
  FinishData *data = g_task_get_task_data (task);

  self->ran = TRUE;
  /* From now on the task's own sources, in the caller's context, write. */
  cancel_write_source (self);

  /* Our fork request (or that of a template up the chain) may still wait
   * in a template's queue, written from that template's context: write it
   * from ours too, so that a synchronous run (or a run in another context
   * of the same thread) cannot wait for a context nobody iterates. */
  for (AforkProcess *up = self->upstream; up != NULL; up = up->upstream)
    if (up->fd >= 0 && up->out_pos < up->out->len)
      {
        GSource *source = g_unix_fd_source_new (up->fd, G_IO_OUT);

        if (data->upstream_sources == NULL)
          data->upstream_sources = g_ptr_array_new_with_free_func ((GDestroyNotify) destroy_source);
        g_source_set_callback (source, (GSourceFunc) G_CALLBACK (upstream_write_cb),
                               g_object_ref (up), g_object_unref);
        g_source_attach (source, g_task_get_context (task));
        g_ptr_array_add (data->upstream_sources, source);
      }
  g_clear_object (&self->upstream);

  if (self->error != NULL)
    {
      finish_return (task, NULL, g_steal_pointer (&self->error));
      g_object_unref (task);
      return;
    }

  if (g_task_return_error_if_cancelled (task))
    {
      close_socket (self);
      g_object_unref (task);
      return;
    }

  if (g_task_get_cancellable (task) != NULL)
    {
      data->cancel_source = g_cancellable_source_new (g_task_get_cancellable (task));
      g_task_attach_source (task, data->cancel_source,
                            (GSourceFunc) G_CALLBACK (finish_cancelled_cb));
    }

  /* The commands were written as far as the socket took them; wait for
   * room for the rest, if any. */
  if (self->out_pos < self->out->len)
    finish_watch (task, self->fd, G_IO_OUT, finish_write_cb);
  else
    finish_written (task);

  g_object_unref (task);
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
  GTask *task;

  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (function != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = finish_begin (self, FINISH_RUN, afork_process_run_async,
                       cancellable, callback, user_data);
  if (task == NULL)
    return;

  g_task_set_name (task, "[afork] process run");
  queue_strings (self, AFORK_WIRE_RUN, function, strlen (function), NULL);
  finish_start (task);
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
  return finish_finish (self, result, afork_process_run_async, error);
}

/* Runs an async operation to completion in a private main context. */
typedef void (*StartFunc) (AforkProcess        *self,
                           gpointer             data,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data);

static void
sync_cb (G_GNUC_UNUSED GObject *object,
         GAsyncResult          *result,
         gpointer               user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static GAsyncResult *
run_sync (AforkProcess *self,
          StartFunc     start,
          gpointer      data,
          GCancellable *cancellable)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  GAsyncResult *result = NULL;

  g_main_context_push_thread_default (context);
  start (self, data, cancellable, sync_cb, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  return result;
}

static void
start_run (AforkProcess        *self,
           gpointer             function,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data)
{
  afork_process_run_async (self, function, cancellable, callback, user_data);
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
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (function != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  result = run_sync (self, start_run, (gpointer) function, cancellable);

  return afork_process_run_finish (self, result, error);
}

/* Queues a descriptor for the exec built-in; returns its stdio letter. */
static char
queue_exec_fd (AforkProcess *self,
               int           fd)
{
  int copy;

  if (fd == AFORK_EXEC_FD_SOCKET)
    return 's';
  if (fd < 0)
    return 'i';

  copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    {
      int saved_errno = errno;

      set_error (self, g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                    _("Cannot send file descriptor %d: %s"),
                                    fd, g_strerror (saved_errno)));
      return 'i';
    }

  queue_fd (self, copy);

  return 'f';
}

/**
 * afork_process_exec_async:
 * @self: an #AforkProcess
 * @argv: (array zero-terminated=1) (element-type filename): the program
 *   and its arguments; the program is searched in `PATH` if it has no slash
 * @envp: (array zero-terminated=1) (element-type filename) (nullable): the
 *   program's environment, or %NULL to keep the process's
 * @cwd: (type filename) (nullable): the working directory, or %NULL to
 *   keep the process's
 * @stdin_fd: the descriptor to use as standard input, or
 *   %AFORK_EXEC_FD_INHERIT, or %AFORK_EXEC_FD_SOCKET
 * @stdout_fd: the descriptor to use as standard output, likewise
 * @stderr_fd: the descriptor to use as standard error, likewise
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when the program started
 * @user_data: data for @callback
 *
 * Makes the process execute a program: the faster fork+exec. The process
 * takes @stdin_fd, @stdout_fd and @stderr_fd (duplicated at once, so the
 * caller may close them) as its standard input, output and error; with
 * %AFORK_EXEC_FD_SOCKET the connection to the parent is used instead, and
 * with %AFORK_EXEC_FD_INHERIT the server's own is kept (the caller's, for
 * the default template). Every other descriptor, the run arguments
 * included, is closed; signal handlers and the signal mask are reset.
 *
 * The callback runs once the program has started, or has failed to:
 * [method@Afork.Process.exec_finish] reports a program that cannot be
 * executed with an error in the %G_IO_ERROR domain made from the errno
 * (%G_IO_ERROR_NOT_FOUND for a missing program,
 * %G_IO_ERROR_PERMISSION_DENIED for one that is not executable). Its
 * process id is then [method@Afork.Process.get_pid], and
 * [method@Afork.Process.wait_async] reports its exit.
 *
 * Since: 1.0
 */
void
afork_process_exec_async (AforkProcess        *self,
                          const char * const  *argv,
                          const char * const  *envp,
                          const char          *cwd,
                          int                  stdin_fd,
                          int                  stdout_fd,
                          int                  stderr_fd,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  FinishData *data;
  GTask *task;
  char stdio[4] = { 0 };
  char argc[16];
  int status[2];
  gsize start;

  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (argv != NULL && argv[0] != NULL);
  g_return_if_fail (stdin_fd >= AFORK_EXEC_FD_SOCKET);
  g_return_if_fail (stdout_fd >= AFORK_EXEC_FD_SOCKET);
  g_return_if_fail (stderr_fd >= AFORK_EXEC_FD_SOCKET);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = finish_begin (self, FINISH_EXEC, afork_process_exec_async,
                       cancellable, callback, user_data);
  if (task == NULL)
    return;

  g_task_set_name (task, "[afork] process exec");
  data = g_task_get_task_data (task);
  data->exec_program = g_strdup (argv[0]);

  if (can_queue (self))
    {
      stdio[0] = queue_exec_fd (self, stdin_fd);
      stdio[1] = queue_exec_fd (self, stdout_fd);
      stdio[2] = queue_exec_fd (self, stderr_fd);
    }

  if (can_queue (self))
    {
      if (pipe2 (status, O_CLOEXEC | O_NONBLOCK) != 0)
        {
          GError *error = NULL;

          _afork_set_error_errno (&error, AFORK_ERROR_FAILED, errno, "pipe2()");
          set_error (self, error);
        }
      else
        {
          data->exec_status_fd = status[0];
          queue_fd (self, status[1]);
        }
    }

  if (can_queue (self))
    {
      g_snprintf (argc, sizeof argc, "%u", g_strv_length ((char **) argv));
      start = _afork_wire_begin (self->out, AFORK_WIRE_EXEC);
      _afork_wire_put_string (self->out, stdio, 3);
      _afork_wire_put_string (self->out, cwd ? cwd : "", cwd ? strlen (cwd) : 0);
      _afork_wire_put_string (self->out, envp ? "1" : "0", 1);
      _afork_wire_put_string (self->out, argc, strlen (argc));
      for (guint i = 0; argv[i] != NULL; i++)
        _afork_wire_put_string (self->out, argv[i], strlen (argv[i]));
      for (guint i = 0; envp != NULL && envp[i] != NULL; i++)
        _afork_wire_put_string (self->out, envp[i], strlen (envp[i]));
      if (!_afork_wire_end (self->out, start))
        set_error (self, g_error_new (AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                                      _("A command for the process is larger than %u bytes"),
                                      AFORK_WIRE_MAX_PAYLOAD));
      else
        flush_soon (self);
    }

  finish_start (task);
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

typedef struct
{
  const char * const *argv;
  const char * const *envp;
  const char         *cwd;
  int                 fds[3];
} ExecArgs;

static void
start_exec (AforkProcess        *self,
            gpointer             data,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  ExecArgs *args = data;

  afork_process_exec_async (self, args->argv, args->envp, args->cwd,
                            args->fds[0], args->fds[1], args->fds[2],
                            cancellable, callback, user_data);
}

/**
 * afork_process_exec:
 * @self: an #AforkProcess
 * @argv: (array zero-terminated=1) (element-type filename): the program
 *   and its arguments
 * @envp: (array zero-terminated=1) (element-type filename) (nullable): the
 *   program's environment, or %NULL to keep the process's
 * @cwd: (type filename) (nullable): the working directory, or %NULL
 * @stdin_fd: the descriptor to use as standard input, or
 *   %AFORK_EXEC_FD_INHERIT, or %AFORK_EXEC_FD_SOCKET
 * @stdout_fd: the descriptor to use as standard output, likewise
 * @stderr_fd: the descriptor to use as standard error, likewise
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The synchronous form of [method@Afork.Process.exec_async].
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_exec (AforkProcess        *self,
                    const char * const  *argv,
                    const char * const  *envp,
                    const char          *cwd,
                    int                  stdin_fd,
                    int                  stdout_fd,
                    int                  stderr_fd,
                    GCancellable        *cancellable,
                    GError             **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  ExecArgs args = { argv, envp, cwd, { stdin_fd, stdout_fd, stderr_fd } };

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (argv != NULL && argv[0] != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  result = run_sync (self, start_exec, &args, cancellable);

  return afork_process_exec_finish (self, result, error);
}

/**
 * afork_process_steal_connection_async:
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
 * @self cannot be used afterwards, but [method@Afork.Process.wait_async]
 * still reports the process's exit.
 *
 * Since: 1.0
 */
void
afork_process_steal_connection_async (AforkProcess        *self,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = finish_begin (self, FINISH_STEAL, afork_process_steal_connection_async,
                       cancellable, callback, user_data);
  if (task == NULL)
    return;

  g_task_set_name (task, "[afork] process steal connection");
  finish_start (task);
}

/**
 * afork_process_steal_connection_finish:
 * @self: an #AforkProcess
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Afork.Process.steal_connection_async].
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_steal_connection_finish (AforkProcess  *self,
                                       GAsyncResult  *result,
                                       GError       **error)
{
  return finish_finish (self, result, afork_process_steal_connection_async, error);
}

static void
start_steal (AforkProcess        *self,
             G_GNUC_UNUSED gpointer data,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data)
{
  afork_process_steal_connection_async (self, cancellable, callback, user_data);
}

/**
 * afork_process_steal_connection:
 * @self: an #AforkProcess
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The synchronous form of [method@Afork.Process.steal_connection_async].
 *
 * Returns: (transfer full): the connection to the process, or %NULL with
 *   @error set
 *
 * Since: 1.0
 */
GSocketConnection *
afork_process_steal_connection (AforkProcess  *self,
                                GCancellable  *cancellable,
                                GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  result = run_sync (self, start_steal, NULL, cancellable);

  return afork_process_steal_connection_finish (self, result, error);
}

/**
 * afork_process_new_from_fd:
 * @fd: the socket of a process, as handed over by
 *   [method@Afork.Process.steal_connection]
 * @error: return location for a #GError
 *
 * Makes an #AforkProcess of a process handed over by another
 * #AforkProcess, possibly in another program. The descriptor is
 * duplicated: the caller keeps @fd. The process goes on from where it
 * was: modules, call functions and arguments sent before stay.
 *
 * Its process id is known once it runs, and its exit status cannot be
 * waited for from here.
 *
 * Returns: (transfer full): the process, or %NULL if @fd is not a stream
 *   socket
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_new_from_fd (int      fd,
                           GError **error)
{
  int type = 0;
  socklen_t len = sizeof type;
  int copy;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT,
                   _("File descriptor %d is not the connection to a process"), fd);
      return NULL;
    }

  copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    {
      _afork_set_error_errno (error, AFORK_ERROR_INVALID_ARGUMENT, errno, "dup()");
      return NULL;
    }
  _afork_fd_set_blocking (copy, FALSE);

  return _afork_process_new_for_fd (copy, NULL, 0, -1);
}

/**
 * afork_process_new_from_connection:
 * @connection: the connection of a process, as handed over by
 *   [method@Afork.Process.steal_connection]
 * @error: return location for a #GError
 *
 * Makes an #AforkProcess of a process handed over by another
 * #AforkProcess; see [ctor@Afork.Process.new_from_fd]. The connection's
 * socket is duplicated, so @connection may be closed afterwards.
 *
 * Returns: (transfer full): the process, or %NULL with @error set
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_new_from_connection (GSocketConnection  *connection,
                                   GError            **error)
{
  g_return_val_if_fail (G_IS_SOCKET_CONNECTION (connection), NULL);

  return afork_process_new_from_fd (g_socket_get_fd (g_socket_connection_get_socket (connection)),
                                    error);
}

/**
 * afork_process_fork_self: (constructor)
 * @error: return location for a #GError
 *
 * Forks the calling program, now, into a template: everything the program
 * loaded and computed so far is shared with the processes forked from it
 * (by [method@Afork.Process.fork]), which can run functions of the main
 * program itself (export them: see [func@Afork.early_init]).
 *
 * Forking a program that runs more than one thread is exactly what afork
 * exists to avoid, so this fails with %AFORK_ERROR_THREADED if the program
 * has started a thread (GLib starts some itself, for example to watch
 * children, to resolve names or for D-Bus). Call it early, after loading
 * what the workers should share.
 *
 * The template is not a child of the caller; it exits when its last
 * connection is closed.
 *
 * Returns: (transfer full): the template, or %NULL with @error set
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_fork_self (GError **error)
{
  GPid pid;
  int fd;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  _afork_i18n_init ();

  if (!_afork_fork_server (&fd, &pid, error))
    return NULL;

  return _afork_process_new_for_fd (fd, NULL, pid, -1);
}

static void
set_status (AforkProcess *self,
            int           status)
{
  self->wait_status = status;
  self->exited = TRUE;
  clear_fd (&self->status_fd);
}

static void
wait_subprocess_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AforkProcess *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!g_subprocess_wait_finish (G_SUBPROCESS (object), result, &error))
    {
      g_task_return_error (task, error);
      return;
    }

  set_status (self, g_subprocess_get_status (G_SUBPROCESS (object)));
  g_task_return_boolean (task, TRUE);
}

typedef struct
{
  guint8   status[4];
  gsize    got;
  GSource *source;
  GSource *cancel_source;
} WaitData;

static void
wait_data_free (WaitData *data)
{
  clear_source (&data->source);
  clear_source (&data->cancel_source);
  g_free (data);
}

static gboolean
wait_status_cb (int                         fd,
                G_GNUC_UNUSED GIOCondition  condition,
                gpointer                    user_data)
{
  GTask *task = user_data;
  AforkProcess *self = g_task_get_source_object (task);
  WaitData *data = g_task_get_task_data (task);
  FlushResult res;

  if (self->exited)
    res = FLUSH_DONE;   /* another wait read it */
  else
    res = read_exactly (fd, data->status, &data->got, sizeof data->status);

  if (res == FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;

  clear_source (&data->source);
  clear_source (&data->cancel_source);

  if (res == FLUSH_DONE)
    {
      if (!self->exited)
        set_status (self, (int) _afork_wire_read_u32 (data->status));
      g_task_return_boolean (task, TRUE);
    }
  else
    g_task_return_new_error (task, AFORK_ERROR, AFORK_ERROR_STATUS_UNKNOWN,
                             _("The exit status of process %d is unknown: its template "
                               "exited before it"), (int) self->pid);

  return G_SOURCE_REMOVE;
}

static gboolean
wait_cancelled_cb (G_GNUC_UNUSED GCancellable *cancellable,
                   gpointer                    user_data)
{
  GTask *task = user_data;
  WaitData *data = g_task_get_task_data (task);

  clear_source (&data->source);
  clear_source (&data->cancel_source);
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           _("Operation was cancelled"));

  return G_SOURCE_REMOVE;
}

/**
 * afork_process_wait_async:
 * @self: an #AforkProcess
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): the function to call when the process exited
 * @user_data: data for @callback
 *
 * Waits for the process to exit, whether it is a child of the caller
 * ([ctor@Afork.Process.new_exec] without an early template) or was forked
 * by a template, which then reports its children's wait statuses. Read the
 * status with [method@Afork.Process.get_status] and its helpers once
 * [method@Afork.Process.wait_finish] returned %TRUE.
 *
 * The status cannot be known, and the wait fails with
 * %AFORK_ERROR_STATUS_UNKNOWN, for a template made by
 * [ctor@Afork.Process.fork_self] or [func@Afork.early_init] (which nobody
 * reaps on the caller's behalf), for a process made by
 * [ctor@Afork.Process.new_from_fd], and when the template of a process
 * dies before the process (a template whose connection is closed stays
 * until the children it reports on have exited, unless the owner exits).
 *
 * Since: 1.0
 */
void
afork_process_wait_async (AforkProcess        *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  WaitData *data;

  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, afork_process_wait_async);
  g_task_set_name (task, "[afork] process wait");

  if (self->exited)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  if (self->subprocess != NULL)
    {
      g_subprocess_wait_async (self->subprocess, cancellable, wait_subprocess_cb,
                               g_steal_pointer (&task));
      return;
    }

  if (self->status_fd < 0)
    {
      g_task_return_new_error (task, AFORK_ERROR, AFORK_ERROR_STATUS_UNKNOWN,
                               _("The exit status of this process cannot be known here"));
      return;
    }

  data = g_new0 (WaitData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) wait_data_free);
  data->source = g_unix_fd_source_new (self->status_fd, G_IO_IN);
  g_task_attach_source (task, data->source, (GSourceFunc) G_CALLBACK (wait_status_cb));

  if (cancellable != NULL)
    {
      data->cancel_source = g_cancellable_source_new (cancellable);
      g_task_attach_source (task, data->cancel_source,
                            (GSourceFunc) G_CALLBACK (wait_cancelled_cb));
    }
}

/**
 * afork_process_wait_finish:
 * @self: an #AforkProcess
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Afork.Process.wait_async].
 *
 * Returns: %TRUE if the process exited and its status is known
 *
 * Since: 1.0
 */
gboolean
afork_process_wait_finish (AforkProcess  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == afork_process_wait_async, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * afork_process_wait:
 * @self: an #AforkProcess
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The synchronous form of [method@Afork.Process.wait_async].
 *
 * Returns: %TRUE if the process exited and its status is known
 *
 * Since: 1.0
 */
gboolean
afork_process_wait (AforkProcess  *self,
                    GCancellable  *cancellable,
                    GError       **error)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  g_return_val_if_fail (AFORK_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  context = g_main_context_new ();
  g_main_context_push_thread_default (context);
  afork_process_wait_async (self, cancellable, sync_cb, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  return afork_process_wait_finish (self, result, error);
}

/**
 * afork_process_get_status:
 * @self: an #AforkProcess
 *
 * Gets the process's raw wait status, as `waitpid()` gives it (and as
 * [method@Gio.Subprocess.get_status] does), once
 * [method@Afork.Process.wait_finish] returned %TRUE. Prefer
 * [method@Afork.Process.get_if_exited] and its siblings.
 *
 * Returns: the wait status
 *
 * Since: 1.0
 */
int
afork_process_get_status (AforkProcess *self)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), 0);
  g_return_val_if_fail (self->exited, 0);

  return self->wait_status;
}

/**
 * afork_process_get_if_exited:
 * @self: an #AforkProcess
 *
 * Tells whether the process exited normally (by returning from its run
 * function or calling `exit()`), once waited for.
 *
 * Returns: %TRUE if the process exited normally
 *
 * Since: 1.0
 */
gboolean
afork_process_get_if_exited (AforkProcess *self)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (self->exited, FALSE);

  return WIFEXITED (self->wait_status);
}

/**
 * afork_process_get_exit_status:
 * @self: an #AforkProcess
 *
 * Gets the exit status of a process that exited normally (see
 * [method@Afork.Process.get_if_exited]).
 *
 * Returns: the exit status
 *
 * Since: 1.0
 */
int
afork_process_get_exit_status (AforkProcess *self)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), 1);
  g_return_val_if_fail (self->exited && WIFEXITED (self->wait_status), 1);

  return WEXITSTATUS (self->wait_status);
}

/**
 * afork_process_get_if_signaled:
 * @self: an #AforkProcess
 *
 * Tells whether the process was killed by a signal, once waited for.
 *
 * Returns: %TRUE if a signal killed the process
 *
 * Since: 1.0
 */
gboolean
afork_process_get_if_signaled (AforkProcess *self)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (self->exited, FALSE);

  return WIFSIGNALED (self->wait_status);
}

/**
 * afork_process_get_term_sig:
 * @self: an #AforkProcess
 *
 * Gets the signal that killed the process (see
 * [method@Afork.Process.get_if_signaled]).
 *
 * Returns: the signal number
 *
 * Since: 1.0
 */
int
afork_process_get_term_sig (AforkProcess *self)
{
  g_return_val_if_fail (AFORK_IS_PROCESS (self), 0);
  g_return_val_if_fail (self->exited && WIFSIGNALED (self->wait_status), 0);

  return WTERMSIG (self->wait_status);
}

/**
 * afork_process_get_pid:
 * @self: an #AforkProcess
 *
 * Gets the process id of the child. It is known once
 * [method@Afork.Process.run_async] (or an exec) has completed, for every
 * kind of process, and from the start for a process made by
 * [ctor@Afork.Process.new_exec] without an early template, which is a
 * direct child of the caller, and for [ctor@Afork.Process.fork_self].
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
