/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The freedesktop Thumbnail Managing Standard: sizes, file names, keys,
 * the fail directory, and writing a thumbnail atomically. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  THUMB_SIZE_NORMAL,
  THUMB_SIZE_LARGE,
  THUMB_SIZE_X_LARGE,
  THUMB_SIZE_XX_LARGE,
  THUMB_N_SIZES,
} ThumbSize;

/* The application name of our fail entries: fail/afork-thumbnailer/. */
#define THUMB_APP_NAME "afork-thumbnailer"

gboolean     thumb_size_from_name      (const char  *name,
                                        ThumbSize   *size);
const char  *thumb_size_get_name       (ThumbSize    size);
guint        thumb_size_get_pixels     (ThumbSize    size);

char        *thumb_uri_for_path        (const char  *path,
                                        GError     **error);
char        *thumb_get_cache_dir       (void);
char        *thumb_get_path            (const char  *cache_dir,
                                        ThumbSize    size,
                                        const char  *uri);
char        *thumb_get_fail_path       (const char  *cache_dir,
                                        const char  *uri);
gboolean     thumb_is_uri_in_cache     (const char  *cache_dir,
                                        const char  *uri);

gboolean     thumb_file_is_valid       (const char  *thumb_path,
                                        const char  *uri,
                                        gint64       mtime);
GHashTable  *thumb_read_text_keys      (const char  *png_path,
                                        GError     **error);

gboolean     thumb_write_atomically    (const char  *path,
                                        const void  *data,
                                        gsize        length,
                                        GError     **error);
gboolean     thumb_write_fail_entry    (const char  *cache_dir,
                                        const char  *uri,
                                        gint64       mtime,
                                        GError     **error);

G_END_DECLS
