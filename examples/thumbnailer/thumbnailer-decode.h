/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding one image from a descriptor into a thumbnail: GLib and
 * gdk-pixbuf only, shared by the worker module and the in-process path. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The parameters of a decode call: the input as an 'h' handle, the
 * longest side in pixels, and the text keys to put in the PNG (URI,
 * MTime, Size) as an a{ss}. */
#define THUMB_DECODE_PARAMETERS_TYPE "(hua{ss})"
/* The reply: the PNG, the size of the original image, its MIME type. */
#define THUMB_DECODE_REPLY_TYPE "(ayuus)"

/* Beyond this many pixels an image is refused before any allocation. */
#define THUMB_DECODE_MAX_PIXELS (G_GUINT64_CONSTANT (1) << 28)

void      thumb_decode_init      (void);
GVariant *thumb_decode_fd        (int          fd,
                                  guint        max_side,
                                  GVariant    *keys,
                                  const char  *crash_marker,
                                  GError     **error);

G_END_DECLS
