# SPDX-License-Identifier: LGPL-2.1-or-later
"""A module that cannot be imported."""

raise RuntimeError("pyworker_raises refuses to be imported")
