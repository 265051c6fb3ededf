/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* afork as a faster fork+exec.
 *
 * Starting a program from a big, multithreaded parent with fork+exec pays
 * for copying the parent's page tables, and little is safe to do between
 * fork and exec. Here the fork happens in afork's small template instead,
 * and the new process prepares itself in ordinary C before it execs: it
 * takes a pipe as its standard output and the afork socket as its
 * standard error (see exec-module.c).
 *
 * The parent runs a few commands this way and prints what each wrote to
 * standard output (read from the pipe) and to standard error (read from
 * the connection afork returned), reading both at once in its main loop.
 *
 * This is the third example of AnyEvent::Fork's documentation, written in
 * C. Exits with status 1 if a command's output is not what it should be. */
#include <afork/afork.h>
#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <glib/gi18n.h>

#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "example-common.h"

typedef struct
{
  GMainLoop           *loop;
  GMemoryOutputStream *out;
  GMemoryOutputStream *err;
  guint                pending;
  gboolean             failed;
} Output;

static void
splice_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Output *output = user_data;
  g_autoptr(GError) error = NULL;

  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (object), result, &error) < 0)
    {
      g_printerr (_("parent: cannot read the command's output: %s\n"), error->message);
      output->failed = TRUE;
    }

  if (--output->pending == 0)
    g_main_loop_quit (output->loop);
}

/* Everything written to @stream, as a string. */
static char *
memory_text (GMemoryOutputStream *stream)
{
  g_autoptr(GBytes) bytes = g_memory_output_stream_steal_as_bytes (stream);
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);

  return g_strndup (data != NULL ? data : "", size);
}

typedef enum
{
  STANDARD_OUTPUT,
  STANDARD_ERROR,
} Stream;

static void
print_text (Stream      stream,
            const char *text)
{
  g_auto(GStrv) lines = NULL;

  if (text[0] == '\0')
    {
      if (stream == STANDARD_OUTPUT)
        g_print (_("  stdout: (nothing)\n"));
      else
        g_print (_("  stderr: (nothing)\n"));
      return;
    }

  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] == '\0' && lines[i + 1] == NULL)
        continue;
      if (stream == STANDARD_OUTPUT)
        /* TRANSLATORS: %s is a line the command wrote to its standard
         * output */
        g_print (_("  stdout: %s\n"), lines[i]);
      else
        /* TRANSLATORS: %s is a line the command wrote to its standard
         * error */
        g_print (_("  stderr: %s\n"), lines[i]);
    }
}

/* Runs @argv in a new process made by afork; fills @out_text and
 * @err_text with what it wrote to standard output and standard error. */
static gboolean
run_command (const char * const  *argv,
             char               **out_text,
             char               **err_text)
{
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GInputStream) pipe_input = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) shown = g_string_new ("$");
  Output output = { NULL, NULL, NULL, 0, FALSE };
  int pipe_fds[2];

  for (guint i = 0; argv[i] != NULL; i++)
    {
      gboolean plain = argv[i][0] != '\0' &&
                       strspn (argv[i], "abcdefghijklmnopqrstuvwxyz"
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./=") == strlen (argv[i]);
      g_autofree char *quoted = plain ? g_strdup (argv[i]) : g_shell_quote (argv[i]);

      g_string_append_printf (shown, " %s", quoted);
    }
  g_print ("%s\n", shown->str);

  if (!g_unix_open_pipe (pipe_fds, FD_CLOEXEC, &error))
    {
      g_printerr (_("parent: cannot make a pipe: %s\n"), error->message);
      return FALSE;
    }

  process = afork_process_new (&error);
  if (process == NULL)
    {
      g_printerr (_("parent: cannot create a process: %s\n"), error->message);
      close (pipe_fds[0]);
      close (pipe_fds[1]);
      return FALSE;
    }

  afork_process_require (process, example_module (EXAMPLE_EXEC_MODULE_NAME,
                                                  EXAMPLE_EXEC_MODULE_PATH));

  /* The write end of the pipe goes to the process, which makes it its
   * standard output; send_fd() duplicates it, so ours can be closed at
   * once, and the pipe reaches its end when the command is done. */
  afork_process_send_fd (process, pipe_fds[1]);
  close (pipe_fds[1]);
  pipe_input = g_unix_input_stream_new (pipe_fds[0], TRUE);

  for (guint i = 0; argv[i] != NULL; i++)
    afork_process_send_arg (process, argv[i]);

  connection = afork_process_run (process, "example_exec_run", NULL, &error);
  if (connection == NULL)
    {
      g_printerr (_("parent: the process did not start: %s\n"), error->message);
      return FALSE;
    }
  /* TRANSLATORS: %d is a process id */
  g_print (_("  (process %d)\n"), (int) afork_process_get_pid (process));

  /* Read standard output and standard error at the same time: reading one
   * to its end first could wait forever on a command that fills the other. */
  output.loop = g_main_loop_new (NULL, FALSE);
  output.out = G_MEMORY_OUTPUT_STREAM (g_memory_output_stream_new_resizable ());
  output.err = G_MEMORY_OUTPUT_STREAM (g_memory_output_stream_new_resizable ());
  output.pending = 2;
  g_output_stream_splice_async (G_OUTPUT_STREAM (output.out), pipe_input,
                                G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE |
                                G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                G_PRIORITY_DEFAULT, NULL, splice_done_cb, &output);
  g_output_stream_splice_async (G_OUTPUT_STREAM (output.err),
                                g_io_stream_get_input_stream (G_IO_STREAM (connection)),
                                G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                G_PRIORITY_DEFAULT, NULL, splice_done_cb, &output);
  g_main_loop_run (output.loop);

  *out_text = memory_text (output.out);
  *err_text = memory_text (output.err);
  print_text (STANDARD_OUTPUT, *out_text);
  print_text (STANDARD_ERROR, *err_text);

  g_object_unref (output.out);
  g_object_unref (output.err);
  g_main_loop_unref (output.loop);

  return !output.failed;
}

/* Runs @argv and checks what it wrote. */
static gboolean
check_command (const char * const *argv,
               const char         *expected_out,
               const char         *expected_err_prefix)
{
  g_autofree char *out_text = NULL;
  g_autofree char *err_text = NULL;

  if (!run_command (argv, &out_text, &err_text))
    return FALSE;

  if (g_strcmp0 (out_text, expected_out) != 0 ||
      !g_str_has_prefix (err_text, expected_err_prefix) ||
      (expected_err_prefix[0] == '\0' && err_text[0] != '\0'))
    {
      /* TRANSLATORS: %s is the name of a command */
      g_printerr (_("parent: unexpected output from %s\n"), argv[0]);
      return FALSE;
    }

  return TRUE;
}

/* What exec-module.c writes when it cannot run @command, up to the
 * reason, which depends on the system. */
static char *
cannot_run_prefix (const char *command)
{
  /* TRANSLATORS: written by the process when it cannot run a command: %s
   * is the command, then the reason. Keep it the same as the message of
   * the process itself */
  g_autofree char *message = g_strdup_printf (_("cannot run %s: %s\n"), command, "\x1f");

  return g_strndup (message, strcspn (message, "\x1f"));
}

int
main (void)
{
  const char * const echo[] = { "/bin/echo", "hi", NULL };
  const char * const both[] = {
    "/bin/sh", "-c", "echo to standard output; echo to standard error >&2", NULL
  };
  const char * const missing[] = { "no-such-command-for-afork", NULL };
  g_autofree char *missing_err = NULL;
  gboolean ok = TRUE;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  example_use_build_tree ();

  ok &= check_command (echo, "hi\n", "");
  ok &= check_command (both, "to standard output\n", "to standard error\n");
  missing_err = cannot_run_prefix (missing[0]);
  ok &= check_command (missing, "", missing_err);

  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
