#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Afork.Sandbox from Python: a sandboxed template and its forks, probed
by the run function of tests/sandbox/afork-sandbox-module.c."""

import os
import tempfile

import taptest
from taptest import Afork, GLib

PROBES = "afork-sandbox-module"


class SandboxTest(taptest.LoopTestCase):

    def setUp(self):
        if Afork.Sandbox.get_kernel_landlock_abi() == 0:
            self.skipTest("this kernel has no Landlock")
        self.outside = tempfile.NamedTemporaryFile(prefix="afork-py-sandbox-")
        self.outside.write(b"outside\n")
        self.outside.flush()

    def tearDown(self):
        self.outside.close()

    def probe(self, process, *probes):
        for name in probes:
            process.send_arg(name)
        connection, error = self.run_process(process, "sandbox_probe_run")
        self.assertIsNone(error)
        lines = self.read_lines(connection)
        self.assertEqual(lines[-1], "end")
        return dict(line.rsplit(" ", 1) for line in lines[:-1])

    def test_template_and_forks_are_confined(self):
        sandbox = Afork.Sandbox.new()
        sandbox.set_cpu_limit(30)
        self.assertEqual(sandbox.props.cpu_limit, 30)
        template = Afork.Process.new().require(PROBES).sandbox(sandbox)
        outside = "open:" + self.outside.name
        fd = os.open(self.outside.name, os.O_RDONLY)
        try:
            for _ in range(2):
                child = template.fork().send_fd(fd)
                results = self.probe(child, "fd:0", outside, "socket-inet",
                                     "ptrace", "unshare-user", "exec:/bin/true")
                self.assertEqual(results, {
                    "fd:0": "ok",
                    outside: "EACCES",
                    "socket-inet": "EAFNOSUPPORT",
                    "ptrace": "EPERM",
                    "unshare-user": "EPERM",
                    "exec:/bin/true": "EPERM",
                })
        finally:
            os.close(fd)

        # Another template of the same program is free.
        free = Afork.Process.new().require(PROBES)
        self.assertEqual(self.probe(free, outside, "socket-inet"),
                         {outside: "ok", "socket-inet": "ok"})

    def test_unenforceable_and_best_effort(self):
        abi = Afork.Sandbox.get_kernel_landlock_abi()
        sandbox = Afork.Sandbox(landlock_abi=abi + 1)
        template = Afork.Process.new().require(PROBES).sandbox(sandbox)
        connection, error = self.run_process(template.fork(), "sandbox_probe_run")
        self.assertIsNone(connection)
        self.assert_afork_error(error, Afork.Error.SANDBOX)
        self.assertIn("Landlock", error.message)
        # Queueing copied the description: this changes only later ones.
        sandbox.props.best_effort = True
        template = Afork.Process.new().require(PROBES).sandbox(sandbox)
        self.assertEqual(self.probe(template.fork(), "socket-inet"),
                         {"socket-inet": "EAFNOSUPPORT"})


if __name__ == "__main__":
    taptest.main()
