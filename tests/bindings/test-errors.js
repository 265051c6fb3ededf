#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Errors reach GJS as GLib.Error in the Afork domain with the code of the
// stage that failed; Gio.Cancellable cancels a run.

const {Gio, GLib} = imports.gi;
const System = imports.system;

imports.searchPath.unshift(GLib.path_get_dirname(System.programPath));
const Tap = imports.tap;
const Afork = Tap.requireAfork();
const {MODULE, assertEqual, assertTrue, assertAforkError} = Tap;

async function runExpecting(process, func, code) {
    const [connection, error] = await Tap.runProcess(process, func);
    assertEqual(connection, null, 'connection');
    assertAforkError(error, code);
    return error;
}

Tap.test('module missing', async () => {
    const error = await runExpecting(
        Afork.Process.new().require('afork-no-such-module'),
        'test_run_args', Afork.Error.MODULE_NOT_FOUND);
    assertTrue(error.message.includes('afork-no-such-module'),
        `the message names the module: ${error.message}`);
});

Tap.test('run function missing', async () => {
    const error = await runExpecting(
        Afork.Process.new().require(MODULE),
        'test_no_such_function', Afork.Error.FUNCTION_NOT_FOUND);
    assertTrue(error.message.includes('test_no_such_function'),
        `the message names the function: ${error.message}`);
});

Tap.test('call failure', async () => {
    const error = await runExpecting(
        Afork.Process.new().require(MODULE).call('test_call_fail', ['because']),
        'test_run_args', Afork.Error.CALL_FAILED);
    assertTrue(error.message.includes('test failure requested with because'),
        `the message carries the child's: ${error.message}`);
    assertTrue(error.message.includes('g-file-error-quark'),
        `the message carries the child's domain: ${error.message}`);
});

Tap.test('child crash', async () => {
    await runExpecting(
        Afork.Process.new().require(MODULE).call('test_call_crash', null),
        'test_run_args', Afork.Error.CHILD_EXITED);
});

Tap.test('run twice', async () => {
    const process = Afork.Process.new().require(MODULE);
    const [connection, error] = await Tap.runProcess(process, 'test_run_pid');
    assertEqual(error, null, 'error');
    connection.close(null);
    await runExpecting(process, 'test_run_pid', Afork.Error.CLOSED);
});

Tap.test('synchronous run throws', async () => {
    let caught = null;
    try {
        Afork.Process.new().require('afork-no-such-module').run('test_run_pid', null);
    } catch (error) {
        caught = error;
    }
    assertAforkError(caught, Afork.Error.MODULE_NOT_FOUND);
});

Tap.test('forking the threaded interpreter is refused', async () => {
    // The JavaScript engine runs threads of its own: neither early init
    // nor fork-self may fork it.
    for (const attempt of [() => Afork.early_init(), () => Afork.Process.fork_self()]) {
        let caught = null;
        try {
            attempt();
        } catch (error) {
            caught = error;
        }
        assertAforkError(caught, Afork.Error.THREADED);
    }
});

Tap.test('cancel while waiting', async () => {
    const [ours, theirs] = Tap.socketPair();
    // test_call_wait_hangup keeps the child from answering the run command
    // until the parent closes its side: the run is pending for sure when
    // it is cancelled.
    const process = Afork.Process.new()
        .require(MODULE)
        .send_fd(theirs.get_fd())
        .call('test_call_wait_hangup', null);
    theirs.close();
    const cancellable = new Gio.Cancellable();
    const running = Tap.runProcess(process, 'test_run_args', cancellable);
    GLib.idle_add(GLib.PRIORITY_DEFAULT, () => {
        cancellable.cancel();
        return GLib.SOURCE_REMOVE;
    });
    const [connection, error] = await running;
    assertEqual(connection, null, 'connection');
    assertTrue(error instanceof GLib.Error, 'a GLib.Error');
    assertTrue(error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED),
        `cancelled, not ${error.message}`);
    // The child exits without running its function: its copy of the
    // socket is closed, and it never wrote into it.
    assertEqual(await Tap.readSocketToEnd(ours), '', 'what the child wrote');
});

Tap.test('cancelled before run', async () => {
    const cancellable = new Gio.Cancellable();
    cancellable.cancel();
    const [connection, error] = await Tap.runProcess(
        Afork.Process.new().require(MODULE), 'test_run_pid', cancellable);
    assertEqual(connection, null, 'connection');
    assertTrue(error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED),
        `cancelled, not ${error.message}`);
});

Tap.run();
