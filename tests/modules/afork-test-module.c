/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run and call functions used by the test suite. Each run function reports
 * what it sees on its socket, in a line-oriented form the tests parse. */
#include <afork/afork.h>

#include "afork-test-io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static char *test_global = NULL;

static void
report (AforkChild *child,
        const char *format,
        ...) G_GNUC_PRINTF (2, 3);

static void
report (AforkChild *child,
        const char *format,
        ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);

  afork_test_write_all (afork_child_get_fd (child), line, strlen (line));
}

/* Writes "pid N\n". */
EXPORT void test_run_pid (AforkChild *child);
void
test_run_pid (AforkChild *child)
{
  report (child, "pid %d\n", (int) getpid ());
}

/* Writes one line per argument: "s LEN SHA256" for a string,
 * "f" for a descriptor (into which it writes "fd INDEX\n"), then
 * "global VALUE" and "end". */
EXPORT void test_run_args (AforkChild *child);
void
test_run_args (AforkChild *child)
{
  guint n = afork_child_get_n_args (child);

  for (guint i = 0; i < n; i++)
    {
      if (afork_child_arg_is_fd (child, i))
        {
          int fd = afork_child_steal_fd (child, i);
          g_autofree char *msg = g_strdup_printf ("fd %u\n", i);

          afork_test_write_all (fd, msg, strlen (msg));
          close (fd);
          report (child, "f\n");
        }
      else
        {
          gsize len;
          const char *data = afork_child_get_arg (child, i, &len);
          g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                             (const guchar *) data, len);

          if (len < 64 && memchr (data, '\0', len) == NULL && memchr (data, '\n', len) == NULL)
            report (child, "s %" G_GSIZE_FORMAT " %s %s\n", len, sum, data);
          else
            report (child, "s %" G_GSIZE_FORMAT " %s\n", len, sum);
        }
    }

  report (child, "global %s\n", test_global ? test_global : "(null)");
  report (child, "end\n");
}

/* Echoes every line it reads back, prefixed with "echo ", until EOF. */
EXPORT void test_run_echo (AforkChild *child);
void
test_run_echo (AforkChild *child)
{
  char buf[4096];
  ssize_t n;
  int fd = afork_child_get_fd (child);

  while ((n = read (fd, buf, sizeof buf)) > 0)
    {
      afork_test_write_all (fd, "echo ", 5);
      afork_test_write_all (fd, buf, n);
    }
}

/* Sets the global every later run function reports. */
EXPORT gboolean test_call_set_global (AforkChild *, const char * const *, GError **);
gboolean
test_call_set_global (G_GNUC_UNUSED AforkChild *child,
                      G_GNUC_UNUSED const char * const *args,
                      G_GNUC_UNUSED GError            **error)
{
  g_free (test_global);
  test_global = g_strjoinv (",", (char **) args);

  return TRUE;
}

/* Fails with a domain and code of its own. */
EXPORT gboolean test_call_fail (AforkChild *, const char * const *, GError **);
gboolean
test_call_fail (G_GNUC_UNUSED AforkChild *child,
                G_GNUC_UNUSED const char * const *args,
                G_GNUC_UNUSED GError            **error)
{
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
               "test failure requested with %s", args[0] ? args[0] : "no argument");
  return FALSE;
}

/* Dies of a signal. */
EXPORT gboolean test_call_crash (AforkChild *, const char * const *, GError **);
gboolean
test_call_crash (G_GNUC_UNUSED AforkChild *child,
                 G_GNUC_UNUSED const char * const *args,
                 G_GNUC_UNUSED GError            **error)
{
  signal (SIGSEGV, SIG_DFL);
  raise (SIGSEGV);
  return TRUE;
}

/* Waits until the parent closes its end of the socket (without reading
 * any of afork's commands), then returns. */
EXPORT gboolean test_call_wait_hangup (AforkChild *, const char * const *, GError **);
gboolean
test_call_wait_hangup (G_GNUC_UNUSED AforkChild *child,
                       G_GNUC_UNUSED const char * const *args,
                       G_GNUC_UNUSED GError            **error)
{
  struct pollfd pfd = { afork_child_get_fd (child), POLLRDHUP, 0 };

  while (poll (&pfd, 1, -1) < 0 && errno == EINTR)
    ;

  return TRUE;
}

/* Reports the number of pending arguments at call time through the fd at
 * index 0 (if any) and consumes nothing. */
EXPORT gboolean test_call_count_args (AforkChild *, const char * const *, GError **);
gboolean
test_call_count_args (G_GNUC_UNUSED AforkChild *child,
                      G_GNUC_UNUSED const char * const *args,
                      G_GNUC_UNUSED GError            **error)
{
  g_free (test_global);
  test_global = g_strdup_printf ("n_args=%u", afork_child_get_n_args (child));

  return TRUE;
}

/* Writes ARGS[0] and a newline into the last descriptor pending (without
 * taking it), so the parent knows how far the child has gone. Fails if
 * no descriptor is pending. */
EXPORT gboolean test_call_notify (AforkChild *, const char * const *, GError **);
gboolean
test_call_notify (AforkChild         *child,
                  const char * const *args,
                  GError            **error)
{
  const char *word = args[0] ? args[0] : "ready";

  for (guint i = afork_child_get_n_args (child); i > 0; i--)
    {
      int fd = afork_child_peek_fd (child, i - 1);

      if (afork_child_arg_is_fd (child, i - 1) && fd >= 0)
        {
          afork_test_write_all (fd, word, strlen (word));
          afork_test_write_all (fd, "\n", 1);
          return TRUE;
        }
    }

  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       "no descriptor to notify on");
  return FALSE;
}

/* Forgets every pending argument. */
EXPORT gboolean test_call_clear_args (AforkChild *, const char * const *, GError **);
gboolean
test_call_clear_args (AforkChild                        *child,
                      G_GNUC_UNUSED const char * const  *args,
                      G_GNUC_UNUSED GError             **error)
{
  afork_child_clear_args (child);

  return TRUE;
}

/* Fails without setting an error. */
EXPORT gboolean test_call_fail_silently (AforkChild *, const char * const *, GError **);
gboolean
test_call_fail_silently (G_GNUC_UNUSED AforkChild         *child,
                         G_GNUC_UNUSED const char * const *args,
                         G_GNUC_UNUSED GError            **error)
{
  return FALSE;
}

/* Reports what each AforkChild accessor returns, one line per fact:
 *   "sock VALID ISSOCK NONBLOCK CLOEXEC" for the communication socket;
 *   "owner PID";
 *   "n N";
 *   for a string: "str INDEX ISFD LEN TERMINATED PEEK STEAL SHA256";
 *   for a descriptor: "fd INDEX ISFD VALID CLOEXEC SAME STEAL2 PEEK2
 *     ARGNULL ARGLEN", after writing "fd INDEX\n" into it (VALID: the
 *     peeked descriptor is open; SAME: the stolen one is the peeked one;
 *     STEAL2 and PEEK2: what a second steal and a peek then return;
 *     ARGNULL and ARGLEN: what get_arg returns for it);
 *   "end". */
EXPORT void test_run_child_api (AforkChild *child);
void
test_run_child_api (AforkChild *child)
{
  int sock = afork_child_get_fd (child);
  int fl = fcntl (sock, F_GETFL);
  int fdfl = fcntl (sock, F_GETFD);
  struct stat st;
  guint n = afork_child_get_n_args (child);

  report (child, "sock %d %d %d %d\n",
          fl >= 0,
          fstat (sock, &st) == 0 && S_ISSOCK (st.st_mode),
          fl >= 0 && (fl & O_NONBLOCK) != 0,
          fdfl >= 0 && (fdfl & FD_CLOEXEC) != 0);
  report (child, "owner %d\n", (int) afork_child_get_owner (child));
  report (child, "n %u\n", n);

  for (guint i = 0; i < n; i++)
    {
      gboolean is_fd = afork_child_arg_is_fd (child, i);
      gsize len = 12345;
      const char *data = afork_child_get_arg (child, i, &len);

      if (!is_fd)
        {
          g_autofree char *sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                                             (const guchar *) data, len);

          report (child, "str %u %d %" G_GSIZE_FORMAT " %d %d %d %s\n",
                  i, is_fd, len, data != NULL && data[len] == '\0',
                  afork_child_peek_fd (child, i),
                  afork_child_steal_fd (child, i), sum);
        }
      else
        {
          int peek = afork_child_peek_fd (child, i);
          int peekfl = peek >= 0 ? fcntl (peek, F_GETFD) : -1;
          int stolen = afork_child_steal_fd (child, i);
          int steal2 = afork_child_steal_fd (child, i);
          int peek2 = afork_child_peek_fd (child, i);
          g_autofree char *msg = g_strdup_printf ("fd %u\n", i);

          if (stolen >= 0)
            {
              afork_test_write_all (stolen, msg, strlen (msg));
              close (stolen);
            }

          report (child, "fd %u %d %d %d %d %d %d %d %" G_GSIZE_FORMAT "\n",
                  i, is_fd, peekfl >= 0, peekfl >= 0 && (peekfl & FD_CLOEXEC) != 0,
                  stolen == peek, steal2, peek2, data == NULL, len);
        }
    }

  report (child, "end\n");
}

/* Takes the descriptor argument at index 0 (a pipe's read end), waits
 * until one byte or end of file can be read from it, then closes it: the
 * parent holds the child's command loop until it writes to the pipe. */
EXPORT gboolean test_call_wait_gate (AforkChild *, const char * const *, GError **);
gboolean
test_call_wait_gate (AforkChild                       *child,
                     G_GNUC_UNUSED const char * const *args,
                     GError                          **error)
{
  int fd = afork_child_get_n_args (child) > 0 ? afork_child_steal_fd (child, 0) : -1;
  char c;

  if (fd < 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           "no gate descriptor at index 0");
      return FALSE;
    }

  while (read (fd, &c, 1) < 0 && errno == EINTR)
    ;
  close (fd);

  return TRUE;
}

/* Ends the process as its first string argument says: "signal N" kills it
 * with signal N, anything else is an exit status. */
EXPORT void test_run_exit (AforkChild *child);
void
test_run_exit (AforkChild *child)
{
  const char *how = afork_child_get_n_args (child) > 0 ? afork_child_get_arg (child, 0, NULL) : NULL;

  if (how == NULL)
    _exit (0);

  if (g_str_has_prefix (how, "signal "))
    {
      int sig = atoi (how + strlen ("signal "));

      signal (sig, SIG_DFL);
      raise (sig);
    }

  _exit (atoi (how));
}
