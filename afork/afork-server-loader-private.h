/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The server's side of language loaders: which names are theirs, finding
 * and loading a loader's plugin, and handing it the commands. */

#include "afork-loader-private.h"

G_BEGIN_DECLS

/* Whether @name has a loader prefix ("python:…"). */
gboolean  _afork_server_loader_has_prefix (const char     *name);

/* `m` of a prefixed name: the loader of its prefix loads the module. */
gboolean  _afork_server_loader_require    (const char     *name,
                                           GError        **error);

/* A prefixed function name, resolved by the loader of its prefix. */
gboolean  _afork_server_loader_resolve    (const char     *name,
                                           AforkFunction  *out,
                                           GError        **error);

G_END_DECLS
