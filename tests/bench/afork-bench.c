/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* afork-bench: how many processes per second afork and its alternatives
 * create, on this machine, in one run.
 *
 * Every measured child exits at once; the parent waits for its end (end
 * of file on its socket, or its exit status). The program runs as a
 * coordinator, which starts one worker per parent size (itself, executed
 * with --worker), so that the memory of a padded parent never leaks into
 * another measurement, then drives the Perl and Python scripts, and prints
 * one table.
 *
 *   afork-bench [--quick] [--tap] [--seconds S] [--reps N]
 *
 * To profile one measurement, run a worker alone, e.g.
 *   afork-bench --worker 5 --primary --only afork-new --seconds 2 --reps 3
 * (row ids: afork-new, afork-new-k4, afork-new-k16, afork-template,
 * afork-require, afork-exec, ideal, ideal-ack, fork, posix-spawn,
 * gsubprocess, gsubprocess-inherit).
 */
#include <afork/afork.h>

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define BENCH_MODULE   "afork-bench-module"
#define MIN_ITERATIONS 3
#define SKIP_STATUS    77

/* ---------------------------------------------------------------------- */
/* Common helpers                                                          */

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);

  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

static double
seconds_since (gint64 start,
               gint64 end)
{
  return (double) (end - start) / 1e9;
}

/* The directory of this program: helpers and scripts are built or copied
 * beside it. AFORK_BENCH_DIR overrides it. */
static const char *
bench_dir (void)
{
  static char *dir;

  if (dir == NULL)
    {
      const char *env = g_getenv ("AFORK_BENCH_DIR");
      g_autofree char *exe = NULL;

      if (env != NULL && env[0] != '\0')
        dir = g_strdup (env);
      else if ((exe = g_file_read_link ("/proc/self/exe", NULL)) != NULL)
        dir = g_path_get_dirname (exe);
      else
        dir = g_strdup (".");
    }

  return dir;
}

static char *
bench_file (const char *name)
{
  return g_build_filename (bench_dir (), name, NULL);
}

/* Reads "Key:   N kB" from a /proc file; -1 if absent. */
static gint64
proc_kb (const char *path,
         const char *key)
{
  g_autofree char *contents = NULL;
  gsize key_len = strlen (key);
  char *line;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return -1;

  for (line = contents; line != NULL && *line != '\0'; )
    {
      char *next = strchr (line, '\n');

      if (strncmp (line, key, key_len) == 0 && line[key_len] == ':')
        return g_ascii_strtoll (line + key_len + 1, NULL, 10);
      line = next ? next + 1 : NULL;
    }

  return -1;
}

static gint64
self_rss_kb (void)
{
  return proc_kb ("/proc/self/status", "VmRSS");
}

/* Reads until end of file or an error; the fd is blocking. */
static void
wait_eof (int fd)
{
  char buf[256];
  ssize_t res;

  do
    res = read (fd, buf, sizeof buf);
  while (res > 0 || (res < 0 && errno == EINTR));
}

static gboolean
reap (pid_t    pid,
      GError **error)
{
  int status;

  while (waitpid (pid, &status, 0) < 0)
    {
      if (errno != EINTR)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       "waitpid: %s", g_strerror (errno));
          return FALSE;
        }
    }

  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "child %d ended with status 0x%x", (int) pid, status);
      return FALSE;
    }

  return TRUE;
}

static gboolean
set_errno_error (GError    **error,
                 const char *what)
{
  int saved_errno = errno;

  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "%s: %s", what, g_strerror (saved_errno));

  return FALSE;
}

static gboolean
make_socketpair (int      fds[2],
                 GError **error)
{
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return set_errno_error (error, "socketpair");

  return TRUE;
}

static char *
size_label (guint mb)
{
  if (mb >= 1024 && mb % 1024 == 0)
    return g_strdup_printf ("%u GB", mb / 1024);

  return g_strdup_printf ("%u MB", mb);
}

/* ---------------------------------------------------------------------- */
/* Worker: the measurements, in a process padded to a given size           */

typedef struct _Worker Worker;
typedef double (*MeasureFunc) (Worker *worker, gpointer data, double seconds, GError **error);

typedef struct
{
  char        *id;
  char        *label;
  MeasureFunc  func;
  gpointer     data;
  char        *skip;      /* reason, when the row cannot be measured */
  GError      *error;     /* the first failure */
  GArray      *rates;     /* double, one per repetition */
} Row;

struct _Worker
{
  guint          size_mb;
  gboolean       primary;
  double         seconds;
  guint          reps;

  int            ideal_fd;     /* control socket of the hand-made server */
  pid_t          ideal_pid;
  char          *exit_program; /* the static program, NULL if not built */
  AforkProcess  *user_template;
  GPtrArray     *rows;
};

static void
row_free (Row *row)
{
  g_free (row->id);
  g_free (row->label);
  g_free (row->skip);
  g_clear_error (&row->error);
  g_array_unref (row->rates);
  g_free (row);
}

static Row *
worker_add_row (Worker      *worker,
                const char  *id,
                const char  *label,
                MeasureFunc  func,
                gpointer     data)
{
  Row *row = g_new0 (Row, 1);

  row->id = g_strdup (id);
  row->label = g_strdup (label);
  row->func = func;
  row->data = data;
  row->rates = g_array_new (FALSE, FALSE, sizeof (double));
  g_ptr_array_add (worker->rows, row);

  return row;
}

/* Runs @once until @seconds have passed (and at least MIN_ITERATIONS
 * times); returns its rate per second, or -1 on failure. */
static double
measure_loop (gboolean (*once) (Worker *worker, gpointer data, GError **error),
              Worker  *worker,
              gpointer data,
              double   seconds,
              GError **error)
{
  gint64 start = now_ns ();
  gint64 deadline = start + (gint64) (seconds * 1e9);
  gint64 end;
  guint64 n = 0;

  do
    {
      if (!once (worker, data, error))
        return -1;
      n++;
      end = now_ns ();
    }
  while (end < deadline || n < MIN_ITERATIONS);

  return (double) n / seconds_since (start, end);
}

/* --- socketpair + fork () of the worker itself --- */

static gboolean
plain_fork_once (G_GNUC_UNUSED Worker  *worker,
                 G_GNUC_UNUSED gpointer data,
                 GError                **error)
{
  int sv[2];
  pid_t pid;

  if (!make_socketpair (sv, error))
    return FALSE;

  pid = fork ();
  if (pid < 0)
    {
      close (sv[0]);
      close (sv[1]);
      return set_errno_error (error, "fork");
    }
  if (pid == 0)
    _exit (0);   /* holds sv[1] until here */

  close (sv[1]);
  wait_eof (sv[0]);
  close (sv[0]);

  return reap (pid, error);
}

static double
measure_plain_fork (Worker  *worker,
                    gpointer data,
                    double   seconds,
                    GError **error)
{
  return measure_loop (plain_fork_once, worker, data, seconds, error);
}

/* --- the ideal design by hand: bench-ideal-server, a small C program
 * linked with the C library only, that takes requests with SCM_RIGHTS,
 * acknowledges and forks ahead while idle (see bench-ideal-server.c) --- */

static gboolean
send_fd (int  sock,
         int  fd,
         char command)
{
  union {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  struct iovec iov;
  struct cmsghdr *cmsg;
  ssize_t res;

  memset (&control, 0, sizeof control);
  iov.iov_base = &command;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &fd, sizeof fd);

  do
    res = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (res < 0 && errno == EINTR);

  return res == 1;
}

static gboolean
ideal_start (Worker  *worker,
             GError **error)
{
  g_autofree char *program = bench_file ("bench-ideal-server");
  g_autofree char *fd_arg = NULL;
  char *argv[3] = { program, NULL, NULL };
  int sv[2];
  int res;

  if (!g_file_test (program, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s not built", program);
      return FALSE;
    }
  if (!make_socketpair (sv, error))
    return FALSE;

  fd_arg = g_strdup_printf ("%d", sv[1]);
  argv[1] = fd_arg;
  fcntl (sv[1], F_SETFD, 0);
  res = posix_spawn (&worker->ideal_pid, program, NULL, NULL, argv, environ);
  close (sv[1]);
  if (res != 0)
    {
      close (sv[0]);
      errno = res;
      return set_errno_error (error, "posix_spawn of bench-ideal-server");
    }
  worker->ideal_fd = sv[0];

  return TRUE;
}

/* With @data, the child acknowledges first and the parent reads the
 * acknowledgement, then waits for the end: the least afork's protocol
 * needs. */
static gboolean
ideal_once (Worker  *worker,
            gpointer data,
            GError **error)
{
  int sv[2];

  if (!make_socketpair (sv, error))
    return FALSE;

  if (!send_fd (worker->ideal_fd, sv[1], data ? 'a' : 'f'))
    {
      close (sv[0]);
      close (sv[1]);
      return set_errno_error (error, "sending to the hand-made server");
    }

  close (sv[1]);
  if (data != NULL)
    {
      char reply[9];
      gsize got = 0;

      while (got < sizeof reply)
        {
          ssize_t res = read (sv[0], reply + got, sizeof reply - got);

          if (res < 0 && errno == EINTR)
            continue;
          if (res <= 0)
            {
              close (sv[0]);
              g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                                   "the hand-made server's child sent no acknowledgement");
              return FALSE;
            }
          got += res;
        }
    }
  wait_eof (sv[0]);
  close (sv[0]);

  return TRUE;
}

static double
measure_ideal (Worker  *worker,
               gpointer data,
               double   seconds,
               GError **error)
{
  return measure_loop (ideal_once, worker, data, seconds, error);
}

/* --- posix_spawn and GSubprocess of the static program --- */

static gboolean
posix_spawn_once (Worker                 *worker,
                  G_GNUC_UNUSED gpointer  data,
                  GError                **error)
{
  char *argv[] = { worker->exit_program, NULL };
  pid_t pid;
  int res;

  res = posix_spawn (&pid, worker->exit_program, NULL, NULL, argv, environ);
  if (res != 0)
    {
      errno = res;
      return set_errno_error (error, "posix_spawn");
    }

  return reap (pid, error);
}

static double
measure_posix_spawn (Worker  *worker,
                     gpointer data,
                     double   seconds,
                     GError **error)
{
  return measure_loop (posix_spawn_once, worker, data, seconds, error);
}

static gboolean
subprocess_once (Worker  *worker,
                 gpointer data,
                 GError **error)
{
  const char *argv[] = { worker->exit_program, NULL };
  g_autoptr(GSubprocess) subprocess = NULL;

  subprocess = g_subprocess_newv (argv, GPOINTER_TO_UINT (data), error);
  if (subprocess == NULL)
    return FALSE;

  if (!g_subprocess_wait_check (subprocess, NULL, error))
    return FALSE;

  return TRUE;
}

static double
measure_subprocess (Worker  *worker,
                    gpointer data,
                    double   seconds,
                    GError **error)
{
  return measure_loop (subprocess_once, worker, data, seconds, error);
}

/* afork's built-in exec of the static program, from a fork of the default
 * template, then its exit status through the template: the faster
 * fork+exec, to set against g_subprocess_new () from the same parent. */
static gboolean
afork_exec_builtin_once (Worker                 *worker,
                         G_GNUC_UNUSED gpointer  data,
                         GError                **error)
{
  const char *argv[] = { worker->exit_program, NULL };
  g_autoptr(AforkProcess) process = afork_process_new (error);
  g_autoptr(GSocketConnection) connection = NULL;

  if (process == NULL)
    return FALSE;

  connection = afork_process_exec (process, argv, NULL, NULL, error);
  if (connection == NULL)
    return FALSE;

  return afork_process_wait (process, NULL, error);
}

static double
measure_afork_exec_builtin (Worker  *worker,
                            gpointer data,
                            double   seconds,
                            GError **error)
{
  return measure_loop (afork_exec_builtin_once, worker, data, seconds, error);
}

/* --- afork, driven from the main context as an application would --- */

typedef enum
{
  MAKE_NEW,            /* afork_process_new () */
  MAKE_FORK_TEMPLATE,  /* afork_process_fork () of the user template */
  MAKE_NEW_REQUIRE,    /* afork_process_new () + require (the module) */
  MAKE_NEW_EXEC,       /* afork_process_new_exec () */
} MakeKind;

typedef struct
{
  MakeKind    kind;
  const char *function;
  guint       max_in_flight;
} AforkSpec;

typedef struct
{
  Worker          *worker;
  const AforkSpec *spec;
  guint            in_flight;
  guint64          done;
  gint64           deadline;
  gint64           last_end;
  GError          *error;

  /* Latency samples (ns), when recording: from run_async to the first
   * byte (or to the acknowledgement, if the function sends nothing), and
   * from the creation of the process to the same moment. */
  GArray          *lat_run;
  GArray          *lat_make;
  gboolean         lat_at_ack;
} AforkRun;

typedef struct
{
  AforkRun          *run;
  gint64             t_make;
  gint64             t_run;
  GSocketConnection *connection;
  gboolean           got_byte;
} Slot;

static void afork_launch (AforkRun *run);

static void
record_latency (Slot *slot)
{
  gint64 t = now_ns ();
  gint64 from_run = t - slot->t_run;
  gint64 from_make = t - slot->t_make;

  if (slot->run->lat_run == NULL)
    return;

  g_array_append_val (slot->run->lat_run, from_run);
  g_array_append_val (slot->run->lat_make, from_make);
}

static void
slot_done (Slot    *slot,
           gboolean ok)
{
  AforkRun *run = slot->run;
  gint64 t = now_ns ();

  g_clear_object (&slot->connection);
  g_free (slot);

  run->in_flight--;
  if (!ok)
    return;

  run->done++;
  run->last_end = t;
  if (run->error == NULL &&
      (t < run->deadline || run->done + run->in_flight < MIN_ITERATIONS))
    afork_launch (run);
}

static gboolean
afork_eof_cb (int                         fd,
              G_GNUC_UNUSED GIOCondition  condition,
              gpointer                    user_data)
{
  Slot *slot = user_data;
  char buf[256];
  ssize_t res;

  res = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
  if (res > 0)
    {
      if (!slot->got_byte && !slot->run->lat_at_ack)
        record_latency (slot);
      slot->got_byte = TRUE;
      return G_SOURCE_CONTINUE;
    }
  if (res < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return G_SOURCE_CONTINUE;

  slot_done (slot, TRUE);

  return G_SOURCE_REMOVE;
}

static void
afork_run_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Slot *slot = user_data;
  AforkRun *run = slot->run;
  g_autoptr(GError) error = NULL;
  GSource *source;
  int fd;

  slot->connection = afork_process_run_finish (AFORK_PROCESS (object), result, &error);
  if (slot->connection == NULL)
    {
      if (run->error == NULL)
        run->error = g_steal_pointer (&error);
      slot_done (slot, FALSE);
      return;
    }

  if (run->lat_at_ack)
    record_latency (slot);

  fd = g_socket_get_fd (g_socket_connection_get_socket (slot->connection));
  source = g_unix_fd_source_new (fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_callback (source, (GSourceFunc) G_CALLBACK (afork_eof_cb), slot, NULL);
  g_source_attach (source, NULL);
  g_source_unref (source);
}

static void
afork_launch (AforkRun *run)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *process = NULL;
  Slot *slot = g_new0 (Slot, 1);

  slot->run = run;
  slot->t_make = now_ns ();

  switch (run->spec->kind)
    {
    case MAKE_NEW:
      process = afork_process_new (&error);
      break;

    case MAKE_FORK_TEMPLATE:
      process = afork_process_fork (run->worker->user_template);
      break;

    case MAKE_NEW_REQUIRE:
      process = afork_process_new (&error);
      if (process != NULL)
        afork_process_require (process, BENCH_MODULE);
      break;

    case MAKE_NEW_EXEC:
      process = afork_process_new_exec (&error);
      break;

    default:
      g_assert_not_reached ();
    }

  if (process == NULL)
    {
      if (run->error == NULL)
        run->error = g_steal_pointer (&error);
      g_free (slot);
      return;
    }

  run->in_flight++;
  slot->t_run = now_ns ();
  afork_process_run_async (process, run->spec->function, NULL, afork_run_cb, slot);
  g_object_unref (process);   /* the run keeps it alive */
}

/* Keeps spec->max_in_flight processes going for @seconds; the rate counts
 * the processes whose end was seen. */
static double
afork_drive (AforkRun *run,
             double    seconds,
             GError  **error)
{
  gint64 start = now_ns ();

  run->deadline = start + (gint64) (seconds * 1e9);
  run->last_end = start;

  for (guint i = 0; i < run->spec->max_in_flight && run->error == NULL; i++)
    afork_launch (run);

  while (run->in_flight > 0)
    g_main_context_iteration (NULL, TRUE);

  if (run->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&run->error));
      return -1;
    }

  if (run->done == 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "no process completed");
      return -1;
    }

  return (double) run->done / seconds_since (start, run->last_end);
}

static double
measure_afork (Worker  *worker,
               gpointer data,
               double   seconds,
               GError **error)
{
  AforkRun run = { 0 };

  run.worker = worker;
  run.spec = data;

  return afork_drive (&run, seconds, error);
}

static const AforkSpec spec_new_1 = { MAKE_NEW, "_exit", 1 };
static const AforkSpec spec_new_4 = { MAKE_NEW, "_exit", 4 };
static const AforkSpec spec_new_16 = { MAKE_NEW, "_exit", 16 };
static const AforkSpec spec_template = { MAKE_FORK_TEMPLATE, "bench_run_exit", 1 };
static const AforkSpec spec_require = { MAKE_NEW_REQUIRE, "bench_run_exit", 1 };
static const AforkSpec spec_exec = { MAKE_NEW_EXEC, "_exit", 1 };

/* --- latency --- */

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static double
percentile_us (GArray *samples,
               double  p)
{
  gsize index;

  if (samples->len == 0)
    return 0;

  index = (gsize) (p * samples->len);
  if (index >= samples->len)
    index = samples->len - 1;

  return g_array_index (samples, gint64, index) / 1e3;
}

static void
measure_latency (Worker          *worker,
                 const char      *id,
                 const char      *label,
                 const AforkSpec *spec,
                 gboolean         at_ack)
{
  g_autoptr(GError) error = NULL;
  AforkRun run = { 0 };

  run.worker = worker;
  run.spec = spec;
  run.lat_run = g_array_new (FALSE, FALSE, sizeof (gint64));
  run.lat_make = g_array_new (FALSE, FALSE, sizeof (gint64));
  run.lat_at_ack = at_ack;

  if (afork_drive (&run, worker->seconds, &error) < 0 || run.lat_run->len == 0)
    g_print ("latfail\t%s\t%s\t%s\n", id, label,
             error ? error->message : "the function sent no byte");
  else
    {
      g_array_sort (run.lat_run, compare_gint64);
      g_array_sort (run.lat_make, compare_gint64);
      g_print ("lat\t%s\t%s\t%u\t%.1f\t%.1f\t%.1f\t%.1f\n", id, label, run.lat_run->len,
               percentile_us (run.lat_run, 0.50), percentile_us (run.lat_run, 0.99),
               percentile_us (run.lat_make, 0.50), percentile_us (run.lat_make, 0.99));
    }

  g_array_unref (run.lat_run);
  g_array_unref (run.lat_make);
}

/* --- memory --- */

static pid_t
parent_of (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *contents = NULL;
  const char *p;
  int ppid = 0;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;

  /* "pid (comm) state ppid": comm may contain anything but ends at the
   * last parenthesis. */
  p = strrchr (contents, ')');
  if (p == NULL || sscanf (p + 1, " %*c %d", &ppid) != 1)
    return 0;

  return ppid;
}

static void
report_memory (const char *id,
               const char *label,
               pid_t       pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/smaps_rollup", (int) pid);

  g_print ("mem\t%s\t%s\t%d\t%" G_GINT64_FORMAT "\t%" G_GINT64_FORMAT "\t%" G_GINT64_FORMAT "\n",
           id, label, (int) pid,
           proc_kb (path, "Rss"), proc_kb (path, "Pss"), proc_kb (path, "Private_Dirty"));
}

/* Creates a process that waits in pause () (a function every server has,
 * so no user code runs), and reports its memory and its template's. */
static void
measure_memory (Worker     *worker,
                MakeKind    kind,
                const char *id,
                const char *template_label,
                const char *child_label)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autofree char *template_id = g_strconcat (id, "-template", NULL);
  g_autofree char *child_id = g_strconcat (id, "-child", NULL);
  pid_t pid;

  if (kind == MAKE_FORK_TEMPLATE)
    process = afork_process_fork (worker->user_template);
  else
    process = afork_process_new (&error);

  if (process != NULL)
    connection = afork_process_run (process, "pause", NULL, &error);

  if (connection == NULL)
    {
      g_print ("memfail\t%s\t%s\t%s\n", child_id, child_label, error->message);
      return;
    }

  pid = afork_process_get_pid (process);
  /* The acknowledgement comes just before the call: let it settle. */
  g_usleep (50 * 1000);

  report_memory (template_id, template_label, parent_of (pid));
  report_memory (child_id, child_label, pid);

  kill (pid, SIGKILL);
  wait_eof (g_socket_get_fd (g_socket_connection_get_socket (connection)));
}

/* --- the worker's main --- */

static void
pad (guint size_mb)
{
  gint64 rss_kb = self_rss_kb ();
  gsize page = sysconf (_SC_PAGESIZE);
  gsize bytes;
  volatile char *area;

  if (rss_kb < 0 || (gint64) size_mb * 1024 <= rss_kb)
    return;

  bytes = ((gsize) size_mb * 1024 - rss_kb) * 1024;
  area = mmap (NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED)
    g_error ("cannot map %" G_GSIZE_FORMAT " bytes: %s", bytes, g_strerror (errno));

  /* Small pages, as a heap made of many allocations has. */
  madvise ((void *) area, bytes, MADV_NOHUGEPAGE);

  for (gsize off = 0; off < bytes; off += page)
    area[off] = (char) (off / page) | 1;
}

static void
worker_print_rows (Worker *worker)
{
  for (guint i = 0; i < worker->rows->len; i++)
    {
      Row *row = worker->rows->pdata[i];

      if (row->skip != NULL)
        g_print ("skip\t%s\t%s\t%s\n", row->id, row->label, row->skip);
      else if (row->error != NULL)
        g_print ("fail\t%s\t%s\t%s\n", row->id, row->label, row->error->message);
      else
        {
          g_print ("row\t%s\t%s\t", row->id, row->label);
          for (guint r = 0; r < row->rates->len; r++)
            g_print ("%s%.3f", r ? " " : "", g_array_index (row->rates, double, r));
          g_print ("\n");
        }
    }
}

static int
worker_main (guint       size_mb,
             gboolean    primary,
             gboolean    extras,
             double      seconds,
             guint       reps,
             const char *only)
{
  g_auto(GStrv) only_ids = only ? g_strsplit (only, ",", -1) : NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *exit_program = bench_file ("bench-exit-static");
  Worker worker = { 0 };
  Row *row;

  worker.size_mb = size_mb;
  worker.primary = primary;
  worker.seconds = seconds;
  worker.reps = reps;
  worker.ideal_fd = -1;
  worker.rows = g_ptr_array_new_with_free_func ((GDestroyNotify) row_free);

  /* The hand-made server is a program of its own: its speed does not
   * depend on this process's size. */
  if (!ideal_start (&worker, &error))
    g_error ("%s", error->message);

  pad (size_mb);
  g_print ("rss\t%" G_GINT64_FORMAT "\n", self_rss_kb ());

  if (g_file_test (exit_program, G_FILE_TEST_IS_EXECUTABLE))
    worker.exit_program = g_steal_pointer (&exit_program);

  worker.user_template = afork_process_new (&error);
  if (worker.user_template == NULL)
    g_error ("%s", error->message);
  afork_process_require (worker.user_template, BENCH_MODULE);

  if (primary)
    {
      worker_add_row (&worker, "afork-new", "afork new + run, 1 in flight", measure_afork, (gpointer) &spec_new_1);
      worker_add_row (&worker, "afork-new-k4", "afork new + run, 4 in flight", measure_afork, (gpointer) &spec_new_4);
      worker_add_row (&worker, "afork-new-k16", "afork new + run, 16 in flight", measure_afork, (gpointer) &spec_new_16);
      worker_add_row (&worker, "afork-template", "afork fork of a preloaded user template + run", measure_afork, (gpointer) &spec_template);
      worker_add_row (&worker, "afork-require", "afork new + require + run (module per child)", measure_afork, (gpointer) &spec_require);
      worker_add_row (&worker, "afork-exec", "afork new_exec + run", measure_afork, (gpointer) &spec_exec);
    }
  else
    {
      worker_add_row (&worker, "afork-new", "afork new + run", measure_afork, (gpointer) &spec_new_1);
      worker_add_row (&worker, "afork-template", "afork fork of a preloaded user template + run", measure_afork, (gpointer) &spec_template);
      worker_add_row (&worker, "afork-exec", "afork new_exec + run", measure_afork, (gpointer) &spec_exec);
    }

  worker_add_row (&worker, "ideal", "ideal: hand-written C server, no acknowledgement", measure_ideal, NULL);
  worker_add_row (&worker, "ideal-ack", "ideal: hand-written C server + acknowledgement", measure_ideal,
                  GINT_TO_POINTER (1));
  worker_add_row (&worker, "fork", "socketpair + fork ()", measure_plain_fork, NULL);

  row = worker_add_row (&worker, "posix-spawn", "posix_spawn (static program)", measure_posix_spawn, NULL);
  if (worker.exit_program == NULL)
    row->skip = g_strdup ("static program not built (no static libc)");
  row = worker_add_row (&worker, "gsubprocess", "g_subprocess_new, default flags", measure_subprocess,
                        GUINT_TO_POINTER (G_SUBPROCESS_FLAGS_NONE));
  if (worker.exit_program == NULL)
    row->skip = g_strdup ("static program not built (no static libc)");
  row = worker_add_row (&worker, "gsubprocess-inherit", "g_subprocess_new, INHERIT_FDS", measure_subprocess,
                        GUINT_TO_POINTER (G_SUBPROCESS_FLAGS_INHERIT_FDS));
  if (worker.exit_program == NULL)
    row->skip = g_strdup ("static program not built (no static libc)");
  row = worker_add_row (&worker, "afork-exec-builtin", "afork new + built-in exec + wait",
                        measure_afork_exec_builtin, NULL);
  if (worker.exit_program == NULL)
    row->skip = g_strdup ("static program not built (no static libc)");

  /* --only keeps the named rows, to profile one of them. */
  for (guint i = worker.rows->len; only_ids != NULL && i > 0; i--)
    {
      Row *r = worker.rows->pdata[i - 1];

      if (!g_strv_contains ((const char * const *) only_ids, r->id))
        g_ptr_array_remove_index (worker.rows, i - 1);
    }

  /* A short warm-up each (the default template and the user template
   * start here), then the repetitions, interleaved so that a slow moment
   * of the machine spreads over every row. */
  for (guint rep = 0; rep <= reps; rep++)
    for (guint i = 0; i < worker.rows->len; i++)
      {
        Row *r = worker.rows->pdata[i];
        double rate;

        if (r->skip != NULL || r->error != NULL)
          continue;

        rate = r->func (&worker, r->data, rep == 0 ? MIN (0.2, seconds) : seconds, &r->error);
        if (rate > 0 && rep > 0)
          g_array_append_val (r->rates, rate);
      }

  worker_print_rows (&worker);

  if (primary && extras && only_ids == NULL)
    {
      static const AforkSpec lat_template = { MAKE_FORK_TEMPLATE, "bench_run_byte", 1 };
      static const AforkSpec lat_require = { MAKE_NEW_REQUIRE, "bench_run_byte", 1 };

      measure_latency (&worker, "lat-template", "fork of user template: run_async -> first byte",
                       &lat_template, FALSE);
      measure_latency (&worker, "lat-require", "new + require: run_async -> first byte",
                       &lat_require, FALSE);
      measure_latency (&worker, "lat-new", "new: run_async -> acknowledgement",
                       &spec_new_1, TRUE);
      measure_latency (&worker, "lat-exec", "new_exec: run_async -> acknowledgement",
                       &spec_exec, TRUE);

      measure_memory (&worker, MAKE_NEW, "mem-default", "default template",
                      "child of the default template, before user code");
      measure_memory (&worker, MAKE_FORK_TEMPLATE, "mem-user", "user template (module preloaded)",
                      "child of the user template, before user code");
    }

  g_clear_object (&worker.user_template);
  close (worker.ideal_fd);
  reap (worker.ideal_pid, NULL);
  g_ptr_array_unref (worker.rows);
  g_free (worker.exit_program);

  return 0;
}

/* ---------------------------------------------------------------------- */
/* Coordinator                                                             */

typedef struct
{
  char   *section;
  char   *id;       /* "ID@SIZE" for worker rows */
  char   *label;
  char   *parent;   /* the parent's resident size, as measured */
  char   *skip;
  char   *fail;
  GArray *rates;
  double  median, min, max;
} Result;

typedef struct
{
  GPtrArray *results;    /* Result */
  GPtrArray *latencies;  /* char *, formatted lines */
  GPtrArray *memory;     /* char *, formatted lines */
  GHashTable *private_dirty;  /* id -> gint64 kB */
  gboolean   failed;
} Report;

static void
result_free (Result *result)
{
  g_free (result->section);
  g_free (result->id);
  g_free (result->label);
  g_free (result->parent);
  g_free (result->skip);
  g_free (result->fail);
  g_array_unref (result->rates);
  g_free (result);
}

static int
compare_double (gconstpointer a,
                gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static Result *
report_add (Report     *report,
            const char *section,
            const char *id,
            const char *label,
            const char *parent)
{
  Result *result = g_new0 (Result, 1);

  result->section = g_strdup (section);
  result->id = g_strdup (id);
  result->label = g_strdup (label);
  result->parent = g_strdup (parent);
  result->rates = g_array_new (FALSE, FALSE, sizeof (double));
  g_ptr_array_add (report->results, result);

  return result;
}

static void
result_set_rates (Result     *result,
                  const char *text)
{
  g_auto(GStrv) parts = g_strsplit (text, " ", -1);
  g_autoptr(GArray) sorted = NULL;

  for (guint i = 0; parts[i] != NULL; i++)
    {
      double rate = g_ascii_strtod (parts[i], NULL);

      if (parts[i][0] != '\0')
        g_array_append_val (result->rates, rate);
    }

  if (result->rates->len == 0)
    {
      result->fail = g_strdup ("no rate measured");
      return;
    }

  sorted = g_array_copy (result->rates);
  g_array_sort (sorted, compare_double);
  result->min = g_array_index (sorted, double, 0);
  result->max = g_array_index (sorted, double, sorted->len - 1);
  if (sorted->len % 2)
    result->median = g_array_index (sorted, double, sorted->len / 2);
  else
    result->median = (g_array_index (sorted, double, sorted->len / 2 - 1) +
                      g_array_index (sorted, double, sorted->len / 2)) / 2;
}

static Result *
report_find (Report     *report,
             const char *id)
{
  for (guint i = 0; i < report->results->len; i++)
    {
      Result *result = report->results->pdata[i];

      if (g_str_equal (result->id, id))
        return result;
    }

  return NULL;
}

/* The median rate of a row, or 0 when it was skipped or failed. */
static double
report_rate (Report     *report,
             const char *id)
{
  Result *result = report_find (report, id);

  if (result == NULL || result->skip != NULL || result->fail != NULL)
    return 0;

  return result->median;
}

static void
run_worker (Report     *report,
            const char *role,
            guint       size_mb,
            gboolean    primary,
            gboolean    extras,
            double      seconds,
            guint       reps)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autofree char *size = size_label (size_mb);
  g_autofree char *size_arg = g_strdup_printf ("%u", size_mb);
  g_autofree char *seconds_arg = g_strdup_printf ("%.3f", seconds);
  g_autofree char *reps_arg = g_strdup_printf ("%u", reps);
  g_autofree char *exe = bench_file ("afork-bench");
  g_autofree char *out = NULL;
  g_autofree char *parent = NULL;
  g_autofree char *section = NULL;
  g_auto(GStrv) lines = NULL;
  const char *argv[] = { exe, "--worker", size_arg, "--seconds", seconds_arg,
                         "--reps", reps_arg, NULL, NULL, NULL };
  guint argc = 7;

  if (primary)
    argv[argc++] = "--primary";
  if (extras)
    argv[argc++] = "--extras";

  g_printerr ("afork-bench: measuring from a parent of %s...\n", size);

  subprocess = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  if (subprocess == NULL ||
      !g_subprocess_communicate_utf8 (subprocess, NULL, NULL, &out, NULL, &error) ||
      !g_subprocess_wait_check (subprocess, NULL, &error))
    {
      g_autofree char *id = g_strdup_printf ("worker@%s", role);
      Result *result = report_find (report, id);

      if (result == NULL)
        result = report_add (report, size, id, "worker", size);
      if (result->fail == NULL)
        result->fail = g_strdup_printf ("the worker failed: %s", error->message);
      return;
    }

  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) f = g_strsplit (lines[i], "\t", -1);
      guint n = g_strv_length (f);

      if (n == 2 && g_str_equal (f[0], "rss"))
        {
          parent = g_strdup_printf ("%.1f MB", g_ascii_strtoll (f[1], NULL, 10) / 1024.0);
          section = g_strdup_printf ("parent padded to %s (RSS %s)", size, parent);
        }
      else if (n == 4 && (g_str_equal (f[0], "row") || g_str_equal (f[0], "skip") ||
                          g_str_equal (f[0], "fail")))
        {
          g_autofree char *id = g_strdup_printf ("%s@%s", f[1], role);
          Result *result = report_find (report, id);

          /* The repetitions of a row come from successive workers. */
          if (result == NULL)
            result = report_add (report, section ? section : size, id, f[2],
                                 parent ? parent : "?");

          if (g_str_equal (f[0], "row"))
            result_set_rates (result, f[3]);
          else if (g_str_equal (f[0], "skip") && result->skip == NULL)
            result->skip = g_strdup (f[3]);
          else if (g_str_equal (f[0], "fail") && result->fail == NULL)
            result->fail = g_strdup (f[3]);
        }
      else if (n == 8 && g_str_equal (f[0], "lat"))
        g_ptr_array_add (report->latencies,
                         g_strdup_printf ("  %-50s %6s %9s %9s %9s %6s", f[2], f[4], f[5], f[6], f[7], f[3]));
      else if (n == 4 && g_str_equal (f[0], "latfail"))
        {
          g_ptr_array_add (report->latencies, g_strdup_printf ("  %-50s FAILED: %s", f[2], f[3]));
          report->failed = TRUE;
        }
      else if (n == 7 && g_str_equal (f[0], "mem"))
        {
          gint64 dirty = g_ascii_strtoll (f[6], NULL, 10);

          g_ptr_array_add (report->memory,
                           g_strdup_printf ("  %-50s %8s %8s %8s %14s", f[2], f[3], f[4], f[5], f[6]));
          g_hash_table_insert (report->private_dirty, g_strdup (f[1]),
                               g_memdup2 (&dirty, sizeof dirty));
        }
      else if (n == 4 && g_str_equal (f[0], "memfail"))
        {
          g_ptr_array_add (report->memory, g_strdup_printf ("  %-50s FAILED: %s", f[2], f[3]));
          report->failed = TRUE;
        }
    }
}

/* Runs one of the scripts, which prints "rate R" per repetition, or exits
 * with SKIP_STATUS and a reason when its tool is missing. */
static void
run_script (Report     *report,
            const char *id,
            const char *label,
            const char *interpreter,
            const char *script,
            const char *mode,
            double      seconds,
            guint       reps)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autofree char *interpreter_path = NULL;
  g_autofree char *script_path = bench_file (script);
  g_autofree char *seconds_arg = g_strdup_printf ("%.3f", seconds);
  g_autofree char *reps_arg = g_strdup_printf ("%u", reps);
  g_autofree char *out = NULL;
  g_autoptr(GString) rates = g_string_new (NULL);
  g_auto(GStrv) lines = NULL;
  Result *result = report_find (report, id);

  /* The repetitions of a row come from successive runs of the script. */
  if (result == NULL)
    result = report_add (report, "other tools (from a small parent)", id, label, "-");
  if (result->skip != NULL || result->fail != NULL)
    return;

  g_printerr ("afork-bench: measuring %s...\n", label);

  if (g_path_is_absolute (interpreter))
    interpreter_path = g_file_test (interpreter, G_FILE_TEST_IS_EXECUTABLE) ? g_strdup (interpreter) : NULL;
  else
    interpreter_path = g_find_program_in_path (interpreter);

  if (interpreter_path == NULL)
    {
      result->skip = g_strdup_printf ("%s is not installed", interpreter);
      return;
    }

  {
    const char *argv[] = { interpreter_path, script_path, mode, seconds_arg, reps_arg, NULL };

    subprocess = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  }
  if (subprocess == NULL ||
      !g_subprocess_communicate_utf8 (subprocess, NULL, NULL, &out, NULL, &error))
    {
      result->fail = g_strdup (error->message);
      return;
    }

  if (g_subprocess_get_if_exited (subprocess) &&
      g_subprocess_get_exit_status (subprocess) == SKIP_STATUS)
    {
      result->skip = g_strdup (g_strstrip (out));
      return;
    }

  if (!g_subprocess_get_successful (subprocess))
    {
      result->fail = g_strdup_printf ("the script failed: %s", g_strstrip (out));
      return;
    }

  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "rate "))
      g_string_append_printf (rates, "%s%s", rates->len ? " " : "", lines[i] + 5);

  result_set_rates (result, rates->str);
}

/* The report, printed at the end: as is, or as TAP comments. */
static GString *output;
static char *load_at_start;   /* /proc/loadavg */

static void emit (const char *format,
                  ...) G_GNUC_PRINTF (1, 2);

static void
emit (const char *format,
      ...)
{
  va_list args;

  va_start (args, format);
  g_string_append_vprintf (output, format, args);
  va_end (args);
}

static void
flush_output (gboolean tap)
{
  g_auto(GStrv) lines = g_strsplit (output->str, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0' || lines[i + 1] != NULL)
      g_print ("%s%s\n", tap ? "# " : "", lines[i]);
  g_string_truncate (output, 0);
}

static void
print_header (double       seconds,
              guint        reps,
              const guint *sizes)
{
  g_autofree char *cpuinfo = NULL;
  g_autofree char *model = NULL;
  g_autofree char *loadavg = NULL;
  struct utsname uts;

  if (g_file_get_contents ("/proc/cpuinfo", &cpuinfo, NULL, NULL))
    {
      char *p = strstr (cpuinfo, "model name");

      if (p != NULL && (p = strchr (p, ':')) != NULL)
        {
          char *end = strchr (p, '\n');
          model = g_strstrip (g_strndup (p + 1, end ? (gsize) (end - p - 1) : strlen (p + 1)));
        }
    }
  g_file_get_contents ("/proc/loadavg", &loadavg, NULL, NULL);
  uname (&uts);

  emit ("afork-bench: processes per second; each child exits at once and the parent waits for its end\n");
  emit ("machine: %ld CPUs, %s, %s %s, GLib %u.%u.%u\n",
           sysconf (_SC_NPROCESSORS_ONLN), model ? model : "unknown CPU",
           uts.sysname, uts.release, glib_major_version, glib_minor_version, glib_micro_version);
  emit ("load average (1, 5, 15 min) at start: %s", load_at_start ? load_at_start : "?\n");
  emit ("load average (1, 5, 15 min) at end:   %s", loadavg ? loadavg : "?\n");
  emit ("parents padded to %u MB, %u MB and %u MB; targets name them 5 MB and 2 GB\n",
        sizes[0], sizes[1], sizes[2]);
  emit ("rate: median of %u runs of %.2f s each (min, max); each run in a process of its own, the\n"
        "runs of all rows interleaved; ratio: rate / afork new + run (1 in flight)\n\n",
           reps, seconds);
}

static void
print_table (Report *report)
{
  double base = report_rate (report, "afork-new@small");
  const char *section = NULL;

  emit ("%-50s %10s %10s %10s %10s %8s\n", "what", "parent RSS", "rate/s", "min", "max", "ratio");

  for (guint i = 0; i < report->results->len; i++)
    {
      Result *result = report->results->pdata[i];

      if (section == NULL || !g_str_equal (section, result->section))
        {
          section = result->section;
          emit ("-- %s\n", section);
        }

      if (result->skip != NULL)
        emit ("%-50s %10s   skipped: %s\n", result->label, result->parent, result->skip);
      else if (result->fail != NULL)
        emit ("%-50s %10s   FAILED: %s\n", result->label, result->parent, result->fail);
      else
        emit ("%-50s %10s %10.0f %10.0f %10.0f %8.3f\n", result->label, result->parent,
                 result->median, result->min, result->max, base > 0 ? result->median / base : 0);
    }
}

typedef struct
{
  const char *what;
  const char *numerator;
  const char *denominator;
  double      target;
  gboolean    within;   /* |ratio - 1| <= target instead of ratio >= target */
  /* Rows that divide numerator and denominator first, in each round: the
   * ideal server of the same worker, whose rate does not depend on the
   * parent's size, so that comparing two workers (which run some seconds
   * apart) is not a comparison of two moments of the machine. */
  const char *numerator_base;
  const char *denominator_base;
} Target;

static const Target targets[] = {
  { "afork new / ideal server by hand (5 MB)", "afork-new@small", "ideal-ack@small", 0.9, FALSE },
  { "afork new / ideal server by hand (2 GB)", "afork-new@large", "ideal-ack@large", 0.9, FALSE },
  { "afork new / fork () of a 5 MB parent", "afork-new@small", "fork@small", 1.0, FALSE },
  { "afork new / fork () of a 2 GB parent", "afork-new@large", "fork@large", 50, FALSE },
  { "afork new / AnyEvent::Fork->new", "afork-new@small", "perl-new", 2, FALSE },
  { "afork new / Python forkserver (preloaded)", "afork-new@small", "python-forkserver-preload", 20, FALSE },
  { "user template fork / ideal server by hand (5 MB)", "afork-template@small", "ideal-ack@small", 0.9, FALSE },
  { "user template fork / fork () of a 5 MB parent", "afork-template@small", "fork@small", 1.0, FALSE },
  { "user template fork / fork () of a 2 GB parent", "afork-template@large", "fork@large", 50, FALSE },
  { "user template fork / AnyEvent::Fork->new", "afork-template@small", "perl-new", 2, FALSE },
  { "user template fork / Python forkserver (preloaded)", "afork-template@small", "python-forkserver-preload", 20, FALSE },
  { "afork new from 2 GB / from 5 MB, within 10 % (*)", "afork-new@large", "afork-new@small", 0.1, TRUE,
    "ideal-ack@large", "ideal-ack@small" },
  { "new_exec from 2 GB / from 5 MB, within 10 % (*)", "afork-exec@large", "afork-exec@small", 0.1, TRUE,
    "ideal-ack@large", "ideal-ack@small" },
  { "new_exec / AnyEvent::Fork->new_exec", "afork-exec@small", "perl-new-exec", 2, FALSE },
  { "new_exec / g_subprocess INHERIT_FDS (5 MB)", "afork-exec@small", "gsubprocess-inherit@small", 1.0, FALSE },
  { "afork new 16 in flight / 1 in flight", "afork-new-k16@small", "afork-new@small", 1.5, FALSE },
};

/* The ratio of two rows: the median of the ratios of each round when both
 * were measured in every round (the rounds run one after another, so the
 * two rates of a round are taken within seconds of each other, and a
 * machine whose speed drifts between rounds cancels out); else the ratio
 * of their medians. */
static double
report_ratio (Report       *report,
              const Target *t)
{
  const char *ids[] = { t->numerator, t->denominator, t->numerator_base, t->denominator_base };
  Result *rows[G_N_ELEMENTS (ids)] = { NULL };
  guint n_rows = t->numerator_base != NULL ? 4 : 2;
  g_autoptr(GArray) ratios = NULL;
  double median;
  guint rounds;

  for (guint j = 0; j < n_rows; j++)
    {
      if (report_rate (report, ids[j]) <= 0)
        return 0;
      rows[j] = report_find (report, ids[j]);
    }

  rounds = rows[0]->rates->len;
  for (guint j = 1; j < n_rows; j++)
    if (rows[j]->rates->len != rounds)
      {
        if (n_rows == 4)
          return (rows[0]->median / rows[2]->median) / (rows[1]->median / rows[3]->median);
        return rows[0]->median / rows[1]->median;
      }

  ratios = g_array_sized_new (FALSE, FALSE, sizeof (double), rounds);
  for (guint i = 0; i < rounds; i++)
    {
      double v[G_N_ELEMENTS (ids)];
      double r;

      for (guint j = 0; j < n_rows; j++)
        v[j] = g_array_index (rows[j]->rates, double, i);
      if (n_rows == 4)
        r = v[1] > 0 && v[2] > 0 ? (v[0] / v[2]) / (v[1] / v[3]) : 0;
      else
        r = v[1] > 0 ? v[0] / v[1] : 0;

      g_array_append_val (ratios, r);
    }
  g_array_sort (ratios, compare_double);

  if (ratios->len % 2)
    median = g_array_index (ratios, double, ratios->len / 2);
  else
    median = (g_array_index (ratios, double, ratios->len / 2 - 1) +
              g_array_index (ratios, double, ratios->len / 2)) / 2;

  return median;
}

static void
print_targets (Report *report)
{
  gint64 *dirty;

  emit ("\ntargets (ratios in this run: the median of the ratios of each round)\n");
  emit ("  %-50s %10s %10s  %s\n", "target", "ratio", "wanted", "result");

  for (guint i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      const Target *t = &targets[i];
      double ratio = report_ratio (report, t);
      g_autofree char *wanted = t->within ? g_strdup_printf ("1 +- %.2f", t->target)
                                          : g_strdup_printf (">= %.2f", t->target);
      gboolean met;

      if (ratio <= 0)
        {
          emit ("  %-50s %10s %10s  not measured\n", t->what, "-", wanted);
          continue;
        }

      met = t->within ? ABS (ratio - 1) <= t->target : ratio >= t->target;
      emit ("  %-50s %10.3f %10s  %s\n", t->what, ratio, wanted, met ? "met" : "MISSED");
    }

  dirty = g_hash_table_lookup (report->private_dirty, "mem-default-child");
  if (dirty != NULL)
    emit ("  %-50s %7" G_GINT64_FORMAT " KiB %10s  %s\n",
             "forked child's private dirty memory", *dirty, "< 200 KiB",
             *dirty < 200 ? "met" : "MISSED");
  else
    emit ("  %-50s %10s %10s  not measured\n", "forked child's private dirty memory", "-", "< 200 KiB");
  emit ("  (*) each rate divided first by the ideal server's in the same worker\n");
}

static void
print_tap (Report *report)
{
  guint n = 0;

  for (guint i = 0; i < report->results->len; i++)
    {
      Result *result = report->results->pdata[i];
      g_autofree char *name = g_strdup_printf ("%s (%s)", result->label, result->section);

      n++;
      if (result->skip != NULL)
        g_print ("ok %u %s # SKIP %s\n", n, name, result->skip);
      else if (result->fail != NULL)
        g_print ("not ok %u %s: %s\n", n, name, result->fail);
      else if (result->min > 0)
        g_print ("ok %u %s\n", n, name);
      else
        g_print ("not ok %u %s: rate not positive\n", n, name);
    }

  n++;
  g_print ("%sok %u latency and memory measured\n", report->failed ? "not " : "", n);
  n++;
  g_print ("%sok %u memory read from /proc\n",
           g_hash_table_size (report->private_dirty) == 4 ? "" : "not ", n);
  g_print ("1..%u\n", n);
}

static gboolean
report_ok (Report *report)
{
  if (report->failed || g_hash_table_size (report->private_dirty) != 4)
    return FALSE;

  for (guint i = 0; i < report->results->len; i++)
    {
      Result *result = report->results->pdata[i];

      if (result->skip == NULL && (result->fail != NULL || result->min <= 0))
        return FALSE;
    }

  return TRUE;
}

static int
coordinator_main (gboolean quick,
                  gboolean tap,
                  double   seconds,
                  guint    reps)
{
  static const guint full_sizes[] = { 5, 200, 2048 };
  static const guint quick_sizes[] = { 5, 32, 128 };
  static const char * const roles[] = { "small", "medium", "large" };
  const guint *sizes = quick ? quick_sizes : full_sizes;
  Report report = { 0 };
  gboolean ok;

  report.results = g_ptr_array_new_with_free_func ((GDestroyNotify) result_free);
  report.latencies = g_ptr_array_new_with_free_func (g_free);
  report.memory = g_ptr_array_new_with_free_func (g_free);
  report.private_dirty = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  output = g_string_new (NULL);
  g_file_get_contents ("/proc/loadavg", &load_at_start, NULL, NULL);

  /* One worker per size and repetition, and one run of each script, all
   * interleaved, so that a slow moment of the machine does not land on
   * one row only. */
  for (guint rep = 0; rep < reps; rep++)
    {
      for (guint i = 0; i < 3; i++)
        run_worker (&report, roles[i], sizes[i], i == 0, i == 0 && rep == reps - 1, seconds, 1);

      run_script (&report, "perl-new", "AnyEvent::Fork->new->run", "perl",
                  "anyevent-fork-bench.pl", "new", seconds, 1);
      run_script (&report, "perl-new-exec", "AnyEvent::Fork->new_exec->run", "perl",
                  "anyevent-fork-bench.pl", "new_exec", seconds, 1);
      run_script (&report, "python-forkserver", "Python multiprocessing forkserver", "/usr/bin/python3",
                  "forkserver_bench.py", "forkserver", seconds, 1);
      run_script (&report, "python-forkserver-preload", "Python forkserver, target preloaded",
                  "/usr/bin/python3", "forkserver_bench.py", "forkserver-preload", seconds, 1);
    }

  print_header (seconds, reps, sizes);
  print_table (&report);
  emit ("\nlatency, sequential, us\n  %-50s %6s %9s %9s %9s %6s\n",
           "what", "p50", "p99", "p50 total", "p99 total", "n");
  for (guint i = 0; i < report.latencies->len; i++)
    emit ("%s\n", (char *) report.latencies->pdata[i]);
  emit ("  (total: from the call that creates the process)\n");
  emit ("\nmemory, from /proc/PID/smaps_rollup, KiB\n  %-50s %8s %8s %8s %14s\n",
           "process", "pid", "Rss", "Pss", "Private_Dirty");
  for (guint i = 0; i < report.memory->len; i++)
    emit ("%s\n", (char *) report.memory->pdata[i]);
  print_targets (&report);

  ok = report_ok (&report);
  flush_output (tap);
  if (tap)
    print_tap (&report);
  g_string_free (output, TRUE);
  g_clear_pointer (&load_at_start, g_free);

  g_ptr_array_unref (report.results);
  g_ptr_array_unref (report.latencies);
  g_ptr_array_unref (report.memory);
  g_hash_table_unref (report.private_dirty);

  return ok ? 0 : 1;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *only = NULL;
  gboolean quick = FALSE, tap = FALSE, primary = FALSE, extras = FALSE;
  double seconds = 0;
  int reps = 0, worker = -1;
  GOptionEntry entries[] = {
    { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "A short pass that checks every row works", NULL },
    { "tap", 0, 0, G_OPTION_ARG_NONE, &tap, "Also report each row as a TAP test", NULL },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "Length of each measurement", "S" },
    { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Repetitions of each measurement (at least 3)", "N" },
    { "worker", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &worker, NULL, NULL },
    { "primary", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &primary, NULL, NULL },
    { "extras", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &extras, NULL, NULL },
    { "only", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &only, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };

  signal (SIGPIPE, SIG_IGN);

  context = g_option_context_new ("— processes per second of afork and its alternatives");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("afork-bench: %s\n", error->message);
      return 2;
    }

  if (seconds <= 0)
    seconds = quick ? 0.05 : 1.0;
  if (worker >= 0)
    reps = MAX (reps, 1);
  else if (reps < 3)
    reps = quick ? 3 : 5;

  /* Run uninstalled: the module is built beside this program. */
  if (g_getenv ("AFORK_MODULE_PATH") == NULL)
    g_setenv ("AFORK_MODULE_PATH", bench_dir (), TRUE);

  if (worker >= 0)
    return worker_main ((guint) worker, primary, extras, seconds, (guint) reps, only);

  return coordinator_main (quick, tap, seconds, (guint) reps);
}
