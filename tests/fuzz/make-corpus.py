#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes the seed corpora of the fuzz targets: valid sessions, and the
malformed streams every server must refuse cleanly.

    make-corpus.py DIR     (writes DIR/wire/* and DIR/server/*)
"""
import os
import struct
import sys


def u32(n):
    return struct.pack('<I', n)


def strings(*items):
    out = b''
    for s in items:
        if isinstance(s, str):
            s = s.encode()
        out += u32(len(s)) + s
    return out


def frame(cmd, payload=b''):
    return cmd.encode() + u32(len(payload)) + payload


# Record of the server target: control byte, u16 length, data.
SOCK, DEVNULL, PIPE_W, PIPE_R = 0, 1, 2, 3


def record(data, n_fds=0, kind=SOCK):
    assert len(data) < 65536 and n_fds < 4
    return bytes([n_fds | (kind << 2)]) + struct.pack('<H', len(data)) + data


def fork_records():
    """h (status pipe) w h (socket) f, as the library sends them."""
    return (record(frame('h'), 1, PIPE_W) + record(frame('w')) +
            record(frame('h'), 1, SOCK) + record(frame('f')))


RUN = frame('r', strings('afork_fuzz_run'))


def sandbox(flags=0, memory=0, cpu=0, abi=0, paths=(), version=1):
    """The payload of `s`: header, then (access, path) pairs."""
    out = u32(version) + u32(flags) + u32(memory & 0xffffffff) + u32(memory >> 32)
    out += u32(cpu) + u32(abi)
    for access, path in paths:
        out += u32(access) + strings(path)
    return out


server = {
    'run': record(RUN),
    'require-missing-then-run':
        record(frame('m', strings('afork-fuzz-no-such-module'))) + record(RUN),
    'args-call-run':
        record(frame('a', strings('one', 'two', b'bin\x00ary'))) +
        record(frame('c', strings('afork_fuzz_call_ok', 'x', 'y'))) +
        record(frame('c', strings('afork_fuzz_call_args'))) + record(RUN),
    'fd-args-run':
        record(frame('h'), 1, SOCK) + record(frame('h'), 1, DEVNULL) +
        record(frame('h'), 1, PIPE_R) + record(frame('a', strings('after'))) + record(RUN),
    'call-fails-then-run':
        record(frame('c', strings('afork_fuzz_call_fail', 'because'))) + record(RUN),
    'call-missing': record(frame('c', strings('afork_fuzz_no_such_function'))),
    'run-missing': record(frame('r', strings('afork_fuzz_no_such_function'))),
    'fork-then-run': fork_records() + record(frame('a', strings('template'))) + fork_records() + record(RUN),
    'fork-without-socket': record(frame('f')),
    'watch-without-fd': record(frame('w')),
    'fd-without-fd': record(frame('h')),
    'three-fds-one-message':
        record(frame('h') + frame('h') + frame('h'), 3, SOCK) + record(RUN),
    'split-frames':
        b''.join(record(bytes([b])) for b in frame('a', strings('split', 'byte', 'by', 'byte')) + RUN),
    'exec-missing-program':
        record(frame('h'), 1, PIPE_W) +
        record(frame('x', strings('iii', '', '0', '1', 'afork-fuzz-no-such-program'))),
    'exec-malformed': record(frame('x', strings('iii', '', '0'))),
    'eof-only': b'',
    'eof-mid-header': record(b'a\x05\x00'),
    'eof-mid-payload': record(frame('a', strings('truncated'))[:-3]),
    'unknown-command': record(b'Z' + u32(0)),
    'absurd-length': record(b'a' + u32(0xffffffff)),
    'limit-plus-one': record(b'a' + u32(256 * 1024 * 1024 + 1)),
    'announced-large-then-eof': record(b'a' + u32(256 * 1024 * 1024 - 1) + b'only a few bytes'),
    'fork-with-payload': record(b'f' + u32(1) + b'x'),
    'run-empty': record(frame('r')),
    'run-two-names': record(frame('r', strings('afork_fuzz_run', 'afork_fuzz_run'))),
    'run-nul-name': record(frame('r', strings(b'afork_fuzz_\x00run'))),
    'call-nul-name': record(frame('c', strings(b'afork_fuzz_\x00call'))),
    'call-empty': record(frame('c')),
    'require-nul-name': record(frame('m', strings(b'afork-fuzz-\x00module'))) + record(RUN),
    'truncated-string-list': record(frame('a', u32(100) + b'short')),
    # The fuzzer never applies a sandbox (see fuzz-server.c): these check
    # that a malformed one ends the server cleanly.
    'sandbox-short': record(frame('s', u32(1))) + record(RUN),
    'sandbox-bad-version': record(frame('s', sandbox(version=2))) + record(RUN),
    'sandbox-relative-path': record(frame('s', sandbox(paths=[(1, 'relative')]))) + record(RUN),
}

wire = {
    'commands-session': b'\x00' + frame('m', strings('module')) + frame('a', strings('x')) +
        frame('h') + frame('w') + frame('h') + frame('f') + frame('c', strings('f', 'a1')) +
        frame('x', strings('iii', '', '0', '1', 'prog')) + RUN,
    'commands-absurd-length': b'\x00' + b'a' + u32(0xffffffff),
    'commands-truncated-strings': b'\x00' + frame('a', u32(7) + b'abc'),
    'commands-unknown': b'\x00' + b'\x7f' + u32(0),
    'reply-ok': b'\x01' + frame('k', u32(1234)),
    'reply-ok-short': b'\x01' + frame('k', b'\x01\x02'),
    'reply-error': b'\x01' + frame('e', u32(3) + strings('afork-error-quark', 'Module not found')),
    'reply-error-foreign': b'\x01' + frame('e', u32(7) + strings('g-io-error-quark', 'Broken pipe')),
    'reply-error-bad-utf8': b'\x01' + frame('e', u32(0) + strings('afork-error-quark', b'\xff\xfe')),
    'reply-unknown': b'\x01' + frame('r', strings('x')),
    'reply-error-bad-domain': b'\x01' + frame('e', u32(16) + strings(b'g-io-error-qu\x99\x8dk', 'Broekn xipe')),
    'round-trip': b'\x02' + b'one\xfftwo\xff\xff' + b'bin\x00ary',
    'round-trip-empty': b'\x02',
    'exec': b'\x03' + strings('fsi', '/tmp', '1', '2', 'prog', 'arg', 'A=1', 'B=2'),
    'exec-keep-env': b'\x03' + strings('iii', '', '0', '1', 'prog'),
    'exec-bad-stdio': b'\x03' + strings('fxi', '', '0', '1', 'prog'),
    'exec-argc-too-large': b'\x03' + strings('iii', '', '0', '3', 'prog'),
    'exec-extra-without-env': b'\x03' + strings('iii', '', '0', '1', 'prog', 'A=1'),
    'exec-nul-argument': b'\x03' + strings('iii', '', '0', '2', 'prog', b'a\x00b'),
    'exec-short': b'\x03' + strings('iii', '', '0'),
    'commands-sandbox': b'\x00' + frame('s', sandbox(paths=[(1, '/usr')])) + RUN,
    'sandbox-empty': b'\x04' + sandbox(),
    'sandbox-full': b'\x04' + sandbox(flags=7, memory=(1 << 40) + 5, cpu=3, abi=6,
                                       paths=[(1, '/usr'), (2, '/tmp/x'), (1, '/')]),
    'sandbox-bad-flags': b'\x04' + sandbox(flags=8),
    'sandbox-bad-access': b'\x04' + sandbox(paths=[(3, '/usr')]),
    'sandbox-nul-path': b'\x04' + sandbox(paths=[(1, b'/us\x00r')]),
    'sandbox-empty-path': b'\x04' + sandbox(paths=[(2, '')]),
    'sandbox-truncated-path': b'\x04' + sandbox()[:-2] + u32(1) + u32(50) + b'/short',
    'sandbox-short': b'\x04' + u32(1) + u32(0),
    # Pool frames: 5 then 0 (calls, as a worker reads them) or 1 (replies).
    'pool-calls': b'\x05\x00' + frame('Q', u32(0) + strings('f', '(u)', u32(7)))
                  + frame('Q', u32(2) + strings('g', '(hh)', u32(0) + u32(1))),
    'pool-ring': b'\x05\x00' + frame('B', u32(1) + u32(65536))
                 + frame('Q', u32(0) + strings('f', '()', b'')),
    'pool-ring-fds': b'\x05\x00' + frame('B', u32(2) + u32(65536)),
    'pool-ring-short': b'\x05\x00' + frame('B', u32(1)),
    'pool-ring-from-worker': b'\x05\x01' + frame('B', u32(1) + u32(65536)),
    'pool-call-bad-type': b'\x05\x00' + frame('Q', u32(0) + strings('f', 'a', b'')),
    'pool-call-indefinite': b'\x05\x00' + frame('Q', u32(0) + strings('f', '(*)', b'')),
    'pool-call-nul-name': b'\x05\x00' + frame('Q', u32(0) + strings(b'f\x00g', '()', b'')),
    'pool-call-too-many-fds': b'\x05\x00' + frame('Q', u32(1000) + strings('f', '()', b'')),
    'pool-replies': b'\x05\x01' + frame('V', strings('progress', '(u)', u32(1)))
                    + frame('R', u32(0) + strings('(s)', b'hi\x00\x00'))
                    + frame('E', u32(42) + strings('my-domain', 'it failed')),
    'pool-replies-lazy': b'\x05\x03' + frame('V', strings('progress', '(u)', u32(1)))
                         + frame('R', u32(0) + strings('(s)', b'hi\x00\x00'))
                         + frame('R', u32(0) + strings('(s', b'')),
    'pool-reply-garbage-value': b'\x05\x01' + frame('R', u32(0) + strings('(sas)', b'\xff' * 9)),
    'pool-reply-wrong-letter': b'\x05\x01' + frame('Q', u32(0) + strings('f', '()', b'')),
    'pool-round-trip': b'\x06' + b'name\x00with nul \xff\xfe bytes',
    'pool-round-trip-empty': b'\x06',
}

outdir = sys.argv[1]
for name, corpus in (('server', server), ('wire', wire)):
    os.makedirs(os.path.join(outdir, name), exist_ok=True)
    for key, data in corpus.items():
        with open(os.path.join(outdir, name, key), 'wb') as f:
            f.write(data)
