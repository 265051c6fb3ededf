#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Afork.Process from Python: chaining, descriptors, binary arguments,
pids, templates and the connection to the child."""

import hashlib
import os

import taptest
from taptest import MODULE, Afork, GLib, Gio


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def string_line(data):
    """The line test_run_args writes for a string argument."""
    line = "s %d %s" % (len(data), sha256(data))
    if len(data) < 64 and b"\0" not in data and b"\n" not in data:
        line += " " + data.decode()
    return line


class ProcessTest(taptest.LoopTestCase):

    def test_chain_reads_like_anyevent_fork(self):
        read_end, write_end = os.pipe()
        outcome = []

        def done(process, result):
            outcome.append((process, process.run_finish(result)))

        # Configure and forget: nothing keeps the process but the call.
        (Afork.Process.new()
         .require(MODULE)
         .send_arg("hello")
         .send_fd(write_end)
         .run_async("test_run_args", None, done))
        os.close(write_end)

        self.spin_until(lambda: outcome, "the run callback")
        process, connection = outcome[0]
        self.assertIsInstance(process, Afork.Process)
        self.assertIsInstance(connection, Gio.SocketConnection)
        self.assertIsInstance(connection, Gio.UnixConnection)
        self.assertEqual(self.read_lines(connection),
                         [string_line(b"hello"), "f", "global (null)", "end"])
        # The child wrote into the pipe and closed it; nobody else holds
        # the write end.
        self.assertEqual(self.read_fd_to_eof(read_end), b"fd 1\n")

    def test_fds_from_os_pipe_interleaved_with_strings(self):
        pipes = [os.pipe() for _ in range(5)]
        process = Afork.Process.new().require(MODULE)
        expected = []
        for i, (_read_end, write_end) in enumerate(pipes):
            process.send_arg("arg%d" % i)
            expected.append(string_line(b"arg%d" % i))
            # send_fd() duplicates: closing ours at once is allowed.
            self.assertIs(process.send_fd(write_end), process)
            os.close(write_end)
            expected.append("f")
        connection, error = self.run_process(process, "test_run_args")
        self.assertIsNone(error)
        self.assertEqual(self.read_lines(connection),
                         expected + ["global (null)", "end"])
        for i, (read_end, _write_end) in enumerate(pipes):
            self.assertEqual(self.read_fd_to_eof(read_end),
                             b"fd %d\n" % (2 * i + 1))

    def test_binary_arguments_through_glib_bytes(self):
        payloads = [
            b"",
            b"\0",
            b"a\0b\0c",
            b"\0" * 100 + b"\xff\xfe" + b"\0" * 100,
            bytes(range(256)) * 4096,   # 1 MiB, NULs and all
            "héllo ✓".encode(),
        ]
        process = Afork.Process.new().require(MODULE)
        for payload in payloads:
            self.assertIs(process.send_bytes(GLib.Bytes.new(payload)),
                          process)
        connection, error = self.run_process(process, "test_run_args")
        self.assertIsNone(error)
        lines = self.read_lines(connection)
        self.assertEqual(lines[:len(payloads)],
                         [string_line(p) for p in payloads])
        self.assertEqual(lines[len(payloads):], ["global (null)", "end"])

    def test_send_arg_is_utf8(self):
        text = "zéro ✓ 𝄞"
        process = Afork.Process.new().require(MODULE).send_arg(text)
        connection, error = self.run_process(process, "test_run_args")
        self.assertIsNone(error)
        self.assertEqual(self.read_lines(connection)[0],
                         string_line(text.encode("utf-8")))

    def test_pid_is_the_childs_own(self):
        process = Afork.Process.new().require(MODULE)
        notified = []
        process.connect("notify::pid", lambda p, _pspec: notified.append(p.props.pid))
        self.assertEqual(process.get_pid(), 0)
        connection, error = self.run_process(process, "test_run_pid")
        self.assertIsNone(error)
        pid = process.get_pid()
        self.assertGreater(pid, 0)
        self.assertNotEqual(pid, os.getpid())
        self.assertEqual(process.props.pid, pid)
        self.assertEqual(notified, [pid])
        self.assertEqual(self.read_lines(connection), ["pid %d" % pid])

    def test_synchronous_run(self):
        process = Afork.Process.new().require(MODULE)
        connection = process.run("test_run_pid", None)
        self.assertIsInstance(connection, Gio.UnixConnection)
        self.assertEqual(self.read_lines(connection),
                         ["pid %d" % process.get_pid()])

    def test_constructor_gives_a_usable_process(self):
        # Afork.Process() is g_object_new(): a fork of the default
        # template, as Afork.Process.new() is.
        process = Afork.Process().require(MODULE)
        connection = process.run("test_run_pid", None)
        self.assertEqual(self.read_lines(connection),
                         ["pid %d" % process.get_pid()])

    def test_new_exec_is_a_direct_child(self):
        process = Afork.Process.new_exec()
        pid = process.get_pid()
        self.assertGreater(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            # The field after the parenthesised name: state, then ppid.
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        self.assertEqual(ppid, os.getpid())
        connection, error = self.run_process(process.require(MODULE),
                                             "test_run_pid")
        self.assertIsNone(error)
        self.assertEqual(self.read_lines(connection), ["pid %d" % pid])

    def test_template_call_and_fork(self):
        template = (Afork.Process.new()
                    .require(MODULE)
                    .call("test_call_set_global", ["a", "b c"])
                    .send_arg("from the template"))
        workers = [template.fork().send_arg("worker %d" % i)
                   for i in range(4)]
        del template
        for i, worker in enumerate(workers):
            connection, error = self.run_process(worker, "test_run_args")
            self.assertIsNone(error)
            self.assertEqual(self.read_lines(connection), [
                string_line(b"from the template"),
                string_line(b"worker %d" % i),
                "global a,b c",
                "end",
            ])

    def test_call_with_no_arguments(self):
        process = (Afork.Process.new()
                   .require(MODULE)
                   .send_arg("x")
                   .call("test_call_count_args", None))
        connection, error = self.run_process(process, "test_run_args")
        self.assertIsNone(error)
        self.assertEqual(self.read_lines(connection),
                         [string_line(b"x"), "global n_args=1", "end"])

    def test_connection_carries_data_both_ways(self):
        process = Afork.Process.new().require(MODULE)
        connection, error = self.run_process(process, "test_run_echo")
        self.assertIsNone(error)
        connection.get_output_stream().write_all(b"ping\n", None)
        # Closing our writing side ends the child's loop: it exits.
        connection.get_socket().shutdown(False, True)
        self.assertEqual(self.read_lines(connection), ["echo ping"])

    def test_server_path(self):
        path = Afork.get_server_path()
        self.assertEqual(path, os.environ["AFORK_SERVER"])
        self.assertTrue(os.access(path, os.X_OK))


if __name__ == "__main__":
    taptest.main()
