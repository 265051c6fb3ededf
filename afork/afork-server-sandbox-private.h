/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "afork-private.h"
#include "afork-wire-private.h"

G_BEGIN_DECLS

/* Confining a server: what the `s` command does (afork-server-sandbox.c).
 * Server side: GLib only. */

gboolean _afork_server_sandbox_apply     (const AforkWireSandbox  *sandbox,
                                          GError                 **error);
void     _afork_server_sandbox_enter_run (void);

G_END_DECLS
