/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The exec command: a server child that becomes another program, with the
 * descriptors it was sent as standard input, output and error. */

#include "afork-server-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>


G_GNUC_NORETURN static void
write_errno_and_exit (int status_fd,
                      int saved_errno)
{
  guint8 le[4];

  _afork_wire_encode_u32 (le, (guint32) saved_errno);

  /* Nobody may be listening any more: exit with 127 all the same. */
  signal (SIGPIPE, SIG_IGN);
  if (write (status_fd, le, sizeof le) < 0)
    { /* the parent is gone: nobody to tell */ }
  _exit (127);
}

/* The built-in exec: becomes the program described by the `x` frame, with
 * the chosen descriptors as standard input, output and error. The status
 * channel (the last descriptor sent) is close-on-exec: the parent reads
 * end of file when the program started, or the errno of the failure. */
void
_afork_server_handle_exec (AforkServer  *server,
                           const guint8 *payload,
                           guint32       len)
{
  g_autoptr(GArray) strings = _afork_server_parse_strings (server, payload, len);
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) envp = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *stdio = NULL;
  g_autofree char *cwd = NULL;
  g_autofree char *has_env = NULL;
  g_autofree char *argc_str = NULL;
  guint64 argc = 0;
  int stdio_src[3] = { -1, -1, -1 };
  int status_fd;
  sigset_t all;

  if (strings->len < 5)
    _afork_server_die (server, _("Malformed exec command"));

  stdio = _afork_server_wire_cstring (&g_array_index (strings, AforkWireString, 0), NULL);
  cwd = _afork_server_wire_cstring (&g_array_index (strings, AforkWireString, 1), NULL);
  has_env = _afork_server_wire_cstring (&g_array_index (strings, AforkWireString, 2), NULL);
  argc_str = _afork_server_wire_cstring (&g_array_index (strings, AforkWireString, 3), NULL);
  if (stdio == NULL || strlen (stdio) != 3 || cwd == NULL || has_env == NULL ||
      argc_str == NULL ||
      !g_ascii_string_to_unsigned (argc_str, 10, 1, strings->len - 4, &argc, NULL))
    _afork_server_die (server, _("Malformed exec command"));

  for (guint i = 4; i < strings->len; i++)
    {
      char *str = _afork_server_wire_cstring (&g_array_index (strings, AforkWireString, i), NULL);

      if (str == NULL)
        _afork_server_die (server, _("Malformed exec command"));
      g_ptr_array_add (i < 4 + argc ? argv : envp, str);
    }
  g_ptr_array_add (argv, NULL);
  g_ptr_array_add (envp, NULL);

  status_fd = _afork_child_pop_last_fd (&server->child);
  if (status_fd < 0)
    _afork_server_die (server, _("Exec command without a status channel"));
  for (int t = 2; t >= 0; t--)
    {
      if (stdio[t] == 'f')
        {
          stdio_src[t] = _afork_child_pop_last_fd (&server->child);
          if (stdio_src[t] < 0)
            _afork_server_die (server, _("Exec command without the descriptors it names"));
        }
      else if (stdio[t] == 's')
        stdio_src[t] = server->sock;
      else if (stdio[t] != 'i')
        _afork_server_die (server, _("Malformed exec command"));
    }

  _afork_server_acknowledge_or_exit (server, server->error);

  _afork_server_spare_drop (server, TRUE);
  _afork_server_forget_loop_state (server);
  _afork_fd_set_blocking (server->sock, TRUE);

  /* A clean slate of signals for the program. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal (sig, SIG_DFL);
  sigemptyset (&all);
  sigprocmask (SIG_SETMASK, &all, NULL);

  /* Move the sources out of the way first, so that no target overwrites
   * a source that is still needed. */
  for (int t = 0; t < 3; t++)
    if (stdio_src[t] >= 0)
      {
        stdio_src[t] = fcntl (stdio_src[t], F_DUPFD_CLOEXEC, 10);
        if (stdio_src[t] < 0)
          write_errno_and_exit (status_fd, errno);
      }
  for (int t = 0; t < 3; t++)
    if (stdio_src[t] >= 0 && dup2 (stdio_src[t], t) < 0)
      write_errno_and_exit (status_fd, errno);

  if (cwd[0] != '\0' && chdir (cwd) != 0)
    write_errno_and_exit (status_fd, errno);

  if (has_env[0] == '1')
    execvpe (argv->pdata[0], (char **) argv->pdata, (char **) envp->pdata);
  else
    execvp (argv->pdata[0], (char **) argv->pdata);

  write_errno_and_exit (status_fd, errno);
}

