/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "afork-private.h"
#include "afork-template.h"

G_BEGIN_DECLS

/* The template registry: how servers are started, and the default
 * template shared by every caller in the program. */

gboolean  _afork_spawn_server            (int          *fd_out,
                                          GSubprocess **subprocess_out,
                                          GError      **error);
gboolean  _afork_socketpair              (int           fds[2],
                                          GError      **error);

/* What a template needs to fork a new process: the new process's end of
 * a socketpair, and the write end of a pipe on which the template reports
 * the new process's wait status. */
typedef struct
{
  int sock;          /* the caller's end of the new process's socket */
  int status;        /* read end of the status channel */
  int send_fds[2];   /* status write end, new process's socket: to send */
} AforkForkRequest;

gboolean  _afork_fork_request_init       (AforkForkRequest  *request,
                                          GError           **error);
void      _afork_fork_request_clear      (AforkForkRequest  *request);
void      _afork_fork_request_put_frames (GByteArray        *out,
                                          gsize             *fd_offsets);

gboolean  _afork_registry_fork           (AforkForkRequest  *request,
                                          gboolean           for_exec,
                                          gboolean          *forked,
                                          GError           **error);
void      _afork_registry_close_in_fork  (int                keep);

/* afork-fork-self.c */
gboolean  _afork_fork_server             (int               *fd_out,
                                          GPid              *pid_out,
                                          GError           **error);
gboolean  _afork_check_single_threaded   (GError           **error);

/* Every descriptor the library holds in the parent, so that a fork of the
 * calling program can close them. */
void      _afork_track_fd                (int                fd);
void      _afork_untrack_fd              (int                fd);

G_END_DECLS
