#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A single worker process, running a function of a C module.
//
// The parent forks a process from afork's default template, loads the
// module into it and makes it run example_worker(). The worker answers
// each line it reads with the line in upper case; the parent talks to it
// through the Gio.SocketConnection that run_async() gives back.
//
// From a build tree:
//   meson devenv -C BUILDDIR -w . gjs introspection/examples/worker.js

imports.gi.versions.Afork = '1.0';
const {Afork, Gio, GLib} = imports.gi;
const System = imports.system;

const LINES = ['hello', 'a worker forked from a template', 'bye'];

const loop = new GLib.MainLoop(null, false);
const replies = [];
let failure = null;

function fail(error) {
    failure = error;
    loop.quit();
}

function onLine(reader, result) {
    let line;
    try {
        [line] = reader.read_line_finish_utf8(result);
    } catch (error) {
        fail(error);
        return;
    }
    if (line === null) {
        // End of stream: the worker returned from its run function and
        // exited.
        connection = null;
        loop.quit();
        return;
    }
    print(`worker says: ${line}`);
    replies.push(line);
    reader.read_line_async(GLib.PRIORITY_DEFAULT, null, onLine);
}

// The connection itself must be kept for as long as its streams are used:
// they do not keep it alive, and once it is dropped its socket is closed
// under them ("Stream is already closed").
let connection = null;

function onRunning(process, result) {
    try {
        connection = process.run_finish(result);
    } catch (error) {
        fail(error);
        return;
    }

    print(`worker ${process.get_pid()} is running`);

    const data = new TextEncoder().encode(LINES.map(l => `${l}\n`).join(''));
    connection.get_output_stream().write_bytes_async(new GLib.Bytes(data),
        GLib.PRIORITY_DEFAULT, null, (output, res) => {
            try {
                if (output.write_bytes_finish(res) !== data.length)
                    throw new Error('short write to the worker');
                // Closing our writing side is what ends the worker's loop.
                connection.get_socket().shutdown(false, true);
            } catch (error) {
                fail(error);
            }
        });

    const reader = new Gio.DataInputStream({
        base_stream: connection.get_input_stream(),
    });
    reader.read_line_async(GLib.PRIORITY_DEFAULT, null, onLine);
}

// Configure and forget: the process object need not be kept; the chained
// calls queue the commands and run_async() keeps it alive until the
// worker has started.
Afork.Process.new()
    .require('afork-example')
    .run_async('example_worker', null, onRunning);

loop.run();

if (failure !== null) {
    printerr(`error: ${failure.message}`);
    System.exit(1);
}

const expected = LINES.map(l => l.toUpperCase());
if (replies.length !== LINES.length + 1 ||
    !replies[0].startsWith('hello from worker ') ||
    replies.slice(1).join('\n') !== expected.join('\n')) {
    printerr(`unexpected replies: ${JSON.stringify(replies)}`);
    System.exit(1);
}
