/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptor helpers that need nothing but the C library, for the test
 * modules as well as the test programs. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean afork_test_write_all (int         fd,
                               const void *data,
                               gsize       len);

G_END_DECLS
