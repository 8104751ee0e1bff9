import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XsClient } from './xs-client.js';

/**
 * Issue 8's VM lifecycle through the Xenstore wire protocol, in the shape of the Irmin xenstored experiment: N VMs
 * at once, each on its own connection, run start (one transaction writing ~20 nodes under /local/domain/<id>, /vm/<uuid>
 * and the backend directory, then permissions), wait for the backend's watch to see it, shut down (the toolstack
 * writes control/shutdown, the VM's watch sees it), and destroy (one transaction removing it all). Transactions are
 * retried on EAGAIN, and the retries counted. The daemon is the real `store xenstored` process on a fresh repository.
 */

const BIN = path.join(import.meta.dirname, '../../bin/store.js');

async function startDaemon(dir: string, socket: string) {
  const child = spawn(process.execPath, [BIN, '--repo', path.join(dir, 'xs.git'), 'xenstored', '--socket', socket], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  for (let i = 0; i < 200; i++) {
    const c = await XsClient.connect(socket).catch(() => null);
    if (c) return { child, probe: c };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('store xenstored did not start');
}

/** Runs `body` as a transaction until it commits; returns the EAGAIN retries. */
async function transaction(c: XsClient, body: (tx: number) => Promise<void>): Promise<number> {
  for (let retries = 0; ; retries++) {
    const tx = await c.start();
    await body(tx);
    if (await c.end(tx)) return retries;
  }
}

async function lifecycle(socket: string, toolstack: XsClient, id: number): Promise<number> {
  const c = await XsClient.connect(socket);
  const uuid = `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`;
  const dom = `/local/domain/${id}`;
  const backend = `/local/domain/0/backend/vif/${id}/0`;
  let retries = await transaction(c, async (tx) => {
    const nodes: [string, string][] = [
      [`${dom}/name`, `vm-${id}`],
      [`${dom}/domid`, String(id)],
      [`${dom}/vm`, `/vm/${uuid}`],
      [`${dom}/memory/target`, '1048576'],
      [`${dom}/memory/static-max`, '1048576'],
      [`${dom}/cpu/0/availability`, 'online'],
      [`${dom}/cpu/1/availability`, 'online'],
      [`${dom}/device/vif/0/backend`, backend],
      [`${dom}/device/vif/0/backend-id`, '0'],
      [`${dom}/device/vif/0/state`, '1'],
      [`${dom}/device/vif/0/mac`, `00:16:3e:00:${(id >> 8) & 255}:${id & 255}`],
      [`${dom}/control/shutdown`, ''],
      [`${backend}/frontend`, `${dom}/device/vif/0`],
      [`${backend}/frontend-id`, String(id)],
      [`${backend}/state`, '1'],
      [`/vm/${uuid}/name`, `vm-${id}`],
      [`/vm/${uuid}/uuid`, uuid],
      [`/vm/${uuid}/domid`, String(id)],
      [`/vm/${uuid}/image/ostype`, 'linux'],
      [`/vm/${uuid}/on_poweroff`, 'destroy'],
    ];
    for (const [p, v] of nodes) await c.write(p, v, tx);
    await c.setPerms(dom, [`n0`, `r${id}`], tx);
  });
  // The backend (the toolstack's connection) sees the new device; the VM watches its shutdown node.
  await toolstack.event((e) => e.path.startsWith(backend));
  await c.watch(`${dom}/control/shutdown`, 'shutdown');
  await c.event((e) => e.token === 'shutdown'); // the registration event
  await toolstack.write(`${dom}/control/shutdown`, 'poweroff');
  await c.event((e) => e.token === 'shutdown');
  retries += await transaction(c, async (tx) => {
    await c.rm(dom, tx);
    await c.rm(`/vm/${uuid}`, tx);
    await c.rm(`/local/domain/0/backend/vif/${id}`, tx);
  });
  c.close();
  return retries;
}

/** N lifecycles at once against a daemon on `socket`; `toolstack` is dom0's connection (it watches the backends). */
export async function runLifecycles(socket: string, toolstack: XsClient, n: number) {
  await toolstack.write('/local/domain/0/backend/vif', '');
  await toolstack.watch('/local/domain/0/backend/vif', 'backend');
  const started = Date.now();
  const retries = await Promise.all(Array.from({ length: n }, (_, i) => lifecycle(socket, toolstack, i + 1)));
  return { ms: Date.now() - started, retries };
}

export async function benchXenstoreLifecycle(counts: number[]) {
  const out: Record<string, unknown> = {};
  for (const n of counts) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xs-'));
    const socket = path.join(dir, 's');
    const { child, probe: toolstack } = await startDaemon(dir, socket);
    try {
      const { ms, retries } = await runLifecycles(socket, toolstack, n);
      out[`n${n}`] = {
        sequences: n,
        totalMs: ms,
        eagainRetries: retries.reduce((a, b) => a + b, 0),
        transactionsPerSecond: Math.round(((2 * n) / ms) * 1000),
      };
    } finally {
      toolstack.close();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return {
    ...out,
    note: 'Irmin xenstored experiment, 100 sequences (published chart): Irmin 26.8 s, oxenstored 53.6 s, C xenstored 280 s (other hardware)',
  };
}
