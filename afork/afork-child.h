/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <glib.h>

#include "afork-version-macros.h"

G_BEGIN_DECLS

/**
 * AforkChild:
 *
 * The view a child process has of itself while afork prepares it: the
 * arguments sent by the parent, strings and file descriptors in the order
 * they were sent, and the socket connected to the parent.
 *
 * An `AforkChild` is handed to run functions ([callback@Afork.RunFunc])
 * and call functions ([callback@Afork.CallFunc]); it belongs to the server
 * and must not be freed. It lives until the process exits.
 *
 * Since: 1.0
 */
typedef struct _AforkChild AforkChild;

/**
 * AforkRunFunc:
 * @child: the child process
 *
 * The type of a run function: the function a child process enters when the
 * parent calls [method@Afork.Process.run_async]. It takes the process over;
 * when it returns, the process exits with status 0.
 *
 * Run functions are found by their symbol name, so they must be exported
 * (not `static`) from a module loaded with [method@Afork.Process.require]
 * or from the server program itself.
 *
 * Since: 1.0
 */
typedef void (*AforkRunFunc) (AforkChild *child);

/**
 * AforkCallFunc:
 * @child: the child process
 * @args: (array zero-terminated=1): the strings given to
 *   [method@Afork.Process.call]
 * @error: return location for a #GError
 *
 * The type of a call function: an initialisation function executed in the
 * child by [method@Afork.Process.call], which then returns to afork's
 * command loop. It sees the run arguments pending at that moment through
 * @child.
 *
 * Returns: %TRUE on success; %FALSE with @error set on failure, which makes
 *   the child report the error at `run` and exit
 *
 * Since: 1.0
 */
typedef gboolean (*AforkCallFunc) (AforkChild         *child,
                                   const char * const *args,
                                   GError            **error);

/**
 * AforkPoolFunc:
 * @child: the worker process
 * @parameters: the parameters of the call, as given to
 *   [method@Afork.Pool.call_async] (an empty tuple for %NULL)
 * @error: return location for a #GError
 *
 * The type of a pool function: a function a worker of an [class@Afork.Pool]
 * runs for each call that names it. Like run functions, pool functions are
 * found by their symbol name and must be exported.
 *
 * Descriptors sent with the call are reached with
 * [method@Afork.Child.get_call_fd]; descriptors for the reply are added
 * with [method@Afork.Child.add_reply_fd]. Events are sent with
 * [method@Afork.Child.emit_event].
 *
 * Returns: (nullable) (transfer full): the reply, which may be floating;
 *   %NULL without @error means an empty tuple. %NULL with @error set fails
 *   the call: the caller gets @error, with its domain, code and message.
 *
 * Since: 1.0
 */
typedef GVariant *(*AforkPoolFunc) (AforkChild  *child,
                                    GVariant    *parameters,
                                    GError     **error);

AFORK_AVAILABLE_IN_1_0
int          afork_child_get_fd      (AforkChild *child);
AFORK_AVAILABLE_IN_1_0
guint        afork_child_get_n_args  (AforkChild *child);
AFORK_AVAILABLE_IN_1_0
gboolean     afork_child_arg_is_fd   (AforkChild *child,
                                      guint       index);
AFORK_AVAILABLE_IN_1_0
const char  *afork_child_get_arg     (AforkChild *child,
                                      guint       index,
                                      gsize      *length);
AFORK_AVAILABLE_IN_1_0
int          afork_child_peek_fd     (AforkChild *child,
                                      guint       index);
AFORK_AVAILABLE_IN_1_0
int          afork_child_steal_fd    (AforkChild *child,
                                      guint       index);
AFORK_AVAILABLE_IN_1_0
void         afork_child_clear_args  (AforkChild *child);
AFORK_AVAILABLE_IN_1_0
GPid         afork_child_get_owner   (AforkChild *child);

AFORK_AVAILABLE_IN_1_0
int          afork_child_get_call_fd   (AforkChild *child,
                                        gint32      handle);
AFORK_AVAILABLE_IN_1_0
int          afork_child_steal_call_fd (AforkChild *child,
                                        gint32      handle);
AFORK_AVAILABLE_IN_1_0
gint32       afork_child_add_reply_fd  (AforkChild *child,
                                        int         fd);
AFORK_AVAILABLE_IN_1_0
void         afork_child_emit_event    (AforkChild *child,
                                        const char *name,
                                        GVariant   *value);

G_END_DECLS
