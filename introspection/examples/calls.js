#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A pool of workers that count words (examples/calls.c in JavaScript).
// Each call sends a GLib.Variant and gets one back, events arrive before
// the reply, and a worker that crashes costs its call alone.
//
// From a build tree:
//   meson devenv -C BUILDDIR -w . gjs introspection/examples/calls.js

imports.gi.versions.Afork = '1.0';
const {Afork, Gio, GLib} = imports.gi;
const System = imports.system;

Gio._promisify(Afork.Pool.prototype, 'call_async', 'call_finish');

const TEXTS = ['the quick brown fox', 'jumps over the lazy dog',
    'a pool of workers forked from one template'];

const template = Afork.Process.new();
template.require('afork-example');
const pool = Afork.Pool.new(template);
pool.connect('event::progress', (_pool, name, value) => {
    print(`event ${name} ${value.deepUnpack()}`);
});

const loop = new GLib.MainLoop(null, false);
let status = 1;

(async () => {
    const counts = await Promise.all(TEXTS.map(async text => {
        const [n] = (await pool.call_async('example_count_words',
            new GLib.Variant('(s)', [text]), null)).deepUnpack();
        print(`"${text}": ${n} words`);
        return n;
    }));

    try {
        await pool.call_async('example_crash', null, null);
        throw new Error('the crash did not fail its call');
    } catch (error) {
        if (!error.matches(Afork.Error, Afork.Error.CHILD_EXITED))
            throw error;
        print(`crash: ${error.message}`);
    }

    const [after] = pool.call('example_count_words',
        new GLib.Variant('(s)', ['still serving']), null).deepUnpack();
    print(`after the crash: ${after} words`);
    status = counts[2] === 8 && after === 2 ? 0 : 1;
})().catch(error => {
    printerr(error);
}).finally(() => loop.quit());

loop.run();
System.exit(status);
