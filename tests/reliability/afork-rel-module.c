/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run and call functions for the reliability tests: processes that report
 * their pid, wait, die or crash at a chosen step. */
#include <afork/afork.h>

#include "afork-test-io.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static void
write_pid (int fd)
{
  char line[32];
  int len = snprintf (line, sizeof line, "pid %d\n", (int) getpid ());

  afork_test_write_all (fd, line, (size_t) len);
}

static void
crash (void)
{
  signal (SIGSEGV, SIG_DFL);
  raise (SIGSEGV);
  _exit (99);
}

/* Writes "pid N\n" on the socket and returns (the process exits). */
EXPORT void rel_run_pid (AforkChild *child);
void
rel_run_pid (AforkChild *child)
{
  write_pid (afork_child_get_fd (child));
}

/* Writes "pid N\n", then echoes what it reads until end of file. */
EXPORT void rel_run_echo (AforkChild *child);
void
rel_run_echo (AforkChild *child)
{
  int fd = afork_child_get_fd (child);
  char buf[4096];
  ssize_t n;

  write_pid (fd);
  while ((n = read (fd, buf, sizeof buf)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      afork_test_write_all (fd, buf, (size_t) n);
    }
}

/* Returns at once, saying nothing. */
EXPORT void rel_run_exit (AforkChild *child);
void
rel_run_exit (G_GNUC_UNUSED AforkChild *child)
{
}

/* Dies of SIGSEGV right after the acknowledgement. */
EXPORT void rel_run_crash (AforkChild *child);
void
rel_run_crash (G_GNUC_UNUSED AforkChild *child)
{
  crash ();
}

/* Writes "pid N\n" into the last descriptor argument, which it takes and
 * closes, so that a test learns the pid of a process in preparation. */
EXPORT gboolean rel_call_report_pid (AforkChild *, const char * const *, GError **);
gboolean
rel_call_report_pid (AforkChild          *child,
                     G_GNUC_UNUSED const char * const *args,
                     GError             **error)
{
  guint n = afork_child_get_n_args (child);

  for (guint i = n; i > 0; i--)
    if (afork_child_arg_is_fd (child, i - 1))
      {
        int fd = afork_child_steal_fd (child, i - 1);

        if (fd < 0)
          continue;
        write_pid (fd);
        close (fd);
        afork_child_clear_args (child);
        return TRUE;
      }

  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "no descriptor to report the pid into");
  return FALSE;
}

/* Kills its own process with SIGKILL. */
EXPORT gboolean rel_call_die (AforkChild *, const char * const *, GError **);
gboolean
rel_call_die (G_GNUC_UNUSED AforkChild *child,
              G_GNUC_UNUSED const char * const *args,
              G_GNUC_UNUSED GError **error)
{
  kill (getpid (), SIGKILL);
  pause ();
  return TRUE;
}

/* Crashes with SIGSEGV. */
EXPORT gboolean rel_call_crash (AforkChild *, const char * const *, GError **);
gboolean
rel_call_crash (G_GNUC_UNUSED AforkChild *child,
                G_GNUC_UNUSED const char * const *args,
                G_GNUC_UNUSED GError **error)
{
  crash ();
  return TRUE;
}

/* Exits with status 3, as a call function that calls exit() would. */
EXPORT gboolean rel_call_exit (AforkChild *, const char * const *, GError **);
gboolean
rel_call_exit (G_GNUC_UNUSED AforkChild *child,
               G_GNUC_UNUSED const char * const *args,
               G_GNUC_UNUSED GError **error)
{
  _exit (3);
  return TRUE;
}

/* Stops its own process with SIGSTOP: the test then kills it while it is
 * inside the call. */
EXPORT gboolean rel_call_stop (AforkChild *, const char * const *, GError **);
gboolean
rel_call_stop (G_GNUC_UNUSED AforkChild *child,
               G_GNUC_UNUSED const char * const *args,
               G_GNUC_UNUSED GError **error)
{
  raise (SIGSTOP);
  return TRUE;
}
