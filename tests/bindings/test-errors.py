#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Errors reach Python as GLib.Error in the Afork domain, with the code of
the stage that failed and a message naming the culprit."""

import os

import taptest
from taptest import MODULE, Afork, GLib


class ErrorTest(taptest.LoopTestCase):

    def run_expecting(self, process, function, code):
        connection, error = self.run_process(process, function)
        self.assertIsNone(connection)
        self.assert_afork_error(error, code)
        return error

    def test_error_domain(self):
        self.assertEqual(GLib.quark_to_string(Afork.Error.quark()),
                         "afork-error-quark")
        self.assertEqual(Afork.error_quark(), Afork.Error.quark())

    def test_module_missing(self):
        process = Afork.Process.new().require("afork-no-such-module")
        error = self.run_expecting(process, "test_run_args",
                                   Afork.Error.MODULE_NOT_FOUND)
        self.assertIn("afork-no-such-module", error.message)

    def test_run_function_missing(self):
        process = Afork.Process.new().require(MODULE)
        error = self.run_expecting(process, "test_no_such_function",
                                   Afork.Error.FUNCTION_NOT_FOUND)
        self.assertIn("test_no_such_function", error.message)

    def test_call_function_missing(self):
        process = (Afork.Process.new().require(MODULE)
                   .call("test_no_such_call", None))
        error = self.run_expecting(process, "test_run_args",
                                   Afork.Error.FUNCTION_NOT_FOUND)
        self.assertIn("test_no_such_call", error.message)

    def test_call_failure(self):
        process = (Afork.Process.new().require(MODULE)
                   .call("test_call_fail", ["because"]))
        error = self.run_expecting(process, "test_run_args",
                                   Afork.Error.CALL_FAILED)
        self.assertIn("test_call_fail", error.message)
        # The child's own message, domain and code travel in the message.
        self.assertIn("test failure requested with because", error.message)
        self.assertIn("g-file-error-quark", error.message)

    def test_failure_skips_later_work(self):
        read_end, write_end = os.pipe()
        process = (Afork.Process.new().require(MODULE)
                   .call("test_call_fail", ["first"])
                   .call("test_call_set_global", ["never"])
                   .send_fd(write_end))
        os.close(write_end)
        self.run_expecting(process, "test_run_args", Afork.Error.CALL_FAILED)
        # The run function never ran, and the child is gone.
        self.assertEqual(self.read_fd_to_eof(read_end), b"")

    def test_child_crash(self):
        process = (Afork.Process.new().require(MODULE)
                   .call("test_call_crash", None))
        self.run_expecting(process, "test_run_args",
                           Afork.Error.CHILD_EXITED)

    def test_closed_descriptor(self):
        read_end, write_end = os.pipe()
        os.close(read_end)
        os.close(write_end)
        # Nothing else opens descriptors in this thread meanwhile.
        process = Afork.Process.new().require(MODULE).send_fd(write_end)
        error = self.run_expecting(process, "test_run_args",
                                   Afork.Error.INVALID_ARGUMENT)
        self.assertIn(str(write_end), error.message)

    def test_run_twice(self):
        process = Afork.Process.new().require(MODULE)
        connection, error = self.run_process(process, "test_run_pid")
        self.assertIsNone(error)
        connection.close()
        self.run_expecting(process, "test_run_pid", Afork.Error.CLOSED)

    def test_fork_after_run(self):
        process = Afork.Process.new().require(MODULE)
        connection, error = self.run_process(process, "test_run_pid")
        self.assertIsNone(error)
        connection.close()
        self.run_expecting(process.fork(), "test_run_pid",
                           Afork.Error.CLOSED)

    def test_fork_of_a_failed_template(self):
        template = (Afork.Process.new().require(MODULE)
                    .call("test_call_fail", ["template"]))
        self.run_expecting(template.fork(), "test_run_pid",
                           Afork.Error.CALL_FAILED)

    def test_synchronous_run_raises(self):
        process = Afork.Process.new().require("afork-no-such-module")
        with self.assertRaises(GLib.Error) as caught:
            process.run("test_run_pid", None)
        self.assert_afork_error(caught.exception,
                                Afork.Error.MODULE_NOT_FOUND)

    def test_server_not_found(self):
        saved = os.environ["AFORK_SERVER"]
        os.environ["AFORK_SERVER"] = "/nonexistent/afork-server"
        try:
            with self.assertRaises(GLib.Error) as caught:
                Afork.Process.new_exec()
        finally:
            os.environ["AFORK_SERVER"] = saved
        self.assert_afork_error(caught.exception,
                                Afork.Error.SERVER_NOT_FOUND)
        self.assertIn("/nonexistent/afork-server", caught.exception.message)


if __name__ == "__main__":
    taptest.main()
