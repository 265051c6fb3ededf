/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <glib/gi18n-lib.h>

#include "afork-error.h"

G_BEGIN_DECLS

/* Exported for afork-server and the tests, never declared in a public
 * header nor scanned for introspection. */
#define AFORK_PRIVATE_API __attribute__((visibility("default"))) extern

/* The largest number of descriptors one sendmsg() may carry on Linux
 * (SCM_MAX_FD). */
#define AFORK_MAX_FDS_PER_MESSAGE 253

/* The highest code of AforkError, for checking codes read off the wire. */
#define _AFORK_ERROR_LAST AFORK_ERROR_TEMPLATE_EXITED

/* afork-error.c */
void      _afork_i18n_init          (void);
void      _afork_set_error_errno    (GError      **error,
                                     int           code,
                                     int           saved_errno,
                                     const char   *what);

/* afork-fd.c: descriptors and system calls */
gboolean  _afork_fd_set_blocking    (int           fd,
                                     gboolean      blocking);
gssize    _afork_sendmsg_fds        (int           sock,
                                     const void   *data,
                                     gsize         len,
                                     const int    *fds,
                                     guint         n_fds,
                                     int           flags);
void      _afork_close_fds_from     (int           lowfd);

/* Room for the descriptors of one message. */
typedef union
{
  char           buf[CMSG_SPACE (sizeof (int) * AFORK_MAX_FDS_PER_MESSAGE)];
  struct cmsghdr align;
} AforkFdControl;

void      _afork_msg_put_fds        (struct msghdr  *msg,
                                     AforkFdControl *control,
                                     const int      *fds,
                                     guint           n_fds);
gssize    _afork_recv_fds           (int             sock,
                                     GByteArray     *in,
                                     gsize           want,
                                     GArray         *fds,
                                     int             flags,
                                     gboolean       *truncated);
int       _afork_fds_lost_errno     (int             sock);
const char *_afork_fds_lost_reason  (int             lost_errno);
void      _afork_fds_lost_set_error (GError        **error,
                                     int             lost_errno,
                                     const char     *message);

G_END_DECLS
