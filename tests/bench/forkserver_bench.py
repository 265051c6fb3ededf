#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Processes per second of Python's multiprocessing with the forkserver
# start method, measured like afork-bench does: each process returns at
# once and the parent waits for its end.
#
#   forkserver_bench.py forkserver|forkserver-preload SECONDS REPETITIONS
#
# forkserver:          the usual way, the target function in the main
#                      script. Python 3.11's fork server does not preload
#                      the main module as it means to (it looks for a
#                      'main_path' key that spawn no longer provides), so
#                      every child executes the main script again.
# forkserver-preload:  the best case: the target lives in a module the
#                      fork server has preloaded, and children are not
#                      asked to execute the main script.
#
# Prints "rate R" for each repetition.

import multiprocessing
import os
import sys
import time


def nothing():
    pass


def one_process(context, target):
    process = context.Process(target=target)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f'child exited with {process.exitcode}')
    process.close()


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ('forkserver', 'forkserver-preload'):
        print(f'usage: {sys.argv[0]} forkserver|forkserver-preload SECONDS REPETITIONS',
              file=sys.stderr)
        return 2

    seconds = float(sys.argv[2])
    reps = int(sys.argv[3])
    context = multiprocessing.get_context('forkserver')
    target = nothing

    if sys.argv[1] == 'forkserver-preload':
        # This file, imported as a module, holds the target; without a
        # __file__ the main module is not sent to the children. The fork
        # server ignores the sys.path it is given: it finds the module
        # through PYTHONPATH.
        here = os.path.dirname(os.path.abspath(__file__))
        os.environ['PYTHONPATH'] = os.pathsep.join(
            filter(None, [here, os.environ.get('PYTHONPATH')]))
        import forkserver_bench
        target = forkserver_bench.nothing
        context.set_forkserver_preload(['forkserver_bench'])
        del sys.modules['__main__'].__file__

    # Warm up: the first process starts the fork server.
    for _ in range(3):
        one_process(context, target)

    for _ in range(reps):
        start = time.monotonic()
        n = 0
        while True:
            one_process(context, target)
            n += 1
            elapsed = time.monotonic() - start
            if elapsed >= seconds and n >= 3:
                break
        print(f'rate {n / elapsed:.3f}', flush=True)

    return 0


if __name__ == '__main__':
    sys.exit(main())
