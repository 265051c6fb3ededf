/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pool functions of the calls example. A worker module needs GLib
 * only: built against afork's headers, linked with GLib alone. */
#include <afork/afork.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#define EXAMPLE_EXPORT __attribute__((visibility("default")))

/* (s) → (u): counts the words of a text, telling how far it got. */
EXAMPLE_EXPORT GVariant *example_count_words (AforkChild *child, GVariant *parameters,
                                              GError **error);
GVariant *
example_count_words (AforkChild  *child,
                     GVariant    *parameters,
                     GError     **error)
{
  g_auto(GStrv) words = NULL;
  const char *text;
  guint32 n = 0;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(s)")))
    {
      g_set_error (error, G_VARIANT_PARSE_ERROR, G_VARIANT_PARSE_ERROR_TYPE_ERROR,
                   "expected (s), got %s", g_variant_get_type_string (parameters));
      return NULL;
    }

  g_variant_get (parameters, "(&s)", &text);
  words = g_strsplit_set (text, " \t\n", -1);
  for (guint i = 0; words[i] != NULL; i++)
    if (words[i][0] != '\0')
      n++;

  afork_child_emit_event (child, "progress", g_variant_new ("(s)", "counted"));

  return g_variant_new ("(u)", n);
}

/* Crashes the worker: the call fails, the pool goes on. */
EXAMPLE_EXPORT GVariant *example_crash (AforkChild *child, GVariant *parameters, GError **error);
GVariant *
example_crash (G_GNUC_UNUSED AforkChild *child,
               G_GNUC_UNUSED GVariant   *parameters,
               G_GNUC_UNUSED GError    **error)
{
  /* A crash on purpose leaves no core file behind. */
  struct rlimit no_core = { 0, 0 };

  setrlimit (RLIMIT_CORE, &no_core);
  signal (SIGABRT, SIG_DFL);
  abort ();
}
