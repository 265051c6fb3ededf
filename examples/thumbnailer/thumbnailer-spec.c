/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The freedesktop Thumbnail Managing Standard, as the GNOME thumbnail
 * factory reads it:
 *
 * - a thumbnail of the file at URI lives in
 *   $XDG_CACHE_HOME/thumbnails/SIZE/MD5.png, MD5 being the lowercase hex
 *   MD5 digest of the URI, the URI being absolute and escaped as RFC 2396
 *   says (g_filename_to_uri(): space is %20, '#' %23, '%' %25, bytes
 *   outside ASCII %XX each);
 * - a thumbnail is up to date when its Thumb::URI key is that URI and its
 *   Thumb::MTime key the file's modification time in seconds;
 * - a program that cannot make a thumbnail writes an entry in
 *   thumbnails/fail/PROGRAM/MD5.png with the same keys, and does not try
 *   again while the file's MTime is the same;
 * - files are written to a temporary name in the same directory, set to
 *   mode 0600 and renamed, so that a reader never sees half a file.
 *
 * The keys are read straight from the PNG's tEXt chunks, without decoding
 * the image: checking a thousand thumbnails costs a thousand small reads. */
#include "config.h"

#include "thumbnailer-spec.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
  const char *name;
  guint pixels;
} sizes[THUMB_N_SIZES] = {
  [THUMB_SIZE_NORMAL] = { "normal", 128 },
  [THUMB_SIZE_LARGE] = { "large", 256 },
  [THUMB_SIZE_X_LARGE] = { "x-large", 512 },
  [THUMB_SIZE_XX_LARGE] = { "xx-large", 1024 },
};

gboolean
thumb_size_from_name (const char *name,
                      ThumbSize  *size)
{
  for (guint i = 0; i < THUMB_N_SIZES; i++)
    if (g_strcmp0 (name, sizes[i].name) == 0)
      {
        *size = (ThumbSize) i;
        return TRUE;
      }

  return FALSE;
}

const char *
thumb_size_get_name (ThumbSize size)
{
  g_return_val_if_fail (size < THUMB_N_SIZES, NULL);

  return sizes[size].name;
}

guint
thumb_size_get_pixels (ThumbSize size)
{
  g_return_val_if_fail (size < THUMB_N_SIZES, 0);

  return sizes[size].pixels;
}

/* The URI a file manager asks for: the absolute path as given, "." and
 * ".." removed, symbolic links not resolved (a link has its own URI). */
char *
thumb_uri_for_path (const char  *path,
                    GError     **error)
{
  g_autofree char *absolute = g_canonicalize_filename (path, NULL);

  return g_filename_to_uri (absolute, NULL, error);
}

char *
thumb_get_cache_dir (void)
{
  return g_build_filename (g_get_user_cache_dir (), "thumbnails", NULL);
}

static char *
thumb_basename (const char *uri)
{
  g_autofree char *md5 = g_compute_checksum_for_string (G_CHECKSUM_MD5, uri, -1);

  return g_strconcat (md5, ".png", NULL);
}

char *
thumb_get_path (const char *cache_dir,
                ThumbSize   size,
                const char *uri)
{
  g_autofree char *base = thumb_basename (uri);

  return g_build_filename (cache_dir, thumb_size_get_name (size), base, NULL);
}

char *
thumb_get_fail_path (const char *cache_dir,
                     const char *uri)
{
  g_autofree char *base = thumb_basename (uri);

  return g_build_filename (cache_dir, "fail", THUMB_APP_NAME, base, NULL);
}

/* Thumbnails are not thumbnailed. */
gboolean
thumb_is_uri_in_cache (const char *cache_dir,
                       const char *uri)
{
  g_autofree char *cache_uri = g_filename_to_uri (cache_dir, NULL, NULL);
  g_autofree char *prefix = NULL;

  if (cache_uri == NULL)
    return FALSE;
  prefix = g_strconcat (cache_uri, "/", NULL);

  return g_str_has_prefix (uri, prefix);
}

static guint32
read_be32 (const guchar *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

/* Returns the tEXt keys of the PNG at @png_path (keyword → text), read
 * from the chunks before the image data. The text is Latin-1 by the PNG
 * specification; the keys we look at are ASCII. */
GHashTable *
thumb_read_text_keys (const char  *png_path,
                      GError     **error)
{
  static const guchar signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  /* Our thumbnails put their keys first; 64 KiB is plenty. */
  enum { HEAD = 64 * 1024 };
  g_autoptr(GHashTable) keys = NULL;
  g_autofree guchar *buffer = NULL;
  gsize length = 0, pos;
  int fd;

  fd = g_open (png_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "%s: %s", png_path, g_strerror (saved_errno));
      return NULL;
    }

  buffer = g_malloc (HEAD);
  while (length < HEAD)
    {
      ssize_t n = read (fd, buffer + length, HEAD - length);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      length += n;
    }
  close (fd);

  if (length < sizeof signature || memcmp (buffer, signature, sizeof signature) != 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   _("%s is not a PNG file"), png_path);
      return NULL;
    }

  keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (pos = sizeof signature; pos + 8 <= length;)
    {
      guint32 chunk_length = read_be32 (buffer + pos);
      const guchar *type = buffer + pos + 4;
      const guchar *data = buffer + pos + 8;

      if (chunk_length > length - pos - 8)
        break;
      if (memcmp (type, "IDAT", 4) == 0 || memcmp (type, "IEND", 4) == 0)
        break;
      if (memcmp (type, "tEXt", 4) == 0)
        {
          const guchar *nul = memchr (data, '\0', chunk_length);

          if (nul != NULL)
            g_hash_table_insert (keys,
                                 g_strndup ((const char *) data, nul - data),
                                 g_strndup ((const char *) nul + 1,
                                            chunk_length - (nul + 1 - data)));
        }
      else if (memcmp (type, "iTXt", 4) == 0)
        {
          /* keyword NUL, compressed, method, language NUL, translated
           * keyword NUL, text: other programs write these; uncompressed
           * ones are read. */
          const guchar *end = data + chunk_length;
          const guchar *nul = memchr (data, '\0', chunk_length);
          const guchar *p = nul != NULL ? nul + 3 : NULL;

          if (p != NULL && p <= end && nul[1] == 0)
            p = memchr (p, '\0', end - p);
          if (p != NULL && p + 1 <= end)
            p = memchr (p + 1, '\0', end - (p + 1));
          if (p != NULL && nul[1] == 0)
            g_hash_table_insert (keys,
                                 g_strndup ((const char *) data, nul - data),
                                 g_strndup ((const char *) p + 1, end - (p + 1)));
        }
      pos += 8 + (gsize) chunk_length + 4;
    }

  return g_steal_pointer (&keys);
}

/* TRUE when @thumb_path is a thumbnail (or fail entry) of @uri as it was
 * at @mtime. */
gboolean
thumb_file_is_valid (const char *thumb_path,
                     const char *uri,
                     gint64      mtime)
{
  g_autoptr(GHashTable) keys = thumb_read_text_keys (thumb_path, NULL);
  const char *thumb_uri, *thumb_mtime;
  char *end = NULL;
  gint64 value;

  if (keys == NULL)
    return FALSE;

  thumb_uri = g_hash_table_lookup (keys, "Thumb::URI");
  thumb_mtime = g_hash_table_lookup (keys, "Thumb::MTime");
  if (g_strcmp0 (thumb_uri, uri) != 0 || thumb_mtime == NULL)
    return FALSE;

  value = g_ascii_strtoll (thumb_mtime, &end, 10);
  return end != thumb_mtime && *end == '\0' && value == mtime;
}

gboolean
thumb_write_atomically (const char  *path,
                        const void  *data,
                        gsize        length,
                        GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *tmp_path = g_strconcat (path, ".XXXXXX", NULL);
  const char *p = data;
  int saved_errno;
  int fd;

  if (g_mkdir_with_parents (dir, 0700) < 0)
    goto failed;

  fd = g_mkstemp_full (tmp_path, O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0)
    goto failed;

  while (length > 0)
    {
      ssize_t n = write (fd, p, length);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          saved_errno = n < 0 ? errno : ENOSPC;
          close (fd);
          g_unlink (tmp_path);
          errno = saved_errno;
          goto failed;
        }
      p += n;
      length -= n;
    }

  if (fchmod (fd, 0600) < 0 || close (fd) < 0 || g_rename (tmp_path, path) < 0)
    {
      saved_errno = errno;
      g_unlink (tmp_path);
      errno = saved_errno;
      goto failed;
    }

  return TRUE;

failed:
  saved_errno = errno;
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               _("Cannot write %s: %s"), path, g_strerror (saved_errno));
  return FALSE;
}

/* A fail entry is what the GNOME thumbnail factory writes: a transparent
 * 1×1 PNG with the URI and MTime keys. */
gboolean
thumb_write_fail_entry (const char  *cache_dir,
                        const char  *uri,
                        gint64       mtime,
                        GError     **error)
{
  g_autofree char *path = thumb_get_fail_path (cache_dir, uri);
  g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new (GDK_COLORSPACE_RGB, TRUE, 8, 1, 1);
  g_autofree char *mtime_str = g_strdup_printf ("%" G_GINT64_FORMAT, mtime);
  g_autofree char *data = NULL;
  gsize length = 0;
  char *keys[] = { "tEXt::Thumb::URI", "tEXt::Thumb::MTime", "tEXt::Software", NULL };
  char *values[] = { (char *) uri, mtime_str, THUMB_APP_NAME, NULL };

  gdk_pixbuf_fill (pixbuf, 0);
  if (!gdk_pixbuf_save_to_bufferv (pixbuf, &data, &length, "png", keys, values, error))
    return FALSE;

  return thumb_write_atomically (path, data, length, error);
}
