import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore, parseGitDate, parseIdentity, type StoreError } from '../src/index.js';
import { cli, serve } from './cli-process.js';
import { git } from './helpers.js';

/**
 * Who and when, as git does it: GIT_AUTHOR_NAME/EMAIL/DATE and GIT_COMMITTER_NAME/EMAIL/DATE reach the commits the
 * CLI makes — on the repository and over --url — with the committer its own person; dates in git's formats.
 */

const invalid = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return `${(e as StoreError).code}: ${(e as Error).message}`;
  }
  return 'no error';
};

describe('parseGitDate: the formats git documents for GIT_*_DATE', () => {
  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it('reads git’s internal form, RFC 2822 and ISO 8601, with their zones', () => {
    const at = (text: string) => {
      const d = parseGitDate(text, 'GIT_AUTHOR_DATE');
      return [d.date.getTime() / 1000, d.timezoneOffset];
    };
    // 2005-04-07T22:13:13+02:00 is 1112904793.
    expect(at('1112904793 +0200')).toEqual([1112904793, 120]);
    expect(at('@1112904793 +0200')).toEqual([1112904793, 120]);
    expect(at('@1112904793 -0530')).toEqual([1112904793, -330]);
    expect(at('Thu, 07 Apr 2005 22:13:13 +0200')).toEqual([1112904793, 120]);
    expect(at('7 Apr 2005 22:13:13 +0200')).toEqual([1112904793, 120]);
    expect(at('Thu, 07 Apr 2005 20:13:13 GMT')).toEqual([1112904793, 0]);
    expect(at('2005-04-07T22:13:13+02:00')).toEqual([1112904793, 120]);
    expect(at('2005-04-07T22:13:13+0200')).toEqual([1112904793, 120]);
    expect(at('2005-04-07 22:13:13 +0200')).toEqual([1112904793, 120]);
    expect(at('2005-04-07T20:13:13Z')).toEqual([1112904793, 0]);
    expect(at('2005-04-07T20:13:13.019Z')).toEqual([1112904793, 0]);
    expect(at('  2005-04-07T20:13:13Z ')).toEqual([1112904793, 0]);
  });

  it('reads a date without a zone in the local zone, as git does', () => {
    process.env.TZ = 'Asia/Kolkata'; // +05:30, no daylight saving
    expect(parseGitDate('2005-04-07T22:13:13', 'X')).toEqual({
      date: new Date('2005-04-07T22:13:13+05:30'),
      timezoneOffset: 330,
    });
    expect(parseGitDate('@1112904793', 'X').timezoneOffset).toBe(330);
    process.env.TZ = 'UTC';
    expect(parseGitDate('Thu, 07 Apr 2005 20:13:13', 'X')).toEqual({
      date: new Date('2005-04-07T20:13:13Z'),
      timezoneOffset: 0,
    });
  });

  it('refuses anything else, naming the variable and the forms it takes', () => {
    for (const text of [
      '',
      'yesterday',
      '2005-02-30T00:00:00Z',
      '2005-04-07T25:00:00Z',
      '2005-04-07T22:13:13+02:75',
      'Thu, 07 Foo 2005 22:13:13 +0200',
      '20050407',
      '1112904793 +02',
      '-5 +0000',
    ]) {
      expect(
        invalid(() => parseGitDate(text, 'GIT_COMMITTER_DATE')),
        text,
      ).toMatch(/^INVALID_ARGUMENT: GIT_COMMITTER_DATE: cannot read .* as a date; use "<epoch> <\+hhmm>", RFC 2822/);
    }
  });

  it('parseIdentity takes a git ident line, with or without its raw date', () => {
    expect(parseIdentity('Ada <ada@x.org>', 'h')).toEqual({ name: 'Ada', email: 'ada@x.org' });
    expect(parseIdentity('Ada Lovelace <ada@x.org> 1112904793 -0130', 'h')).toEqual({
      name: 'Ada Lovelace',
      email: 'ada@x.org',
      date: new Date(1112904793_000),
      timezoneOffset: -90,
    });
    expect(invalid(() => parseIdentity('Ada <ada@x.org> 1112904793', 'X-Store-Author'))).toMatch(
      /^INVALID_ARGUMENT: X-Store-Author must look like/,
    );
  });
});

describe('the library: an author and a committer, each with its own date', () => {
  it('writes them into the commit; without a committer, the author commits, dated now', async () => {
    const now = new Date('2030-01-02T03:04:05Z');
    const store = await openStore({ memory: true, clock: () => now });
    const author = { name: 'Ada', email: 'ada@x.org', date: new Date(1112904793_000), timezoneOffset: 120 };
    const committer = { name: 'Bob', email: 'bob@x.org', date: new Date(1112908393_000), timezoneOffset: -300 };
    const a = await store.set('k', '1', { author, committer });
    const c = await store.commit(a.commit);
    expect(c.author).toEqual({
      name: 'Ada',
      email: 'ada@x.org',
      time: '2005-04-07T20:13:13.000Z',
      timezoneOffset: 120,
    });
    expect(c.committer).toEqual({
      name: 'Bob',
      email: 'bob@x.org',
      time: '2005-04-07T21:13:13.000Z',
      timezoneOffset: -300,
    });
    const b = await store.commit((await store.set('k', '2', { author })).commit);
    expect(b.author.time).toBe('2005-04-07T20:13:13.000Z');
    expect(b.committer).toMatchObject({ name: 'Ada', email: 'ada@x.org', time: '2030-01-02T03:04:05.000Z' });
    // A zone git cannot write, or a date that is no date, is refused and writes nothing.
    const head = await store.resolve('main');
    for (const bad of [
      { ...author, timezoneOffset: 0.5 },
      { ...author, timezoneOffset: 6000 },
      { ...author, date: new Date(Number.NaN) },
    ]) {
      await expect(store.set('k', '3', { committer: bad })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await store.resolve('main')).toBe(head);
  });
});

describe('the CLI honours git’s identity variables', () => {
  let dir: string;
  let local: string;
  let served: string;
  let server: { url: string; stop: () => Promise<void> };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitstore-identity-'));
    local = path.join(dir, 'local.git');
    served = path.join(dir, 'served.git');
    expect((await cli(['init', local])).code).toBe(0);
    server = await serve(served);
  });

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const IDENTITY = {
    GIT_AUTHOR_NAME: 'Ada Author',
    GIT_AUTHOR_EMAIL: 'ada@author.test',
    GIT_AUTHOR_DATE: '2005-04-07T22:13:13+02:00',
    GIT_COMMITTER_NAME: 'Carl Committer',
    GIT_COMMITTER_EMAIL: 'carl@committer.test',
    GIT_COMMITTER_DATE: 'Fri, 08 Apr 2005 09:00:00 -0500',
  };
  const LOGGED = 'Ada Author ada@author.test 1112904793 +0200 | Carl Committer carl@committer.test 1112968800 -0500';
  const logOf = (repo: string, rev = 'main') =>
    git(['--git-dir', repo, 'log', '-1', '--format=%an %ae %ad | %cn %ce %cd', '--date=raw', rev]).toString().trim();

  it('writes author and committer, with their dates, on the repository and over --url', async () => {
    for (const [target, repo] of [
      [['--repo', local], local],
      [['--url', server.url], served],
    ] as const) {
      const r = await cli([...target, 'set', 'k', 'v1'], { env: IDENTITY });
      expect(r.code, r.stderr).toBe(0);
      expect(logOf(repo)).toBe(LOGGED);
      // rm and import commit the same way; --author replaces the author only, as in git.
      expect((await cli([...target, 'rm', 'k'], { env: IDENTITY })).code).toBe(0);
      expect(logOf(repo)).toBe(LOGGED);
      const imported = await cli([...target, '--author', 'Eve <eve@x.test>', 'import', '-'], {
        env: IDENTITY,
        input: '{"a":"1"}',
      });
      expect(imported.code, imported.stderr).toBe(0);
      expect(logOf(repo)).toBe(`Eve eve@x.test 1112904793 +0200 | Carl Committer carl@committer.test 1112968800 -0500`);
    }
  });

  it('merges and reverts with them too', async () => {
    expect((await cli(['--repo', local, 'branch', 'topic'])).code).toBe(0);
    expect((await cli(['--repo', local, '-b', 'topic', 'set', 't', '1'])).code).toBe(0);
    expect((await cli(['--repo', local, 'set', 'm', '1'])).code).toBe(0);
    expect((await cli(['--repo', local, 'merge', 'topic'], { env: IDENTITY })).code).toBe(0);
    expect(logOf(local)).toBe(LOGGED);
    expect((await cli(['--repo', local, 'revert', 'main~1'], { env: IDENTITY })).code).toBe(0);
    expect(logOf(local)).toBe(LOGGED);
  });

  it('keeps the committer apart from the author; without GIT_COMMITTER_* the author commits, dated now', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await cli(['--repo', local, 'set', 'k', 'v2'], {
      env: {
        ...IDENTITY,
        GIT_COMMITTER_NAME: undefined,
        GIT_COMMITTER_EMAIL: undefined,
        GIT_COMMITTER_DATE: undefined,
      },
    });
    expect(r.code, r.stderr).toBe(0);
    const [author, committer] = logOf(local).split(' | ');
    expect(author).toBe('Ada Author ada@author.test 1112904793 +0200');
    const [name, email, time] = committer!.split(' ').slice(-4);
    expect(`${name} ${email}`).toBe('Author ada@author.test');
    expect(Number(time)).toBeGreaterThanOrEqual(before);
  });

  it('refuses a date it cannot read (exit 2), writing nothing', async () => {
    const head = git(['--git-dir', local, 'rev-parse', 'main']).toString();
    for (const variable of ['GIT_AUTHOR_DATE', 'GIT_COMMITTER_DATE']) {
      const r = await cli(['--repo', local, 'set', 'k', 'v3'], { env: { ...IDENTITY, [variable]: 'last tuesday' } });
      expect(r).toMatchObject({ code: 2, stdout: '' });
      expect(r.stderr).toMatch(new RegExp(`^error: ${variable}: cannot read "last tuesday" as a date`));
    }
    expect(git(['--git-dir', local, 'rev-parse', 'main']).toString()).toBe(head);
  });
});
