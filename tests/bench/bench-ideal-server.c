/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-ideal-server: the benchmark's reference, the design of afork as a
 * person would write it by hand for this one job, linked with the C
 * library only.
 *
 *   bench-ideal-server FD
 *
 * Requests arrive on the unix socket FD: one byte ('f': exit at once,
 * 'a': acknowledge first) with one descriptor attached (SCM_RIGHTS), the
 * socket of the new process. The server forks ahead: while it is idle,
 * its next child (the spare) already exists and waits for a request on
 * the shared socket itself, so a request costs no fork on its path and no
 * second hop. The spare takes one request, tells the server (which forks
 * the next spare at once), acknowledges as an afork child does (a 9-byte
 * frame 'k', u32 length 4, u32 pid, little-endian) when asked, and exits,
 * holding the descriptor until then. Children are reaped by the kernel
 * (SIGCHLD ignored). The server exits when the socket reaches end of
 * file. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
take_request (int   sock,
              char *command)
{
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  struct iovec iov = { command, 1 };
  struct cmsghdr *cmsg;
  ssize_t res;
  int fd = -1;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  do
    res = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (res < 0 && errno == EINTR);

  if (res <= 0)
    return -1;

  cmsg = CMSG_FIRSTHDR (&msg);
  if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
    memcpy (&fd, CMSG_DATA (cmsg), sizeof fd);

  return fd;
}

static void
put_u32_le (unsigned char *out,
            uint32_t       value)
{
  out[0] = value & 0xff;
  out[1] = (value >> 8) & 0xff;
  out[2] = (value >> 16) & 0xff;
  out[3] = (value >> 24) & 0xff;
}

/* The spare: one request, then its end. */
static void
spare (int sock,
       int taken)
{
  char command = 0;
  int fd = take_request (sock, &command);

  if (fd < 0)
    _exit (0);   /* end of file: the server sees the pipe close */

  if (write (taken, "x", 1) < 0)
    _exit (1);
  close (taken);
  close (sock);

  if (command == 'a')
    {
      unsigned char reply[9] = { 'k' };

      put_u32_le (reply + 1, 4);
      put_u32_le (reply + 5, (uint32_t) getpid ());
      if (send (fd, reply, sizeof reply, MSG_NOSIGNAL) != (ssize_t) sizeof reply)
        _exit (1);
    }

  _exit (0);   /* holds fd until here */
}

int
main (int    argc,
      char **argv)
{
  int sock;

  if (argc != 2)
    return 2;
  sock = atoi (argv[1]);

  signal (SIGCHLD, SIG_IGN);

  for (;;)
    {
      int taken[2];
      char byte;
      ssize_t res;
      pid_t pid;

      if (pipe2 (taken, O_CLOEXEC) != 0)
        return 1;

      pid = fork ();
      if (pid < 0)
        return 1;
      if (pid == 0)
        {
          close (taken[0]);
          spare (sock, taken[1]);
        }

      close (taken[1]);
      do
        res = read (taken[0], &byte, 1);
      while (res < 0 && errno == EINTR);
      close (taken[0]);

      if (res != 1)
        return 0;   /* the spare saw end of file: nobody sends any more */
    }
}
