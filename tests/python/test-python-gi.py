#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python program offloading Python functions through GI: the python:
loader imports, runs and calls functions of pymodules/pyworker.py in
afork processes, and reports their exceptions."""

import os

import taptest
from taptest import Afork, GLib


class PythonLoaderTest(taptest.LoopTestCase):

    def run_expecting(self, process, function, code):
        connection, error = self.run_process(process, function)
        self.assertIsNone(connection)
        self.assert_afork_error(error, code)
        return error

    def run_lines(self, process, function):
        connection, error = self.run_process(process, function)
        self.assertIsNone(error)
        return self.read_lines(connection)

    def test_require_missing(self):
        process = Afork.Process.new().require("python:pyworker_no_such")
        error = self.run_expecting(process, "python:pyworker.report_state",
                                   Afork.Error.MODULE_NOT_FOUND)
        self.assertIn("pyworker_no_such", error.message)
        self.assertIn("ModuleNotFoundError", error.message)

    def test_require_raises(self):
        process = Afork.Process.new().require("python:pyworker_raises")
        error = self.run_expecting(process, "python:pyworker.report_state",
                                   Afork.Error.MODULE_NOT_FOUND)
        self.assertIn("RuntimeError: pyworker_raises refuses to be imported",
                      error.message)

    def test_run_args(self):
        read_end, write_end = os.pipe()
        os.write(write_end, b"through a pipe")
        os.close(write_end)
        process = (Afork.Process.new().require("python:pyworker")
                   .send_arg("text").send_bytes(GLib.Bytes.new(b"\xfe"))
                   .send_fd(read_end))
        os.close(read_end)
        self.assertEqual(self.run_lines(process, "python:pyworker.report_args"),
                         ["str 'text'", "bytes b'\\xfe'", "fd through a pipe"])

    def test_call_then_run(self):
        process = (Afork.Process.new()
                   .call("python:pyworker.set_state", ["answer", "42"]))
        self.assertEqual(self.run_lines(process, "python:pyworker.report_state"),
                         ["[('answer', '42')]"])

    def test_call_exception(self):
        process = (Afork.Process.new()
                   .call("python:pyworker.fail_call", ["x"]))
        error = self.run_expecting(process, "python:pyworker.report_state",
                                   Afork.Error.CALL_FAILED)
        self.assertIn("KeyError: 'call failed with x'", error.message)
        self.assertIn("afork-python-error-quark", error.message)

    def test_function_missing(self):
        error = self.run_expecting(Afork.Process.new(),
                                   "python:pyworker.no_such_function",
                                   Afork.Error.FUNCTION_NOT_FOUND)
        self.assertIn("pyworker.no_such_function", error.message)

    def test_random_differs_between_children(self):
        template = Afork.Process.new().require("python:pyworker")
        values = set()
        for _ in range(5):
            lines = self.run_lines(template.fork(), "python:pyworker.report_random")
            values.add(lines[0].split()[1])
        self.assertEqual(len(values), 5)


if __name__ == "__main__":
    taptest.main()
