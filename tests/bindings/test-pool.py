#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Afork.Pool from Python: calls with GLib.Variant values, errors by
domain, descriptors in and out, events before the reply, a dead worker."""

import os

import taptest
from taptest import Afork, GLib, Gio

POOL_MODULE = os.path.join(os.environ["G_TEST_BUILDDIR"], "pool",
                           "libafork-pool-test-module.so")


def make_pool():
    template = Afork.Process.new()
    template.require(POOL_MODULE)
    return Afork.Pool.new(template)


class PoolTest(taptest.LoopTestCase):

    def test_sync_call_round_trips_a_value(self):
        pool = make_pool()
        value = GLib.Variant("(sa{sv}ax)", ("hé", {"k": GLib.Variant("i", 1)}, [1, -2]))
        reply = pool.call("pool_echo", value, None)
        self.assertEqual(reply.unpack(), value.unpack())
        self.assertEqual(pool.call("pool_echo", None, None).get_type_string(), "()")

    def test_async_call_completes_in_the_loop(self):
        pool = make_pool()
        replies = []

        def done(source, result):
            replies.append(source.call_finish(result).unpack())

        for i in range(20):
            pool.call_async("pool_echo", GLib.Variant("(u)", (i,)), None, done)
        self.spin_until(lambda: len(replies) == 20, "20 calls")
        self.assertEqual(sorted(r[0] for r in replies), list(range(20)))

    def test_error_keeps_its_domain(self):
        pool = make_pool()
        with self.assertRaises(GLib.Error) as caught:
            pool.call("pool_fail", GLib.Variant("(s)", ("from the worker",)), None)
        self.assertEqual(caught.exception.domain, "afork-pool-test-worker-error")
        self.assertEqual(caught.exception.code, 42)
        self.assertEqual(caught.exception.message, "from the worker")

    def test_missing_function(self):
        pool = make_pool()
        with self.assertRaises(GLib.Error) as caught:
            pool.call("no_such_pool_function", None, None)
        self.assert_afork_error(caught.exception, Afork.Error.FUNCTION_NOT_FOUND)

    def test_descriptors_in_and_out(self):
        pool = make_pool()
        fd_list = Gio.UnixFDList.new()
        handles = []
        for byte in (b"a", b"b"):
            read_end, write_end = os.pipe()
            os.write(write_end, byte)
            handles.append(fd_list.append(read_end))
            os.close(read_end)
            os.close(write_end)
        reply, out_fds = pool.call_with_fds(
            "pool_read_fds", GLib.Variant("(ah)", (handles,)), fd_list, None)
        self.assertEqual(bytes(reply.unpack()[0]), b"ab")

        reply, out_fds = pool.call_with_fds("pool_make_fds", GLib.Variant("(u)", (3,)),
                                            None, None)
        self.assertEqual(out_fds.get_length(), 3)
        for index, handle in enumerate(reply.unpack()[0]):
            fd = out_fds.get(handle)
            self.assertEqual(os.read(fd, 1), bytes([index]))
            os.close(fd)

    def test_events_come_before_the_reply(self):
        pool = make_pool()
        log = []
        pool.connect("event::progress",
                     lambda pool, name, value: log.append((name, value.unpack())))

        def done(source, result):
            log.append(("reply", source.call_finish(result).unpack()))

        pool.call_async("pool_events", GLib.Variant("(u)", (2,)), None, done)
        self.spin_until(lambda: len(log) == 3, "the events and the reply")
        self.assertEqual(log, [("progress", (0,)), ("progress", (1,)), ("reply", (2,))])

    def test_a_dead_worker_costs_one_call(self):
        pool = make_pool()
        pool.props.max_workers = 1
        with self.assertRaises(GLib.Error) as caught:
            pool.call("pool_exit", GLib.Variant("(i)", (4,)), None)
        self.assert_afork_error(caught.exception, Afork.Error.CHILD_EXITED)
        self.assertIn("status 4", caught.exception.message)
        self.assertEqual(pool.call("pool_echo", GLib.Variant("(i)", (5,)), None).unpack(), (5,))

    def test_close(self):
        pool = make_pool()
        pool.call("pool_echo", None, None)
        closed = []
        pool.close_async(None, lambda source, result: closed.append(source.close_finish(result)))
        self.spin_until(lambda: closed, "the pool to close")
        self.assertEqual(closed, [True])
        with self.assertRaises(GLib.Error) as caught:
            pool.call("pool_echo", None, None)
        self.assert_afork_error(caught.exception, Afork.Error.CLOSED)


if __name__ == "__main__":
    taptest.main()
