# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prints one line when imported, without flushing: a template that
imports it must not have its children write the line again."""

print("pyworker_prints imported")
