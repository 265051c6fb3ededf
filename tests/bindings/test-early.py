#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Templates forked from the Python program itself: early init and
fork-self, before the program runs a second thread, and reset."""

import os
import threading

import taptest
from taptest import MODULE, Afork, GLib

# First thing, while the interpreter runs a single thread: afork must not
# have been used yet.
EARLY_ERROR = None
try:
    Afork.early_init()
except GLib.Error as error:
    EARLY_ERROR = error

SELF_TEMPLATE = None
SELF_ERROR = None
try:
    SELF_TEMPLATE = Afork.Process.fork_self()
except GLib.Error as error:
    SELF_ERROR = error

PROGRAM = os.path.realpath("/proc/self/exe")


def parent_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def program_of(pid):
    return os.path.realpath("/proc/%d/exe" % pid)


class EarlyTest(taptest.LoopTestCase):

    def run_and_check(self, process, check):
        """Runs test_run_echo, which stays until its connection closes, and
        calls check(pid) meanwhile."""
        connection, error = self.run_process(process.require(MODULE),
                                             "test_run_echo")
        self.assertIsNone(error)
        try:
            check(process.get_pid())
        finally:
            connection.get_output_stream().write_all(b"bye\n", None)
            connection.get_socket().shutdown(False, True)
            self.assertEqual(self.read_lines(connection), ["echo bye"])

    def assert_forked_from_this_program(self, pid):
        template = parent_of(pid)
        # The template is a fork of this program, not afork-server, and
        # not a child of this process.
        self.assertEqual(program_of(template), PROGRAM)
        self.assertNotEqual(template, os.getpid())
        self.assertNotEqual(parent_of(template), os.getpid())

    def test_1_early_template_serves_new(self):
        self.assertIsNone(EARLY_ERROR)
        self.run_and_check(Afork.Process.new(),
                           self.assert_forked_from_this_program)

    def test_2_early_template_serves_new_exec(self):
        self.run_and_check(Afork.Process.new_exec(),
                           self.assert_forked_from_this_program)

    def test_3_fork_self(self):
        self.assertIsNone(SELF_ERROR)
        self.assertIsInstance(SELF_TEMPLATE, Afork.Process)
        for _ in range(2):
            self.run_and_check(SELF_TEMPLATE.fork(),
                               self.assert_forked_from_this_program)

    def test_4_refused_once_threaded(self):
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        try:
            with self.assertRaises(GLib.Error) as caught:
                Afork.Process.fork_self()
            self.assert_afork_error(caught.exception, Afork.Error.THREADED)
        finally:
            stop.set()
            thread.join()

    def test_5_reset_goes_back_to_afork_server(self):
        Afork.reset()
        server = os.path.realpath(os.environ["AFORK_SERVER"])
        self.run_and_check(
            Afork.Process.new(),
            lambda pid: self.assertEqual(program_of(parent_of(pid)), server))


if __name__ == "__main__":
    taptest.main()
