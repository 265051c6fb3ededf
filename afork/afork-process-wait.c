/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting for a process to exit, and its wait status: from GSubprocess
 * for a server we spawned, else from the status channel on which the
 * process's template reports it.
 *
 * The status channel has one reader and any number of waiters: each
 * waiter watches the channel from its own main context, whichever fires
 * first reads the status into the process, under a lock, and completes
 * every waiter; only then is the channel closed. The synchronous wait
 * makes no GTask (see afork-process-finish.c). */
#include "afork-process-private.h"

#include <glib-unix.h>
#include <sys/wait.h>

#include "afork-wire-private.h"

typedef struct
{
  AforkProcess *self;          /* owned */
  GMainContext *context;       /* owned */
  GTask        *task;          /* the asynchronous form, owned until it returns */
  gboolean      completed;     /* the synchronous form */
  GError       *error;
  GSource      *source;
  GSource      *cancel_source;
} Waiter;

void
_afork_process_set_status (AforkProcess *self,
                           int           status)
{
  self->wait_status = status;
  self->exited = TRUE;
}

static void
waiter_free (Waiter *waiter)
{
  _afork_clear_source (&waiter->source);
  _afork_clear_source (&waiter->cancel_source);
  g_clear_error (&waiter->error);
  g_clear_pointer (&waiter->context, g_main_context_unref);
  g_clear_object (&waiter->self);
  g_free (waiter);
}

/* Completes a waiter that is no longer on the process's list. */
static void
waiter_complete (Waiter *waiter,
                 GError *error)
{
  GTask *task;

  _afork_clear_source (&waiter->source);
  _afork_clear_source (&waiter->cancel_source);

  task = g_steal_pointer (&waiter->task);
  if (task == NULL)
    {
      waiter->error = error;
      waiter->completed = TRUE;
      return;
    }

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static GError *
status_lost_error (AforkProcess *self)
{
  return g_error_new (AFORK_ERROR, AFORK_ERROR_STATUS_UNKNOWN,
                      _("The exit status of process %d is unknown: its template "
                        "exited before it"), (int) self->pid);
}

static gboolean
wait_status_cb (int                         fd,
                G_GNUC_UNUSED GIOCondition  condition,
                gpointer                    user_data)
{
  Waiter *waiter = user_data;
  AforkProcess *self = waiter->self;
  g_autoptr(GPtrArray) waiters = NULL;

  g_mutex_lock (&self->status_lock);

  if (!self->exited && !self->status_lost)
    {
      AforkFlushResult res = _afork_read_exactly (fd, self->status_buf, &self->status_got,
                                                  sizeof self->status_buf);

      if (res == AFORK_FLUSH_BLOCKED)
        {
          g_mutex_unlock (&self->status_lock);
          return G_SOURCE_CONTINUE;
        }

      if (res == AFORK_FLUSH_DONE)
        _afork_process_set_status (self, (int) _afork_wire_read_u32 (self->status_buf));
      else
        self->status_lost = TRUE;
    }

  /* Known (or lost) for good: every waiter gets it, and only once none
   * watches the channel any more is it closed. */
  waiters = g_steal_pointer (&self->waiters);
  for (guint i = 0; i < waiters->len; i++)
    {
      Waiter *w = waiters->pdata[i];

      _afork_clear_source (&w->source);
      _afork_clear_source (&w->cancel_source);
    }
  _afork_process_clear_fd (&self->status_fd);

  g_mutex_unlock (&self->status_lock);

  for (guint i = 0; i < waiters->len; i++)
    waiter_complete (waiters->pdata[i], self->exited ? NULL : status_lost_error (self));

  return G_SOURCE_REMOVE;
}

static gboolean
wait_cancelled_cb (G_GNUC_UNUSED GCancellable *cancellable,
                   gpointer                    user_data)
{
  Waiter *waiter = user_data;
  AforkProcess *self = waiter->self;

  g_mutex_lock (&self->status_lock);
  if (self->waiters != NULL)
    g_ptr_array_remove (self->waiters, waiter);
  g_mutex_unlock (&self->status_lock);

  waiter_complete (waiter, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                _("Operation was cancelled")));

  return G_SOURCE_REMOVE;
}

/* Starts @waiter, or completes it at once when the status is known or
 * cannot be. */
static void
waiter_start (Waiter       *waiter,
              GCancellable *cancellable)
{
  AforkProcess *self = waiter->self;
  GError *error = NULL;

  g_mutex_lock (&self->status_lock);

  if (self->exited)
    {
      g_mutex_unlock (&self->status_lock);
      waiter_complete (waiter, NULL);
      return;
    }

  if (self->status_lost)
    {
      g_mutex_unlock (&self->status_lock);
      waiter_complete (waiter, status_lost_error (self));
      return;
    }

  if (self->status_fd < 0)
    {
      g_mutex_unlock (&self->status_lock);
      waiter_complete (waiter, g_error_new_literal (AFORK_ERROR, AFORK_ERROR_STATUS_UNKNOWN,
                                                    _("The exit status of this process cannot be known here")));
      return;
    }

  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      g_mutex_unlock (&self->status_lock);
      waiter_complete (waiter, error);
      return;
    }

  if (self->waiters == NULL)
    self->waiters = g_ptr_array_new ();
  g_ptr_array_add (self->waiters, waiter);

  waiter->source = g_unix_fd_source_new (self->status_fd, G_IO_IN);
  g_source_set_static_name (waiter->source, "[afork] process wait");
  g_source_set_callback (waiter->source, (GSourceFunc) G_CALLBACK (wait_status_cb), waiter, NULL);
  g_source_attach (waiter->source, waiter->context);

  if (cancellable != NULL)
    {
      waiter->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (waiter->cancel_source, (GSourceFunc) G_CALLBACK (wait_cancelled_cb),
                             waiter, NULL);
      g_source_attach (waiter->cancel_source, waiter->context);
    }

  g_mutex_unlock (&self->status_lock);
}

static Waiter *
waiter_new (AforkProcess *self)
{
  Waiter *waiter = g_new0 (Waiter, 1);

  waiter->self = g_object_ref (self);
  waiter->context = g_main_context_ref_thread_default ();

  return waiter;
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
 * Any number of waits may be pending at once, from any main context
 * (a synchronous wait while an asynchronous one is pending, say): the
 * status is read once, and every wait completes with it.
 *
 * Since: 1.0
 */
void
afork_process_wait_async (AforkProcess        *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GTask *task;
  Waiter *waiter;

  g_return_if_fail (AFORK_IS_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, afork_process_wait_async);
  g_task_set_name (task, "[afork] process wait");

  if (self->subprocess != NULL && !self->exited)
    {
      g_subprocess_wait_async (self->subprocess, cancellable, wait_subprocess_cb, task);
      return;
    }

  waiter = waiter_new (self);
  waiter->task = task;
  g_task_set_task_data (task, waiter, (GDestroyNotify) waiter_free);
  waiter_start (waiter, cancellable);
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
 * The synchronous form of [method@Afork.Process.wait_async]. For a
 * process forked by a template it starts no thread (see
 * [method@Afork.Process.run]).
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
  GMainContext *context;
  Waiter *waiter;
  gboolean ok;

  g_return_val_if_fail (AFORK_IS_PROCESS (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->subprocess != NULL && !self->exited)
    {
      if (!g_subprocess_wait (self->subprocess, cancellable, error))
        return FALSE;
      _afork_process_set_status (self, g_subprocess_get_status (self->subprocess));
      return TRUE;
    }

  context = g_main_context_new ();
  g_main_context_push_thread_default (context);
  waiter = waiter_new (self);
  waiter_start (waiter, cancellable);
  while (!waiter->completed)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);

  ok = waiter->error == NULL;
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&waiter->error));
  waiter_free (waiter);
  g_main_context_unref (context);

  return ok;
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

