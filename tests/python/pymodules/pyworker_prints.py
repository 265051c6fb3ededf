# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prints one line when imported, without flushing, then leaves an
unfinished one: a template that imports it must not have its children
write either again."""

import sys

print("pyworker_prints imported")
sys.stdout.write("<loading> ")
