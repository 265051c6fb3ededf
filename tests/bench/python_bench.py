#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Python workers, side by side in one run (Debian's python3 through GI):
#
#   pool-python       afork pool, one worker, calls one at a time to a
#                     Python function (python:python_bench_functions.echo)
#   pool-c            the same pool calling a C function that does the
#                     same (bench_python_echo in libafork-bench-python)
#   executor          ProcessPoolExecutor, forkserver, max_workers=1,
#                     submit().result() in a loop, the same Python function
#   fresh-python      afork pool with max-calls-per-worker 1: a fresh
#                     Python worker (a fork of the template) per call
#   fresh-c           the same with a template that has no interpreter,
#                     calling the C function: what a fresh worker costs
#                     without Python, the most fresh-python could reach
#   forkserver        multiprocessing's forkserver at its best:
#                     Process(target=f).start(); join(), with f in a module
#                     the fork server preloaded and the main script not
#                     executed again in each child (see below)
#   forkserver-usual  the same as usually written, f in the main script
#                     (forkserver_bench.py forkserver, a script that
#                     imports only what it needs): each child executes the
#                     main script again; the target is set against this row
#   hash-afork        hash_files.py (introspection/examples) on 200 files
#   hash-executor     hash-files-executor.py on the same files
#
#   python_bench.py [--quick] [SECONDS [ROUNDS]]
#
# Every row runs the functions of python_bench_functions.py, a module that
# imports nothing: the afork templates import it, the fork server preloads
# it. Python 3.11's fork server does not preload the main module as it
# means to, and each of its children executes the main script again unless
# the script has no __file__ (forkserver_bench.py does the same); this
# script imports what it needs in its functions, so that nothing of it is
# paid in a child either way.
#
# Prints "machine: page costs ..." (tests/bench/bench-page-costs.c), then
# "row NAME round R rate X" (calls, processes or files per second) for
# every round, then the ratios the targets are about, computed round
# by round (drift between rounds cancels) and reported as the median.

import os
import sys
import time

# Before the fork server's set-up deletes this script's __file__.
HERE = os.path.dirname(os.path.abspath(__file__))


def rate_of(seconds, step):
    """Runs step() until @seconds have passed (3 times at least): per second."""
    n = 0
    start = time.monotonic()
    while True:
        step()
        n += 1
        elapsed = time.monotonic() - start
        if elapsed >= seconds and n >= 3:
            return n / elapsed


class Rows:

    def __init__(self, seconds):
        import gi
        gi.require_version("Afork", "1.0")
        from gi.repository import Afork, GLib
        self.Afork = Afork
        self.GLib = GLib
        self.seconds = seconds

        template = Afork.Process.new().require("python:python_bench_functions").require(
            "afork-bench-python")
        self.pool = Afork.Pool.new(template)
        self.pool.props.max_workers = 1

        fresh_template = Afork.Process.new().require("python:python_bench_functions")
        self.fresh_pool = Afork.Pool.new(fresh_template)
        self.fresh_pool.props.max_workers = 1
        self.fresh_pool.props.max_calls_per_worker = 1

        fresh_c_template = Afork.Process.new().require("afork-bench-python")
        self.fresh_c_pool = Afork.Pool.new(fresh_c_template)
        self.fresh_c_pool.props.max_workers = 1
        self.fresh_c_pool.props.max_calls_per_worker = 1

        import multiprocessing
        import tempfile
        from concurrent.futures import ProcessPoolExecutor
        import python_bench_functions

        self.functions = python_bench_functions
        context = multiprocessing.get_context("forkserver")
        # The fork server imports the functions once; the children find
        # them there (PYTHONPATH: the fork server ignores the sys.path it
        # is given) and are not asked to run this script again.
        context.set_forkserver_preload(["python_bench_functions"])
        del sys.modules["__main__"].__file__
        self.executor = ProcessPoolExecutor(max_workers=1, mp_context=context)
        self.mp_context = context

        self.files_dir = tempfile.TemporaryDirectory(prefix="afork-python-bench-")
        self.files = []
        for i in range(200):
            path = os.path.join(self.files_dir.name, "file%03d" % i)
            with open(path, "wb") as f:
                f.write(os.urandom(64 * 1024))
            self.files.append(path)

        # Warm up: workers started, functions resolved, fork server up.
        for _ in range(3):
            self.pool_python()
            self.pool_c()
            self.executor_call()
            self.fresh_python()
            self.fresh_c()
            self.forkserver()

    def call(self, pool, function):
        reply = pool.call(function, self.GLib.Variant("(x)", (7,)), None)
        if reply.unpack() != 7:
            raise SystemExit("%s replied %r" % (function, reply))

    def pool_python(self):
        self.call(self.pool, "python:python_bench_functions.echo")

    def pool_c(self):
        self.call(self.pool, "bench_python_echo")

    def executor_call(self):
        if self.executor.submit(self.functions.echo, 7).result() != 7:
            raise SystemExit("the executor's call failed")

    def fresh_python(self):
        self.call(self.fresh_pool, "python:python_bench_functions.echo")

    def fresh_c(self):
        self.call(self.fresh_c_pool, "bench_python_echo")

    def forkserver(self):
        process = self.mp_context.Process(target=self.functions.nothing)
        process.start()
        process.join()
        if process.exitcode != 0:
            raise SystemExit("child exited with %d" % process.exitcode)
        process.close()

    def forkserver_usual(self):
        import subprocess
        script = os.path.join(HERE, "forkserver_bench.py")
        result = subprocess.run([sys.executable, script, "forkserver", str(self.seconds), "1"],
                                check=True, capture_output=True, text=True)
        return float(result.stdout.split()[-1])

    def hash_afork(self):
        import hash_files
        start = time.monotonic()
        digests = hash_files.hash_files(self.files, max_workers=2)
        assert len(digests) == len(self.files)
        return len(self.files) / (time.monotonic() - start)

    def hash_executor(self):
        executor = __import__("hash-files-executor")
        start = time.monotonic()
        digests = executor.hash_files(self.files, max_workers=2)
        assert len(digests) == len(self.files)
        return len(self.files) / (time.monotonic() - start)

    def measure(self):
        rates = {}
        for name, step in [("pool-python", self.pool_python),
                           ("pool-c", self.pool_c),
                           ("executor", self.executor_call),
                           ("fresh-python", self.fresh_python),
                           ("fresh-c", self.fresh_c),
                           ("forkserver", self.forkserver)]:
            rates[name] = rate_of(self.seconds, step)
        rates["forkserver-usual"] = self.forkserver_usual()
        rates["hash-afork"] = self.hash_afork()
        rates["hash-executor"] = self.hash_executor()
        return rates


RATIOS = [
    ("pool-python / executor", "pool-python", "executor", 3.0),
    ("pool-python / pool-c", "pool-python", "pool-c", 0.6),
    ("fresh-python / forkserver-usual", "fresh-python", "forkserver-usual", 10.0),
    ("fresh-python / forkserver", "fresh-python", "forkserver", None),
    ("fresh-python / fresh-c", "fresh-python", "fresh-c", None),
    ("fresh-c / forkserver", "fresh-c", "forkserver", None),
    ("hash-afork / hash-executor", "hash-afork", "hash-executor", None),
]


def main():
    import statistics

    args = sys.argv[1:]
    quick = "--quick" in args
    args = [a for a in args if a != "--quick"]
    seconds = float(args[0]) if args else (0.2 if quick else 2.0)
    rounds = int(args[1]) if len(args) > 1 else (1 if quick else 3)

    here = os.path.dirname(os.path.abspath(__file__))
    examples = os.environ.get("AFORK_PYTHON_EXAMPLES",
                              os.path.join(here, "..", "..", "introspection", "examples"))
    sys.path.insert(0, examples)
    # The templates and the fork server import python_bench_functions and
    # hash_files through PYTHONPATH.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [here, examples, os.environ.get("PYTHONPATH")]))

    # What a page costs a new process here, which the fresh rows pay.
    import subprocess
    costs = os.path.join(os.environ.get("AFORK_BENCH_DIR", "."), "bench-page-costs")
    if os.access(costs, os.X_OK):
        result = subprocess.run([costs], stdout=subprocess.PIPE, text=True)
        if result.returncode == 0:
            print("machine: " + result.stdout.strip(), flush=True)

    rows = Rows(seconds)
    per_round = []
    for r in range(rounds):
        rates = rows.measure()
        for name, rate in rates.items():
            print("row %-14s round %d rate %.1f" % (name, r + 1, rate), flush=True)
        per_round.append(rates)

    status = 0
    for label, num, den, target in RATIOS:
        ratio = statistics.median(r[num] / r[den] for r in per_round)
        verdict = ""
        if target is not None:
            verdict = " (target >= %.1f: %s)" % (target, "met" if ratio >= target else "MISSED")
        print("ratio %-32s %.2f%s" % (label, ratio, verdict), flush=True)

    rows.executor.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
