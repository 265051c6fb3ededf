/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Where images are decoded: a pool of sandboxed afork workers, one fresh
 * process per image. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  guint jobs;               /* workers at once */
  guint timeout_ms;         /* per image, 0 = none */
  guint64 memory_limit;     /* bytes of address space per worker, 0 = none */
  const char *crash_marker; /* tests only: see thumbnailer-decode.h */
  const char *hang_marker;
} ThumbDecoderOptions;

#define THUMB_TYPE_DECODER (thumb_decoder_get_type ())
G_DECLARE_FINAL_TYPE (ThumbDecoder, thumb_decoder, THUMB, DECODER, GObject)

ThumbDecoder *thumb_decoder_new            (const ThumbDecoderOptions *options,
                                            GError                   **error);
const char   *thumb_decoder_describe       (ThumbDecoder              *self);
void          thumb_decoder_decode_async   (ThumbDecoder              *self,
                                            int                        fd,
                                            guint                      max_side,
                                            GVariant                  *keys,
                                            GCancellable              *cancellable,
                                            GAsyncReadyCallback        callback,
                                            gpointer                   user_data);
GVariant     *thumb_decoder_decode_finish  (ThumbDecoder              *self,
                                            GAsyncResult              *result,
                                            GError                   **error);

G_END_DECLS
