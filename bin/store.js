#!/usr/bin/env node
// The installed entry point. It loads the CLI bundled at build time: resolving and parsing dozens of modules would
// otherwise add ~60 ms to every `store` command, which people run in shell loops. `store serve` loads its own chunk,
// with fastify inside it: 274 files resolved one by one had made its start cost 0.9 s of CPU (0.45 s bundled, with
// route schemas compiled at first use).
import module from 'node:module';

// Node 22.1+ can keep V8's compiled code of the bundle on disk between runs (in the OS temporary directory, or
// NODE_COMPILE_CACHE; NODE_DISABLE_COMPILE_CACHE turns it off), which saves compiling ~190 kB of JavaScript at every
// start. Node 20 has no such call, and runs as before.
module.enableCompileCache?.();
// More threads for file I/O: the server's fsyncs would otherwise hold libuv's default 4 and stall every other read
// and write behind them. Must be set before the first asynchronous file operation.
process.env.UV_THREADPOOL_SIZE ??= '16';
await import('../dist/bundle/main.js');
