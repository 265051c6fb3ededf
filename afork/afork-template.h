/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#if !defined(AFORK_INSIDE) && !defined(AFORK_COMPILATION)
# error "Only <afork/afork.h> can be included directly."
#endif

#include <glib.h>

#include "afork-version-macros.h"

G_BEGIN_DECLS

AFORK_AVAILABLE_IN_1_0
gboolean     afork_early_init       (GError     **error);
AFORK_AVAILABLE_IN_1_0
void         afork_reset            (void);
AFORK_AVAILABLE_IN_1_0
const char  *afork_get_server_path  (void);
AFORK_AVAILABLE_IN_1_0
void         afork_set_server_path  (const char  *path);

G_END_DECLS
