#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Afork.Sandbox from GJS: a sandboxed template and its forks, probed by
// the run function of tests/sandbox/afork-sandbox-module.c.

const {GLib} = imports.gi;
const System = imports.system;

imports.searchPath.unshift(GLib.path_get_dirname(System.programPath));
const Tap = imports.tap;
const Afork = Tap.requireAfork();
const {assertEqual, assertTrue, assertAforkError} = Tap;

const PROBES = 'afork-sandbox-module';

async function probe(process, probes) {
    for (const name of probes)
        process.send_arg(name);
    const [connection, error] = await Tap.runProcess(process, 'sandbox_probe_run');
    assertEqual(error, null, 'error');
    const lines = await Tap.readLines(connection);
    assertEqual(lines.pop(), 'end', 'last line');
    return Object.fromEntries(lines.map(line => {
        const at = line.lastIndexOf(' ');
        return [line.slice(0, at), line.slice(at + 1)];
    }));
}

const haveLandlock = Afork.Sandbox.get_kernel_landlock_abi() > 0;

Tap.test('a sandboxed template and its forks are confined', async () => {
    if (!haveLandlock)
        return;
    const [fd, path] = GLib.file_open_tmp('afork-gjs-sandbox-XXXXXX');
    try {
        const sandbox = new Afork.Sandbox({memory_limit: 0, network: false});
        sandbox.allow_read('/usr');
        const template = Afork.Process.new().require(PROBES).sandbox(sandbox);
        const outside = `open:${path}`;
        for (let i = 0; i < 2; i++) {
            const results = await probe(template.fork().send_fd(fd),
                ['fd:0', outside, 'open:/usr/bin/env', 'socket-inet', 'ptrace']);
            assertEqual(JSON.stringify(results), JSON.stringify({
                'fd:0': 'ok',
                [outside]: 'EACCES',
                'open:/usr/bin/env': 'ok',
                'socket-inet': 'EAFNOSUPPORT',
                'ptrace': 'EPERM',
            }), 'probes');
        }
        const free = await probe(Afork.Process.new().require(PROBES), [outside]);
        assertEqual(free[outside], 'ok', 'another template is free');
    } finally {
        GLib.close(fd);
        GLib.unlink(path);
    }
});

Tap.test('a sandbox the kernel cannot enforce fails', async () => {
    const sandbox = Afork.Sandbox.new();
    sandbox.require_landlock_abi(Afork.Sandbox.get_kernel_landlock_abi() + 1);
    const template = Afork.Process.new().require(PROBES).sandbox(sandbox);
    const [connection, error] = await Tap.runProcess(template, 'sandbox_probe_run');
    assertEqual(connection, null, 'connection');
    assertAforkError(error, Afork.Error.SANDBOX);
    assertTrue(error.message.includes('Landlock'), `the message names the layer: ${error.message}`);
});

Tap.run();
