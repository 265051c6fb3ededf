/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "rel-util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
rel_init (int    *argc,
          char ***argv)
{
  sigset_t pipe_set;

  /* SIGPIPE is blocked, in every thread (they inherit the mask), and its
   * disposition is the default: a write to a dead peer without
   * MSG_NOSIGNAL leaves it pending, which rel_assert_no_sigpipe() sees.
   * GSocket ignores SIGPIPE process-wide when its class is set up: set it
   * up first, then restore the default. */
  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_set, NULL);

  afork_test_init (argc, argv);

  g_type_class_unref (g_type_class_ref (G_TYPE_SOCKET));
  signal (SIGPIPE, SIG_DFL);
}

/* Unblocks SIGPIPE in the calling thread: a write that raises it then
 * kills the process at once. */
void
rel_unblock_sigpipe (void)
{
  sigset_t pipe_set;

  sigemptyset (&pipe_set);
  sigaddset (&pipe_set, SIGPIPE);
  signal (SIGPIPE, SIG_DFL);
  pthread_sigmask (SIG_UNBLOCK, &pipe_set, NULL);
}

static guint64
status_mask (const char *contents,
             const char *field)
{
  const char *line = strstr (contents, field);

  g_assert_nonnull (line);

  return g_ascii_strtoull (line + strlen (field), NULL, 16);
}

/* No thread of the test ever raised SIGPIPE, and its disposition is still
 * the default. */
void
rel_assert_no_sigpipe (void)
{
  guint64 bit = G_GUINT64_CONSTANT (1) << (SIGPIPE - 1);
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/task", 0, NULL);
  struct sigaction sa;
  const char *name;

  g_assert_cmpint (sigaction (SIGPIPE, NULL, &sa), ==, 0);
  g_assert_true (sa.sa_handler == SIG_DFL);

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/task/%s/status", name);
      g_autofree char *contents = NULL;

      if (!g_file_get_contents (path, &contents, NULL, NULL))
        continue;   /* the thread ended meanwhile */
      if ((status_mask (contents, "\nSigPnd:") & bit) != 0 ||
          (status_mask (contents, "\nShdPnd:") & bit) != 0)
        g_error ("thread %s of the test raised SIGPIPE", name);
    }
}

guint
rel_env_uint (const char *name,
              guint       default_value)
{
  const char *value = g_getenv (name);
  guint64 parsed;

  if (value == NULL || value[0] == '\0')
    return default_value;
  if (!g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT, &parsed, NULL))
    g_error ("%s=%s is not a positive number", name, value);

  return (guint) parsed;
}

/* Modules are built next to the test programs. */
char *
rel_module_path (const char *name)
{
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *dir = NULL;
  g_autofree char *file = g_strdup_printf ("lib%s.so", name);

  g_assert_nonnull (exe);
  dir = g_path_get_dirname (exe);

  return g_build_filename (dir, file, NULL);
}

/* Kinds of processes */

static void
require_rel_module (AforkProcess *process)
{
  g_autofree char *path = rel_module_path ("afork-rel-module");

  afork_process_require (process, path);
}

static AforkProcess *
make_new (G_GNUC_UNUSED RelKind *kind,
          GError               **error)
{
  AforkProcess *process = afork_process_new (error);

  if (process != NULL)
    require_rel_module (process);

  return process;
}

static AforkProcess *
make_exec (G_GNUC_UNUSED RelKind *kind,
           GError               **error)
{
  AforkProcess *process = afork_process_new_exec (error);

  if (process != NULL)
    require_rel_module (process);

  return process;
}

/* A fork of a process of the default template, which has loaded the
 * module: the template of this kind is made once and kept. */
static AforkProcess *
make_fork (RelKind  *kind,
           GError  **error)
{
  if (kind->data == NULL)
    {
      kind->data = make_new (kind, error);
      if (kind->data == NULL)
        return NULL;
    }

  return afork_process_fork (kind->data);
}

RelKind rel_kinds[] = {
  { "new", make_new, NULL },
  { "exec", make_exec, NULL },
  { "fork", make_fork, NULL },
};
const guint rel_n_kinds = G_N_ELEMENTS (rel_kinds);

void
rel_kinds_reset (void)
{
  for (guint i = 0; i < rel_n_kinds; i++)
    g_clear_object (&rel_kinds[i].data);
}

/* Adds @func once per kind, as @path/NAME, with the RelKind as its data. */
void
rel_add_kind_tests (const char    *path,
                    GTestDataFunc  func)
{
  for (guint i = 0; i < rel_n_kinds; i++)
    {
      g_autofree char *full = g_strdup_printf ("%s/%s", path, rel_kinds[i].name);

      g_test_add_data_func (full, &rel_kinds[i], func);
    }
}

AforkProcess *
rel_make (RelKind *kind)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *process = kind->make (kind, &error);

  g_assert_no_error (error);
  g_assert_nonnull (process);

  return process;
}

/* Learns the pid of a process that has not run yet: sends it a pipe and
 * has rel_call_report_pid write into it. */
GPid
rel_report_pid (AforkProcess *process)
{
  struct pollfd pfd;
  char buf[64] = { 0 };
  gsize got = 0;
  int fds[2];

  afork_test_pipe (fds);
  afork_process_send_fd (process, fds[1]);
  close (fds[1]);
  afork_process_call (process, "rel_call_report_pid", NULL);

  pfd.fd = fds[0];
  pfd.events = POLLIN;
  while (got < sizeof buf - 1)
    {
      ssize_t res;
      int ready = poll (&pfd, 1, AFORK_TEST_WAIT_SECONDS * 1000);

      if (ready < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (ready, ==, 1);
      res = read (fds[0], buf + got, sizeof buf - 1 - got);
      if (res < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (res, >=, 0);
      if (res == 0)
        break;
      got += (gsize) res;
      if (memchr (buf, '\n', got) != NULL)
        break;
    }
  close (fds[0]);

  return afork_test_parse_pid_line (g_strchomp (buf));
}

GPid
rel_default_template_pid (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) process = afork_process_new (&error);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autofree char *cmdline = NULL;
  GPid pid, ppid = 0;
  char state;

  g_assert_no_error (error);
  require_rel_module (process);
  connection = afork_process_run (process, "rel_run_echo", NULL, &error);
  g_assert_no_error (error);

  pid = rel_read_pid_line (connection);
  g_assert_cmpint (pid, ==, afork_process_get_pid (process));
  g_assert_true (afork_test_proc_stat (pid, &state, &ppid, NULL));
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);

  cmdline = rel_proc_cmdline (ppid);
  g_assert_nonnull (cmdline);
  g_assert_true (g_str_has_prefix (cmdline, "afork-server "));

  return ppid;
}

/* /proc */

char *
rel_proc_cmdline (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/cmdline", (int) pid);
  char *contents = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, NULL))
    return NULL;

  for (gsize i = 0; i < len; i++)
    if (contents[i] == '\0')
      contents[i] = ' ';
  g_strchomp (contents);

  return contents;
}

GArray *
rel_proc_list (void)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      gint64 pid;

      if (g_ascii_string_to_signed (name, 10, 1, G_MAXINT, &pid, NULL))
        {
          GPid p = (GPid) pid;
          g_array_append_val (pids, p);
        }
    }

  return pids;
}

GArray *
rel_zombie_children (GPid parent)
{
  g_autoptr(GArray) pids = rel_proc_list ();
  GArray *zombies = g_array_new (FALSE, FALSE, sizeof (GPid));

  for (guint i = 0; i < pids->len; i++)
    {
      GPid pid = g_array_index (pids, GPid, i);
      GPid ppid;
      char state;

      if (afork_test_proc_stat (pid, &state, &ppid, NULL) && ppid == parent && state == 'Z')
        g_array_append_val (zombies, pid);
    }

  return zombies;
}

guint
rel_count_fds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;

  return n;
}

/* GLib may hold a descriptor per child until its worker thread has
 * reaped it: count once the number is @expected, or has held still for a
 * second. */
guint
rel_settled_fd_count (guint expected)
{
  guint n = rel_count_fds (getpid ()), still = 0;

  for (guint tries = 0;
       n != expected && still < 10 && tries < AFORK_TEST_WAIT_SECONDS * 10;
       tries++)
    {
      guint last = n;

      g_main_context_iteration (NULL, FALSE);
      g_usleep (100000);
      n = rel_count_fds (getpid ());
      still = n == last ? still + 1 : 0;
    }

  return n;
}

gboolean
rel_proc_has_fd_target (GPid        pid,
                        const char *target)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link = g_build_filename (path, name, NULL);
      g_autofree char *dest = g_file_read_link (link, NULL);

      if (g_strcmp0 (dest, target) == 0)
        return TRUE;
    }

  return FALSE;
}

gsize
rel_rss_kib (void)
{
  g_autofree char *contents = NULL;
  const char *line;
  guint64 kib = 0;

  g_assert_true (g_file_get_contents ("/proc/self/status", &contents, NULL, NULL));
  line = strstr (contents, "\nVmRSS:");
  g_assert_nonnull (line);
  kib = g_ascii_strtoull (line + strlen ("\nVmRSS:"), NULL, 10);

  return (gsize) kib;
}

/* Connections */

char *
rel_read_line (GSocketConnection  *connection,
               GError            **error)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  g_autoptr(GString) line = g_string_new (NULL);

  g_socket_set_timeout (socket, AFORK_TEST_WAIT_SECONDS);

  for (;;)
    {
      char c;
      gssize res = g_input_stream_read (in, &c, 1, NULL, error);

      if (res < 0)
        return NULL;
      if (res == 0)
        {
          if (line->len == 0)
            return NULL;   /* end of file, no error */
          break;
        }
      if (c == '\n')
        break;
      g_string_append_c (line, c);
    }

  return g_string_free (g_steal_pointer (&line), FALSE);
}

GPid
rel_read_pid_line (GSocketConnection *connection)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = rel_read_line (connection, &error);

  g_assert_no_error (error);

  return afork_test_parse_pid_line (line);
}

/* Main loop */

struct _RelWatchdog
{
  GMutex        lock;
  GCond         cond;
  GThread      *thread;
  GSource      *beat;
  gint64        last_beat;
  guint         beats;
  gboolean      stop;
};

static gboolean
watchdog_beat_cb (gpointer user_data)
{
  RelWatchdog *watchdog = user_data;

  g_mutex_lock (&watchdog->lock);
  watchdog->last_beat = g_get_monotonic_time ();
  watchdog->beats++;
  g_mutex_unlock (&watchdog->lock);

  return G_SOURCE_CONTINUE;
}

static gpointer
watchdog_thread (gpointer user_data)
{
  RelWatchdog *watchdog = user_data;

  g_mutex_lock (&watchdog->lock);
  while (!watchdog->stop)
    {
      gint64 now = g_get_monotonic_time ();

      if (now - watchdog->last_beat > REL_STALL_LIMIT_S * G_USEC_PER_SEC)
        g_error ("the main loop did not iterate for %d s: something blocked it",
                 REL_STALL_LIMIT_S);
      g_cond_wait_until (&watchdog->cond, &watchdog->lock, now + 50 * G_TIME_SPAN_MILLISECOND);
    }
  g_mutex_unlock (&watchdog->lock);

  return NULL;
}

/* While it exists, a 10 ms timeout in @context beats, and a thread
 * aborts the test if the beat stops (the loop is blocked). Only create
 * it around code that iterates @context. */
RelWatchdog *
rel_watchdog_new (GMainContext *context)
{
  RelWatchdog *watchdog = g_new0 (RelWatchdog, 1);

  g_mutex_init (&watchdog->lock);
  g_cond_init (&watchdog->cond);
  watchdog->last_beat = g_get_monotonic_time ();
  watchdog->beat = g_timeout_source_new (10);
  g_source_set_callback (watchdog->beat, watchdog_beat_cb, watchdog, NULL);
  g_source_attach (watchdog->beat, context);
  watchdog->thread = g_thread_new ("rel-watchdog", watchdog_thread, watchdog);

  return watchdog;
}

guint
rel_watchdog_beats (RelWatchdog *watchdog)
{
  guint beats;

  g_mutex_lock (&watchdog->lock);
  beats = watchdog->beats;
  g_mutex_unlock (&watchdog->lock);

  return beats;
}

void
rel_watchdog_free (RelWatchdog *watchdog)
{
  g_mutex_lock (&watchdog->lock);
  watchdog->stop = TRUE;
  g_cond_signal (&watchdog->cond);
  g_mutex_unlock (&watchdog->lock);
  g_thread_join (watchdog->thread);

  g_source_destroy (watchdog->beat);
  g_source_unref (watchdog->beat);
  g_mutex_clear (&watchdog->lock);
  g_cond_clear (&watchdog->cond);
  g_free (watchdog);
}

/* Iterates @context until *@done, under a watchdog; a wait past
 * AFORK_TEST_WAIT_SECONDS fails the test. */
void
rel_iterate_until (GMainContext *context,
                   gboolean     *done,
                   const char   *what)
{
  g_autoptr(RelWatchdog) watchdog = rel_watchdog_new (context);

  afork_test_iterate_until (context, done, what);
}

static gboolean
set_true_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;

  return G_SOURCE_REMOVE;
}

void
rel_iterate_for (GMainContext *context,
                 guint         msec)
{
  GSource *timer = g_timeout_source_new (msec);
  gboolean done = FALSE;

  g_source_set_callback (timer, set_true_cb, &done, NULL);
  g_source_attach (timer, context);
  rel_iterate_until (context, &done, "a timed wait");
  g_source_unref (timer);
}

/* afork_test_run () under a watchdog on the thread-default context. */
GSocketConnection *
rel_run_async_wait (AforkProcess  *process,
                    const char    *function,
                    GError       **error)
{
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  g_autoptr(RelWatchdog) watchdog = rel_watchdog_new (context);

  return afork_test_run (process, function, error);
}

/* @process runs rel_run_pid, which reports the pid the process has. */
void
rel_assert_runs (AforkProcess *process)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) connection = NULL;

  connection = rel_run_async_wait (process, "rel_run_pid", &error);
  g_assert_no_error (error);
  g_assert_cmpint (rel_read_pid_line (connection), ==, afork_process_get_pid (process));
}
