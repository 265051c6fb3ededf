#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Lifetime from Python: processes dropped before run exit and leave
nothing behind, and Gio.Cancellable cancels a run."""

import gc
import os
import unittest
import weakref

import taptest
from taptest import MODULE, Afork, Gio, GLib


class LifetimeTest(taptest.LoopTestCase):

    def setUp(self):
        # Start the default template first, so that its socket does not
        # count as a descriptor leaked by the test.
        Afork.Process.new()
        gc.collect()

    def test_dropped_before_run(self):
        read_end, write_end = os.pipe()
        process = (Afork.Process.new()
                   .require(MODULE)
                   .send_arg("never run")
                   .send_fd(write_end))
        os.close(write_end)
        ref = weakref.ref(process)
        del process
        gc.collect()
        # Nothing in Python or in the library keeps the object...
        self.assertIsNone(ref())
        # ...and the child, whose socket closed, exited: the only other
        # copy of the write end is gone. It never ran, so wrote nothing.
        self.assertEqual(self.read_fd_to_eof(read_end), b"")

    def test_many_dropped_processes_leak_nothing(self):
        before = taptest.open_fds()
        read_ends = []
        for i in range(20):
            read_end, write_end = os.pipe()
            Afork.Process.new().require(MODULE).send_arg(str(i)).send_fd(
                write_end)
            os.close(write_end)
            read_ends.append(read_end)
        gc.collect()
        for read_end in read_ends:
            self.assertEqual(self.read_fd_to_eof(read_end), b"")
        self.assertEqual(taptest.open_fds(), before)

    def test_dropped_template_after_fork(self):
        read_end, write_end = os.pipe()
        template = Afork.Process.new().require(MODULE).send_fd(write_end)
        os.close(write_end)
        worker = template.fork()
        ref = weakref.ref(template)
        del template
        gc.collect()
        self.assertIsNone(ref())
        # The worker was forked before the template exited, and got the
        # descriptor: running it still works.
        connection, error = self.run_process(worker, "test_run_args")
        self.assertIsNone(error)
        self.assertEqual(self.read_lines(connection),
                         ["f", "global (null)", "end"])
        self.assertEqual(self.read_fd_to_eof(read_end), b"fd 0\n")

    def test_object_released_after_run(self):
        process = Afork.Process.new().require(MODULE)
        ref = weakref.ref(process)
        connection, error = self.run_process(process, "test_run_pid")
        self.assertIsNone(error)
        pid = process.get_pid()
        del process
        gc.collect()
        self.assertIsNone(ref())
        # The connection outlives the process object.
        self.assertEqual(self.read_lines(connection), ["pid %d" % pid])

    def test_cancel_while_waiting(self):
        read_end, write_end = os.pipe()
        # test_call_wait_hangup keeps the child from answering the run
        # command until the parent closes its side: the run is pending
        # for sure when it is cancelled.
        process = (Afork.Process.new()
                   .require(MODULE)
                   .send_fd(write_end)
                   .call("test_call_wait_hangup", None))
        os.close(write_end)
        cancellable = Gio.Cancellable.new()
        outcome = []

        def done(source, result):
            try:
                outcome.append(source.run_finish(result))
            except GLib.Error as error:
                outcome.append(error)

        process.run_async("test_run_args", cancellable, done)
        GLib.idle_add(lambda: cancellable.cancel() or GLib.SOURCE_REMOVE)
        self.spin_until(lambda: outcome, "the cancelled run to complete")
        self.assertIsInstance(outcome[0], GLib.Error)
        self.assertTrue(outcome[0].matches(Gio.io_error_quark(),
                                           Gio.IOErrorEnum.CANCELLED))
        # The child exits without running its function.
        self.assertEqual(self.read_fd_to_eof(read_end), b"")

    def cancel_before_run(self):
        read_end, write_end = os.pipe()
        process = Afork.Process.new().require(MODULE).send_fd(write_end)
        os.close(write_end)
        cancellable = Gio.Cancellable.new()
        cancellable.cancel()
        connection, error = self.run_process(process, "test_run_args",
                                             cancellable)
        self.assertIsNone(connection)
        self.assertTrue(error.matches(Gio.io_error_quark(),
                                      Gio.IOErrorEnum.CANCELLED))
        # The child exits: the pipe reaches its end.
        return self.read_fd_to_eof(read_end)

    def test_cancelled_before_run(self):
        self.assertEqual(self.cancel_before_run(), b"")

    def test_cancelled_before_run_never_runs(self):
        for _ in range(50):
            self.assertEqual(self.cancel_before_run(), b"")

    def test_cancel_after_completion_is_harmless(self):
        process = Afork.Process.new().require(MODULE)
        cancellable = Gio.Cancellable.new()
        connection, error = self.run_process(process, "test_run_echo",
                                             cancellable)
        self.assertIsNone(error)
        cancellable.cancel()
        connection.get_output_stream().write_all(b"still there\n", None)
        connection.get_socket().shutdown(False, True)
        self.assertEqual(self.read_lines(connection), ["echo still there"])

    def test_synchronous_run_cancelled(self):
        process = (Afork.Process.new()
                   .require(MODULE)
                   .call("test_call_wait_hangup", None))
        cancellable = Gio.Cancellable.new()
        cancellable.cancel()
        with self.assertRaises(GLib.Error) as caught:
            process.run("test_run_pid", cancellable)
        self.assertTrue(caught.exception.matches(Gio.io_error_quark(),
                                                 Gio.IOErrorEnum.CANCELLED))


if __name__ == "__main__":
    taptest.main()
