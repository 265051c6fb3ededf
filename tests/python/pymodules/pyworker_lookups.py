# SPDX-License-Identifier: LGPL-2.1-or-later
"""Counts, in each process (a child starts from zero), how often this
module is looked up in sys.modules the way C code does it
(PyImport_GetModule () asks its spec whether it is still being
imported), and lets a call function rebind a function."""

import os

_lookups = 0


class _CountingSpec(type(__spec__)):
    @property
    def _initializing(self):
        global _lookups
        _lookups += 1
        return False

    @_initializing.setter
    def _initializing(self, value):
        pass


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


_spec = _CountingSpec(__spec__.name, __spec__.loader, origin=__spec__.origin)
_spec.has_location = __spec__.has_location
__spec__ = _spec
