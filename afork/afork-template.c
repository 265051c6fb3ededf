/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-template-private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "afork-server-private.h"
#include "afork-wire-private.h"

/* The templates every caller shares: the default one, an afork-server
 * spawned on first use, and the early one, a fork of the program made by
 * afork_early_init(). Only fork requests are ever written to them, under
 * the lock, so they never need a main context. */
typedef struct
{
  int          fd;
  GSubprocess *subprocess;  /* NULL for the early template */
  GPid         owner;       /* getpid() when it was started: a forked copy of the program starts afresh */
  guint        generation;  /* changes whenever the template is forgotten */
} SharedTemplate;

/* How long a template may take no request at all before it counts as
 * stuck and is replaced. A busy template that makes progress is waited
 * for as long as it keeps making it; one that is seen stopped (SIGSTOP,
 * a debugger) counts as stuck after TEMPLATE_STOPPED_MS. A
 * template forking slowly (a large sanitizer build, say) may read
 * nothing for seconds while it forks what it read. */
#define TEMPLATE_STALL_MS   60000
#define TEMPLATE_STOPPED_MS 10000

/* Whether the process @pid is stopped or traced, from /proc. */
static gboolean
process_is_stopped (GPid pid)
{
  g_autofree char *path = NULL;
  g_autofree char *stat = NULL;
  const char *end;

  if (pid <= 0)
    return FALSE;

  path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return FALSE;

  /* pid (comm) state …: the command may hold spaces and parentheses. */
  end = strrchr (stat, ')');
  return end != NULL && end[1] == ' ' && (end[2] == 'T' || end[2] == 't');
}

static GMutex registry_lock;
static SharedTemplate default_template = { -1, NULL, 0, 0 };
static SharedTemplate early_template = { -1, NULL, 0, 0 };

/* Descriptors the library holds, closed in forks of the program. */
static GMutex tracked_lock;
static GHashTable *tracked_fds;

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
  /* Non-blocking from the start, as the caller's end must be: each
   * server makes its own end blocking when it starts serving. */
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
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

void
_afork_track_fd (int fd)
{
  g_mutex_lock (&tracked_lock);
  if (tracked_fds == NULL)
    tracked_fds = g_hash_table_new (NULL, NULL);
  g_hash_table_add (tracked_fds, GINT_TO_POINTER (fd));
  g_mutex_unlock (&tracked_lock);
}

void
_afork_untrack_fd (int fd)
{
  g_mutex_lock (&tracked_lock);
  if (tracked_fds != NULL)
    g_hash_table_remove (tracked_fds, GINT_TO_POINTER (fd));
  g_mutex_unlock (&tracked_lock);
}

/* In a fresh fork of the program: the parent's afork descriptors are not
 * the server's business, and would keep its children from seeing EOF. */
void
_afork_registry_close_in_fork (int keep)
{
  GHashTableIter iter;
  gpointer fd;

  if (default_template.fd >= 0 && default_template.fd != keep)
    close (default_template.fd);
  if (early_template.fd >= 0 && early_template.fd != keep)
    close (early_template.fd);
  default_template.fd = early_template.fd = -1;
  default_template.subprocess = NULL;
  default_template.owner = early_template.owner = 0;

  if (tracked_fds == NULL)
    return;
  g_hash_table_iter_init (&iter, tracked_fds);
  while (g_hash_table_iter_next (&iter, &fd, NULL))
    if (GPOINTER_TO_INT (fd) != keep)
      close (GPOINTER_TO_INT (fd));
  g_hash_table_remove_all (tracked_fds);
}

gboolean
_afork_fork_request_init (AforkForkRequest  *request,
                          GError           **error)
{
  int sv[2], status[2];

  if (!_afork_socketpair (sv, error))
    return FALSE;

  if (pipe2 (status, O_CLOEXEC | O_NONBLOCK) != 0)
    {
      _afork_set_error_errno (error, AFORK_ERROR_FAILED, errno, "pipe2()");
      close (sv[0]);
      close (sv[1]);
      return FALSE;
    }

  request->sock = sv[0];
  request->status = status[0];
  request->send_fds[0] = status[1];
  request->send_fds[1] = sv[1];

  return TRUE;
}

/* Closes whatever the request still holds. */
void
_afork_fork_request_clear (AforkForkRequest *request)
{
  int *fds[] = { &request->sock, &request->status, &request->send_fds[0], &request->send_fds[1] };

  for (guint i = 0; i < G_N_ELEMENTS (fds); i++)
    if (*fds[i] >= 0)
      {
        close (*fds[i]);
        *fds[i] = -1;
      }
}

/* Appends the fork request's frames: `h` (status channel), `w`, `h` (the
 * new process's socket), `f`. @fd_offsets receives the offsets of the two
 * `h` frames, which carry send_fds[0] and send_fds[1]. */
void
_afork_fork_request_put_frames (GByteArray *out,
                                gsize      *fd_offsets)
{
  fd_offsets[0] = out->len;
  _afork_wire_put_empty (out, AFORK_WIRE_FD);
  _afork_wire_put_empty (out, AFORK_WIRE_WATCH);
  fd_offsets[1] = out->len;
  _afork_wire_put_empty (out, AFORK_WIRE_FD);
  _afork_wire_put_empty (out, AFORK_WIRE_FORK);
}

static void
template_forget (SharedTemplate *tmpl)
{
  if (tmpl->fd >= 0)
    close (tmpl->fd);
  tmpl->fd = -1;
  tmpl->generation++;
  g_clear_object (&tmpl->subprocess);
  tmpl->owner = 0;
}

/* A forked copy of the program does not share the templates of the
 * program it was forked from. */
static void
template_check_owner (SharedTemplate *tmpl)
{
  if (tmpl->owner != 0 && tmpl->owner != getpid ())
    {
      if (tmpl->fd >= 0)
        close (tmpl->fd);
      tmpl->fd = -1;
      tmpl->generation++;
      /* The subprocess object belongs to the original program's
       * bookkeeping; drop the copy without touching the process. */
      tmpl->subprocess = NULL;
      tmpl->owner = 0;
    }
}

typedef enum
{
  SEND_DONE,
  SEND_FAILED,     /* *saved_errno says why */
  SEND_FORGOTTEN,  /* someone else forgot the template while we waited */
} SendResult;

/* Waits, for at most TEMPLATE_STALL_MS, until the template's socket has
 * room. Called with the registry lock held; with @unlock, releases it
 * while waiting, on a copy of the descriptor, so that no other thread
 * (nor main loop) waits for the lock meanwhile. */
static gboolean
wait_for_room (SharedTemplate *tmpl,
               gboolean        unlock,
               int            *saved_errno)
{
  struct pollfd pfd = { -1, POLLOUT, 0 };
  const char *identifier = NULL;
  GPid pid = 0;
  int res;
  int waited = 0;

  if (tmpl->subprocess != NULL &&
      (identifier = g_subprocess_get_identifier (tmpl->subprocess)) != NULL)
    pid = (GPid) atoi (identifier);

  if (!unlock)
    pfd.fd = tmpl->fd;
  else
    {
      pfd.fd = fcntl (tmpl->fd, F_DUPFD_CLOEXEC, 3);
      if (pfd.fd < 0)
        {
          *saved_errno = errno;
          return FALSE;
        }
      g_mutex_unlock (&registry_lock);
    }

  for (;;)
    {
      res = poll (&pfd, 1, 1000);
      if (res < 0 && errno == EINTR)
        continue;
      if (res != 0)
        break;
      waited += 1000;
      if (waited >= TEMPLATE_STALL_MS ||
          (waited >= TEMPLATE_STOPPED_MS && process_is_stopped (pid)))
        break;
    }
  *saved_errno = res < 0 ? errno : ETIMEDOUT;

  if (unlock)
    {
      close (pfd.fd);
      g_mutex_lock (&registry_lock);
    }

  return res > 0;
}

/* Writes the fork request to @tmpl, with the registry lock held. A burst
 * of requests may fill the template's socket: the template is busy, not
 * gone (a dead one gives EPIPE), and the request waits for room, as a
 * write to a full pipe would, but without the lock, and not beyond
 * TEMPLATE_STALL_MS without progress. */
static SendResult
send_fork (SharedTemplate   *tmpl,
           AforkForkRequest *request,
           int              *saved_errno)
{
  g_autoptr(GByteArray) frames = g_byte_array_sized_new (4 * AFORK_WIRE_HEADER_SIZE);
  guint generation = tmpl->generation;
  gsize offsets[2];
  gsize sent = 0;

  _afork_fork_request_put_frames (frames, offsets);

  while (sent < frames->len)
    {
      gssize res = _afork_sendmsg_fds (tmpl->fd, frames->data + sent, frames->len - sent,
                                       request->send_fds, sent == 0 ? 2 : 0, MSG_DONTWAIT);

      if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          /* Nothing of ours went yet: the lock may go while we wait. Once
           * part of the request went, the rest must follow before any
           * other request, so the lock stays. */
          if (!wait_for_room (tmpl, sent == 0, saved_errno))
            return SEND_FAILED;
          if (tmpl->generation != generation || tmpl->fd < 0)
            return SEND_FORGOTTEN;
          continue;
        }
      if (res < 0)
        {
          *saved_errno = errno;
          return SEND_FAILED;
        }
      sent += res;
    }

  return SEND_DONE;
}

/* Asks a shared template to fork the process described by @request: the
 * early template if there is one, else (unless @for_exec) the default
 * template, started on first use and again if it died (a dead template
 * answers the request with EPIPE). *@forked tells
 * whether a template took the request; with @for_exec and no early
 * template it is FALSE, and the caller spawns a server itself. */
gboolean
_afork_registry_fork (AforkForkRequest  *request,
                      gboolean           for_exec,
                      gboolean          *forked,
                      GError           **error)
{
  int saved_errno = 0;

  *forked = FALSE;

  g_mutex_lock (&registry_lock);

  template_check_owner (&early_template);
  template_check_owner (&default_template);

  while (early_template.fd >= 0 && !*forked)
    {
      SendResult res = send_fork (&early_template, request, &saved_errno);

      if (res == SEND_DONE)
        *forked = TRUE;
      else if (res == SEND_FAILED)
        /* The early template cannot be made again once the program runs
         * threads: from now on the default template stands in. */
        template_forget (&early_template);
    }

  for (guint attempt = 0; !*forked && !for_exec && attempt < 2; attempt++)
    {
      SendResult res;

      if (default_template.fd < 0)
        {
          if (!_afork_spawn_server (&default_template.fd, &default_template.subprocess, error))
            {
              g_mutex_unlock (&registry_lock);
              return FALSE;
            }
          default_template.owner = getpid ();
        }

      res = send_fork (&default_template, request, &saved_errno);
      if (res == SEND_DONE)
        *forked = TRUE;
      else if (res == SEND_FORGOTTEN)
        attempt--;   /* replaced meanwhile: not our attempt */
      else
        /* Gone, or stuck: a new one takes its place. */
        template_forget (&default_template);
    }

  g_mutex_unlock (&registry_lock);

  if (!*forked && !for_exec)
    {
      _afork_set_error_errno (error, AFORK_ERROR_SPAWN_FAILED, saved_errno,
                              _("Sending a fork request to the default template"));
      return FALSE;
    }

  if (*forked)
    {
      /* The template holds them now. */
      close (request->send_fds[0]);
      close (request->send_fds[1]);
      request->send_fds[0] = request->send_fds[1] = -1;
    }

  return TRUE;
}

/**
 * afork_early_init:
 * @error: return location for a #GError
 *
 * Forks the calling program into a template, to be called as the very
 * first thing in `main()`, while the program is still small and runs a
 * single thread. From then on [ctor@Afork.Process.new] and
 * [ctor@Afork.Process.new_exec] fork that early template instead of
 * starting `afork-server`: no program is executed at all, and the new
 * processes can run functions of the main program itself.
 *
 * For those functions to be found by name, the program must export its
 * symbols: link it with `-rdynamic` (meson: `export_dynamic: true`) and do
 * not make them `static`.
 *
 * Calling it again is harmless. If the early template dies later, the
 * default template stands in for it.
 *
 * Returns: %TRUE on success; %FALSE with %AFORK_ERROR_THREADED if the
 *   program already runs more than one thread, or another error
 *
 * Since: 1.0
 */
gboolean
afork_early_init (GError **error)
{
  gboolean ok = TRUE;

  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  _afork_i18n_init ();

  g_mutex_lock (&registry_lock);
  template_check_owner (&early_template);
  if (early_template.fd < 0)
    {
      int fd;
      GPid pid;

      /* Not holding the lock across the fork: the server may use afork
       * itself. The program is single-threaded, or this fails. */
      g_mutex_unlock (&registry_lock);
      ok = _afork_fork_server (&fd, &pid, error);
      g_mutex_lock (&registry_lock);
      if (ok)
        {
          template_forget (&early_template);
          early_template.fd = fd;
          early_template.owner = getpid ();
        }
    }
  g_mutex_unlock (&registry_lock);

  return ok;
}

/**
 * afork_reset:
 *
 * Forgets the default and early templates, closing the library's
 * connections to them (they exit once nobody else holds one). The next
 * [ctor@Afork.Process.new] starts a new default template.
 *
 * A program that forks itself after using afork does not need it: a
 * forked copy notices it is not the program that started the templates
 * and starts afresh. It is for a process that wants to stop sharing them
 * for other reasons, such as a server forked with
 * [ctor@Afork.Process.fork_self] that uses afork itself.
 *
 * Since: 1.0
 */
void
afork_reset (void)
{
  g_mutex_lock (&registry_lock);
  template_check_owner (&early_template);
  template_check_owner (&default_template);
  template_forget (&early_template);
  template_forget (&default_template);
  g_mutex_unlock (&registry_lock);
}
