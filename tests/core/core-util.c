/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "core-util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

const char *
kind_name (ProcessKind kind)
{
  switch (kind)
    {
    case KIND_NEW:
      return "new";
    case KIND_NEW_EXEC:
      return "new-exec";
    case KIND_FORK:
      return "fork";
    default:
      g_assert_not_reached ();
    }
}

AforkProcess *
make_process (ProcessKind kind)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *process = NULL;

  switch (kind)
    {
    case KIND_NEW:
      process = afork_process_new (&error);
      break;

    case KIND_NEW_EXEC:
      process = afork_process_new_exec (&error);
      break;

    case KIND_FORK:
      {
        /* A template that is dropped as soon as it has been asked to
         * fork: the fork must not depend on it staying around. */
        g_autoptr(AforkProcess) template = afork_process_new (&error);

        g_assert_no_error (error);
        g_assert_nonnull (template);
        process = afork_process_fork (template);
      }
      break;

    default:
      g_assert_not_reached ();
    }

  g_assert_no_error (error);
  g_assert_true (AFORK_IS_PROCESS (process));

  return process;
}

void
add_kind_tests (const char    *path,
                GTestDataFunc  func)
{
  for (ProcessKind kind = KIND_NEW; kind <= KIND_FORK; kind++)
    {
      g_autofree char *full = g_strdup_printf ("%s/%s", path, kind_name (kind));

      g_test_add_data_func (full, GINT_TO_POINTER (kind), func);
    }
}

void
make_pipe (int fds[2])
{
  g_autoptr(GError) error = NULL;

  g_unix_open_pipe (fds, FD_CLOEXEC, &error);
  g_assert_no_error (error);
}

/* A descriptor number that is not open, and high enough that nothing
 * opened meanwhile takes it. */
int
closed_fd_number (void)
{
  long open_max = sysconf (_SC_OPEN_MAX);
  int base = (int) MIN (open_max > 16 ? open_max / 2 : 8, 1000);
  int fd = fcntl (STDERR_FILENO, F_DUPFD_CLOEXEC, base);

  g_assert_cmpint (fd, >=, base);
  g_assert_cmpint (close (fd), ==, 0);
  g_assert_cmpint (fcntl (fd, F_GETFD), ==, -1);

  return fd;
}

static gboolean
flag_timeout_cb (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;

  return G_SOURCE_REMOVE;
}

/* Iterates the thread-default main context until @slot is set. */
GAsyncResult *
wait_async (GAsyncResult **slot)
{
  gboolean timed_out = FALSE;
  GMainContext *context = g_main_context_ref_thread_default ();
  GSource *timeout = g_timeout_source_new_seconds (CORE_WAIT_SECONDS);

  g_source_set_callback (timeout, flag_timeout_cb, &timed_out, NULL);
  g_source_attach (timeout, context);

  while (*slot == NULL && !timed_out)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (timeout);
  g_source_unref (timeout);
  g_main_context_unref (context);

  if (*slot == NULL)
    g_error ("no result after %d s", CORE_WAIT_SECONDS);

  return *slot;
}

void
store_result_cb (G_GNUC_UNUSED GObject *object,
                 GAsyncResult          *result,
                 gpointer               user_data)
{
  GAsyncResult **slot = user_data;

  g_assert_null (*slot);
  *slot = g_object_ref (result);
}

GSocketConnection *
run_ok (AforkProcess *process,
        const char   *function)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;

  afork_process_run_async (process, function, NULL, store_result_cb, &result);
  wait_async (&result);
  connection = afork_process_run_finish (process, result, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_UNIX_CONNECTION (connection));
  g_socket_set_timeout (g_socket_connection_get_socket (connection), CORE_WAIT_SECONDS);

  return connection;
}

GError *
run_error (AforkProcess *process,
           const char   *function)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  GError *error = NULL;

  afork_process_run_async (process, function, NULL, store_result_cb, &result);
  wait_async (&result);
  connection = afork_process_run_finish (process, result, &error);
  g_assert_null (connection);
  g_assert_nonnull (error);

  return error;
}

char *
read_to_eof (GSocketConnection *connection)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  g_autoptr(GString) data = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  char buf[4096];
  gssize n;

  while ((n = g_input_stream_read (in, buf, sizeof buf, NULL, &error)) > 0)
    g_string_append_len (data, buf, n);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);

  return g_string_free (g_steal_pointer (&data), FALSE);
}

/* Runs @function and returns the lines the child wrote before exiting. */
char **
run_lines (AforkProcess *process,
           const char   *function)
{
  g_autoptr(GSocketConnection) connection = run_ok (process, function);
  g_autofree char *text = read_to_eof (connection);
  char **lines;
  guint n;

  g_assert_true (text[0] == '\0' || g_str_has_suffix (text, "\n"));
  lines = g_strsplit (text, "\n", -1);
  n = g_strv_length (lines);
  /* Drop the empty string after the last newline. */
  g_free (lines[n - 1]);
  lines[n - 1] = NULL;

  return lines;
}

typedef struct
{
  GString  *data;
  gsize     want;
  gboolean  eof;
  int       error;
} FdRead;

static gboolean
fd_readable_cb (int                         fd,
                G_GNUC_UNUSED GIOCondition  condition,
                gpointer                    user_data)
{
  FdRead *state = user_data;
  char buf[4096];
  gssize n;

  do
    n = read (fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);

  if (n > 0)
    {
      g_string_append_len (state->data, buf, n);
      return state->data->len < state->want ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
    }

  if (n < 0)
    state->error = errno;
  state->eof = TRUE;

  return G_SOURCE_REMOVE;
}

/* Reads @fd until @want bytes came or end of file, iterating the
 * thread-default main context meanwhile (so that queued commands keep
 * flowing). End of file on a pipe means every copy of its write end was
 * closed. The test fails if neither happens within CORE_WAIT_SECONDS. */
char *
read_fd_bytes (int   fd,
               gsize want)
{
  FdRead state = { g_string_new (NULL), want, FALSE, 0 };
  gboolean timed_out = FALSE;
  GMainContext *context = g_main_context_ref_thread_default ();
  GSource *source = g_unix_fd_source_new (fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  GSource *timeout = g_timeout_source_new_seconds (CORE_WAIT_SECONDS);

  g_source_set_callback (source, (GSourceFunc) G_CALLBACK (fd_readable_cb), &state, NULL);
  g_source_attach (source, context);
  g_source_set_callback (timeout, flag_timeout_cb, &timed_out, NULL);
  g_source_attach (timeout, context);

  while (!state.eof && state.data->len < want && !timed_out)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (source);
  g_source_unref (source);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  g_main_context_unref (context);

  if (!state.eof && state.data->len < want)
    {
      if (want == G_MAXSIZE)
        g_error ("descriptor %d did not reach end of file within %d s: some "
                 "process still holds the other end", fd, CORE_WAIT_SECONDS);
      else
        g_error ("descriptor %d got %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                 " bytes within %d s", fd, state.data->len, want, CORE_WAIT_SECONDS);
    }
  g_assert_cmpint (state.error, ==, 0);

  return g_string_free (state.data, FALSE);
}

/* Reads @fd until end of file (see read_fd_bytes()). */
char *
read_fd_to_eof (int fd)
{
  return read_fd_bytes (fd, G_MAXSIZE);
}

void
assert_lines_equal (char               **lines,
                    const char * const  *expected)
{
  guint i;

  for (i = 0; lines[i] != NULL && expected[i] != NULL; i++)
    g_assert_cmpstr (lines[i], ==, expected[i]);

  g_assert_cmpstr (lines[i], ==, expected[i]);
}

char *
sha256_string (const void *data,
               gsize       len)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
}

/* The line test_run_args writes for a short plain string. */
char *
arg_line (const char *arg)
{
  g_autofree char *sum = sha256_string (arg, strlen (arg));

  return g_strdup_printf ("s %zu %s %s", strlen (arg), sum, arg);
}

/* Parses "pid N". */
GPid
parse_pid_line (const char *line)
{
  gint64 pid = 0;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "pid "));
  g_ascii_string_to_signed (line + 4, 10, 1, G_MAXINT, &pid, &error);
  g_assert_no_error (error);

  return (GPid) pid;
}

/* The parent of @pid according to /proc, or 0 if it has gone. */
GPid
proc_parent_pid (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *contents = NULL;
  const char *p;
  int ppid = 0;
  char state;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;

  /* "PID (COMM) STATE PPID ...": COMM may contain anything. */
  p = strrchr (contents, ')');
  g_assert_nonnull (p);
  g_assert_cmpint (sscanf (p + 1, " %c %d", &state, &ppid), ==, 2);

  return (GPid) ppid;
}

void
core_test_init (int    *argc,
                char ***argv)
{
  /* Some tests make children crash on purpose: no core files. */
  struct rlimit no_core = { 0, 0 };

  setrlimit (RLIMIT_CORE, &no_core);

  g_test_init (argc, argv, NULL);
}
