/**
 * Every arrow between src/ files runs one way: no file reaches itself through its imports, type-only ones included
 * (issue 13 found objects/db.ts ↔ objects/reachable.ts). Read from the sources, so it needs no build.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/** Each .ts file under `dir` (relative to src/) with the src/ files it imports or re-exports from. */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const visit = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const file = path.join(d, entry.name);
      if (entry.isDirectory()) visit(file);
      else if (entry.name.endsWith('.ts')) {
        const text = fs.readFileSync(file, 'utf8');
        const deps = [...text.matchAll(/^(?:import|export)\b[^'";]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gms)].map((m) =>
          path.relative(SRC, path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'))),
        );
        graph.set(path.relative(SRC, file), deps);
      }
    }
  };
  visit(dir);
  return graph;
}

/** The cycles found by a depth-first walk, each as the files along it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const stack: string[] = [];
  const walk = (file: string) => {
    stack.push(file);
    for (const dep of graph.get(file) ?? []) {
      const at = stack.indexOf(dep);
      if (at >= 0) found.push([...stack.slice(at), dep]);
      else if (!done.has(dep)) walk(dep);
    }
    stack.pop();
    done.add(file);
  };
  for (const file of graph.keys()) if (!done.has(file)) walk(file);
  return found;
}

describe('src/ imports', () => {
  it('form no cycle', () => {
    const graph = importGraph(SRC);
    // The premise: the graph was read (the store's facade imports the object database).
    expect(graph.get(path.join('store', 'store.ts'))).toContain(path.join('objects', 'db.ts'));
    expect(cycles(graph).map((c) => c.join(' → '))).toEqual([]);
  });
});
