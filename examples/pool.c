/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool of server processes accepting on one listening socket.
 *
 * The parent makes a listening TCP socket (on the loopback address, at a
 * port the kernel picks) and a pool template: a new process with the
 * module loaded and the socket as its first run argument. Then it forks
 * the template ten times, giving each fork its id; every fork inherits
 * what the template holds and runs the module's server function. The
 * template itself never runs anything: it only forks.
 *
 * The parent then connects to the pool several times and prints which
 * worker answered each connection. Finally it closes its connection to
 * each worker, which tells the worker to stop, and waits until every one
 * has gone: nothing is left running.
 *
 * The child's side is in pool-module.c. This is the second example of
 * AnyEvent::Fork's documentation, written in C.
 *
 * Exits with status 1 if an answer did not come from one of the workers,
 * or if a worker did not stop. */
#include <afork/afork.h>
#include <glib/gi18n.h>

#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "example-common.h"

#define N_WORKERS     10
#define N_CONNECTIONS 20

typedef struct
{
  GSocketConnection *connection;
  GPid               pid;
  guint              served;
} PoolWorker;

static GSocket *
listen_on_loopback (guint16  *port,
                    GError  **error)
{
  g_autoptr(GSocket) listener = NULL;
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) bound = NULL;

  listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                           G_SOCKET_PROTOCOL_TCP, error);
  if (listener == NULL)
    return NULL;

  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  address = g_inet_socket_address_new (loopback, 0);
  if (!g_socket_bind (listener, address, TRUE, error) ||
      !g_socket_listen (listener, error))
    return NULL;

  bound = g_socket_get_local_address (listener, error);
  if (bound == NULL)
    return NULL;
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  return g_steal_pointer (&listener);
}

/* Connects to the pool and reads the line the worker sends: "worker ID
 * pid PID", never translated. Returns the index of the worker, or -1. */
static int
ask_pool (guint16     port,
          PoolWorker *workers)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GDataInputStream) input = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  int id, pid;

  connection = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, &error);
  if (connection == NULL)
    {
      g_printerr (_("parent: cannot connect: %s\n"), error->message);
      return -1;
    }

  input = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  line = g_data_input_stream_read_line_utf8 (input, NULL, NULL, &error);
  if (line == NULL)
    {
      g_printerr (_("parent: no answer: %s\n"),
                  error != NULL ? error->message : _("end of stream"));
      return -1;
    }

  if (sscanf (line, "worker %d pid %d", &id, &pid) != 2 ||
      id < 1 || id > N_WORKERS || pid != workers[id - 1].pid)
    {
      /* TRANSLATORS: %s is the line a worker sent */
      g_printerr (_("parent: unexpected answer \"%s\"\n"), line);
      return -1;
    }

  return id - 1;
}

/* Half-closes the connection to a worker, which makes it stop, then reads
 * until its end closes too: when the worker process has exited. */
static gboolean
stop_worker (PoolWorker *worker)
{
  GSocket *socket = g_socket_connection_get_socket (worker->connection);
  g_autoptr(GError) error = NULL;
  char buf[64];
  gssize n;

  /* Not forever, should the worker hang. */
  g_socket_set_timeout (socket, 30);

  if (!g_socket_shutdown (socket, FALSE, TRUE, &error))
    {
      g_printerr (_("parent: cannot close: %s\n"), error->message);
      return FALSE;
    }

  do
    n = g_socket_receive (socket, buf, sizeof buf, NULL, &error);
  while (n > 0);

  g_clear_object (&worker->connection);

  return n == 0;
}

/* A stopped worker has closed its socket; it is gone once its parent, the
 * pool template, has reaped it. Waits for that, at most ten seconds. */
static gboolean
wait_until_gone (GPid pid)
{
  for (guint i = 0; i < 1000; i++)
    {
      if (kill (pid, 0) < 0 && errno == ESRCH)
        return TRUE;
      g_usleep (10 * 1000);
    }

  return FALSE;
}

int
main (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) listener = NULL;
  g_autoptr(AforkProcess) pool = NULL;
  PoolWorker workers[N_WORKERS] = { { NULL, 0, 0 } };
  int status = EXIT_SUCCESS;
  guint16 port = 0;
  guint n_busy = 0;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  example_use_build_tree ();

  listener = listen_on_loopback (&port, &error);
  if (listener == NULL)
    {
      g_printerr (_("parent: cannot listen: %s\n"), error->message);
      return EXIT_FAILURE;
    }
  /* TRANSLATORS: %u is a TCP port number */
  g_print (_("parent: listening on 127.0.0.1:%u\n"), port);

  /* The pool template: the module, and the listening socket as its first
   * run argument. send_fd() duplicates the descriptor. */
  pool = afork_process_new (&error);
  if (pool == NULL)
    {
      g_printerr (_("parent: cannot create the pool: %s\n"), error->message);
      return EXIT_FAILURE;
    }
  afork_process_require (pool, example_module (EXAMPLE_POOL_MODULE_NAME,
                                               EXAMPLE_POOL_MODULE_PATH));
  afork_process_send_fd (pool, g_socket_get_fd (listener));

  /* The parent itself never accepts: its copy can go. */
  g_clear_object (&listener);

  for (int i = 0; i < N_WORKERS; i++)
    {
      g_autoptr(AforkProcess) worker = afork_process_fork (pool);
      g_autofree char *id = g_strdup_printf ("%d", i + 1);

      afork_process_send_arg (worker, id);
      workers[i].connection = afork_process_run (worker, "example_pool_run", NULL, &error);
      if (workers[i].connection == NULL)
        {
          /* TRANSLATORS: the first %s is the number of a worker, the
           * second the error */
          g_printerr (_("parent: worker %s did not start: %s\n"), id, error->message);
          return EXIT_FAILURE;
        }
      workers[i].pid = afork_process_get_pid (worker);
      /* TRANSLATORS: %2s is the number of a worker, padded to two
       * places, %d a process id */
      g_print (_("parent: worker %2s is process %d\n"), id, (int) workers[i].pid);
    }

  for (int i = 0; i < N_CONNECTIONS; i++)
    {
      int w = ask_pool (port, workers);

      if (w < 0)
        {
          status = EXIT_FAILURE;
          continue;
        }

      /* TRANSLATORS: the numbers of a connection and of a worker, padded
       * to two places, then a process id */
      g_print (_("parent: connection %2d was served by worker %2d (process %d)\n"),
               i + 1, w + 1, (int) workers[w].pid);
      if (workers[w].served++ == 0)
        n_busy++;
    }
  /* TRANSLATORS: how many of the %d workers of the pool served the %d
   * connections; the plural form follows the number of workers */
  g_print (ngettext ("parent: %u of %d worker served %d connections\n",
                     "parent: %u of %d workers served %d connections\n",
                     N_WORKERS),
           n_busy, N_WORKERS, N_CONNECTIONS);

  for (int i = 0; i < N_WORKERS; i++)
    {
      if (!stop_worker (&workers[i]) || !wait_until_gone (workers[i].pid))
        {
          /* TRANSLATORS: the number of a worker, then its process id */
          g_printerr (_("parent: worker %d (process %d) did not stop\n"),
                      i + 1, (int) workers[i].pid);
          status = EXIT_FAILURE;
        }
    }
  if (status == EXIT_SUCCESS)
    g_print (ngettext ("parent: %d worker has stopped\n",
                       "parent: all %d workers have stopped\n",
                       N_WORKERS),
             N_WORKERS);

  /* Dropping the template closes its socket, and it exits too. */
  g_clear_object (&pool);

  return status;
}
