/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run and call functions used by the test suite. Each run function reports
 * what it sees on its socket, in a line-oriented form the tests parse. */
#include <afork/afork.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static char *test_global = NULL;

static void
write_all (int         fd,
           const char *data,
           gsize       len)
{
  while (len > 0)
    {
      ssize_t res = write (fd, data, len);
      if (res < 0 && errno == EINTR)
        continue;
      if (res <= 0)
        return;
      data += res;
      len -= res;
    }
}

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

  write_all (afork_child_get_fd (child), line, strlen (line));
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

          write_all (fd, msg, strlen (msg));
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
      write_all (fd, "echo ", 5);
      write_all (fd, buf, n);
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
