#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The SHA-256 of files, computed by Python functions in the workers of an
# afork pool: the same program as hash-files-executor.py, which uses
# concurrent.futures.ProcessPoolExecutor.
#
# The workers are forks of a template that imported this file as the
# module hash_files (found through PYTHONPATH, which the template takes
# from this program's environment); sha256_file() runs there. Calls are
# made all at once, and their replies come back through the main loop.
#
#   hash_files.py FILE...
#
# From a build tree:
#   meson devenv -C BUILDDIR -w . python3 introspection/examples/hash_files.py FILE...

import hashlib
import os
import sys


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(paths, max_workers=None):
    """Returns {path: hex digest}, computed in a pool of workers."""
    import gi
    gi.require_version("Afork", "1.0")
    from gi.repository import Afork, GLib

    template = Afork.Process.new().require("python:hash_files")
    pool = Afork.Pool.new(template)
    if max_workers:
        pool.props.max_workers = max_workers
    digests = {}
    errors = []

    def done(pool, result, path):
        try:
            digests[path] = pool.call_finish(result).unpack()
        except GLib.Error as error:
            errors.append("%s: %s" % (path, error.message))

    for path in paths:
        pool.call_async("python:hash_files.sha256_file",
                        GLib.Variant("(s)", (path,)), None, done, path)

    context = GLib.MainContext.default()
    while len(digests) + len(errors) < len(paths):
        context.iteration(True)

    for error in errors:
        print(error, file=sys.stderr)
    return digests


def main():
    # The template finds this file's module through PYTHONPATH.
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [here, os.environ.get("PYTHONPATH")]))

    paths = sys.argv[1:] or [os.path.abspath(__file__)]
    digests = hash_files(paths)
    for path in paths:
        if path in digests:
            print("%s  %s" % (digests[path], path))
    return 0 if len(digests) == len(paths) else 1


if __name__ == "__main__":
    sys.exit(main())
