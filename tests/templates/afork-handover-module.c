/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run functions for the hand-over tests: a process that takes over other
 * processes through their connections and runs them. */
#include <afork/afork.h>

#include "afork-test-io.h"

#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Writes its first string argument into its first descriptor argument. */
EXPORT void handover_run_write_arg (AforkChild *child);
void
handover_run_write_arg (AforkChild *child)
{
  const char *arg = NULL;
  int fd = -1;

  for (guint i = 0; i < afork_child_get_n_args (child); i++)
    {
      if (afork_child_arg_is_fd (child, i) && fd < 0)
        fd = afork_child_peek_fd (child, i);
      else if (!afork_child_arg_is_fd (child, i) && arg == NULL)
        arg = afork_child_get_arg (child, i, NULL);
    }

  if (fd >= 0 && arg != NULL && !afork_test_write_all (fd, arg, strlen (arg)))
    _exit (1);
}

/* Arguments: the connections of two processes, then a pipe. Makes each
 * process write "172" and "174" into the pipe. Reports "ok" or the error
 * on its own socket. */
EXPORT void handover_run_tofrom (AforkChild *child);
void
handover_run_tofrom (AforkChild *child)
{
  const char *values[] = { "172", "174" };
  g_autoptr(GError) error = NULL;
  int pipe_fd = afork_child_peek_fd (child, 2);
  GString *report = g_string_new (NULL);

  for (guint i = 0; i < 2 && error == NULL; i++)
    {
      g_autoptr(AforkProcess) process = afork_process_new_from_fd (afork_child_peek_fd (child, i),
                                                                   &error);
      g_autoptr(GSocketConnection) connection = NULL;

      if (process == NULL)
        break;

      afork_process_send_fd (afork_process_send_arg (process, values[i]), pipe_fd);
      connection = afork_process_run (process, "handover_run_write_arg", NULL, &error);
    }

  g_string_append (report, error ? error->message : "ok");
  if (!afork_test_write_all (afork_child_get_fd (child), report->str, report->len))
    _exit (1);
  g_string_free (report, TRUE);
}
