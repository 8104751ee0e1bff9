import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessRepo } from './access-fixture.js';
import { cli } from './cli-process.js';
import { git, sleep } from './helpers.js';
import { type Served, startServe, stopServe } from './serve.js';

/**
 * Ways round the access rules (issue 15), each tried against a real `store serve` with tokens from the real CLI: a
 * key spelled with a leading `/`, a revision of another branch read with this branch's rights, a new branch or a
 * merge taking what the caller may not read, a listing that tells what a hidden path is, and a watch that outlives
 * its token. Each was open before its fix.
 */

const ACCESS = {
  roles: {
    web: { rules: [{ branch: 'main', prefix: 'app/web/', access: 'read' }] },
    appw: { rules: [{ branch: 'main', prefix: 'app/', access: 'write' }] },
    mainr: { rules: [{ branch: 'main', prefix: '', access: 'read' }] },
    mainw: { rules: [{ branch: 'main', prefix: '', access: 'write' }] },
    devs: { rules: [{ branch: 'dev*', prefix: '', access: 'write' }] },
    imp: { rules: [{ branch: 'main', prefix: 'app/', access: 'write' }], impersonate: true },
  },
};

type Who = 'web' | 'appw' | 'mainr' | 'mainw' | 'devs' | 'imp' | 'admin';
const WHO: Who[] = ['web', 'appw', 'mainr', 'mainw', 'devs', 'imp', 'admin'];
const tokens = {} as Record<Who, string>;
let server: Served;
let repo: string;

beforeAll(async () => {
  const made = await accessRepo({
    name: 'bypass',
    access: ACCESS,
    keys: { 'app/web/port': '8080', 'secret/key': 'top secret value' },
    roles: WHO,
    more: async (store) => {
      await store.createBranch('dev');
      await store.createBranch('ops');
      await store.set('ops/db-password', 'hunter2', { branch: 'ops' });
      await store.set('ops/db-user', 'root', { branch: 'ops' });
      // main moves on: its head is in no other branch's history.
      await store.set('secret/key', 'top secret value, rotated');
    },
  });
  repo = made.repo;
  Object.assign(tokens, made.tokens);
  server = await startServe(repo, ['--port', '0', '--rate-limit', '0']);
});

afterAll(async () => {
  if (server) await stopServe(server);
  fs.rmSync(path.dirname(repo), { recursive: true, force: true });
});

async function call(who: Who, method: string, url: string, body?: unknown, extra: Record<string, string> = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${tokens[who]}`, ...extra };
  let text: string | undefined;
  if (body !== undefined) {
    text = typeof body === 'string' ? body : JSON.stringify(body);
    headers['content-type'] = typeof body === 'string' ? 'application/octet-stream' : 'application/json';
  }
  const res = await fetch(`${server.url}${url}`, { method, headers, body: text });
  return { status: res.status, text: await res.text() };
}

const heads = () =>
  git(['--git-dir', repo, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads']).toString();

/** Every answer is 403 and none carries a hidden value or key name. */
function expectRefused(answers: { status: number; text: string }[], hidden: RegExp) {
  for (const a of answers) {
    expect(a.status, a.text).toBe(403);
    expect(a.text).not.toMatch(hidden);
  }
}

describe('ways round the rules', () => {
  it('a key with a leading / is the key the store writes: /.store/ needs admin, /secret/ stays unreadable', async () => {
    const before = heads();
    expectRefused(
      [
        await call('mainw', 'PUT', '/v1/branches/main/keys//.store/access.json', '{"roles":{}}'),
        await call('mainw', 'PUT', '/v1/branches/main/keys/%2F.store%2Faccess.json', '{"roles":{}}'),
        await call('mainw', 'POST', '/v1/branches/main/batch', {
          ops: [{ op: 'set', key: '/.store/merge.json', value: '{}' }],
        }),
        await call('web', 'GET', '/v1/branches/main/keys//secret/key'),
        await call('web', 'GET', '/v1/branches/main/keys/%2Fsecret%2Fkey'),
        await call('appw', 'DELETE', '/v1/branches/main/keys//secret?recursive=true'),
      ],
      /top secret/,
    );
    expect(heads()).toBe(before);
    // The same spelling of a key the token may use still works.
    expect((await call('web', 'GET', '/v1/branches/main/keys//app/web/port')).text).toBe('8080');
  });

  it("a revision of another branch is not read with this branch's rights", async () => {
    const hidden = /hunter2|ops\/db/;
    expectRefused(
      [
        await call('mainr', 'GET', '/v1/branches/main/keys/app/web/port?at=ops'),
        await call('mainr', 'GET', '/v1/branches/main/list?at=ops&recursive=true'),
        await call('mainr', 'GET', '/v1/commits/ops?branch=main'),
        await call('mainr', 'GET', '/v1/diff?from=ops~1&to=ops&branch=main'),
        await call('mainr', 'GET', '/v1/branches/main/log?cursor=ops'),
        await call('mainr', 'GET', '/v1/branches/main/blame?at=ops'),
        await call('mainr', 'POST', '/v1/branches/main/bisect', {
          good: 'ops~1',
          bad: 'ops',
          key: 'ops/db-password',
          equals: 'hunter2',
        }),
      ],
      hidden,
    );
    // Its own branch's history, by any spelling, is readable.
    expect((await call('mainr', 'GET', '/v1/branches/main/keys/app/web/port?at=main~0')).status).toBe(200);
    expect((await call('mainr', 'GET', '/v1/branches/main/log?cursor=main')).status).toBe(200);
  });

  it('a new branch needs read on all of its starting point', async () => {
    const before = heads();
    expectRefused(
      [
        await call('devs', 'POST', '/v1/branches', { name: 'dev-copy', from: 'main' }),
        await call('devs', 'POST', '/v1/branches', { name: 'dev-copy' }), // the default branch
        await call('devs', 'POST', '/v1/branches', { name: 'dev-copy', from: 'ops~0' }),
      ],
      /top secret|hunter2/,
    );
    expect(heads()).toBe(before);
    expect((await call('devs', 'POST', '/v1/branches', { name: 'dev-copy', from: 'dev' })).status).toBe(201);
  });

  it('a merge needs read, where it comes from, on every key it brings, however the source is spelled', async () => {
    const before = heads();
    expectRefused(
      [
        await call('devs', 'POST', '/v1/branches/dev/merge', { from: 'main' }),
        await call('devs', 'POST', '/v1/branches/dev/merge', { from: 'main~0' }),
        await call('devs', 'POST', '/v1/branches/dev/merge/preview', { from: 'main~0' }),
        await call('appw', 'POST', '/v1/branches/main/merge', { from: 'ops' }),
        await call('appw', 'POST', '/v1/branches/main/merge', { from: 'ops~0' }),
      ],
      /top secret|hunter2|secret\/key|ops\/db/,
    );
    expect(heads()).toBe(before);
  });

  it('a listing of a path the token may not see is refused before anything is said of the path', async () => {
    // Without the check first: 409 (a value), 404 (nothing) and 403 (a directory) told them apart.
    expectRefused(
      [
        await call('web', 'GET', '/v1/branches/main/list/secret/key'),
        await call('web', 'GET', '/v1/branches/main/list/secret/nothing'),
        await call('web', 'GET', '/v1/branches/main/list/secret'),
      ],
      /top secret/,
    );
  });

  it('a transaction checks every key it reads or writes against its token', async () => {
    const begun = JSON.parse((await call('appw', 'POST', '/v1/branches/main/transactions')).text) as { id: string };
    const tx = `/v1/transactions/${begun.id}`;
    expectRefused(
      [
        await call('appw', 'GET', `${tx}/keys/secret/key`),
        await call('appw', 'PUT', `${tx}/keys/secret/key`, 'stolen'),
        await call('appw', 'PUT', `${tx}/keys//.store/access.json`, '{}'),
        await call('appw', 'DELETE', `${tx}/keys/secret?recursive=true`),
      ],
      /top secret/,
    );
    expect((await call('appw', 'PUT', `${tx}/keys/app/tx`, 'ok')).status).toBe(200);
    expect((await call('appw', 'POST', `${tx}/commit`)).status).toBe(200);
    expect(git(['--git-dir', repo, 'show', 'main:app/tx']).toString()).toBe('ok');
    expect(git(['--git-dir', repo, 'show', 'main:secret/key']).toString()).toBe('top secret value, rotated');
  });

  it('a role with impersonate may name another author and committer; the others sign as their token', async () => {
    const as = { 'x-store-author': 'Jane Doe <jane@example.com>', 'x-store-committer': 'Ci Bot <ci@example.com>' };
    expect((await call('appw', 'PUT', '/v1/branches/main/keys/app/who', 'x', as)).status).toBe(403);
    expect((await call('imp', 'PUT', '/v1/branches/main/keys/app/who', 'y', as)).status).toBe(201);
    const signed = git(['--git-dir', repo, 'log', '-1', '--format=%an <%ae>|%cn <%ce>', 'main']).toString().trim();
    expect(signed).toBe('Jane Doe <jane@example.com>|Ci Bot <ci@example.com>');
    expect((await call('appw', 'PUT', '/v1/branches/main/keys/app/who', 'z')).status).toBe(200);
    expect(git(['--git-dir', repo, 'log', '-1', '--format=%an', 'main']).toString().trim()).toBe('appw');
  });

  it('a push cannot name objects it did not send from a branch the token may not read', async () => {
    // A commit with main's whole tree (devs may not read main), sent alone: the tree is already on the server.
    const scratch = path.join(path.dirname(repo), 'scratch.git');
    git(['init', '-q', '--bare', scratch]);
    const tree = git(['--git-dir', repo, 'rev-parse', 'main^{tree}']).toString().trim();
    const body = `tree ${tree}\nauthor devs <> 1700000000 +0000\ncommitter devs <> 1700000000 +0000\n\nsteal\n`;
    const stdin = { input: body, stdio: ['pipe', 'pipe', 'pipe'] as ('pipe' | 'ignore')[] };
    const commit = git(['--git-dir', scratch, 'hash-object', '--literally', '-t', 'commit', '-w', '--stdin'], stdin)
      .toString()
      .trim();
    const pack = git(['--git-dir', scratch, 'pack-objects', '--stdout'], { ...stdin, input: `${commit}\n` });
    const pkt = (line: string) => `${(Buffer.byteLength(line) + 4).toString(16).padStart(4, '0')}${line}`;
    const command = pkt(`${'0'.repeat(40)} ${commit} refs/heads/dev-steal\0report-status\n`);
    const res = await fetch(`${server.url}/git/git-receive-pack`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`devs:${tokens.devs}`).toString('base64')}`,
        'content-type': 'application/x-git-receive-pack-request',
      },
      body: Buffer.concat([Buffer.from(`${command}0000`), pack]),
    });
    const answer = await res.text();
    expect(answer).toMatch(/ng refs\/heads\/dev-steal/);
    expect(heads()).not.toMatch(/dev-steal/);
    expect((await call('devs', 'GET', '/v1/branches/dev-steal/keys/secret/key')).text).not.toMatch(/top secret/);
  });

  it('a revert takes only a commit of its own branch, and needs write on every key that commit changed', async () => {
    const before = heads();
    const seeded = git(['--git-dir', repo, 'log', '--format=%H', 'main', '--', '.store/access.json'])
      .toString()
      .trim()
      .split('\n')
      .at(-1)!;
    expectRefused(
      [
        // ops' head, reverted on dev: it would bring ops' keys (and message) to dev.
        await call('devs', 'POST', '/v1/branches/dev/revert', { commit: 'ops' }),
        // The commit that wrote .store/access.json: undoing it writes .store/, which needs admin.
        await call('mainw', 'POST', '/v1/branches/main/revert', { commit: seeded }),
      ],
      /hunter2|ops\/db|top secret/,
    );
    expect(heads()).toBe(before);
  });

  it('a watch replays nothing from another branch: since and Last-Event-ID are revisions of its own', async () => {
    expectRefused(
      [
        await call('mainr', 'GET', '/v1/branches/main/watch?since=ops'),
        await call('mainr', 'GET', '/v1/branches/main/watch', undefined, { 'last-event-id': 'ops' }),
      ],
      /hunter2|ops\/db/,
    );
  });

  it('says nothing of hidden paths and values: transactions, dumb git, blob ids, revisions of other branches', async () => {
    const begun = JSON.parse((await call('web', 'POST', '/v1/branches/main/transactions')).text) as { id: string };
    expectRefused(
      [
        await call('web', 'GET', `/v1/transactions/${begun.id}/list/secret/key`),
        await call('web', 'GET', `/v1/transactions/${begun.id}/list/secret/nothing`),
        await call('web', 'GET', `/v1/transactions/${begun.id}/list/secret`),
        // A key there and a key not there, at a hidden branch's revision: the same answer.
        await call('mainr', 'GET', '/v1/branches/main/keys/ops/db-password?at=ops'),
        await call('mainr', 'GET', '/v1/branches/main/keys/ops/nothing?at=ops'),
        await call('mainr', 'GET', '/v1/branches/main/list/ops/db-password?at=ops'),
      ],
      /hunter2/,
    );
    // The dumb protocol's listing of every ref is not served.
    const dumb = await fetch(`${server.url}/git/info/refs`, {
      headers: { authorization: `Basic ${Buffer.from(`mainr:${tokens.mainr}`).toString('base64')}` },
    });
    expect(dumb.status).toBe(404);
    expect(await dumb.text()).not.toMatch(/refs\/heads\/ops/);
    // A blob's id as a revision is "no such revision", like any unknown id: not "a blob", which would confirm a value.
    const blob = git(['hash-object', '--stdin'], { input: 'hunter2', stdio: ['pipe', 'pipe', 'pipe'] })
      .toString()
      .trim();
    const guess = await call('mainr', 'GET', `/v1/branches/main/keys/app/web/port?at=${blob}`);
    const wrong = await call('mainr', 'GET', `/v1/branches/main/keys/app/web/port?at=${'1'.repeat(40)}`);
    expect(guess.status).toBe(404);
    expect(JSON.parse(guess.text).error.message.replace(blob, 'X')).toBe(
      JSON.parse(wrong.text).error.message.replace('1'.repeat(40), 'X'),
    );
  });

  it('an open watch ends once its token is revoked', async () => {
    const made = await cli(['--repo', repo, 'token', 'create', 'watcher', '--role', 'web']);
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v1/branches/main/watch?prefix=app/web`, {
      headers: { authorization: `Bearer ${made.stdout.trim()}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    let received = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) received += decoder.decode(chunk);
    })();
    try {
      expect((await cli(['--repo', repo, 'token', 'revoke', 'watcher'])).code).toBe(0);
      // Past the watch's next look at its token (at most a second after its last).
      await sleep(1200);
      expect((await call('admin', 'PUT', '/v1/branches/main/keys/app/web/port', '9090')).status).toBe(200);
      await Promise.race([reading, sleep(10_000)]);
      expect(received).toMatch(/no longer valid/);
      expect(received).not.toMatch(/app\/web\/port/);
    } finally {
      controller.abort();
      await reading.catch(() => {});
    }
  });
});
