#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""afork as a faster fork+exec.

The child, forked from the small template instead of from this program,
runs example_exec(), which makes the descriptor it was sent its standard
output, makes the connection to the parent its standard error, and
executes the command it was given. The parent reads the command's
standard error from the connection that run_async() gives back, until the
command exits, then reads its output from the file.

From a build tree:
  meson devenv -C BUILDDIR -w . /usr/bin/python3 introspection/examples/exec.py
"""

import os
import sys
import tempfile

import gi

gi.require_version("Afork", "1.0")
from gi.repository import Afork, GLib  # noqa: E402

COMMAND = ["/bin/sh", "-c", "echo hi; echo 'and hello on stderr' >&2"]

loop = GLib.MainLoop()
stderr_data = bytearray()
failure = None


def fail(error):
    global failure
    failure = error
    loop.quit()


def on_read(stream, result):
    try:
        data = stream.read_bytes_finish(result).get_data()
    except GLib.Error as error:
        fail(error)
        return
    if not data:
        # End of stream: the command has exited (or closed its standard
        # error).
        loop.quit()
        return
    stderr_data.extend(data)
    stream.read_bytes_async(4096, GLib.PRIORITY_DEFAULT, None, on_read)


def on_running(process, result):
    try:
        connection = process.run_finish(result)
    except GLib.Error as error:
        fail(error)
        return
    print("process %d runs %s" % (process.get_pid(), COMMAND[0]))
    connection.get_input_stream().read_bytes_async(
        4096, GLib.PRIORITY_DEFAULT, None, on_read)


def main():
    with tempfile.TemporaryDirectory() as tmpdir:
        log = os.path.join(tmpdir, "log")
        output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

        process = (Afork.Process.new()
                   .require("afork-example")
                   .send_fd(output))
        os.close(output)   # send_fd() made its own copy
        for arg in COMMAND:
            process.send_arg(arg)
        process.run_async("example_exec", None, on_running)
        del process

        loop.run()

        if failure is not None:
            print("error:", failure.message, file=sys.stderr)
            return 1

        with open(log, "rb") as f:
            stdout_data = f.read()

    print("standard output (from the file):", stdout_data.decode().strip())
    print("standard error (from the connection):",
          stderr_data.decode().strip())

    if stdout_data != b"hi\n" or stderr_data != b"and hello on stderr\n":
        print("unexpected output", file=sys.stderr)
        return 1

    return 0


if __name__ == "__main__":
    sys.exit(main())
