#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python program calling Python functions in an afork pool through GI:
values, exceptions, a worker that dies, descriptors, 1,000 calls."""

import os

import taptest
from taptest import Afork, Gio, GLib


class PythonPoolTest(taptest.LoopTestCase):

    def setUp(self):
        template = Afork.Process.new().require("python:pyworker")
        self.pool = Afork.Pool.new(template)

    def call_all(self, calls):
        """Calls (function, parameters) all at once: [(reply, error)]."""
        results = [None] * len(calls)

        def done(pool, result, index):
            try:
                results[index] = (pool.call_finish(result), None)
            except GLib.Error as error:
                results[index] = (None, error)

        for index, (function, parameters) in enumerate(calls):
            self.pool.call_async(function, parameters, None, done, index)
        self.spin_until(lambda: all(r is not None for r in results),
                        "%d calls" % len(calls))
        return results

    def test_values(self):
        sent = GLib.Variant("(bxdsayatasa{sv})",
                            (True, -5, 2.5, "text", b"\x00\x01", (1, 2, 3),
                             ["a"], {"k": GLib.Variant("s", "v")}))
        reply = self.pool.call("python:pyworker.echo_values", sent, None)
        # Each value comes back with the type it suggests in Python.
        self.assertEqual(reply.get_type_string(), "(bxdsayaxasa{ss})")
        # (PyGObject unpacks ay as a list of ints.)
        self.assertEqual(reply.unpack(), (True, -5, 2.5, "text", [0, 1],
                                          [1, 2, 3], ["a"], {"k": "v"}))

    def test_exact_type(self):
        reply = self.pool.call("python:pyworker.typed",
                               GLib.Variant("(sv)", ("a{su}", GLib.Variant("a{sx}", {"n": 4}))),
                               None)
        self.assertEqual(reply.get_type_string(), "a{su}")
        self.assertEqual(reply.unpack(), {"n": 4})

    def test_exception(self):
        with self.assertRaises(GLib.Error) as caught:
            self.pool.call("python:pyworker.fail",
                           GLib.Variant("(ss)", ("ValueError", "bad value")), None)
        self.assertEqual(caught.exception.domain, "afork-python-error-quark")
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(caught.exception.message, "ValueError: bad value")

    def test_exit_fails_its_call_alone(self):
        calls = [("python:pyworker.add", GLib.Variant("(ii)", (i, 1)))
                 for i in range(100)]
        calls[30] = ("python:pyworker.die", GLib.Variant("(i)", (3,)))
        results = self.call_all(calls)
        failed = [i for i, (reply, error) in enumerate(results) if error]
        self.assertEqual(failed, [30])
        self.assertTrue(results[30][1].matches(Afork.Error.quark(),
                                               Afork.Error.CHILD_EXITED))
        self.assertEqual(results[10][0].unpack(), 11)

    def test_thousand_calls(self):
        results = self.call_all([("python:pyworker.add", GLib.Variant("(ii)", (i, i)))
                                 for i in range(1000)])
        self.assertEqual([reply.unpack() for reply, _ in results],
                         [2 * i for i in range(1000)])

    def test_descriptors(self):
        read_end, write_end = os.pipe()
        os.write(write_end, b"into python")
        os.close(write_end)
        fd_list = Gio.UnixFDList.new()
        handle = fd_list.append(read_end)
        os.close(read_end)
        reply, _ = self.pool.call_with_fds("python:pyworker.read_fd",
                                           GLib.Variant("(h)", (handle,)), fd_list, None)
        self.assertEqual(reply.get_type_string(), "ay")
        self.assertEqual(bytes(reply.unpack()), b"into python")

        reply, out_fds = self.pool.call_with_fds("python:pyworker.make_pipe",
                                                 GLib.Variant("(s)", ("out of python",)),
                                                 None, None)
        fd = out_fds.get(reply.unpack())
        with os.fdopen(fd, "rb") as f:
            self.assertEqual(f.read(), b"out of python")


if __name__ == "__main__":
    taptest.main()
