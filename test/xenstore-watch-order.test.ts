/**
 * A watch hears of writes made after it was registered, never of one acknowledged before (as in Xen's daemon), even
 * when the branch feed that carries commits to the watches runs late: a load run of the xenstored suite saw a watch
 * registered just after a write get that write's event, seconds later. Here the feed is held back on purpose: the
 * daemon runs in this process on a store whose watch delivers nothing until the test lets it.
 */
import { describe, expect, it } from 'vitest';
import { openStore, type Store } from '../src/index.js';
import type { CommitEvents } from '../src/store/watch.js';
import { Xenstored } from '../src/xenstore/daemon.js';
import { type Message, strings, XS } from '../src/xenstore/wire.js';

/** A store whose branch feed holds every commit until `release()`. */
async function heldFeed(): Promise<{ store: Store; release: () => void }> {
  const store = await openStore({ memory: true });
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const watch = store.watch.bind(store);
  (store as { watch: Store['watch'] }).watch = async (options) => {
    const w = await watch(options);
    const commits = w.commits.bind(w);
    w.commits = async function* (): AsyncGenerator<CommitEvents> {
      for await (const c of commits()) {
        await gate;
        yield c;
      }
    };
    return w;
  };
  return { store, release };
}

/** A client connection to the daemon: its requests, and the watch events it received. */
function client(d: Xenstored) {
  const events: string[][] = [];
  let reqId = 0;
  const c = d.connect({
    send(bytes: Buffer) {
      if (bytes.readUInt32LE(0) === XS.WATCH_EVENT) {
        events.push(bytes.subarray(16).toString('utf8').split('\0').slice(0, -1));
      }
    },
  });
  const ask = (type: number, ...parts: string[]) =>
    c.request({ type, reqId: ++reqId, txId: 0, payload: strings(...parts) } satisfies Message);
  return { events, ask };
}

describe('xenstored watches and the branch feed', () => {
  it('a watch registered after a write was acknowledged never hears of it, however late the feed', async () => {
    const { store, release } = await heldFeed();
    const d = await Xenstored.start(store);
    const writer = client(d);
    const watcher = client(d);
    await writer.ask(XS.WRITE, '/same/x', 'v');
    await watcher.ask(XS.WATCH, '/same', 'tok');
    release();
    // The unchanged write fires (Xen semantics); the held commit of the first write reaches the watch no event.
    await writer.ask(XS.WRITE, '/same/x', 'v');
    await writer.ask(XS.WRITE, '/same/y', 'w');
    for (let i = 0; i < 200 && watcher.events.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(watcher.events).toEqual([
      ['/same', 'tok'],
      ['/same/x', 'tok'],
      ['/same/y', 'tok'],
    ]);
    await d.close();
    await store.close();
  });
});
