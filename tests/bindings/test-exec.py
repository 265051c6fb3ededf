#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The built-in exec, waiting for processes, and handing a process over,
from Python."""

import os

import taptest
from taptest import MODULE, Afork, Gio, GLib


class ExecTest(taptest.LoopTestCase):

    def exec_process(self, process, argv, stdin, stdout, stderr):
        outcome = []

        def done(source, result):
            try:
                outcome.append((source.exec_finish(result), None))
            except GLib.Error as error:
                outcome.append((None, error))

        options = Afork.ExecOptions.new()
        options.set_stdin_fd(stdin)
        options.set_stdout_fd(stdout)
        options.set_stderr_fd(stderr)
        process.exec_async(argv, options, None, done)
        self.spin_until(lambda: outcome, "exec_async() to complete")
        return outcome[0]

    def wait_process(self, process):
        outcome = []

        def done(source, result):
            try:
                outcome.append((source.wait_finish(result), None))
            except GLib.Error as error:
                outcome.append((None, error))

        process.wait_async(None, done)
        self.spin_until(lambda: outcome, "wait_async() to complete")
        return outcome[0]

    def test_exec_with_descriptors(self):
        read_end, write_end = os.pipe()
        process = Afork.Process.new()
        connection, error = self.exec_process(
            process, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
            Afork.EXEC_FD_INHERIT, write_end, Afork.EXEC_FD_SOCKET)
        os.close(write_end)
        self.assertIsNone(error)
        self.assertGreater(process.get_pid(), 0)
        self.assertEqual(self.read_lines(connection), ["err"])
        self.assertEqual(self.read_fd_to_eof(read_end), b"out\n")
        waited, error = self.wait_process(process)
        self.assertIsNone(error)
        self.assertTrue(waited)
        self.assertTrue(process.get_if_exited())
        self.assertEqual(process.get_exit_status(), 3)
        self.assertFalse(process.get_if_signaled())

    def test_exec_environment_and_directory(self):
        process = Afork.Process.new()
        options = Afork.ExecOptions.new()
        options.set_environ(["AFORK_X=from the parent"])
        options.set_cwd("/")
        options.set_stdout_fd(Afork.EXEC_FD_SOCKET)
        connection = process.exec(["/bin/sh", "-c", 'echo "$AFORK_X"; pwd'],
                                  options, None)
        self.assertEqual(self.read_lines(connection),
                         ["from the parent", "/"])

    def test_exec_missing_program(self):
        process = Afork.Process.new()
        connection, error = self.exec_process(
            process, ["/nonexistent/program"], Afork.EXEC_FD_INHERIT,
            Afork.EXEC_FD_INHERIT, Afork.EXEC_FD_INHERIT)
        self.assertIsNone(connection)
        self.assertTrue(error.matches(Gio.io_error_quark(),
                                      Gio.IOErrorEnum.NOT_FOUND),
                        error.message)
        self.assertIn("/nonexistent/program", error.message)

    def test_wait_for_a_killed_process(self):
        process = Afork.Process.new()
        connection, error = self.exec_process(
            process, ["/bin/sh", "-c", "kill -9 $$"], Afork.EXEC_FD_INHERIT,
            Afork.EXEC_FD_INHERIT, Afork.EXEC_FD_INHERIT)
        self.assertIsNone(error)
        connection.close()
        waited, error = self.wait_process(process)
        self.assertIsNone(error)
        self.assertTrue(process.get_if_signaled())
        self.assertEqual(process.get_term_sig(), 9)

    def test_wait_after_run(self):
        process = Afork.Process.new().require(MODULE)
        connection, error = self.run_process(process, "test_run_pid")
        self.assertIsNone(error)
        self.assertEqual(self.read_lines(connection),
                         ["pid %d" % process.get_pid()])
        self.assertTrue(process.wait(None))
        self.assertTrue(process.get_if_exited())
        self.assertEqual(process.get_exit_status(), 0)

    def test_hand_over_and_take_back(self):
        process = (Afork.Process.new()
                   .require(MODULE)
                   .send_arg("before"))
        connection = process.hand_over(None)
        self.assertIsInstance(connection, Gio.SocketConnection)
        # Anyone holding the connection can go on preparing the process.
        taken = Afork.Process.new_from_connection(connection)
        connection.close()
        taken.send_arg("after")
        connection, error = self.run_process(taken, "test_run_args")
        self.assertIsNone(error)
        lines = self.read_lines(connection)
        self.assertEqual([line.split()[-1] for line in lines[:2]],
                         ["before", "after"])
        self.assertEqual(lines[2:], ["global (null)", "end"])
        # The original object can still wait for the process.
        self.assertTrue(process.wait(None))
        self.assertEqual(process.get_exit_status(), 0)

    def test_hand_over_by_descriptor(self):
        process = Afork.Process.new().require(MODULE)
        connection = process.hand_over(None)
        taken = Afork.Process.new_from_fd(connection.get_socket().get_fd())
        connection.close()
        connection, error = self.run_process(taken, "test_run_pid")
        self.assertIsNone(error)
        self.assertEqual(self.read_lines(connection),
                         ["pid %d" % taken.get_pid()])
        # Nobody reaps a handed-over process on this side's behalf.
        waited, error = self.wait_process(taken)
        self.assert_afork_error(error, Afork.Error.STATUS_UNKNOWN)

    def test_stolen_process_is_closed(self):
        process = Afork.Process.new()
        process.hand_over(None).close()
        connection, error = self.run_process(process, "test_run_pid")
        self.assert_afork_error(error, Afork.Error.CLOSED)


if __name__ == "__main__":
    taptest.main()
