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

/* Test hooks: an image that starts with crash_marker makes the worker
 * crash (as a loader bug would), one that starts with hang_marker makes it
 * hang. NULL: none. */
typedef struct {
  const char *crash_marker;
  const char *hang_marker;
} ThumbDecodeHooks;

void      thumb_decode_init      (void);
void      thumb_decode_use_huge_pages (void);
GVariant *thumb_decode_fd        (int                     fd,
                                  guint                   max_side,
                                  GVariant               *keys,
                                  const ThumbDecodeHooks *hooks,
                                  GError                **error);

G_END_DECLS
