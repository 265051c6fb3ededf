#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The SHA-256 of files with concurrent.futures.ProcessPoolExecutor and the
# forkserver start method: the program hash_files.py writes with an afork
# pool, for comparison.
#
#   hash-files-executor.py FILE...

import hashlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(paths, max_workers=None):
    """Returns {path: hex digest}, computed in a pool of workers."""
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=max_workers, mp_context=context) as executor:
        return dict(zip(paths, executor.map(sha256_file, paths)))


def main():
    paths = sys.argv[1:] or [os.path.abspath(__file__)]
    digests = hash_files(paths)
    for path in paths:
        print("%s  %s" % (digests[path], path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
