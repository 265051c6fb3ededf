/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Decoding one image from a descriptor into a thumbnail.
 *
 * The image is read from the descriptor the parent opened (never by path:
 * the worker has no right to open anything) into a GdkPixbufLoader. The
 * loader is told the final size as soon as it knows the image's, so that
 * the JPEG loader decodes at 1/2, 1/4 or 1/8 of the size directly; an
 * image that declares more than THUMB_DECODE_MAX_PIXELS is stopped there,
 * before its pixels are allocated. The result is encoded as a PNG with the
 * keys of the Thumbnail Managing Standard, and returned with the original
 * size and the MIME type. Never upscaled. */
#include "config.h"

#include "thumbnailer-decode.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gi18n-lib.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
  guint max_side;
  int width;
  int height;
  gboolean too_large;
} SizeState;

static GIConv latin1 = (GIConv) -1;

/* Volatile: a block whose address nobody reads may otherwise not be
 * allocated at all. */
static gpointer volatile below_huge_pages;

/* For a process forked to decode one image (a worker of the pool, or the
 * benchmark's hand-written fork per image), before its first decode.
 *
 * A worker is a process forked for one image, and every page it touches
 * for the first time costs it a page fault: 15 to 20 µs each in a
 * virtual machine that shadows page tables (tests/bench/bench-page-costs.c
 * measures it), far less on bare metal. The buffers of one decode
 * (the pixels at the decoded scale, the scaled copy, zlib's state, the
 * PNG) come to a few hundred pages, which malloc takes from fresh mmap()s
 * (128 KiB and more) or from the template's heap. A transparent huge page
 * costs one fault for 2 MiB. So before its first call a worker grows its
 * heap, asks for huge pages (MADV_HUGEPAGE) in the 8 MiB from the first
 * 2 MiB boundary above the heap it was forked with (the 2 MiB around the
 * old top already has a table of small pages), keeps the part below that
 * boundary allocated (untouched, it costs nothing), and has malloc serve
 * blocks up to 16 MiB from the heap rather than from mmap(): the decode's
 * buffers then come from huge pages. Larger blocks are mapped as before,
 * and given back when freed. Where a step fails (no transparent huge
 * pages, a heap that cannot grow, another malloc), the worker decodes as
 * it would have, page by page. A huge page may cost the kernel a
 * compaction where memory is fragmented: that is the price of
 * MADV_HUGEPAGE (transparent_hugepage/defrag). */
void
thumb_decode_use_huge_pages (void)
{
  static gboolean done;
  const guintptr huge = 2 << 20;
  const guintptr area = 8 << 20;
  const guintptr limit = 16 << 20;
  guintptr first, start;
  char *block;

  if (done)
    return;
  done = TRUE;

  /* Blocks up to @limit from the heap (the one below among them); the
   * trim threshold is raised too, so that freeing it keeps the heap
   * grown. */
  if (mallopt (M_MMAP_THRESHOLD, limit) == 0 ||
      mallopt (M_TRIM_THRESHOLD, 2 * limit) == 0)
    return;

  /* Above the heap this process was forked with (and past the 2 MiB
   * around its top, which has a table of small pages already), nothing
   * is mapped yet: a huge page can go there. */
  first = ((guintptr) sbrk (0) + huge - 1) & ~(huge - 1);

  /* A block from the top of the heap to past first + area: the heap
   * grows to hold it, and malloc writes nothing between the two (the
   * block's header is at its start, the top's after its end). Freed, it
   * goes back to the top of the heap, where the next blocks come from. A
   * block that came from elsewhere (one of the template's free blocks,
   * or a mapping of its own, gone with free()) is not used. */
  block = malloc (area + 2 * huge);
  if (block == NULL)
    return;
  start = (guintptr) block;
  free (block);
  if (start >= first || first + area > (guintptr) sbrk (0) ||
      madvise ((void *) first, area, MADV_HUGEPAGE) != 0)
    return;

  /* The part below the boundary: allocated for good and never written,
   * so that the next block's header (8 bytes before it, 16-byte aligned)
   * is at the boundary, in the first huge page. */
  below_huge_pages = malloc (first - start + 8);
}

/* Loads every gdk-pixbuf loader module and the MIME database now, so that
 * decoding needs no file of the system later (a sandboxed template calls
 * this before it closes its doors, and every worker inherits the result). */
void
thumb_decode_init (void)
{
  static const guchar png_head[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  GSList *formats = gdk_pixbuf_get_formats ();
  g_autofree char *type = NULL;

  for (GSList *l = formats; l != NULL; l = l->next)
    {
      g_autofree char *name = gdk_pixbuf_format_get_name (l->data);
      g_autoptr(GdkPixbufLoader) loader = gdk_pixbuf_loader_new_with_type (name, NULL);

      if (loader != NULL)
        gdk_pixbuf_loader_close (loader, NULL);
    }
  g_slist_free (formats);

  /* The PNG saver converts the text keys to Latin-1 (tEXt chunks; iTXt
   * when that fails): iconv reads its configuration on first use, so it is
   * used once here, and a descriptor stays open so that nothing of it is
   * unloaded. */
  if (latin1 == (GIConv) -1)
    latin1 = g_iconv_open ("ISO-8859-1", "UTF-8");
  g_free (g_convert ("Thumb::URI", -1, "ISO-8859-1", "UTF-8", NULL, NULL, NULL));

  /* gdk-pixbuf guesses the type from the first bytes through GIO's
   * content types: this loads the shared MIME database. */
  type = g_content_type_guess (NULL, png_head, sizeof png_head, NULL);
}

static void
on_size_prepared (GdkPixbufLoader *loader,
                  int              width,
                  int              height,
                  gpointer         user_data)
{
  SizeState *state = user_data;
  int longest = MAX (width, height);

  state->width = width;
  state->height = height;

  if (width <= 0 || height <= 0 ||
      (guint64) width * (guint64) height > THUMB_DECODE_MAX_PIXELS)
    {
      /* Zero asks the loader to stop before allocating anything. */
      state->too_large = TRUE;
      gdk_pixbuf_loader_set_size (loader, 0, 0);
      return;
    }

  if ((guint) longest > state->max_side)
    {
      double scale = (double) state->max_side / longest;

      gdk_pixbuf_loader_set_size (loader,
                                  MAX (1, (int) (width * scale + 0.5)),
                                  MAX (1, (int) (height * scale + 0.5)));
    }
}

static gboolean
starts_with (const guchar *data,
             gsize         length,
             const char   *marker)
{
  return marker != NULL && *marker != '\0' && length >= strlen (marker) &&
         memcmp (data, marker, strlen (marker)) == 0;
}

GVariant *
thumb_decode_fd (int                     fd,
                 guint                   max_side,
                 GVariant               *keys,
                 const ThumbDecodeHooks *hooks,
                 GError                **error)
{
  enum { CHUNK = 64 * 1024 };
  g_autoptr(GdkPixbufLoader) loader = NULL;
  g_autoptr(GdkPixbuf) oriented = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) option_keys = NULL;
  g_autoptr(GPtrArray) option_values = NULL;
  g_autofree guchar *chunk = NULL;
  g_autofree char *png = NULL;
  g_autofree char *mime_type = NULL;
  g_autofree char *width_str = NULL;
  g_autofree char *height_str = NULL;
  GdkPixbufFormat *format;
  GdkPixbuf *pixbuf;
  SizeState state = { max_side, 0, 0, FALSE };
  gboolean first = TRUE;
  gboolean write_failed = FALSE;
  GVariantIter iter;
  const char *key, *value;
  gsize png_length = 0;
  char *data;

  g_return_val_if_fail (fd >= 0, NULL);
  g_return_val_if_fail (max_side > 0, NULL);

  loader = gdk_pixbuf_loader_new ();
  g_signal_connect (loader, "size-prepared", G_CALLBACK (on_size_prepared), &state);

  chunk = g_malloc (CHUNK);
  for (;;)
    {
      ssize_t n = read (fd, chunk, CHUNK);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          gdk_pixbuf_loader_close (loader, NULL);
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       _("Cannot read the image: %s"), g_strerror (saved_errno));
          return NULL;
        }
      if (n == 0)
        break;

      if (first && hooks != NULL)
        {
          if (starts_with (chunk, n, hooks->crash_marker))
            raise (SIGSEGV);
          /* Long past any deadline, but not for ever. */
          if (starts_with (chunk, n, hooks->hang_marker))
            g_usleep (300 * G_USEC_PER_SEC);
        }
      first = FALSE;

      if (!gdk_pixbuf_loader_write (loader, chunk, n, &local_error))
        {
          write_failed = TRUE;
          break;
        }
      if (state.too_large)
        break;
    }

  gdk_pixbuf_loader_close (loader, write_failed ? NULL : &local_error);

  if (state.too_large)
    {
      g_clear_error (&local_error);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOMEM,
                   _("The image declares %d×%d pixels, more than a thumbnailer decodes"),
                   state.width, state.height);
      return NULL;
    }

  /* A truncated image gives a partial picture and an error: the picture
   * is thumbnailed, as gdk-pixbuf-thumbnailer does. */
  pixbuf = gdk_pixbuf_loader_get_pixbuf (loader);
  if (pixbuf == NULL || write_failed)
    {
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        g_set_error (error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_CORRUPT_IMAGE,
                     _("The image could not be decoded"));
      return NULL;
    }

  oriented = gdk_pixbuf_apply_embedded_orientation (pixbuf);
  if (oriented == NULL)
    {
      g_set_error (error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_INSUFFICIENT_MEMORY,
                   _("Not enough memory to rotate the image"));
      return NULL;
    }

  format = gdk_pixbuf_loader_get_format (loader);
  if (format != NULL)
    {
      g_auto(GStrv) types = gdk_pixbuf_format_get_mime_types (format);

      if (types != NULL && types[0] != NULL)
        mime_type = g_strdup (types[0]);
    }
  if (mime_type == NULL)
    mime_type = g_strdup ("application/octet-stream");

  width_str = g_strdup_printf ("%d", state.width);
  height_str = g_strdup_printf ("%d", state.height);

  option_keys = g_ptr_array_new_with_free_func (g_free);
  option_values = g_ptr_array_new_with_free_func (g_free);
  if (keys != NULL)
    {
      g_variant_iter_init (&iter, keys);
      while (g_variant_iter_next (&iter, "{&s&s}", &key, &value))
        {
          g_ptr_array_add (option_keys, g_strconcat ("tEXt::", key, NULL));
          g_ptr_array_add (option_values, g_strdup (value));
        }
    }
  g_ptr_array_add (option_keys, g_strdup ("tEXt::Thumb::Mimetype"));
  g_ptr_array_add (option_values, g_strdup (mime_type));
  g_ptr_array_add (option_keys, g_strdup ("tEXt::Thumb::Image::Width"));
  g_ptr_array_add (option_values, g_strdup (width_str));
  g_ptr_array_add (option_keys, g_strdup ("tEXt::Thumb::Image::Height"));
  g_ptr_array_add (option_values, g_strdup (height_str));
  g_ptr_array_add (option_keys, g_strdup ("tEXt::Software"));
  g_ptr_array_add (option_values, g_strdup ("afork-thumbnailer"));
  g_ptr_array_add (option_keys, NULL);
  g_ptr_array_add (option_values, NULL);

  if (!gdk_pixbuf_save_to_bufferv (oriented, &png, &png_length, "png",
                                   (char **) option_keys->pdata,
                                   (char **) option_values->pdata,
                                   error))
    return NULL;

  data = g_steal_pointer (&png);
  return g_variant_new ("(@ayuus)",
                        g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING,
                                                 data, png_length,
                                                 TRUE, g_free, data),
                        (guint32) state.width, (guint32) state.height, mime_type);
}
