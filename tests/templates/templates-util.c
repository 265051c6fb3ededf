/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "templates-util.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

/* Reads @fd to its end, failing the test if that takes longer than the
 * bound (a child kept it open). */
char *
templates_read_fd_to_eof (int fd)
{
  GString *out = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + TEMPLATES_WAIT_SECONDS * G_USEC_PER_SEC;

  for (;;)
    {
      struct pollfd pfd = { fd, POLLIN, 0 };
      char buf[4096];
      gssize n;
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);

      if (left <= 0)
        g_error ("descriptor %d did not reach end of file in time", fd);
      if (poll (&pfd, 1, left) <= 0)
        continue;

      n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >=, 0);
      if (n == 0)
        break;
      g_string_append_len (out, buf, n);
    }

  return g_string_free (out, FALSE);
}

char *
templates_read_connection (GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  int fd = g_socket_get_fd (socket);
  gboolean blocking = g_socket_get_blocking (socket);
  char *data;

  g_socket_set_blocking (socket, TRUE);
  data = templates_read_fd_to_eof (fd);
  g_socket_set_blocking (socket, blocking);

  return data;
}

void
templates_assert_fd_eof_soon (int fd)
{
  g_autofree char *rest = templates_read_fd_to_eof (fd);

  (void) rest;
}
