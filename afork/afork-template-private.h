/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "afork-private.h"

G_BEGIN_DECLS

/* The template registry: how servers are started, and the default
 * template shared by every caller in the program. */

gboolean  _afork_spawn_server            (int          *fd_out,
                                          GSubprocess **subprocess_out,
                                          GError      **error);
gboolean  _afork_socketpair              (int           fds[2],
                                          GError      **error);
gboolean  _afork_default_template_fork   (int           child_fd,
                                          GError      **error);

G_END_DECLS
