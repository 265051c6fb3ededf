/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "afork-private.h"
#include "afork-child.h"

G_BEGIN_DECLS

/* The command loop of a server: afork-server's main(), and the early and
 * fork-self templates, which are forks of the calling program. */

AFORK_PRIVATE_API
int              _afork_server_main        (int     argc,
                                            char  **argv);
G_GNUC_NORETURN
void             _afork_server_serve       (int     fd,
                                            GPid    owner);
void             _afork_server_set_title   (const char *format,
                                            ...) G_GNUC_PRINTF (1, 2);

G_END_DECLS
