/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The command loop of a server: reads frames, keeps what a fork inherits
 * (modules, arguments, descriptors), forks on request and reaps what it
 * forked. */

#include "afork-server-private.h"

#include <errno.h>
#include <fcntl.h>
#include <gmodule.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "afork-loader-private.h"
#include "afork-pool-worker-private.h"
#include "afork-server-loader-private.h"
#include "afork-server-sandbox-private.h"

#define READ_CHUNK (64 * 1024)

/* The server of this process, for _afork_server_resolve_function(). */
static AforkServer *current_server;

/* SIGCHLD wakes the loop through this pipe, and raises the flag for a
 * loop that is busy reading. */
static int sigchld_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sigchld_pending;

/* The memory of argv, overwritten to set the process title. */
static char  *title_area;
static gsize  title_len;

void
_afork_server_set_title_area (char  *area,
                              gsize  len)
{
  title_area = area;
  title_len = len;
}

/* Appends @text to @buf (of @size bytes, @len used) as far as it fits,
 * keeping room for the final NUL. Returns the new length. */
static gsize
append_text (char       *buf,
             gsize       size,
             gsize       len,
             const char *text)
{
  while (*text != '\0' && len < size - 1)
    buf[len++] = *text++;

  return len;
}

/* "PROGRAM OWNER ROLE", as ps shows it. Written into a buffer on the
 * stack with no printf: a process that has just forked pays for every
 * page it touches (its heap's, and the code of the formatter), and this
 * runs at least twice in each new one. */
void
_afork_server_set_title (const char *program,
                         GPid        owner,
                         const char *role)
{
  char title[128];
  char number[24];
  char *digits = number + sizeof number - 1;
  unsigned long value = owner > 0 ? (unsigned long) owner : 0;
  gsize len = 0;

  *digits = '\0';
  do
    *--digits = '0' + value % 10;
  while ((value /= 10) != 0);

  len = append_text (title, sizeof title, len, program);
  len = append_text (title, sizeof title, len, " ");
  len = append_text (title, sizeof title, len, digits);
  len = append_text (title, sizeof title, len, " ");
  len = append_text (title, sizeof title, len, role);
  title[len] = '\0';

  prctl (PR_SET_NAME, title, 0, 0, 0);

  if (title_area != NULL && title_len > 1)
    {
      memset (title_area, 0, title_len);
      memcpy (title_area, title, MIN (len, title_len - 1));
    }
}

void
_afork_server_die (AforkServer *server,
                   const char  *message)
{
  (void) server;
  /* TRANSLATORS: %s is the reason an afork server stops */
  g_printerr (_("afork-server: %s\n"), message);
  _exit (2);
}

/* A server becomes a template with its first fork: from then on it reaps
 * children and may fork ahead. */
gboolean
_afork_server_is_template (AforkServer *server)
{
  (void) server;
  return sigchld_pipe[0] >= 0;
}

static void
set_error (AforkServer *server,
           GError      *error)
{
  if (server->error == NULL)
    server->error = error;
  else
    g_error_free (error);
}


static void
sigchld_handler (G_GNUC_UNUSED int signum)
{
  int saved_errno = errno;
  char c = 0;

  sigchld_pending = 1;
  if (write (sigchld_pipe[1], &c, 1) < 0)
    { /* full already: the loop will wake anyway */ }
  errno = saved_errno;
}

/* Makes the pipe SIGCHLD wakes the loop through, and installs the handler.
 * Fails (with errno set) when no pipe can be made: the fork that needed
 * it is refused, and the next one tries again. */
static gboolean
sigchld_setup (void)
{
  struct sigaction sa = { 0 };

  if (sigchld_pipe[0] >= 0)
    return TRUE;

  if (pipe2 (sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    {
      sigchld_pipe[0] = sigchld_pipe[1] = -1;
      return FALSE;
    }

  sa.sa_handler = sigchld_handler;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGCHLD, &sa, NULL);

  /* Status channels are pipes: a parent that dropped a process must not
   * kill the template with SIGPIPE when it reports that process's exit. */
  signal (SIGPIPE, SIG_IGN);

  return TRUE;
}

/* Every signal at its default disposition, none blocked: how a server
 * starts, whatever the program it was forked or executed from did, and
 * how the processes it makes start. */
void
_afork_server_reset_signals (void)
{
  struct sigaction sa = { 0 };
  sigset_t none;

  sa.sa_handler = SIG_DFL;
  sigemptyset (&sa.sa_mask);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction (sig, &sa, NULL);   /* fails for the C library's own */

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
}

/* Remembers a child this server forked: only those are ever reaped, so
 * that children a module or a call function started stay theirs. */
void
_afork_server_add_child (AforkServer *server,
                         pid_t        pid)
{
  /* A child of that pid reaped by someone else (a call function's
   * waitpid (-1), say) is gone: its parent learns from the channel
   * closing that its status is unknown, and the status of the new one
   * cannot go to it. */
  _afork_server_remove_child (server, pid);

  if (server->n_children == server->children_size)
    {
      server->children_size = MAX (64, server->children_size * 2);
      server->children = g_renew (AforkServerChild, server->children, server->children_size);
    }
  server->children[server->n_children].pid = pid;
  server->children[server->n_children].status_fd = -1;
  server->n_children++;
}

/* The entry of the child @pid, or NULL. The newest first: the one a
 * caller looks for is most often the one just forked. */
static AforkServerChild *
find_child (AforkServer *server,
            pid_t        pid)
{
  for (guint i = server->n_children; i > 0; i--)
    if (server->children[i - 1].pid == pid)
      return &server->children[i - 1];

  return NULL;
}

/* Forgets the child at @index, the order of the others not mattering:
 * the last takes its place. */
static void
remove_child_at (AforkServer *server,
                 guint        index)
{
  server->children[index] = server->children[--server->n_children];
}

void
_afork_server_remove_child (AforkServer *server,
                            pid_t        pid)
{
  AforkServerChild *child = find_child (server, pid);

  if (child == NULL)
    return;
  if (child->status_fd >= 0)
    close (child->status_fd);
  remove_child_at (server, child - server->children);
}

/* How many children have a parent waiting for their wait status. */
static guint
n_watched (AforkServer *server)
{
  guint n = 0;

  for (guint i = 0; i < server->n_children; i++)
    if (server->children[i].status_fd >= 0)
      n++;

  return n;
}

/* What a process leaves behind when it stops being the server it was
 * forked from: the command loop's own descriptors, and the signal
 * handling of a template. */
void
_afork_server_forget_loop_state (AforkServer *server)
{
  if (sigchld_pipe[0] >= 0)
    {
      signal (SIGCHLD, SIG_DFL);
      signal (SIGPIPE, SIG_DFL);
      close (sigchld_pipe[0]);
      close (sigchld_pipe[1]);
      sigchld_pipe[0] = sigchld_pipe[1] = -1;
    }
  sigchld_pending = 0;

  /* The array itself is the template's: left as it is (a forked child
   * shares its pages until it writes them), and replaced by none, made
   * when first needed. Nor does a new process allocate anything here: on
   * its heap, that would copy pages too. */
  for (guint i = 0; i < server->n_children; i++)
    if (server->children[i].status_fd >= 0)
      close (server->children[i].status_fd);
  server->children = NULL;
  server->n_children = 0;
  server->children_size = 0;

  if (server->next_status_fd >= 0)
    close (server->next_status_fd);
  server->next_status_fd = -1;

  /* The owner is the same: its pidfd stays (close-on-exec; a run
   * function does not get it, see handle_run). */

  /* The template's spare is not this process's business. */
  _afork_server_spare_forget (server);

  for (guint i = 0; i < server->fds->len; i++)
    close (g_array_index (server->fds, int, i));
  if (server->fds->len > 0)
    g_array_set_size (server->fds, 0);
  if (server->in->len > 0)
    g_byte_array_set_size (server->in, 0);
}

/* Reaps the children this server forked that exited, telling the parent
 * of those it watches their wait status (4 bytes, little-endian) on their
 * status channel. Other children of the process are left to whoever
 * started them. */
static void
reap_children (AforkServer *server)
{
  char drain[64];

  sigchld_pending = 0;
  if (sigchld_pipe[0] >= 0)
    while (read (sigchld_pipe[0], drain, sizeof drain) > 0)
      ;

  /* From the last: an entry removed takes the last one's place, which
   * has been looked at already. */
  for (guint i = server->n_children; i > 0; i--)
    {
      AforkServerChild child = server->children[i - 1];
      int status;
      pid_t res;

      do
        res = waitpid (child.pid, &status, WNOHANG);
      while (res < 0 && errno == EINTR);

      if (res == 0)
        continue;

      /* Exited (or, with ECHILD, reaped by someone else: then its status
       * is unknown, which the parent learns from the channel closing). */
      remove_child_at (server, i - 1);

      if (child.pid == server->spare_pid)
        _afork_server_spare_forget (server);

      if (child.status_fd >= 0)
        {
          if (res == child.pid)
            {
              guint8 le[4];
              gssize written;

              _afork_wire_encode_u32 (le, (guint32) status);

              do
                written = write (child.status_fd, le, sizeof le);
              while (written < 0 && errno == EINTR);
            }
          close (child.status_fd);
        }
    }
}

static int
open_owner_pidfd (GPid owner)
{
#ifdef SYS_pidfd_open
  if (owner > 0)
    {
      int fd = (int) syscall (SYS_pidfd_open, (pid_t) owner, 0);

      if (fd >= 0)
        fcntl (fd, F_SETFD, FD_CLOEXEC);
      return fd;
    }
#endif
  return -1;
}

static gboolean
owner_is_gone (AforkServer *server)
{
  GPid owner = server->child.owner;

  return owner > 0 && kill ((pid_t) owner, 0) != 0 && errno == ESRCH;
}

/* After the parent closed the connection, a template whose children's
 * statuses are awaited stays to reap them, as long as the owner lives. */
G_GNUC_NORETURN static void
linger_and_exit (AforkServer *server,
                 int          status)
{
  _afork_server_spare_drop (server, TRUE);

  if (n_watched (server) > 0 && server->owner_pidfd < 0)
    server->owner_pidfd = open_owner_pidfd (server->child.owner);

  if (n_watched (server) > 0 && !owner_is_gone (server))
    {
      close (server->sock);
      server->sock = -1;
      _afork_server_set_title ("afork-server", server->child.owner, "reaper");

      while (n_watched (server) > 0)
        {
          struct pollfd pfds[2] = {
            { sigchld_pipe[0], POLLIN, 0 },
            { server->owner_pidfd, POLLIN, 0 },
          };
          int res = poll (pfds, server->owner_pidfd >= 0 ? 2 : 1,
                          server->owner_pidfd >= 0 ? -1 : 1000);

          if (res < 0 && errno != EINTR)
            break;
          if (pfds[1].revents != 0 || (server->owner_pidfd < 0 && owner_is_gone (server)))
            break;
          reap_children (server);
        }
    }

  _exit (status);
}

static gboolean
module_load (AforkServer  *server,
             const char   *name,
             GError      **error)
{
  const char *path_env;
  GModule *module = NULL;
  gboolean found = FALSE;

  if (strchr (name, '/') == NULL && (path_env = g_getenv ("AFORK_MODULE_PATH")) != NULL)
    {
      g_auto(GStrv) dirs = g_strsplit (path_env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (guint i = 0; module == NULL && dirs[i] != NULL; i++)
        {
          g_autofree char *plain = NULL;
          g_autofree char *lib = NULL;
          g_autofree char *so = NULL;

          if (dirs[i][0] == '\0')
            continue;

          plain = g_build_filename (dirs[i], name, NULL);
          lib = g_module_build_path (dirs[i], name);
          so = g_strconcat (plain, ".so", NULL);

          if (g_file_test (plain, G_FILE_TEST_IS_REGULAR))
            module = g_module_open (plain, 0);
          else if (g_file_test (lib, G_FILE_TEST_IS_REGULAR))
            module = g_module_open (lib, 0);
          else if (g_file_test (so, G_FILE_TEST_IS_REGULAR))
            module = g_module_open (so, 0);
          else
            continue;

          found = TRUE;
        }
    }

  if (!found)
    module = g_module_open (name, 0);

  if (module == NULL)
    {
      const char *reason = g_module_error ();

      g_set_error (error, AFORK_ERROR, AFORK_ERROR_MODULE_NOT_FOUND,
                   /* TRANSLATORS: the first %s is a module name, the second the
                    * dynamic linker's explanation */
                   _("Module “%s” could not be loaded: %s"), name,
                   reason ? reason : _("not found"));
      return FALSE;
    }

  g_module_make_resident (module);
  g_ptr_array_add (server->modules, module);

  return TRUE;
}

static gpointer
symbol_lookup (AforkServer  *server,
               const char   *name,
               GError      **error)
{
  gpointer symbol = NULL;

  for (guint i = server->modules->len; i > 0; i--)
    if (g_module_symbol (server->modules->pdata[i - 1], name, &symbol) && symbol != NULL)
      return symbol;

  if (server->program != NULL &&
      g_module_symbol (server->program, name, &symbol) && symbol != NULL)
    return symbol;

  g_set_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND,
               /* TRANSLATORS: %s is the name of a C function */
               _("Function “%s” not found in the loaded modules nor in the server program"),
               name);

  return NULL;
}

/* Copies a wire string into a C string; refuses embedded NULs, which no
 * symbol or module name can contain. */
char *
_afork_server_wire_cstring (const AforkWireString  *s,
                            GError                **error)
{
  if (memchr (s->data, '\0', s->len) != NULL)
    {
      g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_PROTOCOL,
                           _("A name in the afork stream contains a NUL byte"));
      return NULL;
    }

  return g_strndup ((const char *) s->data, s->len);
}

GArray *
_afork_server_parse_strings (AforkServer  *server,
                             const guint8 *payload,
                             guint32       len)
{
  GArray *strings = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
  g_autoptr(GError) error = NULL;

  if (!_afork_wire_parse_strings (payload, len, strings, &error))
    _afork_server_die (server, error->message);

  return strings;
}

static void
handle_require (AforkServer  *server,
                const guint8 *payload,
                guint32       len)
{
  g_autoptr(GArray) names = _afork_server_parse_strings (server, payload, len);

  for (guint i = 0; i < names->len && server->error == NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *name = _afork_server_wire_cstring (&g_array_index (names, AforkWireString, i), &error);

      if (name != NULL && _afork_server_loader_has_prefix (name))
        _afork_server_loader_require (name, &error);
      else if (name != NULL)
        module_load (server, name, &error);
      if (error != NULL)
        set_error (server, g_steal_pointer (&error));
    }
}

static void
handle_call (AforkServer  *server,
             const guint8 *payload,
             guint32       len)
{
  g_autoptr(GArray) strings = _afork_server_parse_strings (server, payload, len);
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  AforkFunction func;
  gboolean ok;

  if (strings->len == 0)
    _afork_server_die (server, _("Call command names no function"));

  if (server->error != NULL)
    return;

  name = _afork_server_wire_cstring (&g_array_index (strings, AforkWireString, 0), &error);
  if (name == NULL)
    _afork_server_die (server, error->message);

  if (!_afork_server_resolve_function (name, &func, &error))
    {
      set_error (server, g_steal_pointer (&error));
      return;
    }

  args = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 1; i < strings->len; i++)
    {
      const AforkWireString *s = &g_array_index (strings, AforkWireString, i);
      g_ptr_array_add (args, g_strndup ((const char *) s->data, s->len));
    }
  g_ptr_array_add (args, NULL);

  if (func.loader != NULL)
    ok = func.loader->call (func.symbol, &server->child, (const char * const *) args->pdata, &error);
  else
    ok = ((AforkCallFunc) func.symbol) (&server->child, (const char * const *) args->pdata, &error);

  if (!ok)
    {
      if (error == NULL)
        set_error (server, g_error_new (AFORK_ERROR, AFORK_ERROR_CALL_FAILED,
                                        _("Call function “%s” failed without giving a reason"),
                                        name));
      else
        set_error (server, g_error_new (AFORK_ERROR, AFORK_ERROR_CALL_FAILED,
                                        /* TRANSLATORS: the first %s is a function name, the
                                         * second its message, then its error domain and code */
                                        _("Call function “%s” failed: %s (%s, %d)"),
                                        name, error->message,
                                        g_quark_to_string (error->domain), error->code));
    }
}

static gboolean
send_all (int           sock,
          const guint8 *data,
          gsize         len)
{
  while (len > 0)
    {
      gssize res = _afork_sendmsg_fds (sock, data, len, NULL, 0, 0);

      if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          struct pollfd pfd = { sock, POLLOUT, 0 };

          poll (&pfd, 1, -1);
          continue;
        }
      if (res < 0)
        return FALSE;
      data += res;
      len -= res;
    }

  return TRUE;
}

/* Answers the last command: with @error, then exits; or with our pid,
 * exiting if the parent is gone (nothing may run for nobody). */
void
_afork_server_acknowledge_or_exit (AforkServer  *server,
                                   const GError *error)
{
  g_autoptr(GByteArray) reply = g_byte_array_new ();

  if (error != NULL)
    _afork_wire_put_error_reply (reply, error);
  else
    _afork_wire_put_ok_reply (reply, getpid ());

  if (!send_all (server->sock, reply->data, reply->len) || error != NULL)
    _exit (1);
}

G_GNUC_NORETURN static void
handle_run (AforkServer  *server,
            const guint8 *payload,
            guint32       len)
{
  g_autoptr(GArray) strings = _afork_server_parse_strings (server, payload, len);
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  AforkFunction func = { NULL, NULL };

  if (strings->len != 1)
    _afork_server_die (server, _("Run command must name exactly one function"));

  name = _afork_server_wire_cstring (&g_array_index (strings, AforkWireString, 0), &error);
  if (name == NULL)
    _afork_server_die (server, error->message);

  if (server->error != NULL)
    error = g_steal_pointer (&server->error);
  else if (g_str_equal (name, AFORK_POOL_WORKER_FUNCTION))
    func.symbol = (gpointer) _afork_pool_worker_run;
  else
    _afork_server_resolve_function (name, &func, &error);

  _afork_server_acknowledge_or_exit (server, error);

  /* Leave nothing of the command loop to the run function but its
   * arguments and socket, and the default handling of the signals the
   * loop changed. A template that runs leaves no spare behind. */
  _afork_server_spare_drop (server, TRUE);
  _afork_server_forget_loop_state (server);
  if (server->owner_pidfd >= 0)
    close (server->owner_pidfd);
  server->owner_pidfd = -1;
  signal (SIGCHLD, SIG_DFL);
  signal (SIGPIPE, SIG_DFL);
  /* A pool worker may be in a long call when the owner dies: it goes
   * with its template, which exits when the owner is gone. */
  if (g_str_equal (name, AFORK_POOL_WORKER_FUNCTION))
    {
      pid_t parent = getppid ();

      if (parent > 1 && prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == 0 &&
          getppid () != parent)
        _exit (1);
    }
  _afork_server_set_title ("afork", server->child.owner, name);
  _afork_fd_set_blocking (server->sock, TRUE);
  _afork_server_restore_nofile (server);
  _afork_server_sandbox_enter_run ();

  if (func.loader != NULL)
    func.loader->run (func.symbol, &server->child);
  else
    ((AforkRunFunc) func.symbol) (&server->child);

  fflush (NULL);
  _exit (0);
}

/* The new process cannot be made: its parent gets @what failed as the
 * reply to its run (or exec), and the end of its status channel; the
 * template goes on serving. */
static void
refuse_fork (AforkServer *server,
             int          fd,
             const char  *what,
             int          saved_errno)
{
  g_autoptr(GByteArray) reply = g_byte_array_new ();
  g_autoptr(GError) error = NULL;

  error = g_error_new (AFORK_ERROR, AFORK_ERROR_SPAWN_FAILED,
                       /* TRANSLATORS: the first %s is a system call (fork,
                        * pipe), the second the system's explanation */
                       _("The template could not make a new process: %s failed: %s"),
                       what, g_strerror (saved_errno));
  _afork_wire_put_error_reply (reply, error);
  /* A new socket has room for one reply: this never waits. */
  if (_afork_sendmsg_fds (fd, reply->data, reply->len, NULL, 0, MSG_DONTWAIT) < 0)
    { /* the parent is gone already */ }
  close (fd);

  if (server->next_status_fd >= 0)
    close (server->next_status_fd);
  server->next_status_fd = -1;
}

/* Confines the process for good. A failure is reported like a failed
 * `m` or `c`: the process skips further work and answers `r` with it. */
static void
handle_sandbox (AforkServer  *server,
                const guint8 *payload,
                guint32       len)
{
  AforkWireSandbox sandbox;
  g_autoptr(GError) error = NULL;

  if (!_afork_wire_parse_sandbox (payload, len, &sandbox, &error))
    _afork_server_die (server, error->message);

  if (server->error == NULL && !_afork_server_sandbox_apply (&sandbox, &error))
    set_error (server, g_steal_pointer (&error));

  _afork_wire_sandbox_clear (&sandbox);
}

/* Returns TRUE when the process is a newly forked child, whose stream
 * starts afresh. */
static gboolean
handle_fork (AforkServer *server)
{
  int fd = _afork_child_pop_last_fd (&server->child);
  pid_t pid;

  if (fd < 0)
    _afork_server_die (server, _("Fork command without a socket for the new process"));

  /* A server becomes a template with its first fork: from then on it
   * reaps children. */
  if (!sigchld_setup ())
    {
      refuse_fork (server, fd, "pipe2", errno);
      return FALSE;
    }

  /* The spare forked after the last request becomes the new process at
   * the cost of one message; a fork is the way when there is none. */
  pid = _afork_server_spare_hand_over (server, fd);
  if (pid < 0)
    {
      _afork_server_before_fork ();
      pid = fork ();
      _afork_server_after_fork (pid);
      if (pid > 0)
        _afork_server_add_child (server, pid);
    }
  if (pid < 0)
    {
      refuse_fork (server, fd, "fork", errno);
      return FALSE;
    }

  if (pid == 0)
    {
      /* The child: the rest of the template's stream, the descriptors
       * that came with it and the children it watches belong to the
       * template. */
      close (server->sock);
      _afork_server_forget_loop_state (server);
      server->sock = fd;
      server->child.fd = fd;
      _afork_server_set_title ("afork", server->child.owner, "child");
      return TRUE;
    }

  close (fd);
  if (server->next_status_fd >= 0)
    {
      AforkServerChild *child = find_child (server, pid);

      /* Every process this server made is among its children, until it
       * reaps it; were it not, the parent would learn from the channel
       * closing that its status is unknown. */
      if (child != NULL)
        child->status_fd = server->next_status_fd;
      else
        close (server->next_status_fd);
    }
  server->next_status_fd = -1;

  return FALSE;
}

/* Handles one frame. Returns TRUE if the stream restarted (after a fork, in
 * the child), so the caller must drop its view of the buffer. */
static gboolean
handle_frame (AforkServer  *server,
              guint8        command,
              const guint8 *payload,
              guint32       len)
{
  switch (command)
    {
    case AFORK_WIRE_FD:
      if (server->fds->len == 0)
        _afork_server_die (server, _("Descriptor command without a descriptor"));
      _afork_child_add_fd (&server->child, g_array_index (server->fds, int, 0));
      g_array_remove_index (server->fds, 0);
      return FALSE;

    case AFORK_WIRE_ARGS:
      _afork_server_spare_drop (server, FALSE);
      server->generation++;
      {
        g_autoptr(GArray) strings = _afork_server_parse_strings (server, payload, len);

        for (guint i = 0; i < strings->len; i++)
          {
            const AforkWireString *s = &g_array_index (strings, AforkWireString, i);
            _afork_child_add_string (&server->child, s->data, s->len);
          }
      }
      return FALSE;

    case AFORK_WIRE_REQUIRE:
      /* The spare must not keep what the template is about to change
       * (a call function may close a descriptor the spare holds too). */
      _afork_server_spare_drop (server, FALSE);
      server->generation++;
      handle_require (server, payload, len);
      return FALSE;

    case AFORK_WIRE_CALL:
      _afork_server_spare_drop (server, FALSE);
      server->generation++;
      handle_call (server, payload, len);
      return FALSE;

    case AFORK_WIRE_FORK:
      return handle_fork (server);

    case AFORK_WIRE_SANDBOX:
      /* A spare forked before now would escape the walls. */
      _afork_server_spare_drop (server, FALSE);
      server->generation++;
      handle_sandbox (server, payload, len);
      return FALSE;

    case AFORK_WIRE_WATCH:
      {
        int fd = _afork_child_pop_last_fd (&server->child);

        if (fd < 0)
          _afork_server_die (server, _("Watch command without a descriptor"));
        if (server->next_status_fd >= 0)
          close (server->next_status_fd);
        server->next_status_fd = fd;
      }
      return FALSE;

    case AFORK_WIRE_EXEC:
      _afork_server_handle_exec (server, payload, len);

    case AFORK_WIRE_RUN:
      handle_run (server, payload, len);

    default:
      g_assert_not_reached ();
    }
}

/* Waits until the socket is readable, reaping children meanwhile. Returns
 * FALSE when woken for something else. */
static gboolean
wait_readable (AforkServer *server)
{
  struct pollfd pfds[3] = {
    { server->sock, POLLIN, 0 },
    { sigchld_pipe[0], POLLIN, 0 },
    { -1, POLLIN, 0 },
  };

  /* The owner is watched itself, not only through the socket: a fork of
   * the owner that never executed may hold the socket open long after
   * the owner died. */
  pfds[2].fd = server->owner_pidfd;

  if (poll (pfds, 3, -1) < 0)
    {
      if (errno == EINTR)
        return FALSE;
      _afork_server_die (server, g_strerror (errno));
    }

  if (pfds[1].revents != 0)
    reap_children (server);

  /* Nobody is left to send commands or read statuses. */
  if (pfds[2].revents != 0)
    linger_and_exit (server, 0);

  return pfds[0].revents != 0;
}

/* Reads what is there, up to @want bytes, with any descriptors attached.
 * Returns the number of bytes, 0 at end of stream. */
static gsize
receive (AforkServer *server,
         gsize        want)
{
  gboolean truncated;
  gssize res;

  /* Try first: the commands are usually there already. Wait (and reap
   * children meanwhile) only when they are not. */
  for (;;)
    {
      res = _afork_recv_fds (server->sock, server->in, want, server->fds, MSG_DONTWAIT,
                             &truncated);
      if (res >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        break;
      wait_readable (server);
    }

  if (res < 0)
    {
      int saved_errno = errno;
      g_autofree char *message = g_strdup_printf (_("Cannot read from the parent: %s"),
                                                  g_strerror (saved_errno));
      _afork_server_die (server, message);
    }

  if (truncated)
    {
      /* TRANSLATORS: %s is the reason, as in "this process has reached
       * its limit of open files" */
      g_autofree char *message = g_strdup_printf (_("Descriptors from the parent were lost: %s"),
                                                  _afork_fds_lost_reason (_afork_fds_lost_errno (server->sock)));
      _afork_server_die (server, message);
    }

  return (gsize) res;
}

static void
serve_loop (AforkServer *server)
{
  gsize pos = 0;

  for (;;)
    {
      guint8 command = 0;
      guint32 plen = 0;
      gsize want = READ_CHUNK;
      g_autoptr(GError) error = NULL;
      AforkWireStatus status;

      status = _afork_wire_parse_header (server->in->data + pos, server->in->len - pos,
                                         FALSE, &command, &plen, &error);
      if (status == AFORK_WIRE_STATUS_INVALID)
        _afork_server_die (server, error->message);

      if (status == AFORK_WIRE_STATUS_OK &&
          server->in->len - pos >= AFORK_WIRE_HEADER_SIZE + (gsize) plen)
        {
          const guint8 *payload = server->in->data + pos + AFORK_WIRE_HEADER_SIZE;

          if (handle_frame (server, command, payload, plen))
            pos = 0;
          else
            pos += AFORK_WIRE_HEADER_SIZE + plen;
          continue;
        }

      /* Need more: drop what was decoded, then read. A known large frame
       * is read in bigger steps, but only as far as the data goes. */
      if (pos > 0)
        {
          g_byte_array_remove_range (server->in, 0, pos);
          pos = 0;
        }

      if (status == AFORK_WIRE_STATUS_OK)
        want = MAX (want, MIN ((gsize) plen + AFORK_WIRE_HEADER_SIZE - server->in->len,
                               (gsize) 1024 * 1024));

      if (sigchld_pending)
        reap_children (server);

      /* About to wait with nothing buffered: a template forks its spare
       * now, while the parent deals with the process it just got. One
       * that is busy (requests already waiting) forks directly. */
      if (server->in->len == 0 && _afork_server_spare_wanted (server) && _afork_server_spare_start (server))
        continue;

      if (receive (server, want) == 0)
        {
          if (server->in->len > 0)
            _afork_server_die (server, _("The parent closed the connection in the middle of a command"));
          if (server->error != NULL)
            {
              g_printerr (_("afork-server: %s\n"), server->error->message);
              linger_and_exit (server, 1);
            }
          linger_and_exit (server, 0);
        }
    }
}

/* The limit of open files the server started with, and the one it set
 * instead, when it raised it. */
static struct rlimit nofile_start;
static struct rlimit nofile_raised_to;
static gboolean nofile_raised;

/* A template keeps a descriptor for each child it reports on, and takes
 * descriptors with every request: its limit of open files, not the
 * program's, would bound the processes it makes, and at that limit it
 * could not even read a request. It takes the hard limit, as a program
 * that needs many descriptors does; what it runs or executes gets back
 * the limit it was started with (_afork_server_restore_nofile ()). */
static void
raise_nofile (void)
{
  struct rlimit raised;

  if (nofile_raised || getrlimit (RLIMIT_NOFILE, &nofile_start) != 0 ||
      nofile_start.rlim_cur >= nofile_start.rlim_max)
    return;

  raised.rlim_cur = nofile_start.rlim_max;
  raised.rlim_max = nofile_start.rlim_max;
  nofile_raised = setrlimit (RLIMIT_NOFILE, &raised) == 0;
  nofile_raised_to = raised;
}

/* Moves *@fd below @limit, keeping its close-on-exec flag, if it is not
 * and a lower number is free. */
static void
move_fd_below (int   *fd,
               rlim_t limit)
{
  int flags, lower;

  if (*fd < 0 || (rlim_t) *fd < limit || (flags = fcntl (*fd, F_GETFD)) < 0)
    return;

  lower = fcntl (*fd, (flags & FD_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 3);
  if (lower < 0)
    return;
  if ((rlim_t) lower >= limit)
    {
      close (lower);
      return;
    }
  close (*fd);
  *fd = lower;
}

/* Gives the process the limit the server started with, unless a module
 * or a call function set one of its own since. Its socket and argument
 * descriptors, numbered while the limit was high, are moved below it
 * first: a run function may rely on select (), which takes none above
 * the limit. */
void
_afork_server_restore_nofile (AforkServer *server)
{
  struct rlimit now;

  if (!nofile_raised || getrlimit (RLIMIT_NOFILE, &now) != 0 ||
      now.rlim_cur != nofile_raised_to.rlim_cur || now.rlim_max != nofile_raised_to.rlim_max)
    {
      nofile_raised = FALSE;
      return;
    }
  nofile_raised = FALSE;

  if (server != NULL)
    {
      int sock = server->sock;

      move_fd_below (&server->sock, nofile_start.rlim_cur);
      if (server->child.fd == sock)
        server->child.fd = server->sock;
      for (guint i = 0; i < server->child.args->len; i++)
        {
          AforkArg *arg = &g_array_index (server->child.args, AforkArg, i);

          if (arg->is_fd)
            move_fd_below (&arg->fd, nofile_start.rlim_cur);
        }
    }
  setrlimit (RLIMIT_NOFILE, &nofile_start);
}

void
_afork_server_serve (int  fd,
                     GPid owner)
{
  AforkServer server = { 0 };

  _afork_i18n_init ();

  /* Whatever the program this server was forked or executed from did
   * with its signals, the server and what it makes start afresh. */
  _afork_server_reset_signals ();
  raise_nofile ();

  _afork_fd_set_blocking (fd, TRUE);
  server.sock = fd;
  /* Never a NULL buffer: serve_loop() offsets into it before the first read. */
  server.in = g_byte_array_sized_new (READ_CHUNK);
  server.fds = g_array_new (FALSE, FALSE, sizeof (int));
  server.modules = g_ptr_array_new ();
  server.program = g_module_open (NULL, 0);
  server.next_status_fd = -1;
  /* Opened once, inherited by every process forked from this one. */
  server.owner_pidfd = open_owner_pidfd (owner);
  server.spare_pid = -1;
  server.spare_sock = -1;
  _afork_child_init (&server.child, fd, owner);
  current_server = &server;

  serve_loop (&server);
  g_assert_not_reached ();
}

/* Resolves a function name in this server (see afork-loader-private.h).
 * C symbols only: a name with a prefix belongs to a language loader. */
gboolean
_afork_server_resolve_function (const char     *name,
                                AforkFunction  *out,
                                GError        **error)
{
  if (current_server == NULL)
    {
      g_set_error_literal (error, AFORK_ERROR, AFORK_ERROR_FAILED,
                           _("Functions can be resolved only inside an afork server"));
      return FALSE;
    }

  if (_afork_server_loader_has_prefix (name))
    return _afork_server_loader_resolve (name, out, error);

  out->loader = NULL;
  out->symbol = symbol_lookup (current_server, name, error);

  return out->symbol != NULL;
}
