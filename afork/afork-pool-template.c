/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AforkPool: its template. The pool watches the template's connection
 * from the pool thread; once the template has exited, no worker is
 * started until its wait status is in. A template the pool made is made
 * again (once, unless the new one made a worker); the caller's template
 * cannot be, and the calls fail with AFORK_ERROR_TEMPLATE_EXITED. A worker
 * that could not start holds the queue a moment while the template's exit
 * would show. */
#include "afork-private.h"

#include "afork-pool-private.h"

#include <poll.h>
#include <sys/socket.h>

#include <glib-unix.h>

#include "afork-process-private.h"

/* The template's end of its connection is closed: it has exited. A
 * template that is only waited for (its fork request still queued) holds
 * it open. */
gboolean
_afork_pool_template_gone_locked (Core *core)
{
  struct pollfd pfd = { .events = POLLIN };
  char byte;

  if (core->template_process == NULL)
    return FALSE;
  pfd.fd = core->template_process->fd;
  if (pfd.fd < 0 || poll (&pfd, 1, 0) != 1)
    return FALSE;

  return (pfd.revents & (POLLHUP | POLLERR)) != 0 ||
         recv (pfd.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static GError *
template_exit_error (AforkProcess *template_process,
                     gboolean      status_known)
{
  if (status_known && afork_process_get_if_signaled (template_process))
    {
      int sig = afork_process_get_term_sig (template_process);

      return g_error_new (AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED,
                          /* TRANSLATORS: a signal number and its name */
                          _("The template of the pool was killed by signal %d (%s); "
                            "the pool cannot start workers"),
                          sig, g_strsignal (sig));
    }
  if (status_known)
    return g_error_new (AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED,
                        /* TRANSLATORS: %d is an exit status */
                        _("The template of the pool exited with status %d; "
                          "the pool cannot start workers"),
                        afork_process_get_exit_status (template_process));

  return g_error_new_literal (AFORK_ERROR, AFORK_ERROR_TEMPLATE_EXITED,
                              _("The template of the pool exited; the pool cannot start workers"));
}

static void
template_exit_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  AforkProcess *template_process = AFORK_PROCESS (object);
  Core *core = user_data;
  AforkProcess *fresh = NULL;
  GError *fresh_error = NULL;
  gboolean again = FALSE;
  GError *error;

  error = template_exit_error (template_process,
                               afork_process_wait_finish (template_process, result, NULL));

  /* The pool's own template is made again, unless it was made again
   * already and never made a worker (no loop of templates), or the pool
   * is closing with nothing left to do. Made outside the lock: it may
   * wait for room in the default template's socket. */
  _afork_pool_core_lock (core);
  if (core->template_process == template_process && !core->disposed)
    {
      again = core->own_template && (core->ever_ready || !core->template_replaced) &&
              !(core->closing && core->queue.length == 0);
      if (!again)
        {
          core->template_lost = FALSE;
          if (core->template_error == NULL)
            core->template_error = g_steal_pointer (&error);
          _afork_pool_maintain_locked (core);
        }
    }
  _afork_pool_core_unlock (core);

  if (again)
    {
      fresh = afork_process_new (&fresh_error);

      _afork_pool_core_lock (core);
      if (core->template_process == template_process && !core->disposed)
        {
          core->template_lost = FALSE;
          g_object_unref (core->template_process);
          core->template_process = g_steal_pointer (&fresh);
          if (core->template_process == NULL && core->template_error == NULL)
            core->template_error = g_steal_pointer (&fresh_error);
          core->template_generation++;
          core->template_replaced = TRUE;
          core->ever_ready = FALSE;
          _afork_pool_template_watch_locked (core);
          _afork_pool_maintain_locked (core);
        }
      _afork_pool_core_unlock (core);
    }

  g_clear_object (&fresh);
  g_clear_error (&fresh_error);
  g_clear_error (&error);
  _afork_pool_core_unref (core);
}

void
_afork_pool_template_unwatch_locked (Core *core)
{
  if (core->template_watch != NULL)
    {
      g_source_destroy (core->template_watch);
      g_clear_pointer (&core->template_watch, g_source_unref);
    }
}

/* The template has exited: waits for its status, starting no worker. */
void
_afork_pool_template_lost_locked (Core *core)
{
  _afork_pool_template_unwatch_locked (core);
  g_clear_error (&core->spawn_error);
  if (core->template_lost)
    return;

  core->template_lost = TRUE;
  g_atomic_ref_count_inc (&core->ref);
  afork_process_wait_async (core->template_process, NULL, template_exit_cb, core);
}

static gboolean
template_hup_cb (G_GNUC_UNUSED gint         fd,
                 G_GNUC_UNUSED GIOCondition condition,
                 gpointer                   user_data)
{
  Core *core = user_data;

  _afork_pool_core_lock (core);
  if (core->template_watch == g_main_current_source () && !core->disposed)
    {
      _afork_pool_template_lost_locked (core);
      _afork_pool_maintain_locked (core);
    }
  _afork_pool_core_unlock (core);

  return G_SOURCE_REMOVE;
}

/* Watches the template's connection from the pool thread, so that its
 * exit is known even when no worker is being started. The watch holds no
 * reference: it goes before the core does
 * (_afork_pool_template_unwatch_locked ()). */
void
_afork_pool_template_watch_locked (Core *core)
{
  if (core->template_watch != NULL || core->template_lost || core->template_process == NULL ||
      core->template_process->fd < 0)
    return;

  core->template_watch = g_unix_fd_source_new (core->template_process->fd, G_IO_HUP | G_IO_ERR);
  g_source_set_callback (core->template_watch, (GSourceFunc) (void (*) (void)) template_hup_cb,
                         core, NULL);
  g_source_set_static_name (core->template_watch, "[afork] pool template");
  g_source_attach (core->template_watch, _afork_pool_context ());
}

/* Calls wait for no worker that cannot start: they fail with its error,
 * and for good if the template never made a worker (no loop of
 * respawns). */
void
_afork_pool_fail_start_locked (Core   *core,
                               GError *error)
{
  g_autoptr(GError) start_error = NULL;

  start_error = g_error_new (AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED,
                             _("No worker could be started: %s"), error->message);
  if (!core->ever_ready && core->template_error == NULL)
    core->template_error = g_error_copy (start_error);
  _afork_pool_fail_queue_locked (core, start_error);
}

/* A worker could not start. If it died, so may have its template, whose
 * connection may close an instant after the worker's: the calls wait a
 * moment to tell (_afork_pool_maintain_locked ()). Once the template is
 * known to have exited, its wait status decides (template_exit_cb ()). */
void
_afork_pool_start_failed_locked (Core   *core,
                                 GError *error)
{
  if (!g_error_matches (error, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED))
    {
      /* A missing module, say: the template's own error. */
      if (!core->ever_ready && core->template_error == NULL)
        core->template_error = g_error_copy (error);
      _afork_pool_fail_queue_locked (core, error);
      return;
    }

  if (_afork_pool_template_gone_locked (core))
    _afork_pool_template_lost_locked (core);
  else if (core->spawn_error == NULL && !core->template_lost)
    {
      core->spawn_error = g_error_copy (error);
      core->spawn_error_until = g_get_monotonic_time () + SPAWN_ERROR_WAIT_USEC;
    }
}
