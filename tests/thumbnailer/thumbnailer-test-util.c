/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "thumbnailer-test-util.h"

#include <glib/gstdio.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>

void
thumb_test_dir_init (ThumbTestDir *dir)
{
  g_autoptr(GError) error = NULL;

  dir->root = g_dir_make_tmp ("afork-thumbnailer-XXXXXX", &error);
  g_assert_no_error (error);
  dir->images = g_build_filename (dir->root, "images", NULL);
  dir->cache_home = g_build_filename (dir->root, "cache", NULL);
  g_assert_cmpint (g_mkdir (dir->images, 0755), ==, 0);
  g_assert_cmpint (g_mkdir (dir->cache_home, 0700), ==, 0);
}

static void
remove_tree (const char *path)
{
  GStatBuf st;

  if (g_lstat (path, &st) < 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) d = NULL;
      const char *name;

      g_chmod (path, 0700);
      d = g_dir_open (path, 0, NULL);
      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          remove_tree (child);
        }
      g_rmdir (path);
    }
  else
    g_unlink (path);
}

void
thumb_test_dir_clear (ThumbTestDir *dir)
{
  remove_tree (dir->root);
  g_clear_pointer (&dir->root, g_free);
  g_clear_pointer (&dir->images, g_free);
  g_clear_pointer (&dir->cache_home, g_free);
}

const char *
thumb_test_program (void)
{
  const char *program = g_getenv ("AFORK_THUMBNAILER");

  g_assert_nonnull (program);
  return program;
}

gboolean
thumb_test_have_format (const char *name)
{
  GSList *formats = gdk_pixbuf_get_formats ();
  gboolean found = FALSE;

  for (GSList *l = formats; l != NULL && !found; l = l->next)
    {
      g_autofree char *format_name = gdk_pixbuf_format_get_name (l->data);

      found = g_strcmp0 (format_name, name) == 0;
    }
  g_slist_free (formats);

  return found;
}

/* A picture with a gradient and a diagonal, so that every format has
 * something to encode. */
char *
thumb_test_write_image (const char *dir,
                        const char *name,
                        const char *format,
                        int         width,
                        int         height)
{
  g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, width, height);
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);
  guchar *pixels = gdk_pixbuf_get_pixels (pixbuf);
  int stride = gdk_pixbuf_get_rowstride (pixbuf);

  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      {
        guchar *p = pixels + (gsize) y * stride + x * 3;

        p[0] = (x * 255) / width;
        p[1] = (y * 255) / height;
        p[2] = (x == y * width / height) ? 255 : 64;
      }

  gdk_pixbuf_save (pixbuf, path, format, &error, NULL);
  g_assert_no_error (error);

  return path;
}

char *
thumb_test_write_bytes (const char *dir,
                        const char *name,
                        const void *data,
                        gsize       length)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (dir, name, NULL);

  g_file_set_contents (path, data, length, &error);
  g_assert_no_error (error);

  return path;
}

static guint32
crc32_of (const guchar *data,
          gsize         length)
{
  guint32 crc = 0xffffffff;

  for (gsize i = 0; i < length; i++)
    {
      crc ^= data[i];
      for (int k = 0; k < 8; k++)
        crc = (crc >> 1) ^ (0xedb88320 & (0 - (crc & 1)));
    }

  return crc ^ 0xffffffff;
}

static void
append_be32 (GByteArray *array,
             guint32     value)
{
  guchar b[4] = { value >> 24, value >> 16, value >> 8, value };

  g_byte_array_append (array, b, 4);
}

static void
append_chunk (GByteArray   *png,
              const char   *type,
              const guchar *data,
              guint32       length)
{
  g_autoptr(GByteArray) body = g_byte_array_new ();

  g_byte_array_append (body, (const guchar *) type, 4);
  if (length > 0)
    g_byte_array_append (body, data, length);
  append_be32 (png, length);
  g_byte_array_append (png, body->data, body->len);
  append_be32 (png, crc32_of (body->data, body->len));
}

/* A valid PNG header declaring @width × @height RGBA pixels, followed by
 * a little compressed data: a decoder that trusts the header allocates
 * width × height × 4 bytes. */
char *
thumb_test_write_huge_png (const char *dir,
                           const char *name,
                           guint32     width,
                           guint32     height)
{
  static const guchar signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  /* zlib: a stored block of 16 zero bytes. */
  static const guchar idat[] = { 0x78, 0x01, 0x01, 0x10, 0x00, 0xef, 0xff,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  g_autoptr(GByteArray) png = g_byte_array_new ();
  guchar ihdr[13];

  ihdr[0] = width >> 24; ihdr[1] = width >> 16; ihdr[2] = width >> 8; ihdr[3] = width;
  ihdr[4] = height >> 24; ihdr[5] = height >> 16; ihdr[6] = height >> 8; ihdr[7] = height;
  ihdr[8] = 8;  /* bit depth */
  ihdr[9] = 6;  /* RGBA */
  ihdr[10] = ihdr[11] = ihdr[12] = 0;

  g_byte_array_append (png, signature, sizeof signature);
  append_chunk (png, "IHDR", ihdr, sizeof ihdr);
  append_chunk (png, "IDAT", idat, sizeof idat);
  append_chunk (png, "IEND", NULL, 0);

  return thumb_test_write_bytes (dir, name, png->data, png->len);
}

/* gdk-pixbuf cannot save GIF: a 1×1 GIF89a, byte by byte. */
char *
thumb_test_write_gif (const char *dir,
                      const char *name)
{
  static const guchar gif[] = {
    'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
    0xff, 0x00, 0x00, 0x00, 0x00, 0xff,                  /* red, blue */
    0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
    0x02, 0x02, 0x44, 0x01, 0x00,                        /* LZW data */
    0x3b,
  };

  return thumb_test_write_bytes (dir, name, gif, sizeof gif);
}

char *
thumb_test_write_svg (const char *dir,
                      const char *name,
                      int         width,
                      int         height)
{
  g_autofree char *svg = g_strdup_printf (
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">"
    "<rect width=\"%d\" height=\"%d\" fill=\"#3465a4\"/>"
    "<circle cx=\"%d\" cy=\"%d\" r=\"%d\" fill=\"#f57900\"/></svg>\n",
    width, height, width, height, width / 2, height / 2, MIN (width, height) / 3);

  return thumb_test_write_bytes (dir, name, svg, strlen (svg));
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **slot = user_data;

  (void) source;
  *slot = g_object_ref (result);
}

static gboolean
on_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs afork-thumbnailer with XDG_CACHE_HOME set to the scratch cache;
 * returns its exit status, its standard output in @out (nullable). Its
 * standard error goes to ours. */
int
thumb_test_run (const ThumbTestDir  *dir,
                GSubprocessLauncher *launcher,
                char               **out,
                const char          *first_arg,
                ...)
{
  g_autoptr(GSubprocessLauncher) own_launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *stdout_buf = NULL;
  gboolean timed_out = FALSE;
  guint timeout_id;
  const char *arg;
  va_list args;

  if (launcher == NULL)
    launcher = own_launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", dir->cache_home, TRUE);

  g_ptr_array_add (argv, (gpointer) thumb_test_program ());
  va_start (args, first_arg);
  for (arg = first_arg; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);

  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);

  g_subprocess_communicate_utf8_async (process, NULL, NULL, store_result, &result);
  timeout_id = g_timeout_add_seconds (THUMB_TEST_RUN_SECONDS, on_timeout, &timed_out);
  while (result == NULL && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (timed_out)
    {
      g_subprocess_force_exit (process);
      g_error ("afork-thumbnailer ran longer than %d s", THUMB_TEST_RUN_SECONDS);
    }
  g_source_remove (timeout_id);

  g_subprocess_communicate_utf8_finish (process, result, &stdout_buf, NULL, &error);
  g_assert_no_error (error);
  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));

  if (stdout_buf != NULL)
    g_test_message ("afork-thumbnailer: %s", stdout_buf);
  if (out != NULL)
    *out = g_steal_pointer (&stdout_buf);

  return g_subprocess_get_exit_status (process);
}

char *
thumb_test_uri (const char *path)
{
  g_autoptr(GError) error = NULL;
  char *uri = g_filename_to_uri (path, NULL, &error);

  g_assert_no_error (error);
  return uri;
}

char *
thumb_test_thumb_path (const ThumbTestDir *dir,
                       const char         *size,
                       const char         *path)
{
  g_autofree char *uri = thumb_test_uri (path);
  g_autofree char *md5 = g_compute_checksum_for_string (G_CHECKSUM_MD5, uri, -1);
  g_autofree char *base = g_strconcat (md5, ".png", NULL);

  return g_build_filename (dir->cache_home, "thumbnails", size, base, NULL);
}

char *
thumb_test_fail_path (const ThumbTestDir *dir,
                      const char         *path)
{
  g_autofree char *uri = thumb_test_uri (path);
  g_autofree char *md5 = g_compute_checksum_for_string (G_CHECKSUM_MD5, uri, -1);
  g_autofree char *base = g_strconcat (md5, ".png", NULL);

  return g_build_filename (dir->cache_home, "thumbnails", "fail", "afork-thumbnailer",
                           base, NULL);
}

/* The spec's keys are tEXt chunks (gdk-pixbuf would read iTXt ones the
 * same): looks for a tEXt chunk whose keyword is @keyword. */
static gboolean
has_text_chunk (const char *png_path,
                const char *keyword)
{
  g_autofree guchar *data = NULL;
  gsize length = 0, pos = 8;

  if (!g_file_get_contents (png_path, (char **) &data, &length, NULL))
    return FALSE;
  while (pos + 8 <= length)
    {
      guint32 n = ((guint32) data[pos] << 24) | (data[pos + 1] << 16) |
                  (data[pos + 2] << 8) | data[pos + 3];

      if (n > length - pos - 8)
        break;
      if (memcmp (data + pos + 4, "tEXt", 4) == 0 && n > strlen (keyword) &&
          memcmp (data + pos + 8, keyword, strlen (keyword) + 1) == 0)
        return TRUE;
      pos += 12 + (gsize) n;
    }

  return FALSE;
}

/* Reads the thumbnail of @path back with gdk-pixbuf: its size, its keys
 * and its mode. @image_width < 0 skips the image size keys. */
void
thumb_test_check_thumb (const ThumbTestDir *dir,
                        const char         *size,
                        const char         *path,
                        int                 width,
                        int                 height,
                        int                 image_width,
                        int                 image_height,
                        const char         *mime_type)
{
  g_autofree char *thumb = thumb_test_thumb_path (dir, size, path);
  g_autofree char *uri = thumb_test_uri (path);
  g_autofree char *mtime = NULL;
  g_autofree char *file_size = NULL;
  g_autoptr(GdkPixbuf) pixbuf = NULL;
  g_autoptr(GError) error = NULL;
  GStatBuf st, thumb_st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  mtime = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) st.st_mtime);
  file_size = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) st.st_size);

  pixbuf = gdk_pixbuf_new_from_file (thumb, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_pixbuf_get_width (pixbuf), ==, width);
  g_assert_cmpint (gdk_pixbuf_get_height (pixbuf), ==, height);
  g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::URI"), ==, uri);
  g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::MTime"), ==, mtime);
  g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::Size"), ==, file_size);
  if (mime_type != NULL)
    g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::Mimetype"), ==, mime_type);
  if (image_width >= 0)
    {
      g_autofree char *w = g_strdup_printf ("%d", image_width);
      g_autofree char *h = g_strdup_printf ("%d", image_height);

      g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::Image::Width"), ==, w);
      g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::Image::Height"), ==, h);
    }

  g_assert_true (has_text_chunk (thumb, "Thumb::URI"));
  g_assert_true (has_text_chunk (thumb, "Thumb::MTime"));

  g_assert_cmpint (g_stat (thumb, &thumb_st), ==, 0);
  g_assert_cmpint (thumb_st.st_mode & 0777, ==, 0600);
}

void
thumb_test_check_fail_entry (const ThumbTestDir *dir,
                             const char         *path)
{
  g_autofree char *fail = thumb_test_fail_path (dir, path);
  g_autofree char *uri = thumb_test_uri (path);
  g_autoptr(GdkPixbuf) pixbuf = NULL;
  g_autoptr(GError) error = NULL;
  GStatBuf st;

  pixbuf = gdk_pixbuf_new_from_file (fail, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::URI"), ==, uri);
  if (g_stat (path, &st) == 0)
    {
      g_autofree char *mtime = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) st.st_mtime);

      g_assert_cmpstr (gdk_pixbuf_get_option (pixbuf, "tEXt::Thumb::MTime"), ==, mtime);
    }
}

void
thumb_test_set_mtime (const char *path,
                      gint64      mtime)
{
  struct utimbuf times = { (time_t) mtime, (time_t) mtime };

  g_assert_cmpint (utime (path, &times), ==, 0);
}
