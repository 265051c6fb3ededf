/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <glib.h>

#include "afork-version-macros.h"

G_BEGIN_DECLS

/**
 * AFORK_ERROR:
 *
 * The error domain of afork: every error the library reports itself uses
 * it, with a code from [enum@Afork.Error] naming the stage that failed.
 *
 * Since: 1.0
 */
#define AFORK_ERROR (afork_error_quark ())

/**
 * AforkError:
 * @AFORK_ERROR_FAILED: a failure with no more precise code, such as a
 *   system call that failed in the parent
 * @AFORK_ERROR_SERVER_NOT_FOUND: the `afork-server` helper program does
 *   not exist or is not executable
 * @AFORK_ERROR_SPAWN_FAILED: a server process, or a worker of an
 *   [class@Afork.Pool], could not be started
 * @AFORK_ERROR_MODULE_NOT_FOUND: a module given to
 *   [method@Afork.Process.require] could not be found or loaded
 * @AFORK_ERROR_FUNCTION_NOT_FOUND: a run or call function was not found in
 *   the loaded modules nor in the server program
 * @AFORK_ERROR_CALL_FAILED: a call function returned %FALSE; the message
 *   carries the child's own message, domain and code
 * @AFORK_ERROR_CHILD_EXITED: the child process exited (or was killed)
 *   before it acknowledged the run command
 * @AFORK_ERROR_PROTOCOL: the other end broke the wire protocol
 * @AFORK_ERROR_INVALID_ARGUMENT: an argument queued for the child was
 *   invalid, such as a closed file descriptor
 * @AFORK_ERROR_CLOSED: the process can no longer be used, because it was
 *   run or its connection was taken
 * @AFORK_ERROR_THREADED: the calling program already runs more than one
 *   thread, so forking it is refused (see [func@Afork.early_init] and
 *   [ctor@Afork.Process.fork_self])
 * @AFORK_ERROR_STATUS_UNKNOWN: the wait status of a process cannot be
 *   known, because nobody reaps it on the caller's behalf (its template
 *   exited first, or the process was handed over)
 * @AFORK_ERROR_SANDBOX: a sandbox given to [method@Afork.Process.sandbox]
 *   could not be enforced: the kernel lacks a layer it asks for (the
 *   message names it), or an allowed path cannot be opened
 * @AFORK_ERROR_TEMPLATE_EXITED: the template of an [class@Afork.Pool]
 *   exited (killed from outside, say): the pool cannot start workers, and
 *   the workers it had went with it. Unlike %AFORK_ERROR_CHILD_EXITED, it
 *   says nothing about the call.
 *
 * Error codes of the %AFORK_ERROR domain.
 *
 * Since: 1.0
 */
typedef enum
{
  AFORK_ERROR_FAILED,
  AFORK_ERROR_SERVER_NOT_FOUND,
  AFORK_ERROR_SPAWN_FAILED,
  AFORK_ERROR_MODULE_NOT_FOUND,
  AFORK_ERROR_FUNCTION_NOT_FOUND,
  AFORK_ERROR_CALL_FAILED,
  AFORK_ERROR_CHILD_EXITED,
  AFORK_ERROR_PROTOCOL,
  AFORK_ERROR_INVALID_ARGUMENT,
  AFORK_ERROR_CLOSED,
  AFORK_ERROR_THREADED,
  AFORK_ERROR_STATUS_UNKNOWN,
  AFORK_ERROR_SANDBOX,
  AFORK_ERROR_TEMPLATE_EXITED,
} AforkError;

AFORK_AVAILABLE_IN_1_0
GQuark afork_error_quark (void);

G_END_DECLS
