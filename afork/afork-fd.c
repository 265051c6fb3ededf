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

#include <gio/gio.h>

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

/* Attaches @n_fds descriptors (at most AFORK_MAX_FDS_PER_MESSAGE) to
 * @msg, in @control; none leaves @msg without control data. */
void
_afork_msg_put_fds (struct msghdr  *msg,
                    AforkFdControl *control,
                    const int      *fds,
                    guint           n_fds)
{
  struct cmsghdr *cmsg;

  g_assert (n_fds <= AFORK_MAX_FDS_PER_MESSAGE);

  msg->msg_control = NULL;
  msg->msg_controllen = 0;
  if (n_fds == 0)
    return;

  memset (control, 0, sizeof *control);
  msg->msg_control = control->buf;
  msg->msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
  cmsg = CMSG_FIRSTHDR (msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
  memcpy (CMSG_DATA (cmsg), fds, sizeof (int) * n_fds);
}

/* One recvmsg () of up to @want bytes, appended to @in, the descriptors
 * that came with them appended to @fds (an array of int), close-on-exec;
 * retried on EINTR. *@truncated tells whether descriptors were lost for
 * want of room. Returns what recvmsg () does, errno kept. */
gssize
_afork_recv_fds (int         sock,
                 GByteArray *in,
                 gsize       want,
                 GArray     *fds,
                 int         flags,
                 gboolean   *truncated)
{
  AforkFdControl control;
  struct msghdr msg = { 0 };
  struct iovec iov;
  guint old_len = in->len;
  gssize res;
  int saved_errno;

  g_byte_array_set_size (in, old_len + want);
  iov.iov_base = in->data + old_len;
  iov.iov_len = want;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  do
    {
      msg.msg_control = control.buf;
      msg.msg_controllen = sizeof control.buf;
      res = recvmsg (sock, &msg, flags | MSG_CMSG_CLOEXEC);
    }
  while (res < 0 && errno == EINTR);
  saved_errno = errno;

  g_byte_array_set_size (in, old_len + MAX (res, 0));
  *truncated = res > 0 && (msg.msg_flags & MSG_CTRUNC) != 0;

  if (res > 0)
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
      if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
        {
          guint n = (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int);

          for (guint i = 0; i < n; i++)
            {
              int fd;

              memcpy (&fd, CMSG_DATA (cmsg) + i * sizeof (int), sizeof fd);
              g_array_append_val (fds, fd);
            }
        }

  errno = saved_errno;

  return res;
}

/* Why descriptors were lost in a receive on @sock (MSG_CTRUNC), as an
 * errno. The control buffer holds as many as the kernel lets a message
 * carry (SCM_MAX_FD), so some could not be installed: almost always
 * because this process's table is full (EMFILE; the kernel drops the
 * rest). A duplicate of @sock tells another cause; one that succeeds says
 * nothing (another thread may have closed a descriptor since). */
int
_afork_fds_lost_errno (int sock)
{
  int fd = fcntl (sock, F_DUPFD_CLOEXEC, 0);

  if (fd >= 0)
    {
      close (fd);
      return EMFILE;
    }

  return errno;
}

/* The reason for a message, from _afork_fds_lost_errno (). */
const char *
_afork_fds_lost_reason (int lost_errno)
{
  if (lost_errno == EMFILE)
    return _("this process has reached its limit of open files");

  return g_strerror (lost_errno);
}

/* The error of a call whose descriptors were lost: GIO's
 * G_IO_ERROR_TOO_MANY_OPEN_FILES when the table was full (named by its
 * quark's string, as servers do not link GIO), else a protocol error. */
void
_afork_fds_lost_set_error (GError    **error,
                           int         lost_errno,
                           const char *message)
{
  if (lost_errno == EMFILE)
    g_set_error_literal (error, g_quark_from_static_string ("g-io-error-quark"),
                         G_IO_ERROR_TOO_MANY_OPEN_FILES, message);
  else
    g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL, message);
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
  AforkFdControl control;
  struct iovec iov = { (void *) data, len };
  struct msghdr msg = { 0 };
  gssize res;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  _afork_msg_put_fds (&msg, &control, fds, n_fds);

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
