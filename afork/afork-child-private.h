/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "afork-child.h"
#include "afork-ring-private.h"

G_BEGIN_DECLS

typedef struct
{
  char     *data;   /* NUL-terminated copy, NULL for a descriptor */
  gsize     len;
  int       fd;     /* -1 for a string, or once stolen */
  gboolean  is_fd;
} AforkArg;

struct _AforkChild
{
  int     fd;       /* the communication socket */
  GArray *args;     /* of AforkArg, in the order they were sent */
  GPid    owner;
  /* In a pool worker, during a call: */
  GArray *call_fds;   /* int: the call's descriptors, -1 once stolen */
  GArray *reply_fds;  /* int: owned copies for the reply */
  GByteArray *pool_out;  /* replies not written yet: events go after them */
  AforkRing  *pool_ring;   /* where they go, when not on the socket */
};

void  _afork_child_init          (AforkChild   *child,
                                  int           fd,
                                  GPid          owner);
void  _afork_child_add_string    (AforkChild   *child,
                                  const void   *data,
                                  gsize         len);
void  _afork_child_add_fd        (AforkChild   *child,
                                  int           fd);
int   _afork_child_pop_last_fd   (AforkChild   *child);

G_END_DECLS
