/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A module that uses only the AforkChild API and the C library, built
 * without linking libafork-1: the server it is loaded into provides the
 * afork_child_* functions. Its run function reports its arguments and
 * whether libafork-1 is mapped in the process. */
#include <afork/afork.h>

#include "afork-test-io.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Whether /proc/self/maps names @library. */
static gboolean
mapped (const char *library)
{
  static char maps[1 << 20];
  size_t len = 0;
  ssize_t n;
  int fd = open ("/proc/self/maps", O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return FALSE;
  while (len < sizeof maps - 1 && (n = read (fd, maps + len, sizeof maps - 1 - len)) > 0)
    len += (size_t) n;
  close (fd);
  maps[len] = '\0';

  return strstr (maps, library) != NULL;
}

static void
say (AforkChild *child,
     const char *text)
{
  afork_test_write_all (afork_child_get_fd (child), text, strlen (text));
}

/* Writes "args N", then "s VALUE" for each string argument, then
 * "libafork yes" or "libafork no". */
EXPORT void lean_run_report (AforkChild *child);
void
lean_run_report (AforkChild *child)
{
  char line[256];
  guint n = afork_child_get_n_args (child);

  snprintf (line, sizeof line, "args %u\n", n);
  say (child, line);
  for (guint i = 0; i < n; i++)
    if (!afork_child_arg_is_fd (child, i))
      {
        snprintf (line, sizeof line, "s %s\n", afork_child_get_arg (child, i, NULL));
        say (child, line);
      }
  say (child, mapped ("libafork-1.so") ? "libafork yes\n" : "libafork no\n");
}
