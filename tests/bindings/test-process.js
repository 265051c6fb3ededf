#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Afork.Process from GJS: chaining, descriptors made in JavaScript,
// binary arguments, pids, templates and the connection to the child.

const {Gio, GLib} = imports.gi;
const System = imports.system;

imports.searchPath.unshift(GLib.path_get_dirname(System.programPath));
const Tap = imports.tap;
const Afork = Tap.requireAfork();
const {MODULE, assertEqual, assertTrue, stringLine, textBytes} = Tap;

Tap.test('chain reads like AnyEvent::Fork', async () => {
    const [fd, path] = GLib.file_open_tmp('afork-gjs-XXXXXX');
    try {
        const outcome = await new Promise((resolve, reject) => {
            // Configure and forget: nothing keeps the process but the call.
            Afork.Process.new()
                .require(MODULE)
                .send_arg('hello')
                .send_fd(fd)
                .run_async('test_run_args', null, (process, result) => {
                    try {
                        resolve([process, process.run_finish(result)]);
                    } catch (error) {
                        reject(error);
                    }
                });
            GLib.close(fd);   // send_fd() made its own copy
        });
        const [process, connection] = outcome;
        assertTrue(process instanceof Afork.Process, 'the source is the process');
        assertTrue(connection instanceof Gio.UnixConnection,
            'the connection is a Gio.UnixConnection');
        assertEqual(await Tap.readLines(connection),
            [stringLine(textBytes('hello')), 'f', 'global (null)', 'end']);
        const [, contents] = GLib.file_get_contents(path);
        assertEqual(new TextDecoder().decode(contents), 'fd 1\n', 'file contents');
    } finally {
        GLib.unlink(path);
    }
});

Tap.test('new Afork.Process() gives a usable process', async () => {
    // The constructor is g_object_new(): a fork of the default template,
    // as Afork.Process.new() is.
    const process = new Afork.Process();
    const connection = process.require(MODULE).run('test_run_pid', null);
    assertEqual(await Tap.readLines(connection), [`pid ${process.get_pid()}`]);
});

Tap.test('descriptors of Gio sockets travel and are closed', async () => {
    const pairs = [Tap.socketPair(), Tap.socketPair(), Tap.socketPair()];
    const process = Afork.Process.new().require(MODULE);
    const expected = [];
    pairs.forEach(([, theirs], i) => {
        process.send_arg(`arg${i}`).send_fd(theirs.get_fd());
        // Closing ours at once is allowed: the library made a copy.
        theirs.close();
        expected.push(stringLine(textBytes(`arg${i}`)), 'f');
    });
    const [connection, error] = await Tap.runProcess(process, 'test_run_args');
    assertEqual(error, null, 'error');
    assertEqual(await Tap.readLines(connection),
        [...expected, 'global (null)', 'end']);
    // Each socket reaches its end: no copy is left open anywhere.
    for (const [i, [ours]] of pairs.entries())
        assertEqual(await Tap.readSocketToEnd(ours), `fd ${2 * i + 1}\n`);
});

Tap.test('binary arguments through GLib.Bytes', async () => {
    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i++)
        big[i] = i % 251;   // NULs included
    const payloads = [
        new GLib.Bytes(new Uint8Array([])),
        new GLib.Bytes(new Uint8Array([0])),
        new GLib.Bytes(new Uint8Array([97, 0, 98, 0, 99])),
        new GLib.Bytes(new Uint8Array([0, 0, 255, 254, 0])),
        new GLib.Bytes(big),
        textBytes('héllo ✓'),
    ];
    const process = Afork.Process.new().require(MODULE);
    for (const payload of payloads)
        assertTrue(process.send_bytes(payload) === process, 'send_bytes chains');
    const [connection, error] = await Tap.runProcess(process, 'test_run_args');
    assertEqual(error, null, 'error');
    assertEqual(await Tap.readLines(connection),
        [...payloads.map(stringLine), 'global (null)', 'end']);
});

Tap.test('pid is the child\'s own', async () => {
    const process = Afork.Process.new().require(MODULE);
    const notified = [];
    process.connect('notify::pid', p => notified.push(p.pid));
    assertEqual(process.get_pid(), 0, 'pid before run');
    const [connection, error] = await Tap.runProcess(process, 'test_run_pid');
    assertEqual(error, null, 'error');
    const pid = process.get_pid();
    assertTrue(pid > 0, 'pid is known after run');
    assertEqual(process.pid, pid, 'pid property');
    assertEqual(notified, [pid], 'notify::pid');
    assertEqual(await Tap.readLines(connection), [`pid ${pid}`]);
});

Tap.test('template, call and fork', async () => {
    const template = Afork.Process.new()
        .require(MODULE)
        .call('test_call_set_global', ['a', 'b c'])
        .send_arg('from the template');
    const workers = [0, 1, 2].map(i => template.fork().send_arg(`worker ${i}`));
    for (const [i, worker] of workers.entries()) {
        const [connection, error] = await Tap.runProcess(worker, 'test_run_args');
        assertEqual(error, null, 'error');
        assertEqual(await Tap.readLines(connection), [
            stringLine(textBytes('from the template')),
            stringLine(textBytes(`worker ${i}`)),
            'global a,b c',
            'end',
        ]);
    }
});

Tap.test('new_exec and the synchronous run', async () => {
    const process = Afork.Process.new_exec();
    const pid = process.get_pid();
    assertTrue(pid > 0, 'an exec\'d server\'s pid is known at once');
    const connection = process.require(MODULE).run('test_run_pid', null);
    assertEqual(await Tap.readLines(connection), [`pid ${pid}`]);
});

Tap.test('the connection carries data both ways', async () => {
    const [connection, error] = await Tap.runProcess(
        Afork.Process.new().require(MODULE), 'test_run_echo');
    assertEqual(error, null, 'error');
    connection.get_output_stream().write_all(new TextEncoder().encode('ping\n'), null);
    connection.get_socket().shutdown(false, true);
    assertEqual(await Tap.readLines(connection), ['echo ping']);
});

Tap.run();
