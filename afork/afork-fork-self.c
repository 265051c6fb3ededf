/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Forking the calling program into a template (fork_self and early
 * init), and the check that it runs a single thread. */
#include "afork-process-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "afork-server-private.h"
#include "afork-template-private.h"

/* Counts the threads of the calling process, for real, and names them
 * in the refusal (from /proc/self/task/<tid>/comm), so that the caller
 * knows who started them. */
gboolean
_afork_check_single_threaded (GError **error)
{
  g_autoptr(GString) names = NULL;
  DIR *dir = opendir ("/proc/self/task");
  struct dirent *entry;
  guint n = 0;

  if (dir == NULL)
    {
      _afork_set_error_errno (error, AFORK_ERROR_FAILED, errno, "/proc/self/task");
      return FALSE;
    }

  names = g_string_new (NULL);
  while ((entry = readdir (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *comm = NULL;

      if (entry->d_name[0] == '.')
        continue;
      n++;

      path = g_strdup_printf ("/proc/self/task/%s/comm", entry->d_name);
      if (!g_file_get_contents (path, &comm, NULL, NULL))
        comm = g_strdup ("?");
      g_strchomp (comm);
      if (names->len > 0)
        g_string_append (names, ", ");
      g_string_append_printf (names, "“%s” (%s)", comm, entry->d_name);
    }
  closedir (dir);

  if (n > 1)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_THREADED,
                   g_dngettext (GETTEXT_PACKAGE,
                                /* TRANSLATORS: %u is a number of threads, %s their
                                 * names and ids */
                                "Refusing to fork the program: it runs %u thread (%s), and "
                                "only a single-threaded program can be forked safely",
                                "Refusing to fork the program: it runs %u threads (%s), and "
                                "only a single-threaded program can be forked safely", n),
                   n, names->str);
      return FALSE;
    }

  return TRUE;
}

/* Forks the calling program into a server, twice, so that the server is
 * nobody's zombie: the intermediate process exits at once and is reaped
 * here, and the server is adopted by init (or a subreaper). */
gboolean
_afork_fork_server (int      *fd_out,
                    GPid     *pid_out,
                    GError  **error)
{
  GPid owner = getpid ();
  int sv[2], pp[2];
  pid_t pid, server_pid = 0;
  int status;

  if (!_afork_check_single_threaded (error))
    return FALSE;

  if (!_afork_socketpair (sv, error))
    return FALSE;

  if (pipe2 (pp, O_CLOEXEC) != 0)
    {
      _afork_set_error_errno (error, AFORK_ERROR_FAILED, errno, "pipe2()");
      close (sv[0]);
      close (sv[1]);
      return FALSE;
    }

  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    {
      _afork_set_error_errno (error, AFORK_ERROR_SPAWN_FAILED, errno, "fork()");
      close (sv[0]);
      close (sv[1]);
      close (pp[0]);
      close (pp[1]);
      return FALSE;
    }

  if (pid == 0)
    {
      pid_t grandchild = fork ();

      if (grandchild != 0)
        {
          gint32 value = grandchild;

          if (write (pp[1], &value, sizeof value) < 0)
            { /* the caller reads 0 */ }
          _exit (grandchild < 0 ? 1 : 0);
        }

      close (sv[0]);
      close (pp[0]);
      close (pp[1]);
      _afork_registry_close_in_fork (sv[1]);
      _afork_server_set_title ("afork", owner, "template");
      _afork_server_serve (sv[1], owner);
    }

  close (sv[1]);
  close (pp[1]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  {
    gint32 value = 0;
    gssize res;

    do
      res = read (pp[0], &value, sizeof value);
    while (res < 0 && errno == EINTR);
    server_pid = res == sizeof value ? value : 0;
  }
  close (pp[0]);

  if (server_pid <= 0)
    {
      g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED,
                           _("Forking the program into a server failed"));
      close (sv[0]);
      return FALSE;
    }

  *fd_out = sv[0];
  *pid_out = server_pid;

  return TRUE;
}

/**
 * afork_process_fork_self: (constructor)
 * @error: return location for a #GError
 *
 * Forks the calling program, now, into a template: everything the program
 * loaded and computed so far is shared with the processes forked from it
 * (by [method@Afork.Process.fork]), which can run functions of the main
 * program itself (export them: see [func@Afork.early_init]).
 *
 * Forking a program that runs more than one thread is exactly what afork
 * exists to avoid, so this fails with %AFORK_ERROR_THREADED if the program
 * has started a thread (GLib starts some itself, for example to watch
 * children, to resolve names or for D-Bus). Call it early, after loading
 * what the workers should share.
 *
 * The template is not a child of the caller; it exits when its last
 * connection is closed.
 *
 * Returns: (transfer full): the template, or %NULL with @error set
 *
 * Since: 1.0
 */
AforkProcess *
afork_process_fork_self (GError **error)
{
  GPid pid;
  int fd;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  _afork_i18n_init ();

  if (!_afork_fork_server (&fd, &pid, error))
    return NULL;

  return _afork_process_new_for_fd (fd, NULL, pid, -1);
}

