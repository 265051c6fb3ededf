#!/usr/bin/env gjs
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A pool of server processes, all accepting on one listening socket.
//
// The parent makes a listening socket and a template process, loads the
// module into the template and sends it the socket. Then it forks the
// workers from the template, giving each its number, and makes each run
// example_pool_server(). Clients connect to the socket and are served by
// whichever worker the kernel picks. At the end, the parent closes its
// side of each worker's connection and reads until the worker has gone.
//
// The asynchronous calls are turned into promises with Gio._promisify(),
// so that the sequence reads top to bottom; the main loop runs them.
//
// From a build tree:
//   meson devenv -C BUILDDIR -w . gjs introspection/examples/pool.js

imports.gi.versions.Afork = '1.0';
const {Afork, Gio, GLib} = imports.gi;
const System = imports.system;

Gio._promisify(Afork.Process.prototype, 'run_async', 'run_finish');
Gio._promisify(Gio.SocketClient.prototype, 'connect_async', 'connect_finish');
Gio._promisify(Gio.DataInputStream.prototype, 'read_line_async',
    'read_line_finish_utf8');

const N_WORKERS = 4;
const N_CLIENTS = 12;

async function readLine(reader) {
    const [line] = await reader.read_line_async(GLib.PRIORITY_DEFAULT, null);
    return line;
}

function makeListener() {
    // A TCP socket listening on a free port of the loopback interface.
    const listener = Gio.Socket.new(Gio.SocketFamily.IPV4,
        Gio.SocketType.STREAM, Gio.SocketProtocol.TCP);
    listener.bind(Gio.InetSocketAddress.new_from_string('127.0.0.1', 0), true);
    listener.listen();
    return listener;
}

async function serveOneClient(client, address) {
    const connection = await client.connect_async(address, null);
    const reader = new Gio.DataInputStream({
        base_stream: connection.get_input_stream(),
    });
    const line = await readLine(reader);
    connection.close(null);
    print(`client got: ${line}`);
    return line;
}

async function main() {
    const listener = makeListener();
    const address = listener.get_local_address();
    print(`listening on port ${address.get_port()}`);

    // The template: the module and the listening socket, inherited by
    // every process forked from it. send_fd() duplicates the descriptor,
    // so the parent can close its own at once.
    const template = Afork.Process.new()
        .require('afork-example')
        .send_fd(listener.get_fd());
    listener.close();

    const starting = [];
    for (let number = 1; number <= N_WORKERS; number++) {
        starting.push(template.fork()
            .send_arg(`${number}`)
            .run_async('example_pool_server', null));
    }
    // The template is no longer needed once the forks are queued; it
    // exits when the garbage collector drops the object.

    const workers = [];
    for (const [index, connection] of (await Promise.all(starting)).entries()) {
        const number = index + 1;
        const reader = new Gio.DataInputStream({
            base_stream: connection.get_input_stream(),
        });
        const ready = await readLine(reader);
        print(`worker ${number} says: ${ready}`);
        if (ready !== `worker ${number} ready`)
            throw new Error(`unexpected greeting from worker ${number}: ${ready}`);
        workers.push({number, connection, reader});
    }

    print(`all ${N_WORKERS} workers are ready; connecting ${N_CLIENTS} clients`);
    const client = new Gio.SocketClient();
    const clientLines = await Promise.all(
        Array.from({length: N_CLIENTS}, () => serveOneClient(client, address)));

    const served = new Map();
    for (const line of clientLines) {
        const match = /^served by worker (\d+), pid \d+$/.exec(line ?? '');
        if (!match)
            throw new Error(`unexpected client line: ${line}`);
        const number = Number(match[1]);
        served.set(number, (served.get(number) ?? 0) + 1);
    }

    // Tell the workers to stop by closing our writing side of their
    // connections, then read what each says until it has exited.
    for (const worker of workers)
        worker.connection.get_socket().shutdown(false, true);

    let counted = 0;
    for (const {number, connection, reader} of workers) {
        const bye = await readLine(reader);
        print(`worker ${number} says: ${bye}`);
        const match = new RegExp(`^worker ${number} served (\\d+) clients$`)
            .exec(bye ?? '');
        if (!match || Number(match[1]) !== (served.get(number) ?? 0))
            throw new Error(`unexpected goodbye from worker ${number}: ${bye}`);
        counted += Number(match[1]);
        if (await readLine(reader) !== null)
            throw new Error(`worker ${number} said more than expected`);
        print(`worker ${number} has exited`);
        connection.close(null);
    }

    if (counted !== N_CLIENTS)
        throw new Error(`the workers served ${counted} clients, not ${N_CLIENTS}`);
}

const loop = new GLib.MainLoop(null, false);
let status = 0;
main().catch(error => {
    printerr(`error: ${error.message}`);
    status = 1;
}).finally(() => loop.quit());
loop.run();
System.exit(status);
