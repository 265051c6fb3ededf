/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Forking ahead: while a template is idle, it forks the child the next
 * fork request will become (the spare), so that the request costs one
 * message instead of a fork. */

#include "afork-server-private.h"
#include "afork-loader-private.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Closes this process's end of the spare's channel and forgets the spare
 * (which, if it still waits, sees the channel close and exits). */
void
_afork_server_spare_forget (AforkServer *server)
{
  if (server->spare_sock >= 0)
    close (server->spare_sock);
  server->spare_sock = -1;
  server->spare_pid = -1;
}

/* Tells the spare to exit: it sees its channel close. With @reap, waits
 * for it too, for a process that stops being a template to run user code
 * and must not leave an unknown child behind. */
void
_afork_server_spare_drop (AforkServer *server,
                          gboolean     reap)
{
  pid_t pid = server->spare_pid;

  _afork_server_spare_forget (server);

  /* Otherwise it stays among the children, reaped when it exits. */
  if (reap && pid > 0)
    {
      while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
        ;
      _afork_server_remove_child (server, pid);
    }
}

/* Whether to fork a spare before waiting for the next command: in a
 * template (a server that has forked) without one, when no command is
 * waiting already. */
gboolean
_afork_server_spare_wanted (AforkServer *server)
{
  struct pollfd pfd = { server->sock, POLLIN, 0 };

  if (!_afork_server_is_template (server) || server->spare_pid > 0)
    return FALSE;

  return poll (&pfd, 1, 0) == 0;
}

/* Forks the spare. Returns TRUE in the spare, once it has been handed the
 * socket of the process it becomes (its command stream starts afresh). */
gboolean
_afork_server_spare_start (AforkServer *server)
{
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  struct iovec iov;
  struct cmsghdr *cmsg;
  char byte;
  int sv[2];
  int fd = -1;
  gssize res;
  pid_t pid;

  if (server->spare_pid > 0)
    return FALSE;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return FALSE;

  _afork_server_before_fork ();
  pid = fork ();
  _afork_server_after_fork (pid);
  if (pid < 0)
    {
      close (sv[0]);
      close (sv[1]);
      return FALSE;
    }

  if (pid > 0)
    {
      close (sv[1]);
      _afork_server_add_child (server, pid);
      server->spare_pid = pid;
      server->spare_sock = sv[0];
      server->spare_generation = server->generation;
      server->spare_n_args = server->child.args->len;
      return FALSE;
    }

  /* The spare: what a new child leaves of the template, done ahead. */
  close (sv[0]);
  close (server->sock);
  server->sock = -1;
  _afork_server_forget_loop_state (server);
  _afork_server_set_title ("afork", server->child.owner, "spare");

  iov.iov_base = &byte;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  do
    res = recvmsg (sv[1], &msg, MSG_CMSG_CLOEXEC);
  while (res < 0 && errno == EINTR);

  cmsg = res > 0 ? CMSG_FIRSTHDR (&msg) : NULL;
  if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
      cmsg->cmsg_len == CMSG_LEN (sizeof (int)))
    memcpy (&fd, CMSG_DATA (cmsg), sizeof fd);

  /* Dropped (the template changed, or is gone): nothing to become. */
  if (fd < 0)
    _exit (0);

  close (sv[1]);
  server->sock = fd;
  server->child.fd = fd;
  _afork_server_set_title ("afork", server->child.owner, "child");

  return TRUE;
}

/* Hands @fd to the spare, if there is one and it inherited what a child
 * forked now would. Returns its pid, or -1 if the caller must fork. */
pid_t
_afork_server_spare_hand_over (AforkServer *server,
                               int          fd)
{
  pid_t pid = server->spare_pid;
  const char byte = 0;

  if (pid <= 0)
    return -1;

  if (server->spare_generation != server->generation ||
      server->spare_n_args != server->child.args->len ||
      _afork_sendmsg_fds (server->spare_sock, &byte, 1, &fd, 1, 0) != 1)
    {
      _afork_server_spare_drop (server, FALSE);
      return -1;
    }

  _afork_server_spare_forget (server);

  return pid;
}

