#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A single worker process, running a function of a C module.

The parent forks a process from afork's default template, loads the
module into it and makes it run example_worker(). The worker answers each
line it reads with the line in upper case; the parent talks to it through
the Gio.SocketConnection that run_async() gives back.

From a build tree:
  meson devenv -C BUILDDIR -w . /usr/bin/python3 introspection/examples/worker.py
"""

import sys

import gi

gi.require_version("Afork", "1.0")
from gi.repository import Afork, Gio, GLib  # noqa: E402

LINES = ["hello", "a worker forked from a template", "bye"]

loop = GLib.MainLoop()
replies = []
failure = None
# The connection itself must be kept for as long as its streams are used:
# they do not keep it alive, and once it is dropped its socket is closed
# under them ("Stream is already closed").
connections = []


def fail(error):
    global failure
    failure = error
    loop.quit()


def on_line(stream, result):
    try:
        line, _length = stream.read_line_finish_utf8(result)
    except GLib.Error as error:
        fail(error)
        return
    if line is None:
        # End of stream: the worker returned from its run function and
        # exited.
        connections.clear()
        loop.quit()
        return
    print("worker says:", line)
    replies.append(line)
    stream.read_line_async(GLib.PRIORITY_DEFAULT, None, on_line)


def on_written(output, result, connection):
    try:
        output.write_all_finish(result)
        # Closing our writing side is what ends the worker's loop.
        connection.get_socket().shutdown(False, True)
    except GLib.Error as error:
        fail(error)


def on_running(process, result):
    try:
        connection = process.run_finish(result)
    except GLib.Error as error:
        fail(error)
        return

    print("worker %d is running" % process.get_pid())
    connections.append(connection)

    data = "".join(line + "\n" for line in LINES).encode()
    output = connection.get_output_stream()
    output.write_all_async(data, GLib.PRIORITY_DEFAULT, None,
                           on_written, connection)

    reader = Gio.DataInputStream.new(connection.get_input_stream())
    reader.read_line_async(GLib.PRIORITY_DEFAULT, None, on_line)


def main():
    # Configure and forget: the process object need not be kept; the
    # chained calls queue the commands and run_async() keeps it alive
    # until the worker has started.
    (Afork.Process.new()
     .require("afork-example")
     .run_async("example_worker", None, on_running))

    loop.run()

    if failure is not None:
        print("error:", failure.message, file=sys.stderr)
        return 1

    expected = [line.upper() for line in LINES]
    if len(replies) != len(LINES) + 1 or \
       not replies[0].startswith("hello from worker ") or \
       replies[1:] != expected:
        print("unexpected replies:", replies, file=sys.stderr)
        return 1

    return 0


if __name__ == "__main__":
    sys.exit(main())
