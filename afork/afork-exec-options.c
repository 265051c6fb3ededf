/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How a program executed by a process starts: AforkExecOptions. */
#include "afork-process-private.h"

/**
 * AforkExecOptions:
 *
 * How [method@Afork.Process.exec_async] starts a program, in the manner
 * of a [class@Gio.SubprocessLauncher]: its environment, its working
 * directory and its standard input, output and error. A new
 * `AforkExecOptions` keeps all of them as the process has them; one
 * object may serve any number of execs.
 *
 * ```c
 * g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
 *
 * afork_exec_options_set_cwd (options, "/srv/data");
 * afork_exec_options_set_stdout_fd (options, AFORK_EXEC_FD_SOCKET);
 * afork_process_exec_async (process, argv, options, NULL, on_started, NULL);
 * ```
 *
 * The descriptors are not duplicated when they are set, but when the exec
 * is queued: keep them open until then.
 *
 * Since: 1.0
 */

/**
 * AforkExecOptionsClass:
 * @parent_class: the parent class
 *
 * The class of [class@Afork.ExecOptions]. It is final: there is nothing
 * to override.
 *
 * Since: 1.0
 */

struct _AforkExecOptions
{
  GObject   parent_instance;

  char    **env;      /* NULL: the process's own */
  char     *cwd;      /* NULL: the process's own */
  int       fds[3];
};

G_DEFINE_FINAL_TYPE (AforkExecOptions, afork_exec_options, G_TYPE_OBJECT)

static void
afork_exec_options_finalize (GObject *object)
{
  AforkExecOptions *self = (AforkExecOptions *) object;

  g_strfreev (self->env);
  g_free (self->cwd);

  G_OBJECT_CLASS (afork_exec_options_parent_class)->finalize (object);
}

static void
afork_exec_options_class_init (AforkExecOptionsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = afork_exec_options_finalize;
}

static void
afork_exec_options_init (AforkExecOptions *self)
{
  for (guint i = 0; i < 3; i++)
    self->fds[i] = AFORK_EXEC_FD_INHERIT;
}

/**
 * afork_exec_options_new:
 *
 * Creates options that keep the process's environment, working directory
 * and standard descriptors.
 *
 * Returns: (transfer full): new options
 *
 * Since: 1.0
 */
AforkExecOptions *
afork_exec_options_new (void)
{
  return g_object_new (AFORK_TYPE_EXEC_OPTIONS, NULL);
}

/**
 * afork_exec_options_set_environ:
 * @self: an #AforkExecOptions
 * @env: (array zero-terminated=1) (element-type filename) (nullable): the
 *   program's whole environment, as `NAME=VALUE` strings, or %NULL to keep
 *   the process's
 *
 * Sets the environment of the program.
 *
 * Since: 1.0
 */
void
afork_exec_options_set_environ (AforkExecOptions   *self,
                                const char * const *env)
{
  g_return_if_fail (AFORK_IS_EXEC_OPTIONS (self));

  g_strfreev (self->env);
  self->env = g_strdupv ((char **) env);
}

/**
 * afork_exec_options_set_cwd:
 * @self: an #AforkExecOptions
 * @cwd: (type filename) (nullable): the working directory, or %NULL to
 *   keep the process's
 *
 * Sets the working directory of the program. A directory that cannot be
 * entered makes the exec fail with an error that names it.
 *
 * Since: 1.0
 */
void
afork_exec_options_set_cwd (AforkExecOptions *self,
                            const char       *cwd)
{
  g_return_if_fail (AFORK_IS_EXEC_OPTIONS (self));

  g_free (self->cwd);
  self->cwd = g_strdup (cwd);
}

static void
set_fd (AforkExecOptions *self,
        guint             target,
        int               fd)
{
  g_return_if_fail (AFORK_IS_EXEC_OPTIONS (self));
  g_return_if_fail (fd >= AFORK_EXEC_FD_SOCKET);

  self->fds[target] = fd;
}

/**
 * afork_exec_options_set_stdin_fd:
 * @self: an #AforkExecOptions
 * @fd: the descriptor to use as standard input, or
 *   %AFORK_EXEC_FD_INHERIT, or %AFORK_EXEC_FD_SOCKET
 *
 * Sets the standard input of the program: @fd (duplicated when the exec
 * is queued), the connection to the parent with %AFORK_EXEC_FD_SOCKET, or
 * the process's own with %AFORK_EXEC_FD_INHERIT (the caller's, for the
 * default template).
 *
 * Since: 1.0
 */
void
afork_exec_options_set_stdin_fd (AforkExecOptions *self,
                                 int               fd)
{
  set_fd (self, 0, fd);
}

/**
 * afork_exec_options_set_stdout_fd:
 * @self: an #AforkExecOptions
 * @fd: the descriptor to use as standard output, or
 *   %AFORK_EXEC_FD_INHERIT, or %AFORK_EXEC_FD_SOCKET
 *
 * Sets the standard output of the program; see
 * [method@Afork.ExecOptions.set_stdin_fd].
 *
 * Since: 1.0
 */
void
afork_exec_options_set_stdout_fd (AforkExecOptions *self,
                                  int               fd)
{
  set_fd (self, 1, fd);
}

/**
 * afork_exec_options_set_stderr_fd:
 * @self: an #AforkExecOptions
 * @fd: the descriptor to use as standard error, or
 *   %AFORK_EXEC_FD_INHERIT, or %AFORK_EXEC_FD_SOCKET
 *
 * Sets the standard error of the program; see
 * [method@Afork.ExecOptions.set_stdin_fd].
 *
 * Since: 1.0
 */
void
afork_exec_options_set_stderr_fd (AforkExecOptions *self,
                                  int               fd)
{
  set_fd (self, 2, fd);
}

void
_afork_exec_options_get (AforkExecOptions    *self,
                         const char * const **env,
                         const char         **cwd,
                         int                  fds[3])
{
  *env = (const char * const *) self->env;
  *cwd = self->cwd;
  for (guint i = 0; i < 3; i++)
    fds[i] = self->fds[i];
}
