/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The run functions of the Python and GJS examples. A module is an
 * ordinary shared library; afork finds its functions by name, so each
 * one is exported. Load it with require ("afork-example"). */
#include <afork/afork.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define EXAMPLE_EXPORT __attribute__((visibility("default")))

static gboolean
write_all (int         fd,
           const char *data,
           gsize       len)
{
  while (len > 0)
    {
      ssize_t res = write (fd, data, len);

      if (res < 0 && errno == EINTR)
        continue;
      if (res <= 0)
        return FALSE;
      data += res;
      len -= res;
    }

  return TRUE;
}

static gboolean
write_line (int         fd,
            const char *format,
            ...) G_GNUC_PRINTF (2, 3);

static gboolean
write_line (int         fd,
            const char *format,
            ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);

  return write_all (fd, line, strlen (line));
}

/* A single worker. It greets the parent, then answers every line it
 * reads with the line in upper case, until the parent closes its side. */
EXAMPLE_EXPORT void example_worker (AforkChild *child);
void
example_worker (AforkChild *child)
{
  int fd = afork_child_get_fd (child);
  g_autoptr(GString) pending = g_string_new (NULL);
  char buf[4096];
  ssize_t n;

  if (!write_line (fd, "hello from worker %d\n", (int) getpid ()))
    return;

  while ((n = read (fd, buf, sizeof buf)) != 0)
    {
      char *newline;

      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return;
        }

      g_string_append_len (pending, buf, n);
      while ((newline = memchr (pending->str, '\n', pending->len)) != NULL)
        {
          gsize len = newline - pending->str;
          g_autofree char *upper = g_ascii_strup (pending->str, len);

          if (!write_line (fd, "%s\n", upper))
            return;
          g_string_erase (pending, 0, len + 1);
        }
    }
}

/* A server of a pool. Its run arguments are the listening socket, sent
 * to the pool's template, then the worker's number, sent to the worker
 * itself. Every worker of the pool accepts on the same socket, greets
 * each client with its number and pid, and leaves when the parent closes
 * its connection, saying goodbye. */
EXAMPLE_EXPORT void example_pool_server (AforkChild *child);
void
example_pool_server (AforkChild *child)
{
  int control = afork_child_get_fd (child);
  int listener = -1;
  const char *id = NULL;
  guint served = 0;

  for (guint i = 0; i < afork_child_get_n_args (child); i++)
    {
      if (afork_child_arg_is_fd (child, i))
        listener = afork_child_peek_fd (child, i);
      else
        id = afork_child_get_arg (child, i, NULL);
    }

  if (listener < 0 || id == NULL)
    {
      write_line (control, "error: expected a listening socket and a number\n");
      return;
    }

  /* Every worker wakes up when a client arrives; the kernel hands the
   * client to one of them, and the others must not block in accept(). */
  fcntl (listener, F_SETFL, fcntl (listener, F_GETFL) | O_NONBLOCK);

  write_line (control, "worker %s ready\n", id);

  for (;;)
    {
      struct pollfd fds[2] = {
        { listener, POLLIN, 0 },
        { control, POLLIN, 0 },
      };

      if (poll (fds, G_N_ELEMENTS (fds), -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }

      if (fds[1].revents != 0)
        {
          char byte;

          /* The parent sends nothing: readable means it closed its side. */
          if (read (control, &byte, 1) <= 0)
            break;
        }

      if (fds[0].revents & POLLIN)
        {
          int client = accept4 (listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

          if (client < 0)
            continue;
          served++;
          write_line (client, "served by worker %s, pid %d\n", id, (int) getpid ());
          close (client);
        }
    }

  write_line (control, "worker %s served %u clients\n", id, served);
}

/* A faster fork+exec. Its run arguments are the file descriptor to use as
 * standard output, then the program and its arguments. Standard error
 * goes to the connection to the parent, so the parent reads it from the
 * connection that run returns. */
EXAMPLE_EXPORT void example_exec (AforkChild *child);
void
example_exec (AforkChild *child)
{
  guint n_args = afork_child_get_n_args (child);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  int output;

  if (n_args < 2 || !afork_child_arg_is_fd (child, 0))
    {
      write_line (afork_child_get_fd (child),
                  "example_exec: expected a descriptor and a command\n");
      return;
    }

  for (guint i = 1; i < n_args; i++)
    {
      if (afork_child_arg_is_fd (child, i))
        continue;
      g_ptr_array_add (argv, (char *) afork_child_get_arg (child, i, NULL));
    }
  g_ptr_array_add (argv, NULL);

  /* dup2() clears close-on-exec on the copies, so the program gets them. */
  output = afork_child_peek_fd (child, 0);
  if (dup2 (output, STDOUT_FILENO) < 0 ||
      dup2 (afork_child_get_fd (child), STDERR_FILENO) < 0)
    {
      write_line (afork_child_get_fd (child), "example_exec: dup2: %s\n",
                  g_strerror (errno));
      return;
    }

  execvp (argv->pdata[0], (char **) argv->pdata);

  /* Standard error is the connection: the parent reads why. */
  fprintf (stderr, "example_exec: cannot run %s: %s\n",
           (const char *) argv->pdata[0], g_strerror (errno));
  fflush (stderr);
  _exit (127);
}

/* The pool functions of calls.py and calls.js are those of the C example,
 * examples/calls-module.c, built into this module too. */
