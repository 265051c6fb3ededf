/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The child's side of pool.c: one server of the pool.
 *
 * Its run arguments are the listening socket, which every worker inherited
 * from the pool template, then the worker's own id. It answers each
 * connection with one line naming itself, and stops when the parent closes
 * the afork connection: it watches both sockets with poll().
 *
 * All workers wait on the same listening socket and the kernel wakes them
 * all; the ones that lose the race get EAGAIN from accept() (the socket is
 * non-blocking) and go back to waiting.
 *
 * The line a worker answers with is for the parent to parse and is never
 * translated; its own error message is, in the module's text domain,
 * which it binds when it is loaded. */
#include <afork/afork.h>
#include <glib/gi18n-lib.h>
#include <gmodule.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

G_MODULE_EXPORT const char *g_module_check_init (GModule *module);
G_MODULE_EXPORT void example_pool_run (AforkChild *child);

const char *
g_module_check_init (G_GNUC_UNUSED GModule *module)
{
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");

  return NULL;
}

static void
write_all (int         fd,
           const char *data,
           gsize       len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, data, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      data += n;
      len -= n;
    }
}

/* Has the parent closed its end of the afork connection? */
static gboolean
parent_gone (int fd)
{
  char buf[64];
  ssize_t n;

  do
    n = recv (fd, buf, sizeof buf, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);

  /* End of stream or an error: the parent is gone. Data: ignore it. */
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

void
example_pool_run (AforkChild *child)
{
  struct pollfd fds[2];
  const char *id;
  int listener;

  if (afork_child_get_n_args (child) != 2 ||
      !afork_child_arg_is_fd (child, 0) ||
      afork_child_arg_is_fd (child, 1))
    {
      g_printerr (_("example_pool_run: expected a listening socket and an id\n"));
      return;
    }

  listener = afork_child_peek_fd (child, 0);
  id = afork_child_get_arg (child, 1, NULL);

  fds[0].fd = afork_child_get_fd (child);
  fds[0].events = POLLIN;
  fds[1].fd = listener;
  fds[1].events = POLLIN;

  for (;;)
    {
      if (poll (fds, G_N_ELEMENTS (fds), -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return;
        }

      if (fds[0].revents != 0 && parent_gone (fds[0].fd))
        return;

      if (fds[1].revents & POLLIN)
        {
          char line[64];
          int client = accept4 (listener, NULL, NULL, SOCK_CLOEXEC);

          if (client < 0)
            continue;   /* another worker took it (EAGAIN), or it went away */

          /* For the parent to parse: not translated. */
          g_snprintf (line, sizeof line, "worker %s pid %d\n", id, (int) getpid ());
          write_all (client, line, strlen (line));
          close (client);
        }
      else if (fds[1].revents != 0)
        return;   /* the listening socket broke */
    }
}
