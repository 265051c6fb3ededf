# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared code of the Python tests: TAP output for unittest, and helpers to
spin a GLib main loop until a condition holds.

Every test file starts with

    import taptest
    from taptest import MODULE, Afork, Gio, GLib

(importing taptest prints a TAP skip plan and exits when PyGObject or the
Afork typelib is missing), and ends with taptest.main().
"""

import os
import sys
import traceback
import unittest

# A guard against hangs, not a measure of speed: a test that has not seen
# what it waits for after this long has failed.
HANG_GUARD_SECONDS = 30

MODULE = "afork-test-module"


def require_gi():
    """Skips when PyGObject is missing; a typelib or library that cannot be
    loaded from a build that made them (AFORK_TEST_TYPELIB_BUILT) is a
    failure, not a skip."""
    try:
        import gi
    except ImportError as error:
        print("1..0 # SKIP PyGObject is missing: %s" % error)
        sys.exit(0)
    try:
        gi.require_version("Afork", "1.0")
        from gi.repository import Afork, Gio, GLib
        # Loading the library happens on first use of a symbol.
        Afork.get_server_path()
    except (ImportError, ValueError, RuntimeError) as error:
        if os.environ.get("AFORK_TEST_TYPELIB_BUILT"):
            print("Bail out! the build made the Afork typelib, but it cannot "
                  "be loaded: %s" % error)
            sys.exit(1)
        print("1..0 # SKIP the Afork typelib is missing: %s" % error)
        sys.exit(0)
    return Afork, Gio, GLib


Afork, Gio, GLib = require_gi()


class TapResult(unittest.TestResult):
    """Prints one TAP line per test as it ends."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.number = 0

    def _line(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    def _diag(self, text):
        for line in text.rstrip("\n").split("\n"):
            self._line("# " + line)

    @staticmethod
    def _name(test):
        return test.id().split(".", 1)[-1]

    def addSuccess(self, test):
        super().addSuccess(test)
        self.number += 1
        self._line("ok %d - %s" % (self.number, self._name(test)))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.number += 1
        self._line("not ok %d - %s" % (self.number, self._name(test)))
        self._diag("".join(traceback.format_exception(*err)))

    def addError(self, test, err):
        super().addError(test, err)
        self.number += 1
        self._line("not ok %d - %s" % (self.number, self._name(test)))
        self._diag("".join(traceback.format_exception(*err)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.number += 1
        self._line("ok %d - %s # SKIP %s" % (self.number, self._name(test),
                                              reason))


def main():
    """Runs the tests of the calling script, printing TAP."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules["__main__"])
    print("1..%d" % suite.countTestCases(), flush=True)
    result = TapResult(sys.stdout)
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)


class LoopTestCase(unittest.TestCase):
    """A test case with a GLib main context to spin."""

    def spin_until(self, condition, what):
        """Iterates the default main context until condition() is true."""
        context = GLib.MainContext.default()
        timed_out = []

        def on_timeout():
            timed_out.append(True)
            return GLib.SOURCE_REMOVE

        guard = GLib.timeout_add_seconds(HANG_GUARD_SECONDS, on_timeout)
        try:
            while not condition() and not timed_out:
                context.iteration(True)
        finally:
            if not timed_out:
                GLib.source_remove(guard)
        if timed_out:
            self.fail("still waiting for %s after %d s"
                      % (what, HANG_GUARD_SECONDS))

    def run_process(self, process, function, cancellable=None):
        """run_async() and wait: returns (connection, error)."""
        outcome = []

        def done(source, result):
            self.assertIs(source, process)
            try:
                outcome.append((source.run_finish(result), None))
            except GLib.Error as error:
                outcome.append((None, error))

        process.run_async(function, cancellable, done)
        self.spin_until(lambda: outcome, "run_async() to complete")
        return outcome[0]

    def read_all(self, stream):
        """Reads a Gio.InputStream to its end, asynchronously."""
        chunks = []
        done = []

        def on_read(source, result):
            try:
                data = source.read_bytes_finish(result).get_data()
            except GLib.Error as error:
                done.append(error)
                return
            if not data:
                done.append(None)
                return
            chunks.append(data)
            source.read_bytes_async(65536, GLib.PRIORITY_DEFAULT, None,
                                    on_read)

        stream.read_bytes_async(65536, GLib.PRIORITY_DEFAULT, None, on_read)
        self.spin_until(lambda: done, "the end of the stream")
        if done[0] is not None:
            raise done[0]
        return b"".join(chunks)

    def read_lines(self, connection):
        data = self.read_all(connection.get_input_stream())
        connection.close()
        return data.decode("utf-8", "replace").splitlines()

    def read_fd_to_eof(self, fd):
        """Reads a pipe's read end until every write end is closed, through
        the main loop. Closes fd."""
        stream = Gio.UnixInputStream.new(fd, True)
        try:
            return self.read_all(stream)
        finally:
            stream.close()

    def assert_afork_error(self, error, code):
        self.assertIsInstance(error, GLib.Error)
        self.assertEqual(error.domain, "afork-error-quark")
        self.assertTrue(error.matches(Afork.Error.quark(), code),
                        "expected code %d, got %d: %s"
                        % (code, error.code, error.message))


def open_fds():
    """The descriptors open in this process."""
    return set(int(name) for name in os.listdir("/proc/self/fd"))
