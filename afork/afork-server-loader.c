/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Language loaders in a server: a name "prefix:rest" belongs to the
 * loader of that prefix, the plugin <prefix>.so found in the library's
 * loader directory (or in AFORK_LOADER_PATH, which replaces it, for
 * uninstalled builds), loaded at the first such name and kept for the
 * life of the process and its forks. */
#include "config.h"

#include "afork-server-loader-private.h"

#include <gmodule.h>
#include <string.h>

#include <glib/gi18n-lib.h>

#include "afork-error.h"

#define AFORK_LOADERDIR AFORK_PKGLIBDIR G_DIR_SEPARATOR_S "loaders"

/* Loaded loaders, in load order (a process has one or two: a short list). */
static GPtrArray *loaders;

gboolean
_afork_server_loader_has_prefix (const char *name)
{
  const char *colon = strchr (name, ':');

  if (colon == NULL || colon == name)
    return FALSE;

  for (const char *p = name; p < colon; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      return FALSE;

  return TRUE;
}

static const AforkLoader *
loader_open (const char  *prefix,
             GError     **error)
{
  const char *path_env = g_getenv ("AFORK_LOADER_PATH");
  g_auto(GStrv) dirs = NULL;
  g_autofree char *file = g_strconcat (prefix, ".so", NULL);
  g_autofree char *searched = NULL;

  if (loaders != NULL)
    for (guint i = 0; i < loaders->len; i++)
      {
        const AforkLoader *loader = loaders->pdata[i];

        if (g_str_equal (loader->prefix, prefix))
          return loader;
      }

  if (path_env != NULL)
    dirs = g_strsplit (path_env, G_SEARCHPATH_SEPARATOR_S, -1);
  else
    dirs = g_strdupv ((char *[]) { (char *) AFORK_LOADERDIR, NULL });

  for (guint i = 0; dirs[i] != NULL; i++)
    {
      g_autofree char *path = NULL;
      AforkLoaderEntry entry = NULL;
      const AforkLoader *loader;
      GModule *module;

      if (dirs[i][0] == '\0')
        continue;

      path = g_build_filename (dirs[i], file, NULL);
      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        continue;

      /* Global binding: the libraries a loader brings (an interpreter)
       * load extension modules of their own that expect its symbols. */
      module = g_module_open (path, 0);
      if (module == NULL)
        {
          g_set_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
                       /* TRANSLATORS: the first %s is a loader's name ("python"),
                        * the second a file, the third the dynamic linker's message */
                       _("The “%s” loader (%s) could not be loaded: %s"),
                       prefix, path, g_module_error ());
          return NULL;
        }

      if (!g_module_symbol (module, AFORK_LOADER_ENTRY, (gpointer *) &entry) || entry == NULL ||
          (loader = entry ()) == NULL || loader->prefix == NULL ||
          !g_str_equal (loader->prefix, prefix) || loader->resolve == NULL)
        {
          g_set_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
                       /* TRANSLATORS: the first %s is a loader's name, the second a file */
                       _("The “%s” loader (%s) is not an afork loader of that name"),
                       prefix, path);
          g_module_close (module);
          return NULL;
        }

      g_module_make_resident (module);
      if (loaders == NULL)
        loaders = g_ptr_array_new ();
      g_ptr_array_add (loaders, (gpointer) loader);

      return loader;
    }

  searched = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, dirs);
  g_set_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
               /* TRANSLATORS: the first %s is a loader's name ("python"),
                * the second its file name, the third a list of directories */
               _("No loader for “%s:” names: %s is not installed (searched %s)"),
               prefix, file, searched);
  return NULL;
}

/* The loader of @name's prefix; @rest is set to the name after it. */
static const AforkLoader *
loader_for_name (const char  *name,
                 const char **rest,
                 GError     **error)
{
  const char *colon = strchr (name, ':');
  g_autofree char *prefix = g_strndup (name, colon - name);

  *rest = colon + 1;
  return loader_open (prefix, error);
}

gboolean
_afork_server_loader_require (const char  *name,
                              GError     **error)
{
  const char *rest;
  const AforkLoader *loader = loader_for_name (name, &rest, error);

  if (loader == NULL)
    return FALSE;

  if (loader->require == NULL)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
                   /* TRANSLATORS: %s is a module name with its loader's prefix */
                   _("Module “%s” could not be loaded: its loader loads no modules"), name);
      return FALSE;
    }

  return loader->require (rest, error);
}

gboolean
_afork_server_loader_resolve (const char     *name,
                              AforkFunction  *out,
                              GError        **error)
{
  const char *rest;
  const AforkLoader *loader = loader_for_name (name, &rest, error);
  gpointer handle;

  if (loader == NULL)
    return FALSE;

  handle = loader->resolve (rest, error);
  if (handle == NULL)
    return FALSE;

  out->loader = loader;
  out->symbol = handle;
  return TRUE;
}

void
_afork_server_before_fork (void)
{
  /* Last loaded first, as pthread_atfork's prepare handlers. */
  for (guint i = loaders != NULL ? loaders->len : 0; i > 0; i--)
    {
      const AforkLoader *loader = loaders->pdata[i - 1];

      if (loader->before_fork != NULL)
        loader->before_fork ();
    }
}

void
_afork_server_after_fork (pid_t pid)
{
  for (guint i = 0; loaders != NULL && i < loaders->len; i++)
    {
      const AforkLoader *loader = loaders->pdata[i];

      if (pid == 0 && loader->after_fork_child != NULL)
        loader->after_fork_child ();
      else if (pid != 0 && loader->after_fork_parent != NULL)
        loader->after_fork_parent ();
    }
}
