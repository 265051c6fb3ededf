/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* afork-server's main(): the arguments the library starts it with, and the
 * memory its process title is written to. The command loop is in the
 * library (afork-server.c), shared with the early and fork-self
 * templates. */

#include "afork-server-private.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static gboolean
parse_int (const char *str,
           gint64      min,
           gint64      max,
           gint64     *out)
{
  return str != NULL && g_ascii_string_to_signed (str, 10, min, max, out, NULL);
}

int
main (int    argc,
      char **argv)
{
  gint64 fd = -1, owner = 0, protocol = -1;
  struct stat st;

  setlocale (LC_ALL, "");
  _afork_i18n_init ();

  for (int i = 1; i < argc; i++)
    {
      gint64 *target = NULL;

      if (g_str_equal (argv[i], "--fd"))
        target = &fd;
      else if (g_str_equal (argv[i], "--owner"))
        target = &owner;
      else if (g_str_equal (argv[i], "--protocol"))
        target = &protocol;

      if (target == NULL || i + 1 >= argc ||
          !parse_int (argv[i + 1], 0, G_MAXINT, target))
        {
          g_printerr (_("Usage: %s --fd FD --owner PID --protocol %d\n"
                        "afork-server is started by the afork library; it is not "
                        "meant to be run by hand.\n"),
                      argv[0], AFORK_WIRE_PROTOCOL_VERSION);
          return 2;
        }
      i++;
    }

  if (fd < 0 || protocol < 0)
    {
      g_printerr (_("afork-server: --fd and --protocol are required\n"));
      return 2;
    }

  if (protocol != AFORK_WIRE_PROTOCOL_VERSION)
    {
      g_printerr (_("afork-server: protocol version %d requested, but this server "
                    "speaks version %d\n"),
                  (int) protocol, AFORK_WIRE_PROTOCOL_VERSION);
      return 2;
    }

  if (fstat ((int) fd, &st) != 0 || !S_ISSOCK (st.st_mode))
    {
      g_printerr (_("afork-server: descriptor %d is not a socket\n"), (int) fd);
      return 2;
    }
  else
    {
      int domain = -1;
      socklen_t dlen = sizeof domain;

      if (getsockopt ((int) fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0 ||
          domain != AF_UNIX)
        {
          g_printerr (_("afork-server: descriptor %d is not a unix socket\n"), (int) fd);
          return 2;
        }
    }

  /* Keep the socket at 3 and close everything else inherited besides
   * stdio: a spawn with inherited descriptors is fast, and this is where
   * the cost of that is paid. */
  if (fd != 3)
    {
      if (dup2 ((int) fd, 3) < 0)
        {
          g_printerr (_("afork-server: cannot move the socket: %s\n"), g_strerror (errno));
          return 2;
        }
    }
  _afork_close_fds_from (4);
  fcntl (3, F_SETFD, FD_CLOEXEC);

  _afork_server_set_title_area (argv[0],
                                (argv[argc - 1] + strlen (argv[argc - 1]) + 1) - argv[0]);
  _afork_server_set_title ("afork-server", owner, "template");

  _afork_server_serve (3, (GPid) owner);
}
