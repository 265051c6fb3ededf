#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A pool of workers that count words (examples/calls.c in Python).

Each call sends a GLib.Variant and gets one back, events arrive before the
reply, and a worker that crashes costs its call alone.

From a build tree:
  meson devenv -C BUILDDIR -w . /usr/bin/python3 introspection/examples/calls.py
"""

import sys

import gi

gi.require_version("Afork", "1.0")
from gi.repository import Afork, GLib  # noqa: E402

TEXTS = ["the quick brown fox", "jumps over the lazy dog",
         "a pool of workers forked from one template"]

template = Afork.Process.new()
template.require("afork-example")
pool = Afork.Pool.new(template)
pool.connect("event::progress",
             lambda pool, name, value: print("event", name, value.unpack()))

loop = GLib.MainLoop()
counts = {}


def counted(pool, result, text):
    counts[text] = pool.call_finish(result).unpack()[0]
    print("%r: %d words" % (text, counts[text]))
    if len(counts) == len(TEXTS):
        loop.quit()


for text in TEXTS:
    pool.call_async("example_count_words", GLib.Variant("(s)", (text,)), None,
                    counted, text)
loop.run()

try:
    pool.call("example_crash", None, None)
    sys.exit("the crash did not fail its call")
except GLib.Error as error:
    print("crash:", error.message)

(after,) = pool.call("example_count_words", GLib.Variant("(s)", ("still serving",)),
                     None).unpack()
print("after the crash: %d words" % after)
sys.exit(0 if counts[TEXTS[2]] == 8 and after == 2 else 1)
