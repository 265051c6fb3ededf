/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A single worker process.
 *
 * The parent asks the default template for a new process, loads a module
 * into it and makes it enter one of the module's functions. The process
 * acknowledges, and the parent gets a connection to it: a unix socket,
 * here used to read the greeting the worker writes. Everything happens in
 * the parent's main loop, which never blocks on the child.
 *
 * The child's side is in worker-module.c. This is the first example of
 * AnyEvent::Fork's documentation, written in C.
 *
 * Prints what the worker said; exits with status 1 if the greeting did not
 * come from the process afork reported, or if the worker did not exit
 * after it. */
#include <afork/afork.h>
#include <glib/gi18n.h>

#include <locale.h>
#include <stdlib.h>

#include "example-common.h"

typedef struct
{
  GMainLoop         *loop;
  GSocketConnection *connection;
  GDataInputStream  *input;
  GPid               pid;
  int                status;
} Worker;

static void
end_read_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Worker *worker = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);
  if (bytes == NULL)
    g_printerr (_("parent: reading from the worker failed: %s\n"), error->message);
  else if (g_bytes_get_size (bytes) != 0)
    g_printerr (_("parent: the worker said more than expected\n"));
  else
    {
      g_print (_("parent: worker %d has exited\n"), (int) worker->pid);
      worker->status = EXIT_SUCCESS;
    }

  g_main_loop_quit (worker->loop);
}

static void
greeting_read_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Worker *worker = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *expected = NULL;

  line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (object),
                                                    result, NULL, &error);
  if (line == NULL)
    {
      g_printerr (_("parent: no greeting from the worker: %s\n"),
                  error != NULL ? error->message : _("end of stream"));
      g_main_loop_quit (worker->loop);
      return;
    }

  /* TRANSLATORS: %d is a process id, %s what the worker wrote */
  g_print (_("parent: worker %d says: \"%s\"\n"), (int) worker->pid, line);

  /* The greeting names the pid the child sees with getpid(): it must be
   * the one afork reported. The child translates it as the parent does:
   * it inherited the same environment, so the same locale. */
  /* TRANSLATORS: written by the worker, whose pid is %d; keep it the same
   * as the worker's own message */
  expected = g_strdup_printf (_("Hello from worker %d"), (int) worker->pid);
  if (g_strcmp0 (line, expected) != 0)
    {
      /* TRANSLATORS: %s is the greeting the worker should have written */
      g_printerr (_("parent: expected \"%s\"\n"), expected);
      g_main_loop_quit (worker->loop);
      return;
    }

  /* The worker's function returns after its greeting, and the process
   * exits: the end of the stream tells when. */
  g_input_stream_read_bytes_async (G_INPUT_STREAM (worker->input), 1,
                                   G_PRIORITY_DEFAULT, NULL, end_read_cb, worker);
}

static void
worker_running_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  AforkProcess *process = AFORK_PROCESS (object);
  Worker *worker = user_data;
  g_autoptr(GError) error = NULL;
  GInputStream *stream;

  worker->connection = afork_process_run_finish (process, result, &error);
  if (worker->connection == NULL)
    {
      g_printerr (_("parent: the worker did not start: %s\n"), error->message);
      g_main_loop_quit (worker->loop);
      return;
    }

  worker->pid = afork_process_get_pid (process);
  g_print (_("parent: worker %d is running example_worker_run()\n"), (int) worker->pid);

  /* The connection is a GSocketConnection: read it like any other stream. */
  stream = g_io_stream_get_input_stream (G_IO_STREAM (worker->connection));
  worker->input = g_data_input_stream_new (stream);
  g_data_input_stream_read_line_async (worker->input, G_PRIORITY_DEFAULT, NULL,
                                       greeting_read_cb, worker);
}

int
main (void)
{
  g_autoptr(AforkProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  Worker worker = { NULL, NULL, NULL, 0, EXIT_FAILURE };

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  example_use_build_tree ();

  /* A fork of the default template, which afork starts on first use. */
  process = afork_process_new (&error);
  if (process == NULL)
    {
      g_printerr (_("parent: cannot create a process: %s\n"), error->message);
      return EXIT_FAILURE;
    }

  /* Commands are queued and sent in the background, in order. */
  afork_process_require (process, example_module (EXAMPLE_WORKER_MODULE_NAME,
                                                  EXAMPLE_WORKER_MODULE_PATH));

  worker.loop = g_main_loop_new (NULL, FALSE);
  afork_process_run_async (process, "example_worker_run", NULL,
                           worker_running_cb, &worker);
  g_main_loop_run (worker.loop);

  g_clear_object (&worker.input);
  g_clear_object (&worker.connection);
  g_main_loop_unref (worker.loop);

  return worker.status;
}
