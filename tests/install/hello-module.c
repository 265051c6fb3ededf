/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A module built against an installed afork with its pkg-config file. */
#include <afork/afork.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((visibility("default"))) void hello_run (AforkChild *child);

void
hello_run (AforkChild *child)
{
  char line[256];
  const char *name = afork_child_get_n_args (child) > 0 ?
                     afork_child_get_arg (child, 0, NULL) : "nobody";
  int len = snprintf (line, sizeof line, "hello %s from %d\n", name, (int) getpid ());

  if (write (afork_child_get_fd (child), line, (size_t) len) != len)
    _exit (1);
}
