/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A program built against an installed afork with its pkg-config file:
 * it checks where the library looks for its server, then runs a function
 * of a module in a fork of the default template and in a fresh server. */
#include <afork/afork.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if !AFORK_CHECK_VERSION (1, 0, 0)
# error "afork 1.0.0 or later is required"
#endif

static gboolean
run_hello (AforkProcess  *process,
           const char    *module,
           const char    *name,
           GError       **error)
{
  g_autoptr(GSocketConnection) connection = NULL;
  g_autofree char *expected = NULL;
  char buf[256];
  gsize got = 0;
  gssize n = 0;

  connection = afork_process_run (afork_process_send_arg (afork_process_require (process, module),
                                                          name),
                                  "hello_run", NULL, error);
  if (connection == NULL)
    return FALSE;

  while (got < sizeof buf - 1 &&
         (n = g_input_stream_read (g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                   buf + got, sizeof buf - 1 - got, NULL, error)) > 0)
    got += n;
  if (n < 0)
    return FALSE;
  buf[got] = '\0';

  expected = g_strdup_printf ("hello %s from %d\n", name, (int) afork_process_get_pid (process));
  if (strcmp (buf, expected) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "expected “%s”, got “%s”", expected, buf);
      return FALSE;
    }

  printf ("%s", buf);

  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(AforkProcess) forked = NULL;
  g_autoptr(AforkProcess) spawned = NULL;
  g_autoptr(GError) error = NULL;

  if (argc != 3)
    {
      fprintf (stderr, "usage: %s MODULE SERVER\n", argv[0]);
      return 2;
    }

  if (g_getenv ("AFORK_SERVER") != NULL)
    {
      fprintf (stderr, "AFORK_SERVER must not be set for this test\n");
      return 1;
    }

  if (strcmp (afork_get_server_path (), argv[2]) != 0)
    {
      fprintf (stderr, "the library looks for its server at %s, not at %s\n",
               afork_get_server_path (), argv[2]);
      return 1;
    }

  forked = afork_process_new (&error);
  if (forked == NULL || !run_hello (forked, argv[1], "template", &error))
    {
      fprintf (stderr, "fork of the default template: %s\n", error->message);
      return 1;
    }

  spawned = afork_process_new_exec (&error);
  if (spawned == NULL || !run_hello (spawned, argv[1], "exec", &error))
    {
      fprintf (stderr, "new server: %s\n", error->message);
      return 1;
    }

  return 0;
}
