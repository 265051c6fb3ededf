#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// afork as a faster fork+exec.
//
// The child, forked from the small template instead of from this program,
// runs example_exec(), which makes the descriptor it was sent its standard
// output, makes the connection to the parent its standard error, and
// executes the command it was given. The parent reads the command's
// standard error from the connection that run_async() gives back, until
// the command exits, then reads its output from the file.
//
// From a build tree:
//   meson devenv -C BUILDDIR -w . gjs introspection/examples/exec.js

imports.gi.versions.Afork = '1.0';
const {Afork, Gio, GLib} = imports.gi;
const System = imports.system;

Gio._promisify(Afork.Process.prototype, 'run_async', 'run_finish');
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

async function main() {
    // GLib makes the file and gives its descriptor: the command's
    // standard output.
    const [output, log] = GLib.file_open_tmp('afork-exec-XXXXXX');
    try {
        const process = Afork.Process.new()
            .require('afork-example')
            .send_fd(output);
        GLib.close(output);   // send_fd() made its own copy
        for (const arg of COMMAND)
            process.send_arg(arg);

        const connection = await process.run_async('example_exec', null);
        print(`process ${process.get_pid()} runs ${COMMAND[0]}`);

        // The end of the stream comes when the command exits.
        const stderr = await readToEnd(connection.get_input_stream());
        connection.close(null);
        const [, contents] = GLib.file_get_contents(log);
        const stdout = new TextDecoder().decode(contents);

        print(`standard output (from the file): ${stdout.trim()}`);
        print(`standard error (from the connection): ${stderr.trim()}`);
        if (stdout !== 'hi\n' || stderr !== 'and hello on stderr\n')
            throw new Error('unexpected output');
    } finally {
        GLib.unlink(log);
    }
}

const loop = new GLib.MainLoop(null, false);
let status = 0;
main().catch(error => {
    printerr(`error: ${error.message}`);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
