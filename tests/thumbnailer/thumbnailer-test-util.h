/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the thumbnailer's tests share: a scratch directory, images made
 * with gdk-pixbuf, running afork-thumbnailer, reading thumbnails back. */
#pragma once

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/* Every run of the program is bounded: past it the test fails. */
#define THUMB_TEST_RUN_SECONDS 180

typedef struct {
  char *root;       /* removed at the end */
  char *images;     /* root/images */
  char *cache_home; /* root/cache: XDG_CACHE_HOME of the runs */
} ThumbTestDir;

void         thumb_test_dir_init         (ThumbTestDir *dir);
void         thumb_test_dir_clear        (ThumbTestDir *dir);

const char  *thumb_test_program          (void);

char        *thumb_test_write_image      (const char   *dir,
                                          const char   *name,
                                          const char   *format,
                                          int           width,
                                          int           height);
char        *thumb_test_write_bytes      (const char   *dir,
                                          const char   *name,
                                          const void   *data,
                                          gsize         length);
char        *thumb_test_write_huge_png   (const char   *dir,
                                          const char   *name,
                                          guint32       width,
                                          guint32       height);
char        *thumb_test_write_gif        (const char   *dir,
                                          const char   *name);
char        *thumb_test_write_svg        (const char   *dir,
                                          const char   *name,
                                          int           width,
                                          int           height);
gboolean     thumb_test_have_format      (const char   *name);

int          thumb_test_run              (const ThumbTestDir *dir,
                                          GSubprocessLauncher *launcher,
                                          char              **out,
                                          const char         *first_arg,
                                          ...) G_GNUC_NULL_TERMINATED;

char        *thumb_test_uri              (const char   *path);
char        *thumb_test_thumb_path       (const ThumbTestDir *dir,
                                          const char   *size,
                                          const char   *path);
char        *thumb_test_fail_path        (const ThumbTestDir *dir,
                                          const char   *path);
void         thumb_test_check_thumb      (const ThumbTestDir *dir,
                                          const char   *size,
                                          const char   *path,
                                          int           width,
                                          int           height,
                                          int           image_width,
                                          int           image_height,
                                          const char   *mime_type);
void         thumb_test_check_fail_entry (const ThumbTestDir *dir,
                                          const char   *path);
void         thumb_test_set_mtime        (const char   *path,
                                          gint64        mtime);

G_END_DECLS
