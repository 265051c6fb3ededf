/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A module of probes for sandboxed processes: each probe tries one thing
 * a sandbox may forbid, in a process forked for it (so that a probe that
 * succeeds changes nothing of the process under test), and yields 0 or the
 * errno of the failure. Built against the headers only: it uses the
 * AforkChild API and the C library.
 *
 * Probes:
 *   open:PATH        open (PATH, O_RDONLY)
 *   create:PATH      open (PATH, O_WRONLY | O_CREAT)
 *   fd:N             read one byte from the descriptor argument N
 *   socket-inet      socket (AF_INET, SOCK_STREAM)
 *   socket-unix      socket (AF_UNIX, SOCK_STREAM)
 *   ptrace           PTRACE_ATTACH to a child of the probe
 *   unshare-user     unshare (CLONE_NEWUSER)
 *   clone-newuser    clone with CLONE_NEWUSER
 *   exec:PATH        execv (PATH), which must exit 0
 *   malloc:BYTES     malloc (BYTES), ENOMEM for NULL
 *   fork             fork a child that exits 0
 */
#include <afork/afork.h>

#include "afork-test-io.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

static int
wait_exit_code (pid_t pid)
{
  int status = 0;

  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return errno;

  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 200 + (WIFSIGNALED (status) ? WTERMSIG (status) : 0);
}

static int
probe_ptrace (void)
{
  pid_t pid = fork ();
  int res, saved_errno;

  if (pid < 0)
    return errno;
  if (pid == 0)
    {
      pause ();
      _exit (0);
    }

  res = (int) ptrace (PTRACE_ATTACH, pid, NULL, NULL);
  saved_errno = errno;
  if (res == 0)
    {
      waitpid (pid, NULL, 0);
      ptrace (PTRACE_DETACH, pid, NULL, NULL);
    }
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);

  return res == 0 ? 0 : saved_errno;
}

static int
probe_clone_newuser (void)
{
  long pid = syscall (SYS_clone, (unsigned long) (CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, NULL);

  if (pid < 0)
    return errno;
  if (pid == 0)
    _exit (0);

  return wait_exit_code ((pid_t) pid);
}

/* Runs in the forked process; returns its exit code. */
static int
probe_in_child (AforkChild *child,
                const char *probe)
{
  if (g_str_has_prefix (probe, "open:"))
    {
      int fd = open (probe + 5, O_RDONLY | O_CLOEXEC);
      return fd >= 0 ? 0 : errno;
    }
  if (g_str_has_prefix (probe, "create:"))
    {
      int fd = open (probe + 7, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      return fd >= 0 ? 0 : errno;
    }
  if (g_str_has_prefix (probe, "fd:"))
    {
      int fd = afork_child_peek_fd (child, (guint) atoi (probe + 3));
      char byte;

      if (fd < 0)
        return EBADF;
      if (pread (fd, &byte, 1, 0) == 1)
        return 0;
      if (errno != ESPIPE)
        return errno;
      return read (fd, &byte, 1) == 1 ? 0 : (errno != 0 ? errno : ENODATA);
    }
  if (g_str_equal (probe, "socket-inet"))
    return socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0 ? 0 : errno;
  if (g_str_equal (probe, "socket-unix"))
    return socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0 ? 0 : errno;
  if (g_str_equal (probe, "ptrace"))
    return probe_ptrace ();
  if (g_str_equal (probe, "unshare-user"))
    return unshare (CLONE_NEWUSER) == 0 ? 0 : errno;
  if (g_str_equal (probe, "clone-newuser"))
    return probe_clone_newuser ();
  if (g_str_has_prefix (probe, "exec:"))
    {
      char *argv[] = { (char *) probe + 5, NULL };

      execv (argv[0], argv);
      return errno;
    }
  if (g_str_has_prefix (probe, "malloc:"))
    {
      void *p = malloc ((size_t) g_ascii_strtoull (probe + 7, NULL, 10));
      int res = p != NULL ? 0 : ENOMEM;

      free (p);
      return res;
    }
  if (g_str_equal (probe, "fork"))
    {
      pid_t pid = fork ();

      if (pid < 0)
        return errno;
      if (pid == 0)
        _exit (0);
      return wait_exit_code (pid);
    }

  return 255;
}

static int
probe (AforkChild *child,
       const char *what)
{
  pid_t pid = fork ();

  if (pid < 0)
    return 250;
  if (pid == 0)
    _exit (probe_in_child (child, what));

  return wait_exit_code (pid);
}

static const char *
result_name (int res,
             char buf[32])
{
  switch (res)
    {
    case 0: return "ok";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOMEM: return "ENOMEM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    default:
      snprintf (buf, 32, "%d", res);
      return buf;
    }
}

/* The run function: for each string argument, a probe, writes
 * "PROBE RESULT" and a newline; then "end". */
EXPORT void sandbox_probe_run (AforkChild *child);
void
sandbox_probe_run (AforkChild *child)
{
  guint n = afork_child_get_n_args (child);
  int sock = afork_child_get_fd (child);

  for (guint i = 0; i < n; i++)
    if (!afork_child_arg_is_fd (child, i))
      {
        const char *what = afork_child_get_arg (child, i, NULL);
        char buf[32];
        g_autofree char *line = g_strdup_printf ("%s %s\n", what,
                                                 result_name (probe (child, what), buf));

        afork_test_write_all (sock, line, strlen (line));
      }
  afork_test_write_all (sock, "end\n", 4);
}

/* The call function, for the sandboxed process itself: arguments in
 * pairs, a probe and the result it must have. */
EXPORT gboolean sandbox_probe_call (AforkChild         *child,
                                    const char * const *args,
                                    GError            **error);
gboolean
sandbox_probe_call (AforkChild         *child,
                    const char * const *args,
                    GError            **error)
{
  for (guint i = 0; args[i] != NULL && args[i + 1] != NULL; i += 2)
    {
      char buf[32];
      const char *got = result_name (probe (child, args[i]), buf);

      if (!g_str_equal (got, args[i + 1]))
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                       "probe %s: %s, expected %s", args[i], got, args[i + 1]);
          return FALSE;
        }
    }

  return TRUE;
}

/* Burns CPU time until it is killed. */
EXPORT void sandbox_spin_run (AforkChild *child);
void
sandbox_spin_run (AforkChild *child)
{
  volatile guint64 n = 0;

  afork_test_write_all (afork_child_get_fd (child), "spinning\n", 9);
  for (;;)
    n++;
}
