/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run functions of the benchmark, loaded into a template once (a user
 * template) or into every child (to measure the cost of loading). */
#include <afork/afork.h>

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Exits at once: the parent sees the end of its socket. */
EXPORT void bench_run_exit (AforkChild *child);
void
bench_run_exit (G_GNUC_UNUSED AforkChild *child)
{
  _exit (0);
}

/* Sends one byte, the first thing the parent hears from the function, then
 * exits. */
EXPORT void bench_run_byte (AforkChild *child);
void
bench_run_byte (AforkChild *child)
{
  ssize_t res;

  do
    res = send (afork_child_get_fd (child), "x", 1, MSG_NOSIGNAL);
  while (res < 0 && errno == EINTR);

  _exit (0);
}
