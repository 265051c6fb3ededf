/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Making the thumbnail of one URI: open, check, decode, write. */
#pragma once

#include <gio/gio.h>

#include "thumbnailer-decoder.h"
#include "thumbnailer-spec.h"

G_BEGIN_DECLS

typedef enum {
  THUMB_RESULT_MADE,
  THUMB_RESULT_UP_TO_DATE,
  THUMB_RESULT_FAILED,        /* a fail entry was written */
  THUMB_RESULT_FAILED_BEFORE, /* a fail entry of the same MTime exists */
  THUMB_RESULT_ERROR,         /* not a local file, gone, cancelled... */
} ThumbResult;

/* The error codes of the org.freedesktop.thumbnails.Thumbnailer1 Error
 * signal. */
typedef enum {
  THUMB_ERROR_UNSUPPORTED = 0,
  THUMB_ERROR_CONNECTION_FAILURE = 1,
  THUMB_ERROR_INVALID_DATA = 2,
  THUMB_ERROR_IS_THUMBNAIL = 3,
  THUMB_ERROR_COULD_NOT_WRITE = 4,
  THUMB_ERROR_UNSUPPORTED_FLAVOR = 5,
} ThumbError;

#define THUMB_ERROR (thumb_error_quark ())
GQuark thumb_error_quark (void);

#define THUMB_TYPE_FACTORY (thumb_factory_get_type ())
G_DECLARE_FINAL_TYPE (ThumbFactory, thumb_factory, THUMB, FACTORY, GObject)

ThumbFactory *thumb_factory_new           (ThumbDecoder        *decoder,
                                           const char          *cache_dir,
                                           guint                max_in_flight);
void          thumb_factory_make_async    (ThumbFactory        *self,
                                           const char          *uri,
                                           ThumbSize            size,
                                           gboolean             force,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
ThumbResult   thumb_factory_make_finish   (ThumbFactory        *self,
                                           GAsyncResult        *result,
                                           GError             **error);
guint         thumb_factory_get_n_waiting (ThumbFactory        *self);

G_END_DECLS
