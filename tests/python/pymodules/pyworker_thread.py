# SPDX-License-Identifier: LGPL-2.1-or-later
"""A module that starts a thread when imported."""

import threading
import time

threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
