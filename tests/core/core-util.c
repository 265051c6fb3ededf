/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "core-util.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

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

/* Runs @function, which must succeed, and returns its connection. */
GSocketConnection *
run_ok (AforkProcess *process,
        const char   *function)
{
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;

  connection = afork_test_run (process, function, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_UNIX_CONNECTION (connection));
  g_socket_set_timeout (g_socket_connection_get_socket (connection), AFORK_TEST_WAIT_SECONDS);

  return connection;
}

/* Runs @function, which must fail, and returns the error. */
GError *
run_error (AforkProcess *process,
           const char   *function)
{
  g_autoptr(GSocketConnection) connection = NULL;
  GError *error = NULL;

  connection = afork_test_run (process, function, &error);
  g_assert_null (connection);
  g_assert_nonnull (error);

  return error;
}

/* Runs @function and returns the lines the child wrote before exiting. */
char **
run_lines (AforkProcess *process,
           const char   *function)
{
  g_autoptr(GSocketConnection) connection = run_ok (process, function);
  g_autofree char *text = afork_test_read_connection (connection);
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
