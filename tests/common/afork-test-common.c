/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "afork-test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* g_test_init (), in a program whose children may crash on purpose: no
 * core files. */
void
afork_test_init (int    *argc,
                 char ***argv)
{
  struct rlimit no_core = { 0, 0 };

  setrlimit (RLIMIT_CORE, &no_core);

  g_test_init (argc, argv, NULL);
}

/* The last component of the test paths afork_test_add_kind_tests () adds. */
const char *
afork_test_kind_name (AforkTestKind kind)
{
  switch (kind)
    {
    case AFORK_TEST_KIND_NEW:
      return "new";
    case AFORK_TEST_KIND_NEW_EXEC:
      return "new-exec";
    case AFORK_TEST_KIND_FORK:
      return "fork";
    default:
      g_assert_not_reached ();
    }
}

/* A new process of @kind, in preparation. */
AforkProcess *
afork_test_make_process (AforkTestKind kind)
{
  g_autoptr(GError) error = NULL;
  AforkProcess *process = NULL;

  switch (kind)
    {
    case AFORK_TEST_KIND_NEW:
      process = afork_process_new (&error);
      break;

    case AFORK_TEST_KIND_NEW_EXEC:
      process = afork_process_new_exec (&error);
      break;

    case AFORK_TEST_KIND_FORK:
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

/* Adds @func once per kind, as @path/KIND, with the kind as its data. */
void
afork_test_add_kind_tests (const char    *path,
                           GTestDataFunc  func)
{
  for (AforkTestKind kind = AFORK_TEST_KIND_NEW; kind <= AFORK_TEST_KIND_FORK; kind++)
    {
      g_autofree char *full = g_strdup_printf ("%s/%s", path, afork_test_kind_name (kind));

      g_test_add_data_func (full, GINT_TO_POINTER (kind), func);
    }
}

/* A pipe whose ends are both close-on-exec. */
void
afork_test_pipe (int fds[2])
{
  g_autoptr(GError) error = NULL;

  g_unix_open_pipe (fds, FD_CLOEXEC, &error);
  g_assert_no_error (error);
}

static gboolean
flag_timeout_cb (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;

  return G_SOURCE_REMOVE;
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
 * closed. The test fails if neither happens within
 * AFORK_TEST_WAIT_SECONDS. */
char *
afork_test_read_fd_bytes (int   fd,
                          gsize want)
{
  FdRead state = { g_string_new (NULL), want, FALSE, 0 };
  gboolean timed_out = FALSE;
  GMainContext *context = g_main_context_ref_thread_default ();
  GSource *source = g_unix_fd_source_new (fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  GSource *timeout = g_timeout_source_new_seconds (AFORK_TEST_WAIT_SECONDS);

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
                 "process still holds the other end", fd, AFORK_TEST_WAIT_SECONDS);
      else
        g_error ("descriptor %d got %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                 " bytes within %d s", fd, state.data->len, want, AFORK_TEST_WAIT_SECONDS);
    }
  g_assert_cmpint (state.error, ==, 0);

  return g_string_free (state.data, FALSE);
}

/* Reads @fd until end of file (see afork_test_read_fd_bytes ()). */
char *
afork_test_read_fd_to_eof (int fd)
{
  return afork_test_read_fd_bytes (fd, G_MAXSIZE);
}

/* Reads @connection until end of file, each read bounded by
 * AFORK_TEST_WAIT_SECONDS (set as the socket's timeout). */
char *
afork_test_read_connection (GSocketConnection *connection)
{
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (connection));
  g_autoptr(GString) data = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  char buf[4096];
  gssize n;

  g_socket_set_timeout (g_socket_connection_get_socket (connection), AFORK_TEST_WAIT_SECONDS);
  while ((n = g_input_stream_read (in, buf, sizeof buf, NULL, &error)) > 0)
    g_string_append_len (data, buf, n);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);

  return g_string_free (g_steal_pointer (&data), FALSE);
}

/* Iterates @context until @pending (@data) is FALSE; fails the test,
 * naming @what, after AFORK_TEST_WAIT_SECONDS. */
static void
iterate_while (GMainContext *context,
               gboolean    (*pending) (gconstpointer data),
               gconstpointer data,
               const char   *what)
{
  gboolean timed_out = FALSE;
  GSource *timeout = g_timeout_source_new_seconds (AFORK_TEST_WAIT_SECONDS);

  g_source_set_callback (timeout, flag_timeout_cb, &timed_out, NULL);
  g_source_attach (timeout, context);

  while (pending (data) && !timed_out)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (timeout);
  g_source_unref (timeout);

  if (pending (data))
    g_error ("%s did not complete within %d s", what, AFORK_TEST_WAIT_SECONDS);
}

static gboolean
flag_unset (gconstpointer data)
{
  return !*(const gboolean *) data;
}

/* Iterates @context (NULL: the thread-default one) until *@done; the test
 * fails, naming @what, if that takes longer than AFORK_TEST_WAIT_SECONDS. */
void
afork_test_iterate_until (GMainContext   *context,
                          const gboolean *done,
                          const char     *what)
{
  g_autoptr(GMainContext) own = context ? g_main_context_ref (context)
                                        : g_main_context_ref_thread_default ();

  iterate_while (own, flag_unset, done, what);
}

/* A GAsyncReadyCallback that stores a reference to @result in the
 * GAsyncResult pointer @user_data points to, which must be NULL. */
void
afork_test_store_result_cb (G_GNUC_UNUSED GObject *object,
                            GAsyncResult          *result,
                            gpointer               user_data)
{
  GAsyncResult **slot = user_data;

  g_assert_null (*slot);
  *slot = g_object_ref (result);
}

static gboolean
slot_empty (gconstpointer data)
{
  return *(GAsyncResult * const *) data == NULL;
}

/* Iterates the thread-default main context until afork_test_store_result_cb ()
 * has filled @slot, and returns it (bounded by AFORK_TEST_WAIT_SECONDS). */
GAsyncResult *
afork_test_wait_result (GAsyncResult **slot)
{
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();

  iterate_while (context, slot_empty, slot, "an asynchronous call");

  return *slot;
}

/* afork_process_run_async () of @function, with the thread-default main
 * context iterated until it completes; returns what
 * afork_process_run_finish () returns, which is either a connection or an
 * error. */
GSocketConnection *
afork_test_run (AforkProcess  *process,
                const char    *function,
                GError       **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  GSocketConnection *connection;
  GError *local_error = NULL;

  afork_process_run_async (process, function, NULL, afork_test_store_result_cb, &result);
  afork_test_wait_result (&result);
  connection = afork_process_run_finish (process, result, &local_error);
  g_assert_true ((connection == NULL) != (local_error == NULL));
  if (local_error != NULL)
    g_propagate_error (error, local_error);

  return connection;
}

/* Parses the line "pid N" (no newline) that run functions write. */
GPid
afork_test_parse_pid_line (const char *line)
{
  gint64 pid = 0;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "pid "));
  g_ascii_string_to_signed (line + 4, 10, 1, G_MAXINT, &pid, &error);
  g_assert_no_error (error);

  return (GPid) pid;
}

/* The state, parent and process group of @pid from /proc/PID/stat (each
 * pointer may be NULL). FALSE if the process has gone (reaped). */
gboolean
afork_test_proc_stat (GPid  pid,
                      char *state,
                      GPid *ppid,
                      GPid *pgrp)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *contents = NULL;
  const char *p;
  int s_ppid, s_pgrp;
  char s_state;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;

  /* "PID (COMM) STATE PPID PGRP ...": the command name may hold spaces
   * and parentheses, so skip past the last closing one. */
  p = strrchr (contents, ')');
  if (p == NULL || sscanf (p + 1, " %c %d %d", &s_state, &s_ppid, &s_pgrp) != 3)
    return FALSE;

  if (state)
    *state = s_state;
  if (ppid)
    *ppid = s_ppid;
  if (pgrp)
    *pgrp = s_pgrp;

  return TRUE;
}

/* The parent of @pid according to /proc, or 0 if it has gone. */
GPid
afork_test_proc_parent (GPid pid)
{
  GPid ppid = 0;

  if (!afork_test_proc_stat (pid, NULL, &ppid, NULL))
    return 0;

  return ppid;
}

/* A process that has exited is gone, even when its parent has not reaped
 * it yet (a zombie). */
gboolean
afork_test_proc_gone (GPid pid)
{
  char state;

  return !afork_test_proc_stat (pid, &state, NULL, NULL) || state == 'Z' || state == 'X';
}

/* Polls until @pid is gone (see afork_test_proc_gone ()); FALSE if it is
 * still there after @timeout_s seconds. */
gboolean
afork_test_wait_gone (GPid  pid,
                      guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_s * G_USEC_PER_SEC;

  while (!afork_test_proc_gone (pid))
    {
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      g_usleep (2000);
    }

  return TRUE;
}
