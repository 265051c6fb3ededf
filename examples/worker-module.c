/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The child's side of worker.c.
 *
 * A run function receives the child's view of itself, an AforkChild. Its
 * socket is connected to the connection the parent got back from
 * afork_process_run_finish(); whatever is written here arrives there. When
 * the function returns, the process exits.
 *
 * Run functions are found by name, so they must be exported: the module is
 * built with hidden visibility and G_MODULE_EXPORT marks the one symbol the
 * server looks up. */
#include <afork/afork.h>
#include <gmodule.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

G_MODULE_EXPORT void example_worker_run (AforkChild *child);

void
example_worker_run (AforkChild *child)
{
  int fd = afork_child_get_fd (child);
  g_autofree char *greeting = NULL;
  const char *p;
  gsize left;

  greeting = g_strdup_printf ("Hello from worker %d\n", (int) getpid ());

  for (p = greeting, left = strlen (greeting); left > 0;)
    {
      ssize_t n = write (fd, p, left);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      p += n;
      left -= n;
    }
}
