#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A pool of server processes, all accepting on one listening socket.

The parent makes a listening socket and a template process, loads the
module into the template and sends it the socket. Then it forks the
workers from the template, giving each its number, and makes each run
example_pool_server(). Clients connect to the socket and are served by
whichever worker the kernel picks. At the end, the parent closes its side
of each worker's connection and reads until the worker has gone.

From a build tree:
  meson devenv -C BUILDDIR -w . /usr/bin/python3 introspection/examples/pool.py
"""

import re
import sys

import gi

gi.require_version("Afork", "1.0")
from gi.repository import Afork, Gio, GLib  # noqa: E402

N_WORKERS = 4
N_CLIENTS = 12

loop = GLib.MainLoop()
failure = None
workers = {}        # number -> [connection, reader, lines]
client_lines = []
n_ready = 0
n_exited = 0
address = None


def fail(error):
    global failure
    if failure is None:
        failure = error
    loop.quit()


def make_listener():
    """A TCP socket listening on a free port of the loopback interface."""
    listener = Gio.Socket.new(Gio.SocketFamily.IPV4, Gio.SocketType.STREAM,
                              Gio.SocketProtocol.TCP)
    address = Gio.InetSocketAddress.new_from_string("127.0.0.1", 0)
    listener.bind(address, True)
    listener.listen()
    return listener


def on_worker_line(reader, result, number):
    global n_ready, n_exited
    try:
        line, _length = reader.read_line_finish_utf8(result)
    except GLib.Error as error:
        fail(error)
        return
    connection, _reader, lines = workers[number]
    if line is None:
        # The worker has exited: its end of the connection is closed.
        print("worker %d has exited" % number)
        connection.close()
        n_exited += 1
        if n_exited == N_WORKERS:
            loop.quit()
        return
    print("worker %d says: %s" % (number, line))
    lines.append(line)
    if len(lines) == 1:
        n_ready += 1
        if n_ready == N_WORKERS:
            start_clients()
    reader.read_line_async(GLib.PRIORITY_DEFAULT, None, on_worker_line,
                           number)


def on_worker_running(process, result, number):
    try:
        connection = process.run_finish(result)
    except GLib.Error as error:
        fail(error)
        return
    reader = Gio.DataInputStream.new(connection.get_input_stream())
    workers[number] = [connection, reader, []]
    reader.read_line_async(GLib.PRIORITY_DEFAULT, None, on_worker_line,
                           number)


def start_clients():
    print("all %d workers are ready; connecting %d clients"
          % (N_WORKERS, N_CLIENTS))
    client = Gio.SocketClient.new()
    for _ in range(N_CLIENTS):
        client.connect_async(address, None, on_client_connected)


def on_client_connected(client, result):
    try:
        connection = client.connect_finish(result)
    except GLib.Error as error:
        fail(error)
        return
    reader = Gio.DataInputStream.new(connection.get_input_stream())
    reader.read_line_async(GLib.PRIORITY_DEFAULT, None, on_client_line,
                           connection)


def on_client_line(reader, result, connection):
    try:
        line, _length = reader.read_line_finish_utf8(result)
    except GLib.Error as error:
        fail(error)
        return
    connection.close()
    print("client got:", line)
    client_lines.append(line)
    if len(client_lines) == N_CLIENTS:
        # Every client was served: tell the workers to stop by closing
        # our writing side of their connections.
        for connection, _reader, _lines in workers.values():
            connection.get_socket().shutdown(False, True)


def main():
    global address

    listener = make_listener()
    address = listener.get_local_address()
    print("listening on port", address.get_port())

    # The template: the module and the listening socket, inherited by
    # every process forked from it. send_fd() duplicates the descriptor,
    # so the parent can close its own at once.
    template = (Afork.Process.new()
                .require("afork-example")
                .send_fd(listener.get_fd()))
    listener.close()

    for number in range(1, N_WORKERS + 1):
        (template.fork()
         .send_arg(str(number))
         .run_async("example_pool_server", None, on_worker_running, number))

    # The workers are forked already (or will be, in order): the template
    # is no longer needed, and dropping it makes it exit.
    del template

    loop.run()

    if failure is not None:
        print("error:", failure.message, file=sys.stderr)
        return 1

    pattern = re.compile(r"^served by worker (\d+), pid \d+$")
    served = {}
    for line in client_lines:
        match = pattern.match(line or "")
        if not match:
            print("unexpected client line:", line, file=sys.stderr)
            return 1
        served[int(match.group(1))] = served.get(int(match.group(1)), 0) + 1

    counted = 0
    for number, (_connection, _reader, lines) in sorted(workers.items()):
        match = re.match(r"^worker %d served (\d+) clients$" % number,
                         lines[1] if len(lines) == 2 else "")
        if lines[0] != "worker %d ready" % number or not match or \
           int(match.group(1)) != served.get(number, 0):
            print("unexpected lines from worker %d:" % number, lines,
                  file=sys.stderr)
            return 1
        counted += int(match.group(1))

    if counted != N_CLIENTS:
        print("the workers served %d clients, not %d" % (counted, N_CLIENTS),
              file=sys.stderr)
        return 1

    return 0


if __name__ == "__main__":
    sys.exit(main())
