#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Installs afork into a temporary prefix from a build of its own, then
# builds a program and a module against the installed pkg-config file and
# runs them, with nothing pointing at the source or build tree: the
# library must find its installed server by itself.
#
# usage: test-install.sh SRCDIR CC INTROSPECTION DOCS
#        test-install.sh --skip REASON

set -eu

if [ "${1:-}" = --skip ]; then
  echo "skipped: $2"
  exit 77
fi

srcdir=$1
cc=$2
introspection=$3
docs=$4

tmp=$(mktemp -d "${TMPDIR:-/tmp}/afork-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

# Nothing of the uninstalled tree may help.
unset AFORK_SERVER AFORK_MODULE_PATH AFORK_LOADER_PATH LD_LIBRARY_PATH GI_TYPELIB_PATH PKG_CONFIG_PATH

fail () {
  echo "FAIL: $*" >&2
  exit 1
}

step () {
  # Runs a command, showing its output only when it fails.
  log=$tmp/step.log
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "$*"
  fi
}

echo "# configuring a build of $srcdir for $prefix"
step meson setup "$tmp/build" "$srcdir" \
  --prefix "$prefix" --libdir lib --buildtype plain \
  -Db_sanitize=none -Dtests=false -Dexamples=false \
  -Dintrospection="$introspection" -Ddocs="$docs"
echo "# building and installing"
step meson compile -C "$tmp/build"
step meson install -C "$tmp/build" --no-rebuild

for f in \
  lib/libafork-1.so.0 \
  lib/pkgconfig/afork-1.pc \
  lib/pkgconfig/afork-module-1.pc \
  include/afork-1/afork/afork.h \
  include/afork-1/afork/afork-enum-types.h \
  include/afork-1/afork/afork-version.h
do
  [ -f "$prefix/$f" ] || fail "$f is not installed"
done
[ -x "$prefix/libexec/afork-server" ] || fail "libexec/afork-server is not installed"

if [ "$introspection" = enabled ]; then
  [ -f "$prefix/share/gir-1.0/Afork-1.0.gir" ] || fail "the GIR is not installed"
  [ -f "$prefix/lib/girepository-1.0/Afork-1.0.typelib" ] || fail "the typelib is not installed"
fi
if [ "$docs" = true ]; then
  [ -f "$prefix/share/doc/afork-1/index.html" ] || fail "the reference is not installed"
  [ -f "$prefix/share/doc/afork-1/porting.html" ] || fail "the porting guide is not installed"
fi
echo "ok - files installed"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
server=$(pkg-config --variable=server afork-1)
[ "$server" = "$prefix/libexec/afork-server" ] || \
  fail "pkg-config names the server $server"
echo "ok - pkg-config file"

cd "$tmp"
# shellcheck disable=SC2046 # pkg-config's output is a list of words
step "$cc" -Wall -Wextra -Werror -o hello "$srcdir/tests/install/hello.c" \
  $(pkg-config --cflags --libs afork-1)
# shellcheck disable=SC2046
step "$cc" -Wall -Wextra -Werror -shared -fPIC -o libhello-module.so \
  "$srcdir/tests/install/hello-module.c" $(pkg-config --cflags --libs afork-module-1)
# A module built against afork-1 works as well.
# shellcheck disable=SC2046
step "$cc" -Wall -Wextra -Werror -shared -fPIC -o libhello-linked-module.so \
  "$srcdir/tests/install/hello-module.c" $(pkg-config --cflags --libs afork-1)
echo "ok - a program and modules build against the installed library"

# The module package links GLib alone: no libafork-1, no GIO.
needed=$(LC_ALL=C readelf -d libhello-module.so | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
case "$needed" in
  *libafork*|*libgio*|*libgobject*) fail "the afork-module-1 module needs: $needed" ;;
esac
echo "ok - afork-module-1 links no libafork-1, GIO nor GObject"

export LD_LIBRARY_PATH="$prefix/lib"
./hello "$tmp/libhello-module.so" "$prefix/libexec/afork-server" || \
  fail "the program did not run"
./hello "$tmp/libhello-linked-module.so" "$prefix/libexec/afork-server" || \
  fail "the program did not run the module linked with libafork-1"
echo "ok - the program runs, with the installed server"

if [ "$introspection" = enabled ] && [ -x /usr/bin/python3 ] && \
   /usr/bin/python3 -c 'import gi' 2>/dev/null; then
  GI_TYPELIB_PATH="$prefix/lib/girepository-1.0" /usr/bin/python3 - \
    "$tmp/libhello-module.so" "$prefix/libexec/afork-server" <<'PYTHON' || \
    fail "Python could not use the installed typelib"
import sys
import gi
gi.require_version("Afork", "1.0")
from gi.repository import Afork, Gio

module, server = sys.argv[1:]
assert Afork.get_server_path() == server, Afork.get_server_path()
process = Afork.Process.new().require(module).send_arg("python")
connection = process.run("hello_run", None)
stream = Gio.DataInputStream.new(connection.get_input_stream())
line, _ = stream.read_line_utf8(None)
expected = "hello python from %d" % process.get_pid()
assert line == expected, (line, expected)
print(line)
PYTHON
  echo "ok - Python runs it through the installed typelib"

  # The Python loader, where the build has one (python3-dev installed),
  # found in the installed loader directory.
  if [ -f "$prefix/lib/afork-1/loaders/python.so" ]; then
    GI_TYPELIB_PATH="$prefix/lib/girepository-1.0" /usr/bin/python3 - <<'PYTHON' || \
      fail "the installed Python loader does not run Python functions"
import gi
gi.require_version("Afork", "1.0")
from gi.repository import Afork

process = Afork.Process.new().require("python:json")
connection = process.run("python:builtins.id", None)
assert connection is not None
PYTHON
    echo "ok - the installed Python loader runs Python functions"
  fi
fi
