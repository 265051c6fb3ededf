/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The child's side of exec.c: prepare the process, then exec a program.
 *
 * The run arguments are a descriptor for standard output, then the
 * program's argv as strings. Standard error becomes the afork socket, so
 * the parent reads the program's messages on the connection it got from
 * afork_process_run().
 *
 * This is the place to prepare what the program inherits: here, signal
 * dispositions and the signal mask go back to their defaults (a server
 * may ignore SIGPIPE, and an ignored signal stays ignored across exec).
 *
 * Its messages are translated in the module's text domain, which it binds
 * when it is loaded. */
#include <afork/afork.h>
#include <glib/gi18n-lib.h>
#include <gmodule.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

G_MODULE_EXPORT const char *g_module_check_init (GModule *module);
G_MODULE_EXPORT void example_exec_run (AforkChild *child);

const char *
g_module_check_init (G_GNUC_UNUSED GModule *module)
{
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");

  return NULL;
}

void
example_exec_run (AforkChild *child)
{
  guint n_args = afork_child_get_n_args (child);
  int sock = afork_child_get_fd (child);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  sigset_t none;
  int out, saved_errno;

  if (n_args < 2 || !afork_child_arg_is_fd (child, 0))
    {
      dprintf (sock, _("example_exec_run: expected a descriptor and a command\n"));
      return;
    }

  for (guint i = 1; i < n_args; i++)
    {
      if (afork_child_arg_is_fd (child, i))
        {
          /* TRANSLATORS: %u is the position of an argument */
          dprintf (sock, _("example_exec_run: argument %u is not a string\n"), i);
          return;
        }
      g_ptr_array_add (argv, (char *) afork_child_get_arg (child, i, NULL));
    }
  g_ptr_array_add (argv, NULL);

  /* dup2() clears close-on-exec on the copies; the originals, beyond
   * stderr, are not needed by the program. */
  out = afork_child_steal_fd (child, 0);
  if (dup2 (out, STDOUT_FILENO) < 0 || dup2 (sock, STDERR_FILENO) < 0)
    {
      saved_errno = errno;
      /* TRANSLATORS: %s is the system's description of what went wrong */
      dprintf (sock, _("example_exec_run: dup2: %s\n"), strerror (saved_errno));
      return;
    }
  if (out > STDERR_FILENO)
    close (out);
  if (sock > STDERR_FILENO)
    close (sock);

  signal (SIGPIPE, SIG_DFL);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);

  execvp (argv->pdata[0], (char **) argv->pdata);

  /* Standard error is the afork socket: the parent reads this. */
  saved_errno = errno;
  /* TRANSLATORS: %s is the command, then the reason; the parent expects
   * the same message */
  fprintf (stderr, _("cannot run %s: %s\n"), (char *) argv->pdata[0],
           strerror (saved_errno));
  _exit (127);
}
