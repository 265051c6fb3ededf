# SPDX-License-Identifier: LGPL-2.1-or-later
"""Counts the attribute lookups made on this module in each process (a
child starts from zero), and lets a call function rebind a function."""

import os
import sys
import types

_lookups = 0


class _CountingModule(types.ModuleType):
    def __getattribute__(self, name):
        global _lookups
        _lookups += 1
        return super().__getattribute__(name)


def _forked():
    global _lookups
    _lookups = 0


os.register_at_fork(after_in_child=_forked)


# Pool functions ---------------------------------------------------------------

def lookups():
    return _lookups


def answer():
    return "first"


# Call functions: def f(child, *args) ----------------------------------------

def rebind(child):
    global answer

    def answer():
        return "second"


sys.modules[__name__].__class__ = _CountingModule
