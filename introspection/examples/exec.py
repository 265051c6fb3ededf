#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""afork as a faster fork+exec.

A process forked from the small template, instead of from this program,
executes a command with its standard output going to a file and its
standard error to the connection to the parent. The parent reads the
command's standard error from the connection until the command exits,
then reads its output from the file.

It is done twice: with the built-in exec (Afork.Process.exec_async),
which also reports the command's exit status through wait_async(), and
with a run function of one's own, example_exec() of the example module,
for a child that must prepare more than its descriptors before it
executes the command.

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


class Job:
    """Runs one command and collects what it writes."""

    def __init__(self, log):
        self.loop = GLib.MainLoop()
        self.stderr = bytearray()
        self.status = None
        self.failure = None
        self.process = None
        self.log = log

    def fail(self, error):
        self.failure = error
        self.loop.quit()

    def on_started(self, process, result, finish):
        try:
            # exec_finish() or run_finish(), as the call that started it.
            connection = getattr(process, finish)(result)
        except GLib.Error as error:
            self.fail(error)
            return
        print("process %d runs %s" % (process.get_pid(), COMMAND[0]))
        connection.get_input_stream().read_bytes_async(
            4096, GLib.PRIORITY_DEFAULT, None, self.on_read)

    def on_read(self, stream, result):
        try:
            data = stream.read_bytes_finish(result).get_data()
        except GLib.Error as error:
            self.fail(error)
            return
        if data:
            self.stderr.extend(data)
            stream.read_bytes_async(4096, GLib.PRIORITY_DEFAULT, None,
                                    self.on_read)
            return
        # End of stream: the command has exited (or closed its standard
        # error).
        stream.close()
        if self.process is None:
            self.loop.quit()
            return
        self.process.wait_async(None, self.on_exited)

    def on_exited(self, process, result):
        try:
            process.wait_finish(result)
        except GLib.Error as error:
            self.fail(error)
            return
        if process.get_if_exited():
            self.status = process.get_exit_status()
        self.loop.quit()

    def with_builtin_exec(self):
        output = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600)
        # The process is kept, to wait for it afterwards. Its descriptors
        # are duplicated at once, so the parent closes its own.
        self.process = Afork.Process.new()
        options = Afork.ExecOptions.new()
        options.set_stdout_fd(output)
        options.set_stderr_fd(Afork.EXEC_FD_SOCKET)   # the connection
        self.process.exec_async(COMMAND, options, None,
                                self.on_started, "exec_finish")
        os.close(output)
        self.loop.run()

    def with_run_function(self):
        output = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600)
        process = (Afork.Process.new()
                   .require("afork-example")
                   .send_fd(output))
        os.close(output)
        for arg in COMMAND:
            process.send_arg(arg)
        process.run_async("example_exec", None, self.on_started,
                          "run_finish")
        del process   # configure and forget
        self.loop.run()

    def check(self, title, expect_status):
        if self.failure is not None:
            print("error:", self.failure.message, file=sys.stderr)
            return False
        with open(self.log, "rb") as f:
            stdout = f.read()
        print("%s:" % title)
        print("  standard output (from the file):", stdout.decode().strip())
        print("  standard error (from the connection):",
              self.stderr.decode().strip())
        if expect_status:
            print("  exit status:", self.status)
        if stdout != b"hi\n" or self.stderr != b"and hello on stderr\n" or \
           (expect_status and self.status != 0):
            print("unexpected output", file=sys.stderr)
            return False
        return True


def main():
    with tempfile.TemporaryDirectory() as tmpdir:
        log = os.path.join(tmpdir, "log")

        job = Job(log)
        job.with_builtin_exec()
        if not job.check("with the built-in exec", True):
            return 1

        job = Job(log)
        job.with_run_function()
        if not job.check("with a run function that executes it", False):
            return 1

    return 0


if __name__ == "__main__":
    sys.exit(main())
