import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

/** The layering rules of docs/ARCHITECTURE.md, checked on the import statements of every source file. */

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** Every module a file imports, resolved to a repository path (`src/store/core.ts`) or a package name. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  // Statements at the start of a line (so examples in doc comments do not count), and dynamic imports.
  const pattern =
    /^\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
  const specs = [...text.matchAll(pattern)].map((m) => (m[1] ?? m[2] ?? m[3])!);
  return specs.map((s) => (s.startsWith('.') ? relative(root, join(root, file, '..', s)).replace(/\.js$/, '.ts') : s));
}

/** Which files of `from` import something matching `forbidden`, as `file → import` lines. */
function violations(from: string[], forbidden: (spec: string) => boolean): string[] {
  return from.flatMap((f) =>
    importsOf(f)
      .filter(forbidden)
      .map((s) => `${f} → ${s}`),
  );
}

describe('architecture', () => {
  const src = sources('src');
  const under = (...dirs: string[]) => src.filter((f) => dirs.some((d) => f.startsWith(`src/${d}/`)));

  it('src/ never imports the adapters’ frameworks or node:fs', () => {
    expect(violations(src, (s) => /^(fastify|@fastify\/|commander)|^(node:)?fs(\/promises)?$/.test(s))).toEqual([]);
  });

  it('the store’s facets import the core, never the facade', () => {
    const facets = under('store').filter((f) => f !== 'src/store/store.ts');
    expect(facets.length).toBeGreaterThan(4);
    expect(violations(facets, (s) => s === 'src/store/store.ts')).toEqual([]);
  });

  it('layers only import downwards', () => {
    const above =
      (...dirs: string[]) =>
      (s: string) =>
        dirs.some((d) => s.startsWith(`src/${d}/`));
    // objects and storage are the bottom: bytes, packs, refs and the file system.
    expect(
      violations(
        under('objects', 'storage'),
        above('tree', 'history', 'merge', 'schema', 'remote', 'store', 'http', 'xenstore', 'replication'),
      ),
    ).toEqual([]);
    // the key/value model over trees, and the algorithms over it, know nothing of the store.
    const upper = ['store', 'http', 'xenstore', 'replication'];
    expect(violations(under('tree'), above('history', 'merge', 'schema', 'remote', ...upper))).toEqual([]);
    expect(violations(under('history', 'merge'), above('remote', ...upper))).toEqual([]);
    // schemas are rules over keys and values: they read neither trees nor objects themselves (src/schema/check.ts
    // is given its trees), so the store and the push check can share them.
    expect(under('schema').length).toBeGreaterThan(2);
    expect(
      violations(under('schema'), above('objects', 'storage', 'tree', 'history', 'merge', 'remote', ...upper)),
    ).toEqual([]);
    // the git program's transports work on a repository, not on a store (the push check reads the store's file
    // formats: .store/merge.json, .store/retention.json, and holds what it brings against .store/schema.json).
    expect(under('remote').length).toBeGreaterThan(3);
    expect(violations(under('remote'), above(...upper))).toEqual([]);
    // the store knows nothing of the protocols built on it.
    expect(violations(under('store'), above('http', 'xenstore', 'replication'))).toEqual([]);
    // the protocols know nothing of replication, which is built on the store and the HTTP client.
    expect(violations(under('http', 'xenstore'), above('replication'))).toEqual([]);
  });

  it('the Xenstore daemon sees the store through its ports, never the object database or its batches', () => {
    expect(violations(under('xenstore'), (s) => s === 'src/objects/db.ts' || s === 'src/store/core.ts')).toEqual([]);
    const text = under('xenstore')
      .map((f) => readFileSync(join(root, f), 'utf8'))
      .join('\n');
    expect(text).not.toMatch(/\bstore\.db\b|ObjectBatch/);
  });

  it('cli/ and server/ use the library through its entry point or its protocol modules only', () => {
    const adapters = [...sources('cli'), ...sources('server')];
    const reachesIn = (s: string) =>
      s.startsWith('src/') && s !== 'src/index.ts' && !s.startsWith('src/xenstore/') && !s.startsWith('src/http/');
    expect(violations(adapters, reachesIn)).toEqual([]);
  });
});
