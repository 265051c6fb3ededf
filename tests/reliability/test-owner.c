/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Only the owner can steer a process: every socket between the parent,
 * its servers and children is an unnamed socketpair (no path in the file
 * system, nothing in the abstract namespace), and afork-server refuses to
 * start on anything but a unix socket and a protocol it speaks. */
#include "rel-util.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* inode → path (empty when unnamed) of every unix socket on the system. */
static GHashTable *
read_net_unix (void)
{
  GHashTable *sockets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_true (g_file_get_contents ("/proc/net/unix", &contents, NULL, NULL));
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
      g_autoptr(GPtrArray) words = g_ptr_array_new ();

      for (guint j = 0; fields[j] != NULL; j++)
        if (fields[j][0] != '\0')
          g_ptr_array_add (words, fields[j]);
      /* Num RefCount Protocol Flags Type St Inode [Path] */
      if (words->len < 7)
        continue;
      g_hash_table_replace (sockets, g_strdup (words->pdata[6]),
                            g_strdup (words->len > 7 ? words->pdata[7] : ""));
    }

  return sockets;
}

/* Every unix socket @pid holds is unnamed. Returns how many it holds. */
static guint
assert_unnamed_sockets (GPid        pid,
                        const char *what)
{
  g_autoptr(GHashTable) sockets = read_net_unix ();
  g_autofree char *dir_path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link = g_build_filename (dir_path, name, NULL);
      g_autofree char *target = g_file_read_link (link, NULL);
      g_autofree char *inode = NULL;
      const char *path;

      if (target == NULL || !g_str_has_prefix (target, "socket:["))
        continue;
      inode = g_strndup (target + strlen ("socket:["), strlen (target) - strlen ("socket:[]"));
      path = g_hash_table_lookup (sockets, inode);
      if (path == NULL)
        continue;   /* not a unix socket */
      n++;
      if (path[0] != '\0')
        g_error ("%s (pid %d) holds unix socket %s bound to “%s”", what, (int) pid, inode, path);
    }

  return n;
}

static void
assert_unnamed_fd (int fd)
{
  struct sockaddr_un addr;
  socklen_t len;
  int domain = -1, type = -1;
  socklen_t optlen = sizeof domain;

  g_assert_cmpint (getsockopt (fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen), ==, 0);
  g_assert_cmpint (domain, ==, AF_UNIX);
  optlen = sizeof type;
  g_assert_cmpint (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &optlen), ==, 0);
  g_assert_cmpint (type, ==, SOCK_STREAM);

  /* An unnamed socket's address is the family alone. */
  len = sizeof addr;
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &addr, &len), ==, 0);
  g_assert_cmpuint (len, ==, sizeof (sa_family_t));
  len = sizeof addr;
  g_assert_cmpint (getpeername (fd, (struct sockaddr *) &addr, &len), ==, 0);
  g_assert_cmpuint (len, ==, sizeof (sa_family_t));
}

static void
test_socketpairs (gconstpointer data)
{
  RelKind *kind = (RelKind *) data;
  g_autoptr(AforkProcess) preparing = rel_make (kind);
  g_autoptr(AforkProcess) running = rel_make (kind);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid, ppid = 0, preparing_pid;

  preparing_pid = rel_report_pid (preparing);
  connection = afork_process_run (running, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);
  pid = rel_read_pid_line (connection);

  assert_unnamed_fd (g_socket_get_fd (g_socket_connection_get_socket (connection)));

  g_assert_cmpuint (assert_unnamed_sockets (getpid (), "the parent"), >, 0);
  g_assert_cmpuint (assert_unnamed_sockets (preparing_pid, "a process in preparation"), >, 0);
  g_assert_cmpuint (assert_unnamed_sockets (pid, "a running process"), >, 0);
  g_assert_true (afork_test_proc_stat (pid, NULL, &ppid, NULL));
  if (ppid != getpid ())
    g_assert_cmpuint (assert_unnamed_sockets (ppid, "a template"), >, 0);
}

/* Runs afork-server by hand with @fd as descriptor 3 (-1: none) and the
 * given protocol; returns its exit status and standard error. */
static int
run_server (int          fd,
            const char  *protocol,
            char       **err)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr(GSubprocess) server = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *owner = g_strdup_printf ("%d", (int) getpid ());
  const char *argv[] = {
    afork_get_server_path (), "--fd", "3", "--owner", owner, "--protocol", protocol, NULL,
  };

  if (fd >= 0)
    g_subprocess_launcher_take_fd (launcher, fd, 3);
  server = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (server, NULL, NULL, NULL, err, &error);
  g_assert_no_error (error);
  g_test_message ("afork-server --fd %s --protocol %s: %s", fd >= 0 ? "3" : "(none)", protocol, *err);

  g_assert_true (g_subprocess_get_if_exited (server));

  return g_subprocess_get_exit_status (server);
}

static void
test_refuse_pipe (void)
{
  g_autofree char *err = NULL;
  int fds[2];

  g_assert_cmpint (pipe (fds), ==, 0);
  g_assert_cmpint (run_server (fds[0], "1", &err), !=, 0);
  g_assert_nonnull (strstr (err, "not a socket"));
  close (fds[1]);
}

static void
test_refuse_closed (void)
{
  g_autofree char *err = NULL;

  g_assert_cmpint (run_server (-1, "1", &err), !=, 0);
  g_assert_nonnull (strstr (err, "not a socket"));
}

static void
test_refuse_file (void)
{
  g_autofree char *err = NULL;
  int fd = dup (0);   /* whatever stdin is: not a socket under meson */
  struct stat st;

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (fstat (fd, &st), ==, 0);
  if (S_ISSOCK (st.st_mode))
    {
      close (fd);
      g_test_skip ("standard input is a socket");
      return;
    }
  g_assert_cmpint (run_server (fd, "1", &err), !=, 0);
  g_assert_nonnull (strstr (err, "not a socket"));
}

static void
test_refuse_inet (void)
{
  int types[] = { SOCK_STREAM, SOCK_DGRAM };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autofree char *err = NULL;
      /* Never bound nor connected: no traffic. */
      int fd = socket (AF_INET, types[i] | SOCK_CLOEXEC, 0);

      g_assert_cmpint (fd, >=, 0);
      g_assert_cmpint (run_server (fd, "1", &err), !=, 0);
      g_assert_nonnull (strstr (err, "not a unix socket"));
    }
}

static void
test_refuse_protocol (void)
{
  const char *protocols[] = { "2", "0", "999" };

  for (guint i = 0; i < G_N_ELEMENTS (protocols); i++)
    {
      g_autofree char *err = NULL;
      g_autofree char *requested = g_strdup_printf ("version %s", protocols[i]);
      int fds[2];

      g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
      g_assert_cmpint (run_server (fds[1], protocols[i], &err), !=, 0);
      /* Names both: the one asked for and the one it speaks. */
      g_assert_nonnull (strstr (err, requested));
      g_assert_nonnull (strstr (err, "version 1"));
      close (fds[0]);
    }
}

static void
test_refuse_garbage (void)
{
  g_autofree char *err = NULL;
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  g_assert_cmpint (run_server (fds[1], "one", &err), !=, 0);
  g_assert_nonnull (strstr (err, "--protocol"));
  close (fds[0]);
}

/* The control: the same by hand with a socketpair and protocol 1 serves,
 * and exits cleanly when its owner closes the connection. */
static void
test_accept_socketpair (void)
{
  g_autofree char *err = NULL;
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  g_assert_cmpint (shutdown (fds[0], SHUT_WR), ==, 0);
  g_assert_cmpint (run_server (fds[1], "1", &err), ==, 0);
  g_assert_cmpstr (err, ==, "");
  close (fds[0]);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  rel_init (&argc, &argv);

  rel_add_kind_tests ("/afork/reliability/owner/socketpair", test_socketpairs);
  g_test_add_func ("/afork/reliability/owner/server/refuse-pipe", test_refuse_pipe);
  g_test_add_func ("/afork/reliability/owner/server/refuse-closed", test_refuse_closed);
  g_test_add_func ("/afork/reliability/owner/server/refuse-file", test_refuse_file);
  g_test_add_func ("/afork/reliability/owner/server/refuse-inet", test_refuse_inet);
  g_test_add_func ("/afork/reliability/owner/server/refuse-protocol", test_refuse_protocol);
  g_test_add_func ("/afork/reliability/owner/server/refuse-garbage", test_refuse_garbage);
  g_test_add_func ("/afork/reliability/owner/server/accept-socketpair", test_accept_socketpair);

  ret = g_test_run ();
  rel_kinds_reset ();

  return ret;
}
