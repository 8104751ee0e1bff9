import { describe, expect, it } from 'vitest';
import { openStore } from '../src/index.js';
import { Xenstored } from '../src/xenstore/daemon.js';
import { Framer, strings, XS } from '../src/xenstore/wire.js';

/**
 * Domains other than dom0 never reach the socket (every socket connection is dom0, as in Xen), so their rules are
 * shown through the daemon's own connection API: the permission check, ownership of what they create, the entries
 * quota, and the refusal of privileged operations.
 */

type Reply = { type: number; text: string };

async function daemon(quotas = {}) {
  const store = await openStore({ memory: true });
  const d = await Xenstored.start(store, { quotas });
  const client = (domid: number) => {
    const framer = new Framer();
    const events: string[] = [];
    let waiting: ((r: Reply) => void) | null = null;
    const c = d.connect(
      {
        send: (bytes) => {
          for (const m of framer.push(bytes)) {
            if (m.type === XS.WATCH_EVENT) events.push(m.payload.toString('utf8'));
            else waiting?.({ type: m.type, text: m.payload.toString('utf8') });
          }
        },
      },
      domid,
    );
    const ask = (type: number, payload: Buffer): Promise<Reply> =>
      new Promise((resolve) => {
        waiting = resolve;
        void c.request({ type, reqId: 0, txId: 0, payload });
      });
    /** The reply's text, or the errno of an ERROR. */
    const call = async (type: number, ...parts: string[]) => {
      const r = await ask(type, strings(...parts));
      return r.type === XS.ERROR ? r.text.replace(/\0$/, '') : r.text;
    };
    const write = async (path: string, value: string) => {
      const r = await ask(XS.WRITE, Buffer.concat([strings(path), Buffer.from(value)]));
      return r.type === XS.ERROR ? r.text.replace(/\0$/, '') : r.text;
    };
    return { call, write, events };
  };
  return { store, d, client };
}

describe('Xenstore domains other than dom0', () => {
  it('are held to node permissions, own what they create, and may not give it away', async () => {
    const { store, d, client } = await daemon();
    const dom0 = client(0);
    const dom5 = client(5);
    expect(await dom0.call(XS.MKDIR, '/local/domain/5')).toBe('OK\0');
    expect(await dom0.call(XS.SET_PERMS, '/local/domain/5', 'n5')).toBe('OK\0');
    expect(await dom5.write('data/x', 'mine')).toBe('OK\0'); // relative: under /local/domain/5
    expect(await dom5.call(XS.READ, '/local/domain/5/data/x')).toBe('mine');
    expect(await dom5.call(XS.GET_PERMS, '/local/domain/5/data/x')).toBe('n5\0');
    // The root and what dom0 made are dom0's: no access by default.
    expect(await dom5.write('/elsewhere', 'x')).toBe('EACCES');
    expect(await dom5.call(XS.READ, '/tool/xenstored')).toBe('EACCES');
    expect(await dom0.write('/shared', 'hello')).toBe('OK\0');
    expect(await dom0.call(XS.SET_PERMS, '/shared', 'n0', 'r5')).toBe('OK\0');
    expect(await dom5.call(XS.READ, '/shared')).toBe('hello');
    expect(await dom5.write('/shared', 'changed')).toBe('EACCES');
    expect(await dom5.call(XS.RM, '/shared')).toBe('EACCES');
    // Where dom5 may write, what it creates is its own: the parent's perms with dom5 as owner.
    expect(await dom0.call(XS.MKDIR, '/pub')).toBe('OK\0');
    expect(await dom0.call(XS.SET_PERMS, '/pub', 'n0', 'b5')).toBe('OK\0');
    expect(await dom5.write('/pub/mine/deeper', 'v')).toBe('OK\0');
    expect(await dom5.call(XS.GET_PERMS, '/pub/mine')).toBe('n5\0b5\0');
    expect(await dom5.call(XS.GET_PERMS, '/pub/mine/deeper')).toBe('n5\0b5\0');
    expect(await client(6).call(XS.READ, '/pub/mine/deeper')).toBe('EACCES');
    // Its own node: it may change the perms, not the owner.
    expect(await dom5.call(XS.SET_PERMS, '/pub/mine', 'n5', 'r6')).toBe('OK\0');
    expect(await client(6).call(XS.READ, '/pub/mine')).toBe('');
    expect(await dom5.call(XS.SET_PERMS, '/pub/mine', 'n6')).toBe('EPERM');
    expect(await dom5.call(XS.SET_PERMS, '/shared', 'n5')).toBe('EACCES');
    // Privileged operations are dom0's.
    expect(await dom5.call(XS.INTRODUCE, '7', '1', '2')).toBe('EACCES');
    expect(await dom5.call(XS.IS_DOMAIN_INTRODUCED, '0')).toBe('EACCES');
    expect(await dom0.call(XS.IS_DOMAIN_INTRODUCED, '0')).toBe('T\0');
    await d.close();
    await store.close();
  });

  it('may own at most maxEntriesPerDomain nodes (ENOSPC past it, nothing written); dom0 is not counted', async () => {
    const { store, d, client } = await daemon({ maxEntriesPerDomain: 10 });
    const dom0 = client(0);
    const dom5 = client(5);
    expect(await dom0.call(XS.MKDIR, '/local/domain/5')).toBe('OK\0');
    expect(await dom0.call(XS.SET_PERMS, '/local/domain/5', 'n5')).toBe('OK\0'); // 1 node owned
    const results: string[] = [];
    for (let i = 0; i < 12; i++) results.push(await dom5.write(`k${i}`, String(i)));
    // 1 + 9 = 10 nodes: the tenth write is refused, and so is every one after it.
    expect(results.slice(0, 9)).toEqual(Array(9).fill('OK\0'));
    expect(results.slice(9)).toEqual(['ENOSPC', 'ENOSPC', 'ENOSPC']);
    expect(await dom5.call(XS.READ, 'k9')).toBe('ENOENT');
    // Overwriting creates nothing: still allowed. Removing makes room.
    expect(await dom5.write('k0', 'again')).toBe('OK\0');
    expect(await dom5.call(XS.RM, 'k1')).toBe('OK\0');
    expect(await dom5.write('k9', '9')).toBe('OK\0');
    // A write creating two nodes at once counts both.
    expect(await dom5.call(XS.RM, 'k2')).toBe('OK\0');
    expect(await dom5.write('a/b', 'x')).toBe('ENOSPC');
    for (let i = 0; i < 20; i++) expect(await dom0.write(`/local/domain/5/zero${i}`, 'x')).toBe('OK\0');
    await d.close();
    await store.close();
  });

  it('INTRODUCE and RELEASE fire @introduceDomain and @releaseDomain; IS_DOMAIN_INTRODUCED follows them', async () => {
    const { store, d, client } = await daemon();
    const dom0 = client(0);
    expect(await dom0.call(XS.WATCH, '@introduceDomain', 'in')).toBe('OK\0');
    expect(await dom0.call(XS.WATCH, '@releaseDomain', 'out')).toBe('OK\0');
    expect(dom0.events).toEqual(['@introduceDomain\0in\0', '@releaseDomain\0out\0']); // on registration
    expect(await dom0.call(XS.IS_DOMAIN_INTRODUCED, '7')).toBe('F\0');
    expect(await dom0.call(XS.INTRODUCE, '7', '4096', '3')).toBe('OK\0');
    expect(await dom0.call(XS.IS_DOMAIN_INTRODUCED, '7')).toBe('T\0');
    expect(await dom0.call(XS.GET_DOMAIN_PATH, '7')).toBe('/local/domain/7\0');
    expect(await dom0.call(XS.RELEASE, '7')).toBe('OK\0');
    expect(await dom0.call(XS.RELEASE, '7')).toBe('ENOENT');
    expect(await dom0.call(XS.IS_DOMAIN_INTRODUCED, '7')).toBe('F\0');
    expect(await dom0.call(XS.INTRODUCE, 'x', '1', '2')).toBe('EINVAL');
    expect(dom0.events.slice(2)).toEqual(['@introduceDomain\0in\0', '@releaseDomain\0out\0']);
    // A node write does not reach the special watches.
    expect(await dom0.write('/x', '1')).toBe('OK\0');
    await new Promise((r) => setTimeout(r, 100));
    expect(dom0.events).toHaveLength(4);
    await d.close();
    await store.close();
  });
});
