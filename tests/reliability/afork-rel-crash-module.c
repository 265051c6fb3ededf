/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A module whose constructor crashes: loading it kills the process that
 * requires it. */
#include <signal.h>
#include <unistd.h>

void afork_rel_crash_module_init (void) __attribute__((constructor));

void
afork_rel_crash_module_init (void)
{
  signal (SIGSEGV, SIG_DFL);
  raise (SIGSEGV);
  _exit (99);
}
