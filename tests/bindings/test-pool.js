#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Afork.Pool from GJS: calls with GLib.Variant values, errors, events
// before the reply.

const {Gio, GLib} = imports.gi;
const System = imports.system;

imports.searchPath.unshift(GLib.path_get_dirname(System.programPath));
const Tap = imports.tap;
const Afork = Tap.requireAfork();
const {assertEqual, assertTrue} = Tap;

Gio._promisify(Afork.Pool.prototype, 'call_async', 'call_finish');

const POOL_MODULE = GLib.build_filenamev([GLib.getenv('G_TEST_BUILDDIR'), 'pool',
    'libafork-pool-test-module.so']);

function makePool() {
    const template = Afork.Process.new();
    template.require(POOL_MODULE);
    return Afork.Pool.new(template);
}

Tap.test('a call returns its value', async () => {
    const pool = makePool();
    const value = new GLib.Variant('(sau)', ['hé', [1, 2, 3]]);
    const reply = await pool.call_async('pool_echo', value, null);
    assertEqual(JSON.stringify(reply.deepUnpack()), JSON.stringify(value.deepUnpack()));
    assertEqual(pool.call('pool_echo', null, null).get_type_string(), '()', 'NULL parameters');
});

Tap.test('an error keeps its domain by name', async () => {
    const pool = makePool();
    try {
        await pool.call_async('pool_fail', new GLib.Variant('(s)', ['from the worker']), null);
        throw new Error('the call did not fail');
    } catch (error) {
        assertTrue(error instanceof GLib.Error, 'a GLib.Error');
        assertEqual(GLib.quark_to_string(error.domain), 'afork-pool-test-worker-error', 'domain');
        assertEqual(error.code, 42, 'code');
        assertEqual(error.message, 'from the worker', 'message');
    }
});

Tap.test('events come before the reply', async () => {
    const pool = makePool();
    const log = [];
    pool.connect('event::progress', (_pool, name, value) => {
        log.push(`${name} ${value.deepUnpack()[0]}`);
    });
    const reply = await pool.call_async('pool_events', new GLib.Variant('(u)', [2]), null);
    log.push(`reply ${reply.deepUnpack()[0]}`);
    assertEqual(log.join(', '), 'progress 0, progress 1, reply 2', 'order');
});

Tap.test('a dead worker costs one call', async () => {
    const pool = makePool();
    pool.max_workers = 1;
    try {
        await pool.call_async('pool_exit', new GLib.Variant('(i)', [4]), null);
        throw new Error('the call did not fail');
    } catch (error) {
        assertTrue(error.matches(Afork.Error, Afork.Error.CHILD_EXITED), `CHILD_EXITED: ${error}`);
    }
    const reply = await pool.call_async('pool_echo', new GLib.Variant('(i)', [5]), null);
    assertEqual(reply.deepUnpack()[0], 5, 'the next call');
});

Tap.run();
