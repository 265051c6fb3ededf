/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptor and system-call helpers, shared by the parent side and the
 * servers. */
#include "afork-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

gboolean
_afork_fd_set_blocking (int      fd,
                        gboolean blocking)
{
  int flags = fcntl (fd, F_GETFL);

  if (flags < 0)
    return FALSE;

  if (((flags & O_NONBLOCK) == 0) == (blocking != FALSE))
    return TRUE;

  flags = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);

  return fcntl (fd, F_SETFL, flags) == 0;
}

/* One sendmsg() with up to AFORK_MAX_FDS_PER_MESSAGE descriptors attached
 * to the first byte of @data. Never raises SIGPIPE. */
gssize
_afork_sendmsg_fds (int         sock,
                    const void *data,
                    gsize       len,
                    const int  *fds,
                    guint       n_fds,
                    int         flags)
{
  union {
    char buf[CMSG_SPACE (sizeof (int) * AFORK_MAX_FDS_PER_MESSAGE)];
    struct cmsghdr align;
  } control;
  struct iovec iov = { (void *) data, len };
  struct msghdr msg = { 0 };
  gssize res;

  g_assert (n_fds <= AFORK_MAX_FDS_PER_MESSAGE);

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  if (n_fds > 0)
    {
      struct cmsghdr *cmsg;

      memset (&control, 0, sizeof control);
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      memcpy (CMSG_DATA (cmsg), fds, sizeof (int) * n_fds);
    }

  do
    res = sendmsg (sock, &msg, flags | MSG_NOSIGNAL);
  while (res < 0 && errno == EINTR);

  return res;
}

/* Closes every descriptor numbered @lowfd or higher. Used by servers right
 * after they start, so that nothing the parent leaked stays open in them. */
void
_afork_close_fds_from (int lowfd)
{
#ifdef SYS_close_range
  if (syscall (SYS_close_range, (unsigned int) lowfd, ~0U, 0) == 0)
    return;
#endif
  {
    /* Without close_range, walk the table ourselves. */
    int max = (int) sysconf (_SC_OPEN_MAX);

    if (max < 0 || max > 65536)
      max = 65536;
    for (int fd = lowfd; fd < max; fd++)
      close (fd);
  }
}
