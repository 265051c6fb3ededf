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

#include <string.h>

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

  thumb_decode_use_huge_pages ();

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
