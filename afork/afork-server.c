/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-server-private.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <gmodule.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "afork-child-private.h"
#include "afork-server-sandbox-private.h"
#include "afork-loader-private.h"
#include "afork-pool-worker-private.h"
#include "afork-wire-private.h"

#define READ_CHUNK (64 * 1024)

typedef struct
{
  int         sock;
  GByteArray *in;        /* received bytes not yet decoded */
  GArray     *fds;       /* received descriptors not yet claimed by `h` */
  AforkChild  child;     /* pending run arguments */
  GPtrArray  *modules;   /* GModule *, in load order */
  GModule    *program;   /* the server program itself, opened by the template */
  GError     *error;     /* the first failed `m` or `c` */
  int         next_status_fd;  /* from `w`, for the next fork */
  GHashTable *watched;   /* child pid → fd its wait status is written to */
  int         owner_pidfd;     /* readable once the owner has exited */
  /* A child forked ahead of the next fork request, waiting on spare_sock
   * for the socket of the process it is to become. It is valid while
   * nothing a fork inherits changed since it was forked: no `a`, `m` or
   * `c` (generation) and no descriptor added (spare_n_args). */
  pid_t       spare_pid;
  int         spare_sock;
  guint       generation;
  guint       spare_generation;
  guint       spare_n_args;
} AforkServer;

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
_afork_server_set_title (const char *format,
                         ...)
{
  g_autofree char *title = NULL;
  va_list args;

  va_start (args, format);
  title = g_strdup_vprintf (format, args);
  va_end (args);

  prctl (PR_SET_NAME, title, 0, 0, 0);

  if (title_area != NULL && title_len > 1)
    {
      memset (title_area, 0, title_len);
      memcpy (title_area, title, MIN (strlen (title), title_len - 1));
    }
}

G_GNUC_NORETURN static void
die (AforkServer *server,
     const char  *message)
{
  (void) server;
  /* TRANSLATORS: %s is the reason an afork server stops */
  g_printerr (_("afork-server: %s\n"), message);
  _exit (2);
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

static void
sigchld_setup (void)
{
  struct sigaction sa = { 0 };

  if (sigchld_pipe[0] >= 0)
    {
      close (sigchld_pipe[0]);
      close (sigchld_pipe[1]);
    }
  if (pipe2 (sigchld_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    {
      g_printerr (_("afork-server: cannot create a pipe: %s\n"), g_strerror (errno));
      _exit (2);
    }

  sa.sa_handler = sigchld_handler;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGCHLD, &sa, NULL);

  /* Status channels are pipes: a parent that dropped a process must not
   * kill the template with SIGPIPE when it reports that process's exit. */
  signal (SIGPIPE, SIG_IGN);
}

/* Closes this process's end of the spare's channel and forgets the spare
 * (which, if it still waits, sees the channel close and exits). */
static void
spare_forget (AforkServer *server)
{
  if (server->spare_sock >= 0)
    close (server->spare_sock);
  server->spare_sock = -1;
  server->spare_pid = -1;
}

/* What a process leaves behind when it stops being the server it was
 * forked from: the command loop's own descriptors. (A SIGCHLD handler left
 * installed only writes to a pipe that no longer exists.) */
static void
server_forget_loop_state (AforkServer *server)
{
  GHashTableIter iter;
  gpointer fd;

  if (sigchld_pipe[0] >= 0)
    {
      close (sigchld_pipe[0]);
      close (sigchld_pipe[1]);
      sigchld_pipe[0] = sigchld_pipe[1] = -1;
    }

  /* The table itself is the template's: left as it is (a forked child
   * shares its pages until it writes them), and replaced. */
  g_hash_table_iter_init (&iter, server->watched);
  while (g_hash_table_iter_next (&iter, NULL, &fd))
    close (GPOINTER_TO_INT (fd));
  if (g_hash_table_size (server->watched) > 0)
    server->watched = g_hash_table_new (NULL, NULL);

  if (server->next_status_fd >= 0)
    close (server->next_status_fd);
  server->next_status_fd = -1;

  if (server->owner_pidfd >= 0)
    close (server->owner_pidfd);
  server->owner_pidfd = -1;

  /* The template's spare is not this process's business. */
  spare_forget (server);

  for (guint i = 0; i < server->fds->len; i++)
    close (g_array_index (server->fds, int, i));
  g_array_set_size (server->fds, 0);
  g_byte_array_set_size (server->in, 0);
}

/* Reaps every child that exited, telling the parent of those it watches
 * their wait status (4 bytes, little-endian) on their status channel. */
static void
reap_children (AforkServer *server)
{
  char drain[64];
  pid_t pid;
  int status;

  sigchld_pending = 0;
  while (read (sigchld_pipe[0], drain, sizeof drain) > 0)
    ;

  while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
    {
      gpointer fd;

      if (pid == server->spare_pid)
        {
          spare_forget (server);
          continue;
        }

      if (g_hash_table_steal_extended (server->watched, GINT_TO_POINTER (pid), NULL, &fd))
        {
          guint8 le[4];
          gssize res;

          _afork_wire_encode_u32 (le, (guint32) status);

          do
            res = write (GPOINTER_TO_INT (fd), le, sizeof le);
          while (res < 0 && errno == EINTR);
          close (GPOINTER_TO_INT (fd));
        }
    }
}

/* Tells the spare to exit: it sees its channel close. With @reap, waits
 * for it too, for a process that stops being a template to run user code
 * and must not leave an unknown child behind. */
static void
spare_drop (AforkServer *server,
            gboolean     reap)
{
  pid_t pid = server->spare_pid;

  spare_forget (server);

  if (reap && pid > 0)
    while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
      ;
}

/* Whether to fork a spare before waiting for the next command: in a
 * template (a server that has forked) without one, when no command is
 * waiting already. */
static gboolean
spare_wanted (AforkServer *server)
{
  struct pollfd pfd = { server->sock, POLLIN, 0 };

  if (sigchld_pipe[0] < 0 || server->spare_pid > 0)
    return FALSE;

  return poll (&pfd, 1, 0) == 0;
}

/* Forks the spare. Returns TRUE in the spare, once it has been handed the
 * socket of the process it becomes (its command stream starts afresh). */
static gboolean
spare_start (AforkServer *server)
{
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  struct iovec iov;
  struct cmsghdr *cmsg;
  char byte;
  int sv[2];
  int fd = -1;
  gssize res;
  pid_t pid;

  if (server->spare_pid > 0)
    return FALSE;

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return FALSE;

  pid = fork ();
  if (pid < 0)
    {
      close (sv[0]);
      close (sv[1]);
      return FALSE;
    }

  if (pid > 0)
    {
      close (sv[1]);
      server->spare_pid = pid;
      server->spare_sock = sv[0];
      server->spare_generation = server->generation;
      server->spare_n_args = server->child.args->len;
      return FALSE;
    }

  /* The spare: what a new child leaves of the template, done ahead. */
  close (sv[0]);
  close (server->sock);
  server->sock = -1;
  server_forget_loop_state (server);
  _afork_server_set_title ("afork %d spare", (int) server->child.owner);

  iov.iov_base = &byte;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  do
    res = recvmsg (sv[1], &msg, MSG_CMSG_CLOEXEC);
  while (res < 0 && errno == EINTR);

  cmsg = res > 0 ? CMSG_FIRSTHDR (&msg) : NULL;
  if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
      cmsg->cmsg_len == CMSG_LEN (sizeof (int)))
    memcpy (&fd, CMSG_DATA (cmsg), sizeof fd);

  /* Dropped (the template changed, or is gone): nothing to become. */
  if (fd < 0)
    _exit (0);

  close (sv[1]);
  server->sock = fd;
  server->child.fd = fd;
  _afork_server_set_title ("afork %d child", (int) server->child.owner);

  return TRUE;
}

/* Hands @fd to the spare, if there is one and it inherited what a child
 * forked now would. Returns its pid, or -1 if the caller must fork. */
static pid_t
spare_hand_over (AforkServer *server,
                 int          fd)
{
  pid_t pid = server->spare_pid;
  const char byte = 0;

  if (pid <= 0)
    return -1;

  if (server->spare_generation != server->generation ||
      server->spare_n_args != server->child.args->len ||
      _afork_sendmsg_fds (server->spare_sock, &byte, 1, &fd, 1, 0) != 1)
    {
      spare_drop (server, FALSE);
      return -1;
    }

  spare_forget (server);

  return pid;
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
  spare_drop (server, TRUE);

  if (g_hash_table_size (server->watched) > 0)
    server->owner_pidfd = open_owner_pidfd (server->child.owner);

  if (g_hash_table_size (server->watched) > 0 && !owner_is_gone (server))
    {
      close (server->sock);
      server->sock = -1;
      _afork_server_set_title ("afork-server %d reaper", (int) server->child.owner);

      while (g_hash_table_size (server->watched) > 0)
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
static char *
wire_cstring (const AforkWireString  *s,
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

static GArray *
parse_strings (AforkServer  *server,
               const guint8 *payload,
               guint32       len)
{
  GArray *strings = g_array_new (FALSE, FALSE, sizeof (AforkWireString));
  g_autoptr(GError) error = NULL;

  if (!_afork_wire_parse_strings (payload, len, strings, &error))
    die (server, error->message);

  return strings;
}

static void
handle_require (AforkServer  *server,
                const guint8 *payload,
                guint32       len)
{
  g_autoptr(GArray) names = parse_strings (server, payload, len);

  for (guint i = 0; i < names->len && server->error == NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *name = wire_cstring (&g_array_index (names, AforkWireString, i), &error);

      if (name != NULL)
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
  g_autoptr(GArray) strings = parse_strings (server, payload, len);
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  AforkCallFunc func;

  if (strings->len == 0)
    die (server, _("Call command names no function"));

  if (server->error != NULL)
    return;

  name = wire_cstring (&g_array_index (strings, AforkWireString, 0), &error);
  if (name == NULL)
    die (server, error->message);

  func = (AforkCallFunc) symbol_lookup (server, name, &error);
  if (func == NULL)
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

  if (!func (&server->child, (const char * const *) args->pdata, &error))
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
static void
acknowledge_or_exit (AforkServer  *server,
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
  g_autoptr(GArray) strings = parse_strings (server, payload, len);
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  AforkRunFunc func = NULL;

  if (strings->len != 1)
    die (server, _("Run command must name exactly one function"));

  name = wire_cstring (&g_array_index (strings, AforkWireString, 0), &error);
  if (name == NULL)
    die (server, error->message);

  if (server->error != NULL)
    error = g_steal_pointer (&server->error);
  else if (g_str_equal (name, AFORK_POOL_WORKER_FUNCTION))
    func = _afork_pool_worker_run;
  else
    func = (AforkRunFunc) symbol_lookup (server, name, &error);

  acknowledge_or_exit (server, error);

  /* Leave nothing of the command loop to the run function but its
   * arguments and socket, and the default handling of the signals the
   * loop changed. A template that runs leaves no spare behind. */
  spare_drop (server, TRUE);
  server_forget_loop_state (server);
  signal (SIGCHLD, SIG_DFL);
  signal (SIGPIPE, SIG_DFL);
  _afork_server_set_title ("afork %d %s", (int) server->child.owner, name);
  _afork_fd_set_blocking (server->sock, TRUE);
  _afork_server_sandbox_enter_run ();

  func (&server->child);

  fflush (NULL);
  _exit (0);
}


G_GNUC_NORETURN static void
write_errno_and_exit (int status_fd,
                      int saved_errno)
{
  guint8 le[4];

  _afork_wire_encode_u32 (le, (guint32) saved_errno);

  /* Nobody may be listening any more: exit with 127 all the same. */
  signal (SIGPIPE, SIG_IGN);
  if (write (status_fd, le, sizeof le) < 0)
    { /* the parent is gone: nobody to tell */ }
  _exit (127);
}

/* The built-in exec: becomes the program described by the `x` frame, with
 * the chosen descriptors as standard input, output and error. The status
 * channel (the last descriptor sent) is close-on-exec: the parent reads
 * end of file when the program started, or the errno of the failure. */
G_GNUC_NORETURN static void
handle_exec (AforkServer  *server,
             const guint8 *payload,
             guint32       len)
{
  g_autoptr(GArray) strings = parse_strings (server, payload, len);
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) envp = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *stdio = NULL;
  g_autofree char *cwd = NULL;
  g_autofree char *has_env = NULL;
  g_autofree char *argc_str = NULL;
  guint64 argc = 0;
  int stdio_src[3] = { -1, -1, -1 };
  int status_fd;
  sigset_t all;

  if (strings->len < 5)
    die (server, _("Malformed exec command"));

  stdio = wire_cstring (&g_array_index (strings, AforkWireString, 0), NULL);
  cwd = wire_cstring (&g_array_index (strings, AforkWireString, 1), NULL);
  has_env = wire_cstring (&g_array_index (strings, AforkWireString, 2), NULL);
  argc_str = wire_cstring (&g_array_index (strings, AforkWireString, 3), NULL);
  if (stdio == NULL || strlen (stdio) != 3 || cwd == NULL || has_env == NULL ||
      argc_str == NULL ||
      !g_ascii_string_to_unsigned (argc_str, 10, 1, strings->len - 4, &argc, NULL))
    die (server, _("Malformed exec command"));

  for (guint i = 4; i < strings->len; i++)
    {
      char *str = wire_cstring (&g_array_index (strings, AforkWireString, i), NULL);

      if (str == NULL)
        die (server, _("Malformed exec command"));
      g_ptr_array_add (i < 4 + argc ? argv : envp, str);
    }
  g_ptr_array_add (argv, NULL);
  g_ptr_array_add (envp, NULL);

  status_fd = _afork_child_pop_last_fd (&server->child);
  if (status_fd < 0)
    die (server, _("Exec command without a status channel"));
  for (int t = 2; t >= 0; t--)
    {
      if (stdio[t] == 'f')
        {
          stdio_src[t] = _afork_child_pop_last_fd (&server->child);
          if (stdio_src[t] < 0)
            die (server, _("Exec command without the descriptors it names"));
        }
      else if (stdio[t] == 's')
        stdio_src[t] = server->sock;
      else if (stdio[t] != 'i')
        die (server, _("Malformed exec command"));
    }

  acknowledge_or_exit (server, server->error);

  spare_drop (server, TRUE);
  server_forget_loop_state (server);
  _afork_fd_set_blocking (server->sock, TRUE);

  /* A clean slate of signals for the program. */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal (sig, SIG_DFL);
  sigemptyset (&all);
  sigprocmask (SIG_SETMASK, &all, NULL);

  /* Move the sources out of the way first, so that no target overwrites
   * a source that is still needed. */
  for (int t = 0; t < 3; t++)
    if (stdio_src[t] >= 0)
      {
        stdio_src[t] = fcntl (stdio_src[t], F_DUPFD_CLOEXEC, 10);
        if (stdio_src[t] < 0)
          write_errno_and_exit (status_fd, errno);
      }
  for (int t = 0; t < 3; t++)
    if (stdio_src[t] >= 0 && dup2 (stdio_src[t], t) < 0)
      write_errno_and_exit (status_fd, errno);

  if (cwd[0] != '\0' && chdir (cwd) != 0)
    write_errno_and_exit (status_fd, errno);

  if (has_env[0] == '1')
    execvpe (argv->pdata[0], (char **) argv->pdata, (char **) envp->pdata);
  else
    execvp (argv->pdata[0], (char **) argv->pdata);

  write_errno_and_exit (status_fd, errno);
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
    die (server, error->message);

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
    die (server, _("Fork command without a socket for the new process"));

  /* A server becomes a template with its first fork: from then on it
   * reaps children. */
  if (sigchld_pipe[0] < 0)
    sigchld_setup ();

  /* The spare forked after the last request becomes the new process at
   * the cost of one message; a fork is the way when there is none. */
  pid = spare_hand_over (server, fd);
  if (pid < 0)
    pid = fork ();
  if (pid < 0)
    {
      /* The new process's parent sees its socket close. */
      int saved_errno = errno;
      g_printerr (_("afork-server: fork failed: %s\n"), g_strerror (saved_errno));
      close (fd);
      return FALSE;
    }

  if (pid == 0)
    {
      /* The child: the rest of the template's stream, the descriptors
       * that came with it and the children it watches belong to the
       * template. */
      close (server->sock);
      server_forget_loop_state (server);
      server->sock = fd;
      server->child.fd = fd;
      _afork_server_set_title ("afork %d child", (int) server->child.owner);
      return TRUE;
    }

  close (fd);
  if (server->next_status_fd >= 0)
    g_hash_table_insert (server->watched, GINT_TO_POINTER (pid),
                         GINT_TO_POINTER (server->next_status_fd));
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
        die (server, _("Descriptor command without a descriptor"));
      _afork_child_add_fd (&server->child, g_array_index (server->fds, int, 0));
      g_array_remove_index (server->fds, 0);
      return FALSE;

    case AFORK_WIRE_ARGS:
      server->generation++;
      {
        g_autoptr(GArray) strings = parse_strings (server, payload, len);

        for (guint i = 0; i < strings->len; i++)
          {
            const AforkWireString *s = &g_array_index (strings, AforkWireString, i);
            _afork_child_add_string (&server->child, s->data, s->len);
          }
      }
      return FALSE;

    case AFORK_WIRE_REQUIRE:
      server->generation++;
      handle_require (server, payload, len);
      return FALSE;

    case AFORK_WIRE_CALL:
      server->generation++;
      handle_call (server, payload, len);
      return FALSE;

    case AFORK_WIRE_FORK:
      return handle_fork (server);

    case AFORK_WIRE_SANDBOX:
      /* A spare forked before now would escape the walls. */
      server->generation++;
      handle_sandbox (server, payload, len);
      return FALSE;

    case AFORK_WIRE_WATCH:
      {
        int fd = _afork_child_pop_last_fd (&server->child);

        if (fd < 0)
          die (server, _("Watch command without a descriptor"));
        if (server->next_status_fd >= 0)
          close (server->next_status_fd);
        server->next_status_fd = fd;
      }
      return FALSE;

    case AFORK_WIRE_EXEC:
      handle_exec (server, payload, len);

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
  struct pollfd pfds[2] = {
    { server->sock, POLLIN, 0 },
    { sigchld_pipe[0], POLLIN, 0 },
  };

  if (poll (pfds, 2, -1) < 0)
    {
      if (errno == EINTR)
        return FALSE;
      die (server, g_strerror (errno));
    }

  if (pfds[1].revents != 0)
    reap_children (server);

  return pfds[0].revents != 0;
}

/* Reads what is there, up to @want bytes, with any descriptors attached.
 * Returns the number of bytes, 0 at end of stream. */
static gsize
receive (AforkServer *server,
         gsize        want)
{
  union {
    char buf[CMSG_SPACE (sizeof (int) * AFORK_MAX_FDS_PER_MESSAGE)];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  struct iovec iov;
  struct cmsghdr *cmsg;
  guint old_len = server->in->len;
  gssize res;

  g_byte_array_set_size (server->in, old_len + want);
  iov.iov_base = server->in->data + old_len;
  iov.iov_len = want;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  /* Try first: the commands are usually there already. Wait (and reap
   * children meanwhile) only when they are not. */
  for (;;)
    {
      msg.msg_controllen = sizeof control.buf;
      res = recvmsg (server->sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (res >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
        break;
      if (errno != EINTR)
        wait_readable (server);
    }

  if (res < 0)
    {
      int saved_errno = errno;
      g_autofree char *message = g_strdup_printf (_("Cannot read from the parent: %s"),
                                                  g_strerror (saved_errno));
      die (server, message);
    }

  g_byte_array_set_size (server->in, old_len + res);

  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    {
      if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
        {
          guint n = (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int);
          const int *fds = (const int *) CMSG_DATA (cmsg);

          for (guint i = 0; i < n; i++)
            {
              int fd;
              memcpy (&fd, fds + i, sizeof fd);
              g_array_append_val (server->fds, fd);
            }
        }
    }

  if (msg.msg_flags & MSG_CTRUNC)
    die (server, _("Too many descriptors in one message from the parent"));

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
        die (server, error->message);

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
      if (server->in->len == 0 && spare_wanted (server) && spare_start (server))
        continue;

      if (receive (server, want) == 0)
        {
          if (server->in->len > 0)
            die (server, _("The parent closed the connection in the middle of a command"));
          if (server->error != NULL)
            {
              g_printerr (_("afork-server: %s\n"), server->error->message);
              linger_and_exit (server, 1);
            }
          linger_and_exit (server, 0);
        }
    }
}

void
_afork_server_serve (int  fd,
                     GPid owner)
{
  AforkServer server = { 0 };

  _afork_i18n_init ();

  _afork_fd_set_blocking (fd, TRUE);
  server.sock = fd;
  /* Never a NULL buffer: serve_loop() offsets into it before the first read. */
  server.in = g_byte_array_sized_new (READ_CHUNK);
  server.fds = g_array_new (FALSE, FALSE, sizeof (int));
  server.modules = g_ptr_array_new ();
  server.program = g_module_open (NULL, 0);
  server.next_status_fd = -1;
  server.watched = g_hash_table_new (NULL, NULL);
  server.owner_pidfd = -1;
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

  if (strchr (name, ':') != NULL)
    {
      g_set_error (error, AFORK_ERROR, AFORK_ERROR_FUNCTION_NOT_FOUND,
                   /* TRANSLATORS: %s is a function name such as python:mod.f */
                   _("No loader can resolve function “%s”"), name);
      return FALSE;
    }

  out->loader = NULL;
  out->symbol = symbol_lookup (current_server, name, error);

  return out->symbol != NULL;
}

static gboolean
parse_int (const char *str,
           gint64      min,
           gint64      max,
           gint64     *out)
{
  return str != NULL && g_ascii_string_to_signed (str, 10, min, max, out, NULL);
}

int
_afork_server_main (int    argc,
                    char **argv)
{
  gint64 fd = -1, owner = 0, protocol = -1;
  struct stat st;

  setlocale (LC_ALL, "");
  _afork_i18n_init ();

  for (int i = 1; i < argc; i++)
    {
      gint64 *target = NULL;

      if (g_str_equal (argv[i], "--fd"))
        target = &fd;
      else if (g_str_equal (argv[i], "--owner"))
        target = &owner;
      else if (g_str_equal (argv[i], "--protocol"))
        target = &protocol;

      if (target == NULL || i + 1 >= argc ||
          !parse_int (argv[i + 1], 0, G_MAXINT, target))
        {
          g_printerr (_("Usage: %s --fd FD --owner PID --protocol %d\n"
                        "afork-server is started by the afork library; it is not "
                        "meant to be run by hand.\n"),
                      argv[0], AFORK_WIRE_PROTOCOL_VERSION);
          return 2;
        }
      i++;
    }

  if (fd < 0 || protocol < 0)
    {
      g_printerr (_("afork-server: --fd and --protocol are required\n"));
      return 2;
    }

  if (protocol != AFORK_WIRE_PROTOCOL_VERSION)
    {
      g_printerr (_("afork-server: protocol version %d requested, but this server "
                    "speaks version %d\n"),
                  (int) protocol, AFORK_WIRE_PROTOCOL_VERSION);
      return 2;
    }

  if (fstat ((int) fd, &st) != 0 || !S_ISSOCK (st.st_mode))
    {
      g_printerr (_("afork-server: descriptor %d is not a socket\n"), (int) fd);
      return 2;
    }
  else
    {
      int domain = -1;
      socklen_t dlen = sizeof domain;

      if (getsockopt ((int) fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0 ||
          domain != AF_UNIX)
        {
          g_printerr (_("afork-server: descriptor %d is not a unix socket\n"), (int) fd);
          return 2;
        }
    }

  /* Keep the socket at 3 and close everything else inherited besides
   * stdio: a spawn with inherited descriptors is fast, and this is where
   * the cost of that is paid. */
  if (fd != 3)
    {
      if (dup2 ((int) fd, 3) < 0)
        {
          g_printerr (_("afork-server: cannot move the socket: %s\n"), g_strerror (errno));
          return 2;
        }
    }
  _afork_close_fds_from (4);
  fcntl (3, F_SETFD, FD_CLOEXEC);

  title_area = argv[0];
  title_len = (argv[argc - 1] + strlen (argv[argc - 1]) + 1) - argv[0];
  _afork_server_set_title ("afork-server %d template", (int) owner);

  _afork_server_serve (3, (GPid) owner);
}
