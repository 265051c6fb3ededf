// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Shared code of the GJS tests: a small TAP harness running asynchronous
// tests one after the other in a GLib main loop, assertions, and helpers
// around Afork.Process. A test file does
//
//   imports.searchPath.unshift(GLib.path_get_dirname(System.programPath));
//   const Tap = imports.tap;
//   const Afork = Tap.requireAfork();
//   Tap.test('name', async () => { ... });
//   Tap.run();

const {Gio, GLib} = imports.gi;
const System = imports.system;

// A guard against hangs, not a measure of speed.
var HANG_GUARD_SECONDS = 30;
var MODULE = 'afork-test-module';

const tests = [];
let Afork = null;

// Prints a TAP skip plan and exits when the Afork typelib is missing;
// a typelib or library that cannot be loaded from a build that made them
// (AFORK_TEST_TYPELIB_BUILT) is a failure, not a skip.
function requireAfork() {
    try {
        imports.gi.versions.Afork = '1.0';
        Afork = imports.gi.Afork;
        // Loading the library happens on first use of a symbol.
        Afork.get_server_path();
    } catch (error) {
        if (GLib.getenv('AFORK_TEST_TYPELIB_BUILT')) {
            print(`Bail out! the build made the Afork typelib, but it cannot be loaded: ${error.message}`);
            System.exit(1);
        }
        print(`1..0 # SKIP the Afork typelib is missing: ${error.message}`);
        System.exit(0);
    }
    Gio._promisify(Afork.Process.prototype, 'run_async', 'run_finish');
    Gio._promisify(Gio.InputStream.prototype, 'read_bytes_async',
        'read_bytes_finish');
    return Afork;
}

function test(name, func) {
    tests.push({name, func});
}

function withGuard(promise, name) {
    let source = 0;
    const guard = new Promise((resolve, reject) => {
        source = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT,
            HANG_GUARD_SECONDS, () => {
                source = 0;
                reject(new Error(`${name}: still running after ${HANG_GUARD_SECONDS} s`));
                return GLib.SOURCE_REMOVE;
            });
    });
    return Promise.race([promise, guard]).finally(() => {
        if (source !== 0)
            GLib.source_remove(source);
    });
}

function run() {
    const loop = new GLib.MainLoop(null, false);
    let failed = 0;

    print(`1..${tests.length}`);
    (async () => {
        for (const [index, {name, func}] of tests.entries()) {
            try {
                await withGuard(Promise.resolve().then(func), name);
                print(`ok ${index + 1} - ${name}`);
            } catch (error) {
                failed++;
                print(`not ok ${index + 1} - ${name}`);
                const text = `${error}\n${error.stack ?? ''}`;
                for (const line of text.trimEnd().split('\n'))
                    print(`# ${line}`);
            }
        }
    })().finally(() => loop.quit());
    loop.run();
    System.exit(failed === 0 ? 0 : 1);
}

function assertEqual(actual, expected, what = 'value') {
    const a = JSON.stringify(actual), e = JSON.stringify(expected);
    if (a !== e)
        throw new Error(`${what}: expected ${e}, got ${a}`);
}

function assertTrue(condition, what) {
    if (!condition)
        throw new Error(`assertion failed: ${what}`);
}

function assertAforkError(error, code) {
    assertTrue(error instanceof GLib.Error, `${error} is a GLib.Error`);
    assertEqual(error.domain, Afork.error_quark(), 'error domain');
    assertTrue(error.matches(Afork.Error, code),
        `error code ${code} expected, got ${error.code}: ${error.message}`);
}

// run_async(), returning [connection, null] or [null, error].
async function runProcess(process, func, cancellable = null) {
    try {
        return [await process.run_async(func, cancellable), null];
    } catch (error) {
        return [null, error];
    }
}

async function readAll(stream) {
    const chunks = [];
    for (;;) {
        const bytes = await stream.read_bytes_async(65536,
            GLib.PRIORITY_DEFAULT, null);
        if (bytes.get_size() === 0)
            break;
        chunks.push(bytes.toArray());
    }
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const chunk of chunks) {
        all.set(chunk, offset);
        offset += chunk.length;
    }
    return all;
}

async function readLines(connection) {
    const data = await readAll(connection.get_input_stream());
    connection.close(null);
    const text = new TextDecoder().decode(data);
    return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

function sha256(bytes) {
    return GLib.compute_checksum_for_bytes(GLib.ChecksumType.SHA256, bytes);
}

// The line test_run_args writes for a string argument (a GLib.Bytes).
function stringLine(bytes) {
    const data = bytes.toArray();
    let line = `s ${data.length} ${sha256(bytes)}`;
    if (data.length < 64 && !data.includes(0) && !data.includes(10))
        line += ` ${new TextDecoder().decode(data)}`;
    return line;
}

function textBytes(text) {
    return new GLib.Bytes(new TextEncoder().encode(text));
}

let socketCounter = 0;

// A connected pair of unix sockets made by GIO: [ours, theirs], both
// Gio.Socket. Writing into theirs is seen on ours; ours reaches its end
// of stream once every copy of theirs is closed.
function socketPair() {
    const name = `afork-gjs-test-${new Gio.Credentials().get_unix_pid()}-${socketCounter++}`;
    const address = Gio.UnixSocketAddress.new_with_type(name,
        Gio.UnixSocketAddressType.ABSTRACT);
    const listener = Gio.Socket.new(Gio.SocketFamily.UNIX,
        Gio.SocketType.STREAM, Gio.SocketProtocol.DEFAULT);
    listener.bind(address, false);
    listener.listen();
    const theirs = Gio.Socket.new(Gio.SocketFamily.UNIX,
        Gio.SocketType.STREAM, Gio.SocketProtocol.DEFAULT);
    theirs.connect(address, null);
    const ours = listener.accept(null);
    listener.close();
    return [ours, theirs];
}

// Reads a Gio.Socket until its end of stream, then closes it.
async function readSocketToEnd(socket) {
    const connection = socket.connection_factory_create_connection();
    const data = await readAll(connection.get_input_stream());
    connection.close(null);
    return new TextDecoder().decode(data);
}
