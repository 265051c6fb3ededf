/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The exec command: a server child that becomes another program, with the
 * descriptors it was sent as standard input, output and error. */

#include "afork-server-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>


/* Tells the parent which step failed (8 bytes: u32 step, u32 errno,
 * little-endian), then exits with 127. */
G_GNUC_NORETURN static void
report_and_exit (int               status_fd,
                 AforkWireExecStep step,
                 int               saved_errno)
{
  guint8 le[AFORK_WIRE_EXEC_STATUS_SIZE];
  gssize res;

  _afork_wire_encode_u32 (le, (guint32) step);
  _afork_wire_encode_u32 (le + 4, (guint32) saved_errno);

  /* Nobody may be listening any more: exit with 127 all the same. */
  signal (SIGPIPE, SIG_IGN);
  do
    res = write (status_fd, le, sizeof le);
  while (res < 0 && errno == EINTR);

  _exit (127);
}

/* Closes the descriptors from @low to @high included. */
static void
close_range_of (unsigned int low,
                unsigned int high)
{
  if (low > high)
    return;
#ifdef SYS_close_range
  if (syscall (SYS_close_range, low, high, 0) == 0)
    return;
#endif
  {
    long max = sysconf (_SC_OPEN_MAX);

    if (max < 0 || max > 65536)
      max = 65536;
    for (long fd = low; fd < max && fd <= (long) high; fd++)
      close ((int) fd);
  }
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
  g_autoptr(GError) error = NULL;
  AforkWireExec exec;
  int stdio_src[3] = { -1, -1, -1 };
  int status_fd;

  if (!_afork_wire_parse_exec (payload, len, &exec, &error))
    _afork_server_die (server, error->message);

  status_fd = _afork_child_pop_last_fd (&server->child);
  if (status_fd < 0)
    _afork_server_die (server, _("Exec command without a status channel"));
  for (int t = 2; t >= 0; t--)
    {
      if (exec.stdio[t] == 'f')
        {
          stdio_src[t] = _afork_child_pop_last_fd (&server->child);
          if (stdio_src[t] < 0)
            _afork_server_die (server, _("Exec command without the descriptors it names"));
        }
      else if (exec.stdio[t] == 's')
        stdio_src[t] = server->sock;
    }

  _afork_server_acknowledge_or_exit (server, server->error);

  _afork_server_spare_drop (server, TRUE);
  _afork_server_forget_loop_state (server);
  _afork_fd_set_blocking (server->sock, TRUE);

  /* A clean slate of signals for the program. */
  _afork_server_reset_signals ();

  /* The status channel out of the way of standard input, output and
   * error (a server started without them receives descriptors there). */
  if (status_fd < 3)
    {
      int moved = fcntl (status_fd, F_DUPFD_CLOEXEC, 3);

      if (moved < 0)
        report_and_exit (status_fd, AFORK_WIRE_EXEC_STEP_STDIO, errno);
      status_fd = moved;
    }

  /* Move the sources out of the way first, so that no target overwrites
   * a source that is still needed. */
  for (int t = 0; t < 3; t++)
    if (stdio_src[t] >= 0)
      {
        stdio_src[t] = fcntl (stdio_src[t], F_DUPFD_CLOEXEC, 10);
        if (stdio_src[t] < 0)
          report_and_exit (status_fd, AFORK_WIRE_EXEC_STEP_STDIO, errno);
      }
  for (int t = 0; t < 3; t++)
    if (stdio_src[t] >= 0 && dup2 (stdio_src[t], t) < 0)
      report_and_exit (status_fd, AFORK_WIRE_EXEC_STEP_STDIO, errno);

  /* Nothing but standard input, output, error and the status channel
   * (close-on-exec) reaches the program, whether or not the descriptors
   * modules, call functions or the forked program opened are
   * close-on-exec. */
  close_range_of (3, (unsigned int) status_fd - 1);
  close_range_of ((unsigned int) status_fd + 1, ~0U);

  if (exec.cwd != NULL && chdir (exec.cwd) != 0)
    report_and_exit (status_fd, AFORK_WIRE_EXEC_STEP_CHDIR, errno);

  /* Above the standard descriptors and the status channel, none is left. */
  _afork_server_restore_nofile (NULL);
  if (exec.envp != NULL)
    execvpe (exec.argv[0], exec.argv, exec.envp);
  else
    execvp (exec.argv[0], exec.argv);

  report_and_exit (status_fd, AFORK_WIRE_EXEC_STEP_EXEC, errno);
}

