# SPDX-License-Identifier: LGPL-2.1-or-later
"""Records each import in the file named by PYWORKER_IMPORT_LOG."""

import os

imported_in_pid = os.getpid()

_log = os.environ.get("PYWORKER_IMPORT_LOG")
if _log:
    with open(_log, "a") as f:
        f.write("%d\n" % imported_in_pid)
