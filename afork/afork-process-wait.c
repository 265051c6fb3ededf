/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting for a process to exit, and its wait status: from GSubprocess
 * for a server we spawned, else from the status channel on which the
 * process's template reports it. */
#include "afork-process-private.h"

#include <glib-unix.h>
#include <sys/wait.h>

#include "afork-wire-private.h"

void
_afork_process_set_status (AforkProcess *self,
                           int           status)
{
  self->wait_status = status;
  self->exited = TRUE;
  _afork_process_clear_fd (&self->status_fd);
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

  _afork_process_set_status (self, g_subprocess_get_status (G_SUBPROCESS (object)));
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
  _afork_clear_source (&data->source);
  _afork_clear_source (&data->cancel_source);
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
  AforkFlushResult res;

  if (self->exited)
    res = AFORK_FLUSH_DONE;   /* another wait read it */
  else
    res = _afork_read_exactly (fd, data->status, &data->got, sizeof data->status);

  if (res == AFORK_FLUSH_BLOCKED)
    return G_SOURCE_CONTINUE;

  _afork_clear_source (&data->source);
  _afork_clear_source (&data->cancel_source);

  if (res == AFORK_FLUSH_DONE)
    {
      if (!self->exited)
        _afork_process_set_status (self, (int) _afork_wire_read_u32 (data->status));
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

  _afork_clear_source (&data->source);
  _afork_clear_source (&data->cancel_source);
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

static void
wait_sync_cb (G_GNUC_UNUSED GObject *object,
              GAsyncResult          *result,
              gpointer               user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
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
  afork_process_wait_async (self, cancellable, wait_sync_cb, &result);
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

