# SPDX-License-Identifier: LGPL-2.1-or-later
"""Functions the Python loader tests run in afork processes."""

import io
import os
import random
import signal
import sys
import threading

import afork

# Set by call functions in a template, read by its children.
state = {}


# Run functions: def f(child) ------------------------------------------------

def report_args(child):
    """Writes one line per argument: its type and value; descriptors get
    'fd' and the first line read from them."""
    out = []
    for arg in child.args:
        if isinstance(arg, int):
            with os.fdopen(arg, "rb") as f:
                out.append("fd %s" % f.read().decode())
        else:
            out.append("%s %r" % (type(arg).__name__, arg))
    child.socket.sendall(("\n".join(out) + "\n").encode())


def report_state(child):
    child.socket.sendall(repr(sorted(state.items())).encode())


def report_random(child):
    child.socket.sendall(("%d %.17g\n" % (os.getpid(), random.random())).encode())


def report_import_count(child):
    import pyworker_counted
    child.socket.sendall(("%d %d\n" % (os.getpid(), pyworker_counted.imported_in_pid)).encode())


def report_at_fork(child):
    child.socket.sendall(("%d\n" % state.get("at_fork_child", 0)).encode())


def exit_with(child):
    code = int(child.args[0])
    print("exiting with %d" % code, file=sys.stderr)
    sys.exit(code)


def raise_error(child):
    raise ValueError("run function failed")


def echo(child):
    """Echoes what it reads, uppercased, until end of stream."""
    while True:
        data = child.socket.recv(65536)
        if not data:
            break
        child.socket.sendall(data.upper())


# Call functions: def f(child, *args) ----------------------------------------

def set_state(child, key, value):
    state[key] = value


def fail_call(child, *args):
    raise KeyError("call failed with %s" % ",".join(args))


def count_at_fork(child):
    def in_child():
        state["at_fork_child"] = state.get("at_fork_child", 0) + 1
    os.register_at_fork(after_in_child=in_child)


def start_thread(child):
    import threading
    import time
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()


# Pool functions: def f(*parameters) -> value ---------------------------------

def add(a, b):
    return a + b


def echo_values(*values):
    return values


def describe(*values):
    """The Python type names and reprs of what arrived."""
    return [type(v).__name__ + " " + repr(v) for v in values]


def typed(type_string, value):
    return afork.Variant(type_string, value)


def nothing():
    return None


def fail(kind, message):
    raise {"ValueError": ValueError, "KeyError": KeyError,
           "OSError": OSError}.get(kind, RuntimeError)(message)


def die(code):
    os._exit(code)


def pid():
    return os.getpid()


def read_fd(fd):
    """Reads a descriptor that came with the call, to its end."""
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def make_pipe(text):
    """Returns the read end of a pipe holding @text."""
    r, w = os.pipe()
    os.write(w, text.encode())
    os.close(w)
    return afork.fd(r, close=True)


class NotConvertible:
    pass


def unconvertible():
    return NotConvertible()


def gc_state():
    """The number of objects frozen in this process, and whether a cycle
    made here is still collected."""
    import gc

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    return (gc.get_freeze_count(), gc.collect() > 0)


def write_partial(text):
    """Writes text, no newline: the flush after the call must write it
    before the worker ends."""
    sys.stdout.write(text)


def write_partial_bytes(text):
    """The same, to sys.stdout's binary buffer."""
    sys.stdout.buffer.write(text.encode())


def write_then_swap(text):
    """Writes text, no newline, then puts another stream in sys.stdout:
    what was written to the first must not be lost."""
    sys.stdout.write(text)
    sys.stdout = io.StringIO()


_saved_stdout = None


def write_then_break_stdout(text):
    """Writes text, no newline, then makes descriptor 1 unwritable, so
    that the flush after the call fails; returns the process id."""
    global _saved_stdout
    sys.stdout.write(text)
    _saved_stdout = os.dup(1)
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 1)
    os.close(fd)
    return os.getpid()


def mend_stdout():
    """Makes descriptor 1 what it was; writes nothing. Returns the
    process id."""
    os.dup2(_saved_stdout, 1)
    os.close(_saved_stdout)
    return os.getpid()


def stream_marks():
    """The marks of the loader's streams as this call finds them: (False,
    False) when nothing needs a flush."""
    marks = type(sys.__stdout__).write.__globals__["written"]
    return tuple(marks)


class Holder:
    """A stream that holds what it is given until flush (), which hands it
    to sys.__stdout__ and leaves flushing that to its owner."""

    def __init__(self):
        self.held = ""

    def write(self, text):
        self.held += text
        return len(text)

    def flush(self):
        sys.__stdout__.write(self.held)
        self.held = ""


def write_through_holder(text):
    """Puts a Holder in sys.stderr and writes text to it: what the
    Holder's flush writes to sys.__stdout__ must not be lost."""
    sys.stderr = Holder()
    sys.stderr.write(text)


_writer = None
_go = None


def start_held_writer(text):
    """Starts a thread that writes text (no newline) to sys.stdout, held
    by a profile hook inside the stream's write (after its first mark,
    before the text reaches the buffer) until release_writer (). Returns
    the process id."""
    global _writer, _go
    ready = threading.Event()
    _go = threading.Event()

    def hook(frame, event, arg):
        if event == "c_call" and frame.f_code.co_filename == "<afork streams>" and not ready.is_set():
            ready.set()
            _go.wait()

    def write():
        sys.setprofile(hook)
        sys.stdout.write(text)
        sys.setprofile(None)

    _writer = threading.Thread(target=write)
    _writer.start()
    ready.wait()
    return os.getpid()


def release_writer():
    """Lets the thread start_held_writer () started write, and waits for
    it. Returns the process id."""
    _go.set()
    _writer.join()
    return os.getpid()


def rewrap_stdout(text):
    """Puts a TextIOWrapper of its own over sys.stdout's buffer (detaching
    the loader's stream, a common idiom to change the encoding) and writes
    text, no newline, to it."""
    sys.stdout = io.TextIOWrapper(sys.stdout.detach(), encoding="utf-8")
    sys.stdout.write(text)


def site_state():
    """Whether site ran (sys.path has its packages directory) and, when a
    sitecustomize noted the streams it found, whether they are those in
    sys now."""
    import sitecustomize
    early = getattr(sitecustomize, "early_streams", None)
    return (any(p.endswith(("site-packages", "dist-packages")) for p in sys.path),
            early is not None and early[0] is sys.stdout and early[1] is sys.stderr)


def stream_state():
    """What the standard streams look like in a worker."""
    return (sys.stdout.mode, sys.stderr.mode, sys.stdout.fileno(), sys.stderr.fileno(),
            sys.stdout.line_buffering, sys.stderr.line_buffering,
            sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__,
            sys.stderr.errors, sys.stdout.encoding == sys.stderr.encoding)


def print_and_die(text):
    """Prints a line, without a flush, then an unfinished one, and dies of
    SIGKILL: the whole line must not be lost."""
    print(text)
    sys.stdout.write("unfinished")
    os.kill(os.getpid(), signal.SIGKILL)


def lazy_module_answer():
    """Imports a module the template did not import, and calls it."""
    import pyworker_counted
    return pyworker_counted.imported_in_pid == os.getpid()


def __getattr__(name):
    """Module attributes made on demand: only "dynamic_*"."""
    if name.startswith("dynamic_"):
        return lambda: name
    raise AttributeError("module 'pyworker' has no attribute %r" % name)


def glib_variant():
    from gi.repository import GLib
    return GLib.Variant("(uq)", (7, 8))
