# SPDX-License-Identifier: LGPL-2.1-or-later
"""Put on PYTHONPATH by one test: notes the standard streams as the code
site runs finds them."""

import sys

early_streams = (sys.stdout, sys.stderr)
