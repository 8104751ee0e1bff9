/**
 * Schemas (`.store/schema.json`, issue 18) where values arrive from elsewhere: a pull (the library and `store pull`)
 * that would bring a value breaking the local branch's schemas is refused as INVALID_VALUE with the branch head where
 * it was; a push with real git to `store serve`'s /git is declined by its pre-receive check
 * (src/remote/receive-check.ts) when what the branch would be left holding breaks the schemas it declares — a bad
 * value, or a schema change that the stored values break — naming the key and the rule, the server's branch
 * unchanged. `git fsck --strict` stays clean on both sides.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cloneStore, openStore, type Store, type StoreError, type Violation } from '../src/index.js';
import { cli } from './cli-process.js';
import { expectFsckClean } from './git-packs.js';
import { commitFiles, errorOf, expectDeclined, git, gitOk, tempDir } from './helpers.js';
import { put, type Served, startServe, stopServe } from './serve.js';

const SCHEMA = JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 128 } });

const head = (repo: string, ref = 'main') => git(['--git-dir', repo, 'rev-parse', ref]).toString().trim();

const violationsOf = (e: StoreError) => (e.data as { violations: Violation[] }).violations;

const opened: Store[] = [];
const servers: Served[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const s of servers.splice(0)) await stopServe(s);
});

async function open(dir: string): Promise<Store> {
  const s = await openStore({ fs, dir, create: true });
  opened.push(s);
  return s;
}

/**
 * A remote store (no schema) with one valid value, and a local clone of it (origin) that then declares the schema;
 * the remote then gets `vm/bad/memory = 16`, which the local schema refuses.
 */
async function schemaOnlyHere(): Promise<{ remote: Store; local: Store }> {
  const remote = await open(path.join(tempDir(), 'remote.git'));
  await remote.set('vm/web1/memory', '2048');
  const local = await cloneStore(remote.dir, path.join(tempDir(), 'local.git'), { fs });
  opened.push(local);
  await local.set('.store/schema.json', SCHEMA);
  await remote.set('vm/bad/memory', '16');
  return { remote, local };
}

describe('a pull that would bring values breaking the local schemas', () => {
  it('is refused by the library as INVALID_VALUE, the branch unchanged; once the remote fixes it, it merges', async () => {
    const { remote, local } = await schemaOnlyHere();
    const before = head(local.dir);
    const e = await errorOf(local.pull());
    expect(e.code, e.message).toBe('INVALID_VALUE');
    expect(violationsOf(e)).toEqual([
      {
        key: 'vm/bad/memory',
        pattern: 'vm/*/memory',
        pointer: '',
        keyword: 'minimum',
        rule: '#/minimum',
        message: 'must be >= 128',
      },
    ]);
    expect(head(local.dir)).toBe(before);
    expect(await local.getText('.store/schema.json')).toBe(SCHEMA);
    await expect(local.get('vm/bad/memory')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expectFsckClean(local.dir);

    // Fixed on the remote: the merge is taken, and the local branch is valid.
    await remote.set('vm/bad/memory', '256');
    const r = await local.pull();
    expect(r.merge.outcome).toBe('merged');
    expect(head(local.dir)).toBe(r.merge.commit);
    expect(await local.getText('vm/bad/memory')).toBe('256');
    expect((await local.validate()).valid).toBe(true);
    expectFsckClean(local.dir);
  });

  it('is refused by `store pull` with exit 7 and the violations (--json), the branch unchanged', async () => {
    const { local } = await schemaOnlyHere();
    await local.close();
    opened.splice(opened.indexOf(local), 1);
    const before = head(local.dir);
    const text = await cli(['--repo', local.dir, 'pull']);
    expect(text.code, text.stderr).toBe(7);
    expect(text.stderr).toMatch(/^error: a value breaks the branch's schemas.*vm\/bad\/memory: must be >= 128/);
    const json = await cli(['--repo', local.dir, '--json', 'pull', 'origin']);
    expect(json.code, json.stderr).toBe(7);
    const body = JSON.parse(json.stdout) as {
      error: { code: string; data: { violations: Violation[]; total: number } };
    };
    expect(body.error.code).toBe('INVALID_VALUE');
    expect(body.error.data.violations.map((v) => [v.key, v.rule])).toEqual([['vm/bad/memory', '#/minimum']]);
    expect(body.error.data.total).toBe(1);
    expect(head(local.dir)).toBe(before);
    expect((await cli(['--repo', local.dir, 'validate'])).code).toBe(0);
    expectFsckClean(local.dir);
  });

  it('is refused when it would be a fast-forward too: the remote’s new commits hold a bad value', async () => {
    // Both declare the schema; the remote drops it, takes a bad value, and forces it back in.
    const remote = await open(path.join(tempDir(), 'remote.git'));
    await remote.batch([
      { op: 'set', key: '.store/schema.json', value: SCHEMA },
      { op: 'set', key: 'vm/web1/memory', value: '2048' },
    ]);
    const local = await cloneStore(remote.dir, path.join(tempDir(), 'local.git'), { fs });
    opened.push(local);
    await remote.delete('.store/schema.json');
    await remote.set('vm/bad/memory', '16');
    await remote.set('.store/schema.json', SCHEMA, { force: true });
    const before = head(local.dir);
    git(['--git-dir', remote.dir, 'merge-base', '--is-ancestor', before, 'main']);
    const e = await errorOf(local.pull());
    expect(e.code, e.message).toBe('INVALID_VALUE');
    expect(violationsOf(e).map((v) => v.key)).toEqual(['vm/bad/memory']);
    expect(head(local.dir)).toBe(before);
    expectFsckClean(local.dir);
  });
});

// ---- pushes with real git to `store serve`'s /git (see test/git-server-push.test.ts) ----------------------------

/** A served store declaring the schema (and `app/*` through a $ref), with valid values; a working clone of it. */
async function servedTyped(): Promise<{ s: Served; repo: string; work: string }> {
  const repo = path.join(tempDir(), 'store.git');
  const store = await openStore({ fs, dir: repo, create: true });
  await store.batch([
    { op: 'set', key: '.store/schema.json', value: SCHEMA },
    { op: 'set', key: 'vm/web1/memory', value: '512' },
    { op: 'set', key: 'vm/web1/state', value: 'running' },
  ]);
  await store.close();
  const s = await startServe(repo);
  servers.push(s);
  const work = path.join(tempDir(), 'work');
  await gitOk(['clone', '-q', `${s.url}/git`, work]);
  return { s, repo, work };
}

const reset = (work: string) => gitOk(['-C', work, 'reset', '-q', '--hard', 'origin/main']);

describe('a pull of schemas an admin forced on the remote past its stored values', () => {
  it('is refused as it would be here, and taken with force (the values it brings are still checked)', async () => {
    const remote = await open(path.join(tempDir(), 'remote.git'));
    await remote.set('vm/a/memory', '64');
    const local = await cloneStore(remote.dir, path.join(tempDir(), 'local.git'), { fs });
    opened.push(local);
    await remote.set('.store/schema.json', SCHEMA, { force: true });
    const before = head(local.dir);
    const e = await errorOf(local.pull());
    expect(e.code, e.message).toBe('INVALID_VALUE');
    expect(violationsOf(e).map((v) => v.key)).toEqual(['vm/a/memory']);
    expect(head(local.dir)).toBe(before);
    // A bad value the pull itself brings is refused even with force...
    // (the remote refuses it too, forced or not: it is written with the schemas taken out, then put back.)
    await remote.delete('.store/schema.json');
    await remote.set('vm/b/memory', '1');
    await remote.set('.store/schema.json', SCHEMA, { force: true });
    const brought = await errorOf(local.pull('origin', { force: true }));
    expect(violationsOf(brought).map((v) => v.key)).toEqual(['vm/b/memory']);
    expect(head(local.dir)).toBe(before);
    // ...and once that one is fixed there, force takes the schemas with the value that was already here.
    await remote.set('vm/b/memory', '256');
    const pulled = await local.pull('origin', { force: true });
    expect(pulled.merge.outcome).toBe('fast-forward');
    expect(await local.getText('.store/schema.json')).toBe(SCHEMA);
    expect((await local.validate()).violations.map((v) => v.key)).toEqual(['vm/a/memory']);
    expectFsckClean(local.dir);
  });
});

describe('a push to store serve’s git server', () => {
  it('is declined when it brings a value the schema refuses, naming the key and the rule; a valid one goes through', async () => {
    const { s, repo, work } = await servedTyped();
    const before = head(repo);

    await commitFiles(work, { 'vm/web2/memory': '64' }, 'too small');
    await expectDeclined(work, 'main', [/vm\/web2\/memory\b.*must be >= 128/, /vm\/web2\/memory\b.*#\/minimum/]);
    await reset(work);
    // Not JSON where the schema wants an integer.
    await commitFiles(work, { 'vm/web1/memory': '512 MiB' }, 'not a number');
    await expectDeclined(work, 'main', [/vm\/web1\/memory\b/]);
    await reset(work);
    // A new branch is checked against the schemas its tree declares.
    await commitFiles(work, { 'vm/web3/memory': '1' }, 'on a new branch');
    await expectDeclined(work, 'HEAD:refs/heads/feature', [/vm\/web3\/memory\b.*must be >= 128/], 'HEAD -> feature');
    await reset(work);

    // Nothing of it reached the store.
    expect(head(repo)).toBe(before);
    expect(git(['--git-dir', repo, 'branch', '--list', 'feature']).toString()).toBe('');
    expect(await (await fetch(`${s.url}/v1/branches/main/keys/vm/web1/memory`)).text()).toBe('512');
    expectFsckClean(repo);

    const good = await commitFiles(work, { 'vm/web2/memory': '256' }, 'big enough');
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    expect(head(repo)).toBe(good);
    expect(await (await fetch(`${s.url}/v1/branches/main/keys/vm/web2/memory`)).text()).toBe('256');
    expectFsckClean(repo);
  });

  it('is declined when it changes .store/schema.json so that stored values break it, or breaks the schema file', async () => {
    const { s, repo, work } = await servedTyped();
    // Another stored value, written through the API.
    expect((await put(s.url, 'vm/web2/memory', '256')).status).toBe(201);
    await gitOk(['-C', work, 'pull', '-q', '--no-rebase', 'origin', 'main']);
    const before = head(repo);

    const tighter = JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 1024 } });
    await commitFiles(work, { '.store/schema.json': tighter }, 'tighter');
    await expectDeclined(work, 'main', [/vm\/web1\/memory\b.*must be >= 1024/, /vm\/web2\/memory\b.*must be >= 1024/]);
    await reset(work);
    // A schema file that is not JSON, or not a schema, or names a file that is not there.
    for (const broken of [
      '{"vm/*/memory": ',
      '{"vm/*/memory": {"type": "integer", "minimun": 128}}',
      '{"app/*/config.json": {"$ref": ".store/schemas/nope.json"}}',
    ]) {
      await commitFiles(work, { '.store/schema.json': broken }, 'broken schema');
      await expectDeclined(work, 'main', [/\.store\/schema\.json/]);
      await reset(work);
    }
    expect(head(repo)).toBe(before);
    expect(await (await fetch(`${s.url}/v1/branches/main/keys/.store/schema.json`)).text()).toBe(SCHEMA);
    expectFsckClean(repo);

    // The same schema change with the values raised to meet it, in one push, goes through.
    const raised = await commitFiles(
      work,
      { '.store/schema.json': tighter, 'vm/web1/memory': '2048', 'vm/web2/memory': '4096' },
      'tighter, and values that meet it',
    );
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    expect(head(repo)).toBe(raised);
    const report = (await (await fetch(`${s.url}/v1/branches/main/validate`)).json()) as { valid: boolean };
    expect(report.valid).toBe(true);
    expectFsckClean(repo);
  });

  it('reads schemas a $ref names in .store/schemas/, as pushed', async () => {
    const { repo, work } = await servedTyped();
    const app = JSON.stringify({
      type: 'object',
      required: ['port'],
      properties: { port: { type: 'integer', minimum: 1, maximum: 65535 } },
    });
    const withRef = JSON.stringify({
      'vm/*/memory': { type: 'integer', minimum: 128 },
      'app/*/config.json': { $ref: '.store/schemas/app.json' },
    });
    const before = head(repo);
    // The schema, the file it names and a value that breaks it, in one commit.
    await commitFiles(
      work,
      {
        '.store/schema.json': withRef,
        '.store/schemas/app.json': app,
        'app/web/config.json': '{"port": 70000}',
      },
      'app schema, and a bad port',
    );
    await expectDeclined(work, 'main', [/app\/web\/config\.json\b.*\/port/]);
    await reset(work);
    expect(head(repo)).toBe(before);
    const good = await commitFiles(
      work,
      {
        '.store/schema.json': withRef,
        '.store/schemas/app.json': app,
        'app/web/config.json': '{"port": 8080}',
      },
      'app schema',
    );
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    expect(head(repo)).toBe(good);
    // Then a value the referenced schema refuses, alone.
    await commitFiles(work, { 'app/api/config.json': '{"host": "x"}' }, 'no port');
    await expectDeclined(work, 'main', [/app\/api\/config\.json\b.*port/]);
    await reset(work);
    expect(head(repo)).toBe(good);
    expectFsckClean(repo);
  });

  it('takes a push that leaves the schemas alone on a branch whose stored values were forced past them', async () => {
    const { s, repo, work } = await servedTyped();
    // An admin adopted a tighter schema that vm/web1/memory (512) does not meet: it stands until someone fixes it.
    const tighter = JSON.stringify({ 'vm/*/memory': { type: 'integer', minimum: 1024 } });
    expect((await put(s.url, '.store/schema.json', tighter)).status).toBe(422);
    const forced = await put(s.url, '.store/schema.json', tighter, 'main', { 'x-store-force': 'true' });
    expect(forced.status, forced.body).toBe(200);
    await gitOk(['-C', work, 'pull', '-q', '--no-rebase', 'origin', 'main']);
    // A push that changes something else is checked on what it changes.
    const other = await commitFiles(work, { 'vm/web1/state': 'stopped' }, 'unrelated');
    await gitOk(['-C', work, 'push', '-q', 'origin', 'main']);
    expect(head(repo)).toBe(other);
    // One that changes the old value to another bad one is not.
    await commitFiles(work, { 'vm/web1/memory': '768' }, 'still too small');
    await expectDeclined(work, 'main', [/vm\/web1\/memory\b.*must be >= 1024/]);
    await reset(work);
    expect(head(repo)).toBe(other);
    expectFsckClean(repo);
  });
});
