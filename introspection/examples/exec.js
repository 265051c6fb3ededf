#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// afork as a faster fork+exec.
//
// A process forked from the small template, instead of from this program,
// executes a command with its standard output going to a file and its
// standard error to the connection to the parent. The parent reads the
// command's standard error from the connection until the command exits,
// then reads its output from the file.
//
// It is done twice: with the built-in exec (Afork.Process.exec_async),
// which also reports the command's exit status through wait_async(), and
// with a run function of one's own, example_exec() of the example module,
// for a child that must prepare more than its descriptors before it
// executes the command.
//
// From a build tree:
//   meson devenv -C BUILDDIR -w . gjs introspection/examples/exec.js

imports.gi.versions.Afork = '1.0';
const {Afork, Gio, GLib} = imports.gi;
const System = imports.system;

Gio._promisify(Afork.Process.prototype, 'run_async', 'run_finish');
Gio._promisify(Afork.Process.prototype, 'exec_async', 'exec_finish');
Gio._promisify(Afork.Process.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Gio.InputStream.prototype, 'read_bytes_async',
    'read_bytes_finish');

const COMMAND = ['/bin/sh', '-c', "echo hi; echo 'and hello on stderr' >&2"];

async function readToEnd(stream) {
    const chunks = [];
    for (;;) {
        const bytes = await stream.read_bytes_async(4096, GLib.PRIORITY_DEFAULT,
            null);
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
    return new TextDecoder().decode(all);
}

function check(title, log, stderr, status) {
    const [, contents] = GLib.file_get_contents(log);
    const stdout = new TextDecoder().decode(contents);

    print(`${title}:`);
    print(`  standard output (from the file): ${stdout.trim()}`);
    print(`  standard error (from the connection): ${stderr.trim()}`);
    if (status !== undefined)
        print(`  exit status: ${status}`);
    if (stdout !== 'hi\n' || stderr !== 'and hello on stderr\n' ||
        (status !== undefined && status !== 0))
        throw new Error('unexpected output');
}

async function withBuiltinExec() {
    // GLib makes the file and gives its descriptor: the command's
    // standard output.
    const [output, log] = GLib.file_open_tmp('afork-exec-XXXXXX');
    const process = Afork.Process.new();
    const options = Afork.ExecOptions.new();
    options.set_stdout_fd(output);
    options.set_stderr_fd(Afork.EXEC_FD_SOCKET);   // the connection
    const running = process.exec_async(COMMAND, options, null);
    GLib.close(output);   // exec_async() made its own copy
    const connection = await running;
    print(`process ${process.get_pid()} runs ${COMMAND[0]}`);

    // The end of the stream comes when the command exits.
    const stderr = await readToEnd(connection.get_input_stream());
    connection.close(null);
    await process.wait_async(null);
    try {
        check('with the built-in exec', log, stderr,
            process.get_if_exited() ? process.get_exit_status() : -1);
    } finally {
        GLib.unlink(log);
    }
}

async function withRunFunction() {
    const [output, log] = GLib.file_open_tmp('afork-exec-XXXXXX');
    const process = Afork.Process.new()
        .require('afork-example')
        .send_fd(output);
    GLib.close(output);   // send_fd() made its own copy
    for (const arg of COMMAND)
        process.send_arg(arg);

    const connection = await process.run_async('example_exec', null);
    print(`process ${process.get_pid()} runs ${COMMAND[0]}`);
    const stderr = await readToEnd(connection.get_input_stream());
    connection.close(null);
    try {
        check('with a run function that executes it', log, stderr);
    } finally {
        GLib.unlink(log);
    }
}

async function main() {
    await withBuiltinExec();
    await withRunFunction();
}

const loop = new GLib.MainLoop(null, false);
let status = 0;
main().catch(error => {
    printerr(`error: ${error.message}`);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
