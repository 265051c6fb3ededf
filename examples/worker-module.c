/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The child's side of worker.c.
 *
 * A run function receives the child's view of itself, an AforkChild. Its
 * socket is connected to the connection the parent got back from
 * afork_process_run_finish(); whatever is written here arrives there. When
 * the function returns, the process exits.
 *
 * Run functions are found by name, so they must be exported: the module is
 * built with hidden visibility and G_MODULE_EXPORT marks the symbols the
 * server looks up.
 *
 * The greeting is translated in the module's text domain, which the module
 * binds when it is loaded; the child runs in the locale of the environment
 * it inherited. */
#include <afork/afork.h>
#include <glib/gi18n-lib.h>
#include <gmodule.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

G_MODULE_EXPORT const char *g_module_check_init (GModule *module);
G_MODULE_EXPORT void example_worker_run (AforkChild *child);

const char *
g_module_check_init (G_GNUC_UNUSED GModule *module)
{
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");

  return NULL;
}

void
example_worker_run (AforkChild *child)
{
  int fd = afork_child_get_fd (child);
  g_autofree char *greeting = NULL;
  g_autofree char *line = NULL;
  const char *p;
  gsize left;

  /* TRANSLATORS: written by the worker, whose pid is %d; keep it the same
   * as the one the parent expects */
  greeting = g_strdup_printf (_("Hello from worker %d"), (int) getpid ());
  line = g_strconcat (greeting, "\n", NULL);

  for (p = line, left = strlen (line); left > 0;)
    {
      ssize_t n = write (fd, p, left);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      p += n;
      left -= n;
    }
}
