/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-private.h"

#include <locale.h>

/**
 * afork_error_quark:
 *
 * The quark of the %AFORK_ERROR domain, for language bindings and for
 * code that compares domains itself; C code uses %AFORK_ERROR.
 *
 * Returns: the error domain of afork
 *
 * Since: 1.0
 */
G_DEFINE_QUARK (afork-error-quark, afork_error)

void
_afork_i18n_init (void)
{
  static gsize initialised = 0;

  if (g_once_init_enter (&initialised))
    {
#ifdef ENABLE_NLS
      bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
      bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
#endif
      g_once_init_leave (&initialised, 1);
    }
}

void
_afork_set_error_errno (GError     **error,
                        int          code,
                        int          saved_errno,
                        const char  *what)
{
  /* TRANSLATORS: the first %s is an operation, the second the system's
   * description of what went wrong */
  g_set_error (error, AFORK_ERROR, code, _("%s failed: %s"),
               what, g_strerror (saved_errno));
}
