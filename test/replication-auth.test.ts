/**
 * Replication between servers with auth on (issue 15): each replica sends its peers the token in $STORE_PEER_TOKEN,
 * over the API (the peer's watch, its outgoing objects) and over git (a push, where the peer's hook checks what the
 * token may write). Without a token a replica reports its peer unreachable and says why; nothing is written there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../bench/free-port.js';
import { openStore, type ReplicationStatus } from '../src/index.js';
import { cli } from './cli-process.js';
import { expectFsckClean } from './git-packs.js';
import { cliEnv, git, sleep, tempDir } from './helpers.js';
import { put, type Served, startServe, stopServe } from './serve.js';

const ACCESS = {
  // A replica pushes commits made by others: it needs impersonate, as any token pushing others' commits does.
  roles: { replica: { rules: [{ branch: 'main', prefix: '', access: 'write' }], impersonate: true } },
};

const running: Served[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await stopServe(s);
});

async function token(repo: string, name: string, role: string): Promise<string> {
  const made = await cli(['--repo', repo, 'token', 'create', name, '--role', role]);
  expect(made.code, made.stderr).toBe(0);
  return made.stdout.trim();
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

const getAs = (url: string, key: string, bearer: string) =>
  fetch(`${url}/v1/branches/main/keys/${key}`, { headers: { authorization: `Bearer ${bearer}` } });

describe('replication with auth on', () => {
  it('replicas send $STORE_PEER_TOKEN to each other; a replica without one is told its peer needs a token', async () => {
    const dir = tempDir('gitstore-repl-auth-');
    const [a, b, c] = ['a.git', 'b.git', 'c.git'].map((n) => path.join(dir, n)) as [string, string, string];
    const seed = await openStore({ fs, dir: a, create: true });
    await seed.set('.store/access.json', JSON.stringify(ACCESS));
    await seed.close();
    const seeded = git(['--git-dir', a, 'rev-parse', 'main']).toString();
    git(['clone', '--bare', '-q', a, b]);
    git(['clone', '--bare', '-q', a, c]);
    // Tokens live beside each repository, never in a commit: each replica has its own.
    const peerOfA = await token(a, 'peer', 'replica');
    const peerOfB = await token(b, 'peer', 'replica');
    const adminA = await token(a, 'ops', 'admin');
    const adminB = await token(b, 'ops', 'admin');

    const [pa, pb, pc] = await Promise.all([freePort(), freePort(), freePort()]);
    const [ua, ub, uc] = [pa, pb, pc].map((p) => `http://127.0.0.1:${p}`) as [string, string, string];
    running.push(await startServe(a, ['--port', String(pa), '--peer', ub], { ...cliEnv(), STORE_PEER_TOKEN: peerOfB }));
    running.push(await startServe(b, ['--port', String(pb), '--peer', ua], { ...cliEnv(), STORE_PEER_TOKEN: peerOfA }));

    expect((await put(ua, 'app/from-a', '1', 'main', { authorization: `Bearer ${adminA}` })).status).toBe(201);
    expect((await put(ub, 'app/from-b', '2', 'main', { authorization: `Bearer ${adminB}` })).status).toBe(201);
    await waitFor('both writes on both replicas', async () => {
      const seen = await Promise.all([
        getAs(ua, 'app/from-b', adminA).then((r) => r.status),
        getAs(ub, 'app/from-a', adminB).then((r) => r.status),
      ]);
      return seen.every((s) => s === 200);
    });
    const status = async (url: string, bearer: string) =>
      (await (
        await fetch(`${url}/v1/replication`, { headers: { authorization: `Bearer ${bearer}` } })
      ).json()) as ReplicationStatus;
    await waitFor('both links ok', async () =>
      [await status(ua, adminA), await status(ub, adminB)].every((s) => s.links[0]?.state === 'ok'),
    );
    // The peers' commits are authored by the replica's token: each side's log names who wrote.
    expect(git(['--git-dir', b, 'log', '--format=%an', 'main']).toString()).toMatch(/ops/);

    // A replica with no token: its peer answers 401, and it says so.
    const served = await startServe(c, ['--port', String(pc), '--peer', ua]);
    running.push(served);
    await waitFor('c to report a as unreachable', async () => {
      const link = ((await (await fetch(`${uc}/v1/replication`)).json()) as ReplicationStatus).links[0];
      return link?.state === 'unreachable' && /token/.test(link.error ?? '');
    });
    expect(git(['--git-dir', c, 'rev-parse', 'main']).toString()).toBe(seeded);

    // The library's git transfers take the token too (git gets it in its environment): a pull, then a push checked
    // by a's hook against what the token may write.
    const d = await openStore({ fs, dir: path.join(dir, 'd.git'), create: true });
    await expect(d.pull(`${ua}/git`)).rejects.toMatchObject({ code: 'REMOTE' });
    await d.pull(`${ua}/git`, { token: peerOfA });
    expect((await d.get('app/from-b')).toString()).toBe('2');
    await d.set('app/from-d', '4');
    await d.push(`${ua}/git`, { token: peerOfA });
    expect((await (await getAs(ua, 'app/from-d', adminA)).text()).toString()).toBe('4');
    await d.set('.store/merge.json', '{"default":"lww"}');
    await expect(d.push(`${ua}/git`, { token: peerOfA })).rejects.toThrow(
      /may not write on main: "\.store\/merge\.json"/,
    );
    await d.close();
    await expectFsckClean(a);
    await expectFsckClean(b);
  });
});
