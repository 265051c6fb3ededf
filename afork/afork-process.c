/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The AforkProcess object, its constructors and its chainable commands. */
#include "afork-process-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "afork-template-private.h"
#include "afork-wire-private.h"

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
 * Creating an `AforkProcess` with g_object_new() (as `Afork.Process()`
 * does in Python and `new Afork.Process()` in GJS) is the same as
 * [ctor@Afork.Process.new]: a fork of the default template. If that
 * template cannot be started, the error is reported by
 * [method@Afork.Process.run_finish].
 *
 * Dropping the last reference before running makes the process exit once
 * it has read the commands queued so far. An `AforkProcess` is used from
 * one thread at a time; [ctor@Afork.Process.new] may be called from any
 * thread.
 *
 * Since: 1.0
 */

G_DEFINE_FINAL_TYPE (AforkProcess, afork_process, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_PID,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Set while the library makes a process itself: a process made by
 * g_object_new() alone (a language binding's constructor) forks the
 * default template, as afork_process_new() does. */
static GPrivate constructing_internally;


static void
queued_fd_clear (gpointer data)
{
  AforkQueuedFd *q = data;

  _afork_process_clear_fd (&q->fd);
}

static void
afork_process_dispose (GObject *object)
{
  AforkProcess *self = (AforkProcess *) object;

  _afork_process_cancel_write_source (self);
  g_clear_object (&self->upstream);
  if (self->fd >= 0)
    {
      /* A last try; closing the socket then makes the process exit. */
      _afork_process_flush (self);
      _afork_process_clear_fd (&self->fd);
    }
  _afork_process_discard_queue (self);
  _afork_process_clear_fd (&self->status_fd);

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
  g_clear_pointer (&self->waiters, g_ptr_array_unref);
  g_mutex_clear (&self->status_lock);
  g_rec_mutex_clear (&self->queue_lock);

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

/* g_object_new() alone: what afork_process_new() does. A failure is kept
 * and reported by the first finish, like any error met while queueing. */
static void
afork_process_constructed (GObject *object)
{
  AforkProcess *self = (AforkProcess *) object;
  AforkForkRequest request;
  GError *error = NULL;
  gboolean forked = FALSE;

  G_OBJECT_CLASS (afork_process_parent_class)->constructed (object);

  if (g_private_get (&constructing_internally) != NULL)
    return;

  if (!_afork_fork_request_init (&request, &error))
    {
      self->error = error;
      return;
    }

  if (!_afork_registry_fork (&request, FALSE, &forked, &error) || !forked)
    {
      _afork_fork_request_clear (&request);
      self->error = error != NULL ? error :
        g_error_new_literal (AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED,
                             _("The default template could not be started"));
      return;
    }

  self->fd = request.sock;
  _afork_track_fd (self->fd);
  self->status_fd = request.status;
  _afork_track_fd (self->status_fd);
}

/**
 * AforkProcessClass:
 * @parent_class: the parent class
 *
 * The class of [class@Afork.Process]. It is final: there is nothing to
 * override.
 *
 * Since: 1.0
 */

static void
afork_process_class_init (AforkProcessClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = afork_process_constructed;
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
  g_mutex_init (&self->status_lock);
  g_rec_mutex_init (&self->queue_lock);
  self->context = g_main_context_ref_thread_default ();
  self->out = g_byte_array_new ();
  self->out_fds = g_array_new (FALSE, FALSE, sizeof (AforkQueuedFd));
  g_array_set_clear_func (self->out_fds, queued_fd_clear);
}

AforkProcess *
_afork_process_new_for_fd (int          fd,
                           GSubprocess *subprocess,
                           GPid         pid,
                           int          status_fd)
{
  AforkProcess *self;

  g_private_set (&constructing_internally, GINT_TO_POINTER (1));
  self = g_object_new (AFORK_TYPE_PROCESS, NULL);
  g_private_set (&constructing_internally, NULL);

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

AforkProcess *
_afork_process_new_failed (GError *error)
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
 * would; other threads and main loops are not held up meanwhile. A
 * template that takes no request at all for ten seconds while it is
 * stopped (SIGSTOP, a debugger), or for a minute whatever its state, is
 * replaced by a new one.
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
  const char *identifier;
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

  /* A server that died at once may be reaped already: its pid is then
   * unknown, and its run reports that it exited. */
  identifier = g_subprocess_get_identifier (subprocess);

  return _afork_process_new_for_fd (fd, subprocess,
                                    identifier ? (GPid) g_ascii_strtoll (identifier, NULL, 10) : 0,
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
    return _afork_process_new_failed (g_error_copy (self->error));

  if (self->fd < 0 || self->ran)
    return _afork_process_new_failed (g_error_new_literal (AFORK_ERROR, AFORK_ERROR_CLOSED,
                                            _("Cannot fork a process that was already run or handed over")));

  if (!_afork_fork_request_init (&request, &error))
    return _afork_process_new_failed (g_steal_pointer (&error));

  g_rec_mutex_lock (&self->queue_lock);
  _afork_fork_request_put_frames (self->out, offsets);
  for (guint i = 0; i < 2; i++)
    {
      _afork_process_queue_fd (self, request.send_fds[i], offsets[i]);
      request.send_fds[i] = -1;
    }
  _afork_process_flush_soon (self);
  g_rec_mutex_unlock (&self->queue_lock);

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

  _afork_process_queue_strings (self, AFORK_WIRE_REQUIRE, module, strlen (module), NULL);

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

  _afork_process_queue_strings (self, AFORK_WIRE_CALL, function, strlen (function), args);

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

  _afork_process_queue_strings (self, AFORK_WIRE_ARGS, arg, strlen (arg), NULL);

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
  _afork_process_queue_strings (self, AFORK_WIRE_ARGS, data ? data : "", size, NULL);

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
  g_return_val_if_fail (AFORK_IS_PROCESS (self), NULL);
  g_return_val_if_fail (fd >= 0, self);

  if (!_afork_process_can_queue (self))
    return self;

  if (_afork_process_queue_dup_fd (self, fd))
    _afork_process_flush_soon (self);
  else
    _afork_process_discard_queue (self);

  return self;
}

/**
 * afork_process_new_from_fd:
 * @fd: the socket of a process, as handed over by
 *   [method@Afork.Process.hand_over]
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
 * Returns: (transfer full): the process, or %NULL if @fd is not a unix
 *   stream socket
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_new_from_fd (int      fd,
                           GError **error)
{
  int type = 0, domain = 0;
  socklen_t len = sizeof type;
  socklen_t domain_len = sizeof domain;
  int copy;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* Only a unix socket carries descriptors: a TCP connection is not a
   * process's, whatever listens at its other end. */
  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM ||
      getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &domain, &domain_len) != 0 || domain != AF_UNIX)
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
 *   [method@Afork.Process.hand_over]
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

void
_afork_process_set_pid (AforkProcess *self,
                        GPid          pid)
{
  if (self->pid != pid)
    {
      self->pid = pid;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PID]);
    }
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
