/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* For stingy users: the worker's code lives in the program itself, not in
 * a module of its own.
 *
 * afork_early_init(), called at the start of main() once the locale is
 * set, forks the still-small program into a template; afork_process_new()
 * then forks that copy, whose run function is the program's own do_it().
 * The program is linked with -rdynamic (meson: export_dynamic) so that
 * do_it() can be found by name.
 *
 * Shows: the worker runs a function of this very program (its
 * /proc/self/exe is this program), without any module or afork-server. */
#include <afork/afork.h>
#include <glib/gi18n.h>

#include <locale.h>
#include <string.h>
#include <unistd.h>

/* The worker: exported, not static, so the template finds it by name. */
G_MODULE_EXPORT void do_it (AforkChild *child);
void
do_it (AforkChild *child)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  /* TRANSLATORS: %d is a process id, %s the path of the program */
  g_autofree char *line = g_strdup_printf (_("pid %d running do_it() of %s\n"),
                                           (int) getpid (), exe ? exe : "?");

  if (write (afork_child_get_fd (child), line, strlen (line)) < 0)
    _exit (1);
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) worker = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autofree char *self_exe = NULL;
  GInputStream *in;
  char buf[512];
  gssize n;

  /* Before the early template is forked, so that the workers translate
   * their messages too. */
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* Then at once: the program is small and single-threaded. */
  if (!afork_early_init (&error))
    {
      g_printerr (_("early init failed: %s\n"), error->message);
      return 1;
    }

  worker = afork_process_new (&error);
  if (worker == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }

  connection = afork_process_run (worker, "do_it", NULL, &error);
  if (connection == NULL)
    {
      g_printerr (_("run failed: %s\n"), error->message);
      return 1;
    }

  in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  if (!g_input_stream_read_all (in, buf, sizeof buf - 1, (gsize *) &n, NULL, &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  buf[n] = '\0';
  /* TRANSLATORS: %s is the line the worker wrote, which ends the line */
  g_print (_("worker says: %s"), buf);

  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  if (self_exe == NULL || strstr (buf, self_exe) == NULL)
    {
      g_printerr (_("the worker did not run this program's function\n"));
      return 1;
    }

  return 0;
}
