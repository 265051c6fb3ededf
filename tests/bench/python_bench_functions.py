# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The functions python_bench.py runs in every row, in a module of their
# own as an application would have them: afork's templates import it
# (python:python_bench_functions), multiprocessing's fork server preloads
# it, and ProcessPoolExecutor's worker imports it once. It imports
# nothing, so no row pays for modules another row does not need.


def echo(value):
    return value


def nothing():
    pass
