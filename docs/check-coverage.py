#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks that the reference covers the whole public API.

usage: check-coverage.py LIBRARY GIR REFERENCE-DIR

- Every function the shared library exports (but the private ones, whose
  names start with an underscore) is in the introspection data.
- Every function, method, constructor, type, constant, callback and macro
  of the introspection data has its own entry in the reference (its
  index.json); a GType function is covered by the entry of its type; an
  enumeration member appears on the page of its enumeration. (Class
  structures of final types have nothing to document.)
- The guides are pages of the reference.

Exits 1 on a miss, naming it.
"""

import html
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

CORE = "{http://www.gtk.org/introspection/core/1.0}"
C = "{http://www.gtk.org/introspection/c/1.0}"
GLIB = "{http://www.gtk.org/introspection/glib/1.0}"

GUIDES = ["concepts.html", "porting.html", "protocol.html", "sandboxing.html"]
OURS = re.compile(r"^(afork_|Afork|AFORK_)\w*$")


def exported_functions(library):
    try:
        out = subprocess.run(["nm", "-D", "--defined-only", library],
                             check=True, capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        print("cannot list the symbols of %s: %s" % (library, error))
        sys.exit(1)
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in ("T", "W") and \
           not fields[2].startswith("_"):
            names.add(fields[2])
    return names


def gir_entries(path):
    """Yields (C name, what must cover it): ("entry", name) for a name with
    an entry of its own, ("text", name) for an enumeration member."""
    root = ET.parse(path).getroot()
    for element in root.iter():
        if element.tag in (CORE + "parameter", CORE + "instance-parameter",
                           CORE + "return-value", CORE + "type",
                           CORE + "array", CORE + "field"):
            continue
        if element.get(GLIB + "is-gtype-struct-for"):
            # The class structure of a final type: nothing to document.
            continue
        if element.tag == CORE + "member":
            yield element.get(C + "identifier"), ("text", element.get(C + "identifier"))
            continue
        for attribute in (C + "identifier", C + "type"):
            value = element.get(attribute)
            if value and OURS.match(value):
                yield value, ("entry", value)
        get_type = element.get(GLIB + "get-type")
        if get_type:
            yield get_type, ("entry", element.get(C + "type"))


def main():
    library, gir, reference = sys.argv[1:]
    missing = []

    entries = dict(gir_entries(gir))
    for name in sorted(exported_functions(library) - set(entries)):
        missing.append("exported but not introspected: %s" % name)

    with open(os.path.join(reference, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    documented = set()
    for symbol in index["symbols"]:
        documented.update(v for v in (symbol.get("ident"), symbol.get("ctype"))
                          if v)

    words = set()
    for page in os.listdir(reference):
        if page.endswith(".html"):
            with open(os.path.join(reference, page), encoding="utf-8") as f:
                words.update(re.findall(r"\w+", html.unescape(f.read())))

    for name, (kind, shown) in sorted(entries.items()):
        if (kind == "entry" and shown not in documented) or \
           (kind == "text" and shown not in words):
            missing.append("not in the reference: %s" % name)

    for guide in GUIDES:
        if not os.path.exists(os.path.join(reference, guide)):
            missing.append("guide missing from the reference: %s" % guide)

    for line in missing:
        print(line)
    if missing:
        return 1
    print("%d names of the introspection data, all in the reference"
          % len(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
