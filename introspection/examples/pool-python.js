#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A GJS program offloading work to Python functions in an afork pool.
//
// JavaScript cannot run in afork's workers: SpiderMonkey starts helper
// threads, and a threaded process cannot be forked safely. A GJS program
// calls C or Python worker functions through a pool instead. Here the
// workers are forks of a template that imported hash_files.py (beside
// this file, found through PYTHONPATH), and each call runs its
// sha256_file() on one file.
//
//   pool-python.js FILE...
//
// From a build tree:
//   meson devenv -C BUILDDIR -w . gjs introspection/examples/pool-python.js FILE...

imports.gi.versions.Afork = '1.0';
const {Afork, Gio, GLib} = imports.gi;
const System = imports.system;

Gio._promisify(Afork.Pool.prototype, 'call_async', 'call_finish');

// The template finds hash_files.py through PYTHONPATH: this directory.
const here = GLib.path_get_dirname(System.programPath);
const pythonPath = GLib.getenv('PYTHONPATH');
GLib.setenv('PYTHONPATH', pythonPath ? `${here}:${pythonPath}` : here, true);

async function main(paths) {
    const template = Afork.Process.new().require('python:hash_files');
    const pool = Afork.Pool.new(template);

    const digests = await Promise.all(paths.map(async path => {
        const reply = await pool.call_async('python:hash_files.sha256_file',
            new GLib.Variant('(s)', [path]), null);
        return reply.deepUnpack();
    }));

    paths.forEach((path, i) => print(`${digests[i]}  ${path}`));
}

const paths = ARGV.length > 0 ? ARGV : [System.programPath];
const loop = new GLib.MainLoop(null, false);
let status = 0;
main(paths).catch(error => {
    printerr(error.message);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
