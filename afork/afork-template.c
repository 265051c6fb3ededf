/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-template-private.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "afork-wire-private.h"

/* The default template: an afork-server spawned on first use, shared by
 * every thread. Only `h`+`f` pairs are ever written to it, under the lock,
 * so it never needs a main context. */
typedef struct
{
  int          fd;
  GSubprocess *subprocess;
  GPid         owner;   /* getpid() when it was started: a forked parent starts afresh */
} DefaultTemplate;

static GMutex default_lock;
static DefaultTemplate default_template = { -1, NULL, 0 };

static char *server_path_override;
G_LOCK_DEFINE_STATIC (server_path);

/**
 * afork_set_server_path:
 * @path: (type filename) (nullable): the path of the `afork-server`
 *   program, or %NULL for the default
 *
 * Sets the path of the server program used by
 * [ctor@Afork.Process.new_exec] and for the default template. The
 * `AFORK_SERVER` environment variable, when set, takes precedence.
 *
 * Since: 1.0
 */
void
afork_set_server_path (const char *path)
{
  G_LOCK (server_path);
  g_free (server_path_override);
  server_path_override = g_strdup (path);
  G_UNLOCK (server_path);
}

/**
 * afork_get_server_path:
 *
 * Gets the path of the server program that afork spawns: the value of the
 * `AFORK_SERVER` environment variable if set, else the one given to
 * [func@Afork.set_server_path], else the installed `afork-server`.
 *
 * Returns: (type filename) (transfer none): the server's path
 *
 * Since: 1.0
 */
const char *
afork_get_server_path (void)
{
  const char *env = g_getenv ("AFORK_SERVER");
  const char *path;

  if (env != NULL && env[0] != '\0')
    return env;

  G_LOCK (server_path);
  path = server_path_override ? g_intern_string (server_path_override) : NULL;
  G_UNLOCK (server_path);

  return path ? path : AFORK_LIBEXECDIR "/afork-server";
}

gboolean
_afork_socketpair (int      fds[2],
                   GError **error)
{
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    {
      _afork_set_error_errno (error, AFORK_ERROR_FAILED, errno, "socketpair()");
      return FALSE;
    }

  return TRUE;
}

/* Spawns afork-server with posix_spawn (GSubprocess takes that path when
 * descriptors are inherited; the server closes the ones it does not
 * need). */
gboolean
_afork_spawn_server (int          *fd_out,
                     GSubprocess **subprocess_out,
                     GError      **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *path = afork_get_server_path ();
  char owner[32];
  const char *argv[] = {
    path, "--fd", "3", "--owner", owner,
    "--protocol", G_STRINGIFY (AFORK_WIRE_PROTOCOL_VERSION), NULL,
  };
  GSubprocess *subprocess;
  int fds[2];

  _afork_i18n_init ();

  if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) ||
      g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_SERVER_NOT_FOUND,
                   /* TRANSLATORS: %s is a file name */
                   _("The afork server “%s” does not exist or is not executable"),
                   path);
      return FALSE;
    }

  if (!_afork_socketpair (fds, error))
    return FALSE;

  g_snprintf (owner, sizeof owner, "%d", (int) getpid ());

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_INHERIT_FDS);
  g_subprocess_launcher_take_fd (launcher, fds[1], 3);

  subprocess = g_subprocess_launcher_spawnv (launcher, argv, &local_error);
  if (subprocess == NULL)
    {
      close (fds[0]);
      g_set_error (error, AFORK_ERROR,
                   g_error_matches (local_error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT) ||
                   g_error_matches (local_error, G_SPAWN_ERROR, G_SPAWN_ERROR_ACCES) ?
                   AFORK_ERROR_SERVER_NOT_FOUND : AFORK_ERROR_SPAWN_FAILED,
                   /* TRANSLATORS: the first %s is a file name, the second a reason */
                   _("Cannot start the afork server “%s”: %s"), path,
                   local_error->message);
      return FALSE;
    }

  *fd_out = fds[0];
  *subprocess_out = subprocess;

  return TRUE;
}

static void
default_template_forget (void)
{
  if (default_template.fd >= 0)
    close (default_template.fd);
  default_template.fd = -1;
  g_clear_object (&default_template.subprocess);
  default_template.owner = 0;
}

/* The template never writes to its socket: readable means it hung up. */
static gboolean
default_template_is_alive (void)
{
  struct pollfd pfd = { default_template.fd, POLLIN, 0 };

  return poll (&pfd, 1, 0) == 0;
}

static gboolean
send_fork (int   template_fd,
           int   child_fd,
           int  *saved_errno)
{
  g_autoptr(GByteArray) frames = g_byte_array_sized_new (2 * AFORK_WIRE_HEADER_SIZE);
  gsize sent = 0;

  _afork_wire_put_empty (frames, AFORK_WIRE_FD);
  _afork_wire_put_empty (frames, AFORK_WIRE_FORK);

  while (sent < frames->len)
    {
      gssize res = _afork_sendmsg_fds (template_fd, frames->data + sent, frames->len - sent,
                                       &child_fd, sent == 0 ? 1 : 0, 0);
      if (res < 0)
        {
          *saved_errno = errno;
          return FALSE;
        }
      sent += res;
    }

  return TRUE;
}

/* Asks the default template to fork a process whose socket is @child_fd
 * (which stays owned by the caller). Starts the template on first use,
 * and again if it died. */
gboolean
_afork_default_template_fork (int      child_fd,
                              GError **error)
{
  gboolean ok = FALSE;
  int saved_errno = 0;

  g_mutex_lock (&default_lock);

  if (default_template.owner != getpid ())
    {
      /* First use, or a forked copy of the program that started it. */
      if (default_template.fd >= 0)
        close (default_template.fd);
      default_template.fd = -1;
      /* The subprocess object belongs to the original program's
       * bookkeeping; drop the copy without touching the process. */
      default_template.subprocess = NULL;
    }

  for (guint attempt = 0; attempt < 2 && !ok; attempt++)
    {
      if (default_template.fd >= 0 && !default_template_is_alive ())
        default_template_forget ();

      if (default_template.fd < 0)
        {
          if (!_afork_spawn_server (&default_template.fd, &default_template.subprocess, error))
            goto out;
          default_template.owner = getpid ();
        }

      ok = send_fork (default_template.fd, child_fd, &saved_errno);
      if (!ok)
        default_template_forget ();
    }

  if (!ok)
    _afork_set_error_errno (error, AFORK_ERROR_SPAWN_FAILED, saved_errno,
                            _("Sending a fork request to the default template"));

out:
  g_mutex_unlock (&default_lock);

  return ok;
}
