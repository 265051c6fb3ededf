/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Run and call functions for the reliability tests: processes that report
 * their pid, wait, die or crash at a chosen step. */
#include <afork/afork.h>

#include "afork-test-io.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* Writes "nofile N fd F\n", its soft limit of open files and the number
 * of its socket, then waits for end of file. */
EXPORT void rel_run_nofile (AforkChild *child);
void
rel_run_nofile (AforkChild *child)
{
  int fd = afork_child_get_fd (child);
  struct rlimit limit;
  char line[64];
  int len;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    return;
  len = snprintf (line, sizeof line, "nofile %llu fd %d\n", (unsigned long long) limit.rlim_cur, fd);
  afork_test_write_all (fd, line, (size_t) len);
  for (;;)
    {
      ssize_t n = read (fd, line, sizeof line);

      if (n == 0 || (n < 0 && errno != EINTR))
        break;
    }
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

/* Sets the soft limit of open files to its argument. */
EXPORT gboolean rel_call_set_nofile (AforkChild *, const char * const *, GError **);
gboolean
rel_call_set_nofile (G_GNUC_UNUSED AforkChild *child,
                     const char * const       *args,
                     GError                  **error)
{
  struct rlimit limit;

  if (args == NULL || args[0] == NULL || getrlimit (RLIMIT_NOFILE, &limit) != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "no limit given");
      return FALSE;
    }
  limit.rlim_cur = g_ascii_strtoull (args[0], NULL, 10);
  if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (errno), g_strerror (errno));
      return FALSE;
    }

  return TRUE;
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

/* Tells the test the call is done: writes to each descriptor argument,
 * then puts /dev/null in its place, so that its number stays taken. */
static void
signal_done (AforkChild *child)
{
  for (guint i = 0; i < afork_child_get_n_args (child); i++)
    if (afork_child_arg_is_fd (child, i))
      {
        int fd = afork_child_steal_fd (child, i);
        int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);

        afork_test_write_all (fd, "done\n", 5);
        if (null >= 0)
          {
            dup3 (null, fd, O_CLOEXEC);
            close (null);
          }
      }
  afork_child_clear_args (child);
}

/* Resource limits of the process the call runs in (a template): with
 * "tight", RLIMIT_NOFILE leaves room for two more descriptors only (the
 * socket and status channel of the next fork request, and no pipe), and
 * the descriptor arguments are told when that is so; with "restore", the
 * soft limit goes back to the hard one. */
EXPORT gboolean rel_call_limit_fds (AforkChild *, const char * const *, GError **);
gboolean
rel_call_limit_fds (AforkChild          *child,
                    const char * const  *args,
                    GError             **error)
{
  struct rlimit limit;
  int highest = 2;
  GDir *dir;
  const char *name;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    goto failed;

  if (args[0] != NULL && g_str_equal (args[0], "restore"))
    {
      limit.rlim_cur = limit.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
        goto failed;
      signal_done (child);
      return TRUE;
    }

  dir = g_dir_open ("/proc/self/fd", 0, error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    highest = MAX (highest, atoi (name));
  g_dir_close (dir);
  /* The directory's own descriptor was listed too. */
  while (highest > 2 && fcntl (highest, F_GETFD) < 0)
    highest--;

  /* Fill the holes below, so that exactly two numbers are left. */
  for (int fd = 0; fd < highest; fd++)
    if (fcntl (fd, F_GETFD) < 0 && errno == EBADF)
      {
        int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);

        if (null >= 0 && null != fd)
          {
            dup3 (null, fd, O_CLOEXEC);
            close (null);
          }
      }

  limit.rlim_cur = (rlim_t) highest + 1 + 2;
  if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
    goto failed;
  signal_done (child);
  return TRUE;

failed:
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "limit: %s", g_strerror (errno));
  return FALSE;
}

/* With "tight", no fork() succeeds in this process any more: RLIMIT_NPROC
 * is 0 (root is exempt, so a process of root becomes nobody first); with
 * "restore", the soft limit goes back to the hard one. */
EXPORT gboolean rel_call_limit_procs (AforkChild *, const char * const *, GError **);
gboolean
rel_call_limit_procs (AforkChild          *child,
                      const char * const  *args,
                      GError             **error)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NPROC, &limit) != 0)
    goto failed;

  if (args[0] != NULL && g_str_equal (args[0], "restore"))
    limit.rlim_cur = limit.rlim_max;
  else
    {
      if (geteuid () == 0 &&
          (setgroups (0, NULL) != 0 || setresgid (65534, 65534, 65534) != 0 ||
           setresuid (65534, 65534, 65534) != 0))
        goto failed;
      limit.rlim_cur = 0;
    }

  if (setrlimit (RLIMIT_NPROC, &limit) != 0)
    goto failed;
  signal_done (child);
  return TRUE;

failed:
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "limit: %s", g_strerror (errno));
  return FALSE;
}

/* Closes every descriptor argument, as a call function that is done with
 * them does. */
EXPORT gboolean rel_call_close_fds (AforkChild *, const char * const *, GError **);
gboolean
rel_call_close_fds (AforkChild                       *child,
                    G_GNUC_UNUSED const char * const *args,
                    G_GNUC_UNUSED GError            **error)
{
  for (guint i = 0; i < afork_child_get_n_args (child); i++)
    if (afork_child_arg_is_fd (child, i))
      {
        int fd = afork_child_steal_fd (child, i);

        if (fd >= 0)
          close (fd);
      }
  afork_child_clear_args (child);

  return TRUE;
}

/* A child the call function starts itself, and reaps in a later call:
 * nobody else may reap it meanwhile. */
static pid_t own_child = -1;

EXPORT gboolean rel_call_spawn (AforkChild *, const char * const *, GError **);
gboolean
rel_call_spawn (G_GNUC_UNUSED AforkChild         *child,
                G_GNUC_UNUSED const char * const *args,
                GError                          **error)
{
  siginfo_t info;

  own_child = fork ();
  if (own_child < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "fork: %s", g_strerror (errno));
      return FALSE;
    }
  if (own_child == 0)
    _exit (7);

  /* Returns once it exited (its SIGCHLD is on its way), without reaping. */
  memset (&info, 0, sizeof info);
  while (waitid (P_PID, own_child, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR)
    ;

  return TRUE;
}

EXPORT gboolean rel_call_reap (AforkChild *, const char * const *, GError **);
gboolean
rel_call_reap (G_GNUC_UNUSED AforkChild         *child,
               G_GNUC_UNUSED const char * const *args,
               GError                          **error)
{
  int status = 0;
  pid_t res;

  do
    res = waitpid (own_child, &status, 0);
  while (res < 0 && errno == EINTR);

  if (res != own_child || !WIFEXITED (status) || WEXITSTATUS (status) != 7)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "the call's own child %d was reaped by someone else: %s",
                   (int) own_child, res < 0 ? g_strerror (errno) : "wrong status");
      return FALSE;
    }

  return TRUE;
}

/* Opens a descriptor without close-on-exec, as careless code does, at a
 * number given as the argument. */
EXPORT gboolean rel_call_open_inheritable (AforkChild *, const char * const *, GError **);
gboolean
rel_call_open_inheritable (G_GNUC_UNUSED AforkChild *child,
                           const char * const       *args,
                           GError                  **error)
{
  int at = args[0] != NULL ? atoi (args[0]) : 100;
  int fd;

  /* Never over a descriptor in use. */
  if (fcntl (at, F_GETFD) >= 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "descriptor %d is in use", at);
      return FALSE;
    }
  fd = open ("/dev/null", O_RDONLY);
  if (fd < 0 || dup2 (fd, at) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "open: %s", g_strerror (errno));
      return FALSE;
    }
  close (fd);

  return TRUE;
}

/* Writes the signal state of the process, the lines SigBlk, SigIgn and
 * SigCgt of /proc/self/status ("SigBlk:\t0000000000000000\n"...). */
EXPORT void rel_run_signal_state (AforkChild *child);
void
rel_run_signal_state (AforkChild *child)
{
  g_autofree char *status = NULL;
  g_autoptr(GString) out = g_string_new (NULL);
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return;
  lines = g_strsplit (status, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "SigBlk:") || g_str_has_prefix (lines[i], "SigIgn:") ||
        g_str_has_prefix (lines[i], "SigCgt:"))
      g_string_append_printf (out, "%s\n", lines[i]);

  afork_test_write_all (afork_child_get_fd (child), out->str, out->len);
}

/* The log of the "record" calls: where a template reports the commands it
 * received, one line of REL_LOG_LINE bytes each. */
static int log_fd = -1;

/* Keeps the descriptor argument as the log. */
EXPORT gboolean rel_call_log_open (AforkChild *, const char * const *, GError **);
gboolean
rel_call_log_open (AforkChild                       *child,
                   G_GNUC_UNUSED const char * const *args,
                   G_GNUC_UNUSED GError            **error)
{
  for (guint i = 0; i < afork_child_get_n_args (child) && log_fd < 0; i++)
    if (afork_child_arg_is_fd (child, i))
      log_fd = afork_child_steal_fd (child, i);
  afork_child_clear_args (child);

  return TRUE;
}

/* args: a sequence number, a length and a payload of that length, whose
 * byte i must be 'a' + (number + i) % 26. Logs "%08u ok\n" when it is, "%08u no\n" when
 * it is not: a command cut, mixed with another or duplicated shows. */
EXPORT gboolean rel_call_log_record (AforkChild *, const char * const *, GError **);
gboolean
rel_call_log_record (G_GNUC_UNUSED AforkChild *child,
                     const char * const       *args,
                     G_GNUC_UNUSED GError    **error)
{
  guint number = 0;
  gboolean ok = (args[0] != NULL && args[1] != NULL && args[2] != NULL &&
                 args[3] == NULL);
  char line[16];

  if (ok)
    {
      number = (guint) strtoul (args[0], NULL, 10);
      ok = strlen (args[2]) == strtoul (args[1], NULL, 10);
    }
  if (ok)
    {
      for (gsize i = 0; args[2][i] != '\0'; i++)
        if (args[2][i] != (char) ('a' + (number + i) % 26))
          {
            ok = FALSE;
            break;
          }
    }
  snprintf (line, sizeof line, "%08u %s\n", number % 100000000, ok ? "ok" : "no");
  afork_test_write_all (log_fd, line, 12);

  return TRUE;
}

/* Closes the log. */
EXPORT gboolean rel_call_log_close (AforkChild *, const char * const *, GError **);
gboolean
rel_call_log_close (G_GNUC_UNUSED AforkChild         *child,
                    G_GNUC_UNUSED const char * const *args,
                    G_GNUC_UNUSED GError            **error)
{
  if (log_fd >= 0)
    close (log_fd);
  log_fd = -1;

  return TRUE;
}
