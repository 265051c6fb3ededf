/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The worker module of afork-thumbnailer, loaded into the template of its
 * pool. It links GLib and gdk-pixbuf only.
 *
 * afork_thumbnailer_init() runs once in the template, before the template
 * is sandboxed: it loads every gdk-pixbuf loader and the MIME database, so
 * that a worker forked from it needs no file of the system.
 *
 * afork_thumbnailer_decode() is the pool function each worker runs, once
 * (the pool forks a fresh worker per image): the input arrives as a
 * descriptor, an 'h' handle of the call, opened by the parent with the
 * user's rights; the reply carries the thumbnail as PNG bytes. */
#include "config.h"

#include "thumbnailer-decode.h"

#include <afork/afork.h>
#include <glib/gi18n-lib.h>
#include <gmodule.h>

#include <malloc.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

G_MODULE_EXPORT const char *g_module_check_init (GModule *module);
G_MODULE_EXPORT gboolean afork_thumbnailer_init (AforkChild         *child,
                                                 const char * const *args,
                                                 GError            **error);
G_MODULE_EXPORT GVariant *afork_thumbnailer_decode (AforkChild  *child,
                                                    GVariant    *parameters,
                                                    GError     **error);

/* The test hooks (see thumbnailer-decode.h). */
static ThumbDecodeHooks hooks;

const char *
g_module_check_init (G_GNUC_UNUSED GModule *module)
{
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");

  return NULL;
}

/* Volatile: a block whose address nobody reads may otherwise not be
 * allocated at all. */
static gpointer volatile below_huge_pages;

/* A worker is a process forked for one image, and every page it touches
 * for the first time costs it a page fault: some 20 µs each in a
 * virtual machine, several µs on bare metal. The buffers of one decode
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
static void
use_huge_pages (void)
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

/* Arguments: none, or "crash-marker=BYTES", "hang-marker=BYTES" (tests
 * only). */
gboolean
afork_thumbnailer_init (G_GNUC_UNUSED AforkChild *child,
                        const char * const       *args,
                        G_GNUC_UNUSED GError    **error)
{
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    {
      if (g_str_has_prefix (args[i], "crash-marker="))
        hooks.crash_marker = g_strdup (args[i] + strlen ("crash-marker="));
      else if (g_str_has_prefix (args[i], "hang-marker="))
        hooks.hang_marker = g_strdup (args[i] + strlen ("hang-marker="));
    }

  thumb_decode_init ();

  return TRUE;
}

GVariant *
afork_thumbnailer_decode (AforkChild  *child,
                          GVariant    *parameters,
                          GError     **error)
{
  g_autoptr(GVariant) keys = NULL;
  gint32 handle;
  guint32 max_side;
  int fd;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE (THUMB_DECODE_PARAMETERS_TYPE)))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   _("Expected parameters of type %s, got %s"),
                   THUMB_DECODE_PARAMETERS_TYPE, g_variant_get_type_string (parameters));
      return NULL;
    }

  use_huge_pages ();

  g_variant_get (parameters, "(hu@a{ss})", &handle, &max_side, &keys);
  fd = afork_child_get_call_fd (child, handle);
  if (fd < 0 || max_side == 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_BADF,
                   _("The call carries no image descriptor"));
      return NULL;
    }

  return thumb_decode_fd (fd, max_side, keys, &hooks, error);
}
