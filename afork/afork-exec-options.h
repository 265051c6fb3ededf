/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <glib-object.h>

#include "afork-version-macros.h"

G_BEGIN_DECLS

/**
 * AFORK_EXEC_FD_INHERIT:
 *
 * For [class@Afork.ExecOptions]: keep the process's own standard
 * descriptor.
 *
 * Since: 1.0
 */
#define AFORK_EXEC_FD_INHERIT (-1)

/**
 * AFORK_EXEC_FD_SOCKET:
 *
 * For [class@Afork.ExecOptions]: use the connection to the parent as the
 * standard descriptor.
 *
 * Since: 1.0
 */
#define AFORK_EXEC_FD_SOCKET (-2)

#define AFORK_TYPE_EXEC_OPTIONS (afork_exec_options_get_type ())

AFORK_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (AforkExecOptions, afork_exec_options, AFORK, EXEC_OPTIONS, GObject)

AFORK_AVAILABLE_IN_1_0
AforkExecOptions *afork_exec_options_new        (void) G_GNUC_WARN_UNUSED_RESULT;
AFORK_AVAILABLE_IN_1_0
void              afork_exec_options_set_environ (AforkExecOptions    *self,
                                                  const char * const  *env);
AFORK_AVAILABLE_IN_1_0
void              afork_exec_options_set_cwd     (AforkExecOptions    *self,
                                                  const char          *cwd);
AFORK_AVAILABLE_IN_1_0
void              afork_exec_options_set_stdin_fd  (AforkExecOptions  *self,
                                                    int                fd);
AFORK_AVAILABLE_IN_1_0
void              afork_exec_options_set_stdout_fd (AforkExecOptions  *self,
                                                    int                fd);
AFORK_AVAILABLE_IN_1_0
void              afork_exec_options_set_stderr_fd (AforkExecOptions  *self,
                                                    int                fd);

G_END_DECLS
