#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Calls per second of concurrent.futures.ProcessPoolExecutor with one
# worker, one call at a time (submit().result() in a loop), measured like
# afork-pool-bench measures afork_pool_call.
#
#   ppe_bench.py SECONDS
#
# Prints "rate R".

import concurrent.futures
import multiprocessing
import sys
import time


def echo(value):
    return value


def main():
    seconds = float(sys.argv[1])
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context('forkserver' if 'forkserver' in methods else 'fork')
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for i in range(200):
            pool.submit(echo, i).result()
        n = 0
        start = time.monotonic()
        while True:
            pool.submit(echo, n).result()
            n += 1
            if n % 100 == 0 and time.monotonic() - start >= seconds:
                break
        print(f'rate {n / (time.monotonic() - start):.1f}')


if __name__ == '__main__':
    main()
