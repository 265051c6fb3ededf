/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AforkProcess where the system or the other end misbehaves: send errors
 * other than a closed socket, oversized commands, sockets that are not a
 * process's, a server that reports which step of an exec failed. */
#include "core-util.h"

#include <dlfcn.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The codec's constants only: the test speaks the protocol itself. */
#include "afork-wire-private.h"

static void
put_u32 (guint8  *out,
         guint32  value)
{
  for (guint i = 0; i < 4; i++)
    out[i] = (value >> (8 * i)) & 0xff;
}

static guint32
get_u32 (const guint8 *data)
{
  return (guint32) data[0] | ((guint32) data[1] << 8) |
         ((guint32) data[2] << 16) | ((guint32) data[3] << 24);
}

/* Drops what lets a process ignore RLIMIT_NOFILE for descriptors in
 * flight, so that root sees the limit as everybody else does. */
static void
drop_resource_capabilities (void)
{
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0, 0, 0 } };

  g_assert_cmpint (syscall (SYS_capget, &header, data), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (data); i++)
    {
      guint32 drop = 0;

      if (CAP_SYS_RESOURCE / 32 == i)
        drop |= 1u << (CAP_SYS_RESOURCE % 32);
      if (CAP_SYS_ADMIN / 32 == i)
        drop |= 1u << (CAP_SYS_ADMIN % 32);
      data[i].effective &= ~drop;
      data[i].permitted &= ~drop;
    }
  g_assert_cmpint (syscall (SYS_capset, &header, data), ==, 0);
}

/* Makes this process a user that owns no other process, if it may (it
 * runs as root). The kernel counts descriptors in flight per user: in a
 * user of its own, nobody else's sends and reads move the count, and the
 * capabilities that bypass the limit are gone with root. (Unix sockets
 * nested in each other's queues no longer meet a depth limit since Linux
 * 6.10's new garbage collector: this is the one way left.) */
static gboolean
become_user_of_its_own (void)
{
  uid_t uid = 0x7f000000u + (uid_t) (getpid () & 0xffff);

  if (geteuid () != 0)
    return FALSE;
  if (setgroups (0, NULL) != 0 || setresgid (uid, uid, uid) != 0 ||
      setresuid (uid, uid, uid) != 0)
    return FALSE;
  /* Changing the user made the process undumpable, which would keep
   * LeakSanitizer from looking at its threads. */
  g_assert_cmpint (prctl (PR_SET_DUMPABLE, 1, 0, 0, 0), ==, 0);

  return TRUE;
}

/* A send that fails with ETOOMANYREFS: more descriptors in flight than
 * RLIMIT_NOFILE allows. The run must report it, not wait for a reply to
 * a command that never left. */
static void
test_send_error_reaches_finish (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(AforkProcess) process = NULL;
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GBytes) filler = NULL;
      struct rlimit limit;
      gboolean own_user;
      int sink[2];
      int gate[2];

      process = afork_process_new (&error);
      g_assert_no_error (error);

      /* The child reads nothing until the gate opens; meanwhile more
       * than the socket takes is queued: the rest, and the descriptor
       * behind it, go from the run's own writer. */
      afork_test_pipe (gate);
      afork_process_send_fd (afork_process_require (process, TEST_MODULE), gate[0]);
      close (gate[0]);
      afork_process_call (process, "test_call_wait_gate", NULL);
      filler = g_bytes_new_take (g_malloc0 (16 * 1024 * 1024), 16 * 1024 * 1024);
      afork_process_send_bytes (process, filler);
      afork_process_send_fd (process, STDIN_FILENO);
      afork_process_run_async (process, "test_run_pid", NULL, afork_test_store_result_cb, &result);

      /* Now put more descriptors in flight than the limit: as a user
       * of its own if it can, else as what it is, without the
       * capabilities that lift the limit. */
      own_user = become_user_of_its_own ();
      if (!own_user)
        drop_resource_capabilities ();
      g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sink), ==, 0);
      limit.rlim_cur = limit.rlim_max = 64;
      g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &limit), ==, 0);
      for (guint i = 0; i < 100; i++)
        {
          char byte = 0;
          int fd = STDERR_FILENO;
          struct iovec iov = { &byte, 1 };
          union {
            char buf[CMSG_SPACE (sizeof (int))];
            struct cmsghdr align;
          } control;
          struct msghdr msg = { 0 };
          struct cmsghdr *cmsg;

          memset (&control, 0, sizeof control);
          msg.msg_iov = &iov;
          msg.msg_iovlen = 1;
          msg.msg_control = control.buf;
          msg.msg_controllen = sizeof control.buf;
          cmsg = CMSG_FIRSTHDR (&msg);
          cmsg->cmsg_level = SOL_SOCKET;
          cmsg->cmsg_type = SCM_RIGHTS;
          cmsg->cmsg_len = CMSG_LEN (sizeof (int));
          memcpy (CMSG_DATA (cmsg), &fd, sizeof fd);
          if (sendmsg (sink[0], &msg, MSG_DONTWAIT) < 0)
            {
              g_assert_cmpint (errno, ==, ETOOMANYREFS);
              break;
            }
        }

      /* Open the gate: the child reads, and the descriptor is sent. */
      g_assert_cmpint (write (gate[1], "x", 1), ==, 1);
      close (gate[1]);

      afork_test_wait_result (&result);
      connection = afork_process_run_finish (process, result, &error);
      if (connection != NULL)
        {
          /* The kernel's count of descriptors in flight is kept per user
           * and drops as receivers read: the send went through, so this
           * run cannot tell anything. Said, not passed; but a user of
           * its own has no other process to read. */
          g_assert_false (own_user);
          g_assert_true (g_file_set_contents (g_getenv ("AFORK_TEST_NOT_REACHED"), "", 0, NULL));
          return;
        }
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_FAILED);
      g_assert_nonnull (strstr (error->message, g_strerror (ETOOMANYREFS)));
      return;
    }

  {
    g_autofree char *marker = g_strdup_printf ("%s/afork-test-not-reached-%d",
                                               g_get_tmp_dir (), (int) getpid ());

    g_unlink (marker);
    g_setenv ("AFORK_TEST_NOT_REACHED", marker, TRUE);
    g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed ();
    if (g_file_test (marker, G_FILE_TEST_EXISTS))
      g_test_skip ("The descriptor was sent: the kernel did not refuse it with ETOOMANYREFS this time");
    g_unlink (marker);
  }
}

/* A TCP connection is nobody's process. */
static void
test_from_fd_requires_unix (void)
{
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof addr;
  int listener, client;

  listener = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (listener, >=, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (listener, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (listener, 1), ==, 0);
  g_assert_cmpint (getsockname (listener, (struct sockaddr *) &addr, &len), ==, 0);
  client = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (connect (client, (struct sockaddr *) &addr, sizeof addr), ==, 0);

  process = afork_process_new_from_fd (client, &error);
  g_assert_null (process);
  g_assert_error (error, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);

  close (client);
  close (listener);
}

/* A string the protocol cannot carry is refused before anything is
 * copied, and nothing of the command goes out: the process never runs
 * with an argument missing. */
static void
test_oversized_argument (gconstpointer data)
{
  gsize size = GPOINTER_TO_SIZE (data) == 4 ? G_MAXUINT32 + (gsize) 1 : 300 * 1024 * 1024;
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GBytes) huge = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) run_err = NULL;
  void *region;

  /* Address space only: pages that are never touched are never made. */
  region = mmap (NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (region == MAP_FAILED)
    {
      g_test_skip ("cannot reserve the address space");
      return;
    }
  huge = g_bytes_new_static (region, size);

  process = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_send_arg (afork_process_require (process, TEST_MODULE), "before");
  afork_process_send_bytes (process, huge);
  afork_process_send_arg (process, "after");

  run_err = run_error (process, "test_run_args");
  g_assert_error (run_err, AFORK_ERROR, AFORK_ERROR_INVALID_ARGUMENT);

  munmap (region, size);
}

/* A server of our own, on the other end of a socket: reads the commands
 * of an exec, acknowledges, and reports on the status channel that @step
 * failed with @code. */
typedef struct
{
  int     sock;
  guint32 step;
  guint32 code;
} FakeServer;

static gpointer
fake_server_thread (gpointer user_data)
{
  FakeServer *server = user_data;
  g_autoptr(GByteArray) in = g_byte_array_new ();
  int status_fd = -1;
  gboolean done = FALSE;

  while (!done)
    {
      guint8 buf[4096];
      union {
        char buf[CMSG_SPACE (sizeof (int) * 8)];
        struct cmsghdr align;
      } control;
      struct iovec iov = { buf, sizeof buf };
      struct msghdr msg = { 0 };
      gssize res;

      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.buf;
      msg.msg_controllen = sizeof control.buf;
      res = recvmsg (server->sock, &msg, MSG_CMSG_CLOEXEC);
      g_assert_cmpint (res, >, 0);
      for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
        for (guint i = 0; i < (c->cmsg_len - CMSG_LEN (0)) / sizeof (int); i++)
          {
            /* The last descriptor before `x` is the status channel. */
            if (status_fd >= 0)
              close (status_fd);
            memcpy (&status_fd, CMSG_DATA (c) + i * sizeof (int), sizeof (int));
          }
      g_byte_array_append (in, buf, res);

      while (in->len >= AFORK_WIRE_HEADER_SIZE)
        {
          guint32 len = get_u32 (in->data + 1);
          guint8 command = in->data[0];

          if (in->len < AFORK_WIRE_HEADER_SIZE + len)
            break;
          g_byte_array_remove_range (in, 0, AFORK_WIRE_HEADER_SIZE + len);
          if (command == AFORK_WIRE_EXEC)
            done = TRUE;
        }
    }

  {
    guint8 reply[AFORK_WIRE_HEADER_SIZE + 4] = { AFORK_WIRE_REPLY_OK };
    guint8 status[AFORK_WIRE_EXEC_STATUS_SIZE];

    put_u32 (reply + 1, 4);
    put_u32 (reply + AFORK_WIRE_HEADER_SIZE, 4242);
    g_assert_cmpint (write (server->sock, reply, sizeof reply), ==, sizeof reply);
    put_u32 (status, server->step);
    put_u32 (status + 4, server->code);
    g_assert_cmpint (status_fd, >=, 0);
    g_assert_cmpint (write (status_fd, status, sizeof status), ==, sizeof status);
    close (status_fd);
  }

  return NULL;
}

static GError *
exec_with_fake_server (guint32 step,
                       guint32 code)
{
  g_autoptr(AforkExecOptions) options = afork_exec_options_new ();
  const char *argv[] = { "some-program", NULL };
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  GError *error = NULL;
  FakeServer server = { -1, step, code };
  GThread *thread;
  int sv[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
  process = afork_process_new_from_fd (sv[0], &error);
  g_assert_no_error (error);
  close (sv[0]);
  server.sock = sv[1];
  thread = g_thread_new ("fake-server", fake_server_thread, &server);

  afork_exec_options_set_cwd (options, "/some/directory");
  afork_process_exec_async (process, argv, options, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  connection = afork_process_exec_finish (process, result, &error);
  g_assert_null (connection);
  g_assert_nonnull (error);

  g_thread_join (thread);
  close (sv[1]);

  return error;
}

/* The status channel says which step failed: a directory that cannot be
 * entered is not a program that cannot be executed. */
static void
test_exec_status_step (void)
{
  g_autoptr(GError) chdir_error = exec_with_fake_server (AFORK_WIRE_EXEC_STEP_CHDIR, ENOENT);
  g_autoptr(GError) exec_error = exec_with_fake_server (AFORK_WIRE_EXEC_STEP_EXEC, EACCES);
  g_autoptr(GError) stdio_error = exec_with_fake_server (AFORK_WIRE_EXEC_STEP_STDIO, EBADF);
  g_autoptr(GError) unknown_error = exec_with_fake_server (77, EPERM);

  g_assert_error (chdir_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (chdir_error->message, "/some/directory"));
  g_assert_error (exec_error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED);
  g_assert_nonnull (strstr (exec_error->message, "some-program"));
  g_assert_null (strstr (exec_error->message, "/some/directory"));
  g_assert_error (stdio_error, G_IO_ERROR, (int) g_io_error_from_errno (EBADF));
  g_assert_cmpstr (stdio_error->message, !=, exec_error->message);
  g_assert_error (unknown_error, AFORK_ERROR, AFORK_ERROR_PROTOCOL);
}

/* Set by the dead-server test: the library asks a server's pid only once
 * the server has exited and GLib has reaped it. */
static gboolean reap_before_identifier;

/* The library's g_subprocess_get_identifier (): GLib's own, asked after
 * waiting for the server's end when reap_before_identifier is set, so
 * that the server is always gone by then. */
const gchar *
g_subprocess_get_identifier (GSubprocess *subprocess)
{
  static const gchar *(*real) (GSubprocess *subprocess) = NULL;
  GError *error = NULL;

  if (real == NULL)
    real = (const gchar *(*) (GSubprocess *)) dlsym (RTLD_NEXT, "g_subprocess_get_identifier");
  g_assert_nonnull (real);

  if (reap_before_identifier)
    {
      g_assert_true (g_subprocess_wait (subprocess, NULL, &error));
      g_assert_no_error (error);
    }

  return real (subprocess);
}

/* A server that exits at once may be reaped before its pid is asked for:
 * no critical, the pid is 0, and its run reports that it exited. */
static void
test_new_exec_dead_server (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GError) run_err = NULL;
      g_autoptr(AforkProcess) process = NULL;

      g_setenv ("AFORK_SERVER", "/bin/true", TRUE);
      reap_before_identifier = TRUE;
      process = afork_process_new_exec (&error);
      reap_before_identifier = FALSE;
      g_assert_no_error (error);
      g_assert_nonnull (process);
      g_assert_cmpint (afork_process_get_pid (process), ==, 0);

      run_err = run_error (process, "test_run_pid");
      g_assert_error (run_err, AFORK_ERROR, AFORK_ERROR_CHILD_EXITED);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* Two waits on one process, an asynchronous one pending while a
 * synchronous one runs: one reads the status, both get it, and the
 * pending one does not watch a descriptor number that was reused. */
static void
test_two_waits (void)
{
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  int reuse[2][2];

  process = afork_process_new (&error);
  g_assert_no_error (error);
  afork_process_require (process, TEST_MODULE);
  connection = run_ok (process, "test_run_pid");
  text = afork_test_read_connection (connection);

  afork_process_wait_async (process, NULL, afork_test_store_result_cb, &result);
  g_assert_true (afork_process_wait (process, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (afork_process_get_if_exited (process));

  /* Whatever number the status channel had is taken again now. */
  for (guint i = 0; i < 2; i++)
    afork_test_pipe (reuse[i]);

  afork_test_wait_result (&result);
  g_assert_true (afork_process_wait_finish (process, result, &error));
  g_assert_no_error (error);
  g_assert_cmpint (afork_process_get_exit_status (process), ==, 0);

  /* And a wait after the status is known completes at once. */
  g_assert_true (afork_process_wait (process, NULL, &error));

  for (guint i = 0; i < 2; i++)
    {
      close (reuse[i][0]);
      close (reuse[i][1]);
    }
}

static guint
count_threads (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;

  return n;
}

/* The synchronous calls leave a single-threaded program single-threaded:
 * fork_self still works after them. */
static void
test_sync_stays_single_threaded (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(AforkProcess) process = NULL;
      g_autoptr(AforkProcess) self_template = NULL;
      g_autoptr(GSocketConnection) connection = NULL;
      g_autoptr(GError) error = NULL;
      const char *argv[] = { "/bin/true", NULL };

      g_assert_cmpuint (count_threads (), ==, 1);
      g_assert_true (afork_early_init (&error));
      g_assert_no_error (error);

      process = afork_process_new (&error);
      g_assert_no_error (error);
      connection = afork_process_run (afork_process_require (process, TEST_MODULE),
                                      "test_run_pid", NULL, &error);
      g_assert_no_error (error);
      g_free (afork_test_read_connection (connection));
      g_assert_true (afork_process_wait (process, NULL, &error));
      g_assert_no_error (error);
      g_clear_object (&connection);
      g_clear_object (&process);

      process = afork_process_new (&error);
      g_assert_no_error (error);
      connection = afork_process_exec (process, argv, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (afork_process_wait (process, NULL, &error));
      g_assert_no_error (error);

      g_assert_cmpuint (count_threads (), ==, 1);
      self_template = afork_process_fork_self (&error);
      g_assert_no_error (error);
      g_assert_nonnull (self_template);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

typedef struct
{
  GAsyncQueue *started;
  GAsyncQueue *stop;
} IdleThread;

/* Says it runs (its name is set by then), then waits to be told to end. */
static gpointer
idle_thread (gpointer user_data)
{
  IdleThread *idle = user_data;

  g_async_queue_push (idle->started, GINT_TO_POINTER (1));
  g_async_queue_pop (idle->stop);

  return NULL;
}

/* The refusal names the threads it found. */
static void
test_fork_self_names_threads (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(AforkProcess) template = NULL;
      g_autoptr(GError) error = NULL;
      IdleThread idle = { g_async_queue_new (), g_async_queue_new () };
      GThread *thread;

      thread = g_thread_new ("afork-t-idle", idle_thread, &idle);
      g_async_queue_pop (idle.started);

      template = afork_process_fork_self (&error);
      g_assert_null (template);
      g_assert_error (error, AFORK_ERROR, AFORK_ERROR_THREADED);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, "afork-t-idle"));

      g_async_queue_push (idle.stop, GINT_TO_POINTER (1));
      g_thread_join (thread);
      g_async_queue_unref (idle.started);
      g_async_queue_unref (idle.stop);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* What a language binding's constructor does: g_object_new() alone gives
 * a process that runs, as afork_process_new() would. */
static void
test_object_new (void)
{
  g_autoptr(AforkProcess) process = g_object_new (AFORK_TYPE_PROCESS, NULL);
  g_auto(GStrv) lines = NULL;

  afork_process_require (process, TEST_MODULE);
  lines = run_lines (process, "test_run_pid");
  g_assert_cmpuint (g_strv_length (lines), ==, 1);
  g_assert_cmpint (afork_test_parse_pid_line (lines[0]), ==, afork_process_get_pid (process));
}

/* The program's direct children that run afork-server: in a test
 * subprocess, the default template. */
static GPid
find_default_template (void)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/task/%d/children", (int) getpid (), (int) getpid ());
  g_autofree char *children = NULL;
  g_auto(GStrv) pids = NULL;

  g_assert_true (g_file_get_contents (path, &children, NULL, NULL));
  pids = g_strsplit (g_strstrip (children), " ", -1);
  for (guint i = 0; pids[i] != NULL; i++)
    {
      g_autofree char *exe_link = g_strdup_printf ("/proc/%s/exe", pids[i]);
      g_autofree char *exe = g_file_read_link (exe_link, NULL);

      if (exe != NULL && g_str_has_suffix (exe, "/afork-server"))
        return (GPid) g_ascii_strtoll (pids[i], NULL, 10);
    }

  return 0;
}

typedef struct
{
  gint      made;       /* processes made so far */
  gint      stop;       /* set by the test: the next return ends the loop */
  GError   *error;
} Burst;

static gpointer
burst_thread (gpointer user_data)
{
  Burst *burst = user_data;

  while (!g_atomic_int_get (&burst->stop))
    {
      g_autoptr(AforkProcess) process = afork_process_new (&burst->error);

      if (process == NULL)
        break;
      g_atomic_int_inc (&burst->made);
    }

  return NULL;
}

/* The stopped template is replaced after ten seconds: far more than this
 * means the library hangs. */
#define STOPPED_TEMPLATE_LIMIT_S 120

/* A stopped default template whose socket is full: the request waits a
 * bounded time without the registry lock (another thread goes on using
 * the library meanwhile), then a new template takes the old one's place. */
static void
test_stopped_template (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *file = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  if (g_test_subprocess ())
    {
      g_autoptr(AforkProcess) first = NULL;
      g_autoptr(AforkProcess) other = NULL;
      g_autoptr(AforkProcess) after = NULL;
      g_auto(GStrv) lines = NULL;
      Burst burst = { 0, 0, NULL };
      GThread *thread;
      GPid stopped;
      gint seen = -1;
      int saved_out, saved_err, null;

      /* The template to be stopped must not hold the output of this
       * process, which the test's parent reads to its end: it gets
       * /dev/null as its own. */
      g_assert_cmpint (saved_out = fcntl (1, F_DUPFD_CLOEXEC, 3), >=, 0);
      g_assert_cmpint (saved_err = fcntl (2, F_DUPFD_CLOEXEC, 3), >=, 0);
      g_assert_cmpint (null = open ("/dev/null", O_WRONLY | O_CLOEXEC), >=, 0);
      dup2 (null, 1);
      dup2 (null, 2);
      first = afork_process_new (&error);
      dup2 (saved_out, 1);
      dup2 (saved_err, 2);
      close (saved_out);
      close (saved_err);
      close (null);
      g_assert_no_error (error);
      stopped = find_default_template ();
      g_assert_cmpint (stopped, >, 0);
      g_assert_cmpint (kill (stopped, SIGSTOP), ==, 0);
      /* For the test's parent to kill, should this process be killed. */
      text = g_strdup_printf ("%d", (int) stopped);
      g_file_set_contents (g_getenv ("AFORK_TEST_STOPPED_FILE"), text, -1, &error);
      g_assert_no_error (error);

      /* Requests until the socket is full and one of them waits. */
      thread = g_thread_new ("afork-t-burst", burst_thread, &burst);
      while (seen != g_atomic_int_get (&burst.made))
        {
          seen = g_atomic_int_get (&burst.made);
          g_usleep (3 * G_USEC_PER_SEC);
        }

      /* Meanwhile, the library answers this thread at once. */
      other = afork_process_new_exec (&error);
      g_assert_no_error (error);
      g_assert_cmpint (g_atomic_int_get (&burst.made), ==, seen);
      afork_process_require (other, TEST_MODULE);
      g_strfreev (run_lines (other, "test_run_pid"));

      g_atomic_int_set (&burst.stop, 1);
      g_thread_join (thread);
      g_assert_no_error (burst.error);
      g_assert_cmpint (g_atomic_int_get (&burst.made), ==, seen + 1);

      /* A new template serves. */
      after = afork_process_new (&error);
      g_assert_no_error (error);
      afork_process_require (after, TEST_MODULE);
      lines = run_lines (after, "test_run_pid");
      g_assert_cmpuint (g_strv_length (lines), ==, 1);

      kill (stopped, SIGKILL);
      return;
    }

  dir = g_dir_make_tmp ("afork-stopped-XXXXXX", &error);
  g_assert_no_error (error);
  file = g_build_filename (dir, "pid", NULL);
  g_setenv ("AFORK_TEST_STOPPED_FILE", file, TRUE);

  /* Bounded: a library that holds a lock while it waits for the stopped
   * template blocks every thread, and never gets to fail an assertion. */
  g_test_trap_subprocess (NULL, STOPPED_TEMPLATE_LIMIT_S * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_DEFAULT);
  g_unsetenv ("AFORK_TEST_STOPPED_FILE");
  if (g_test_trap_reached_timeout ())
    g_test_message ("the library still waited after %d s", STOPPED_TEMPLATE_LIMIT_S);
  if (!g_test_trap_has_passed () && g_file_get_contents (file, &text, NULL, NULL))
    kill ((GPid) g_ascii_strtoll (text, NULL, 10), SIGKILL);
  g_remove (file);
  g_rmdir (dir);
  g_test_trap_assert_passed ();
}

int
main (int    argc,
      char **argv)
{
  afork_test_init (&argc, &argv);

  g_test_add_func ("/afork/process/send-error/too-many-refs", test_send_error_reaches_finish);
  g_test_add_func ("/afork/process/from-fd/requires-unix", test_from_fd_requires_unix);
  g_test_add_data_func ("/afork/process/queue/oversized/300-mib", GSIZE_TO_POINTER (0),
                        test_oversized_argument);
  g_test_add_data_func ("/afork/process/queue/oversized/4-gib", GSIZE_TO_POINTER (4),
                        test_oversized_argument);
  g_test_add_func ("/afork/process/exec/status-step", test_exec_status_step);
  g_test_add_func ("/afork/process/new-exec/dead-server", test_new_exec_dead_server);
  g_test_add_func ("/afork/process/wait/two-waits", test_two_waits);
  g_test_add_func ("/afork/process/object-new", test_object_new);
  g_test_add_func ("/afork/process/template/stopped", test_stopped_template);
  g_test_add_func ("/afork/process/sync/single-threaded", test_sync_stays_single_threaded);
  g_test_add_func ("/afork/process/fork-self/names-threads", test_fork_self_names_threads);

  return g_test_run ();
}
