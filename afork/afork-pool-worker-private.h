/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The call loop of a pool worker (server side, GLib only). */

#include "afork-child.h"

G_BEGIN_DECLS

/* The run function a pool's workers enter: a name no C symbol can have. */
#define AFORK_POOL_WORKER_FUNCTION "afork:pool-worker"

/* Serves calls on the child's socket until the parent closes it. */
G_GNUC_NORETURN
void  _afork_pool_worker_run  (AforkChild *child);

G_END_DECLS
