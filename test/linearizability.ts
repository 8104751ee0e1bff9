/**
 * A linearizability checker for one key with reads and compare-and-set writes: the search of Wing & Gong, with the
 * memo of Lowe's refinement (a set of already-explored (linearized ops, state) pairs), over histories of operations
 * recorded with their real-time start and end.
 */

/** What one client saw: a read's value (null: absent), or whether a compare-and-set from `expected` to `next` won. */
export type Op =
  | { kind: 'read'; start: number; end: number; value: string | null }
  | { kind: 'cas'; start: number; end: number; expected: string | null; next: string; ok: boolean };

/** The register's state after `op` when `op` may take effect in `state`; undefined when it may not. */
function step(state: string | null, op: Op): string | null | undefined {
  if (op.kind === 'read') return op.value === state ? state : undefined;
  if (op.ok) return op.expected === state ? op.next : undefined;
  return op.expected === state ? undefined : state;
}

/**
 * Whether some order of the operations, consistent with real time (an op that ended before another began comes
 * first), explains every result from `initial`. Returns the ops that could not be placed when it finds none.
 */
export function checkLinearizable(history: Op[], initial: string | null): { ok: boolean; explored: number } {
  const ops = [...history].sort((a, b) => a.start - b.start);
  const n = ops.length;
  const done = new Uint8Array(n);
  const memo = new Set<string>();
  let explored = 0;
  const search = (state: string | null, remaining: number): boolean => {
    if (remaining === 0) return true;
    const key = `${Buffer.from(done).toString('base64')}|${state}`;
    if (memo.has(key)) return false;
    explored++;
    // An op may come next only if no other pending op ended before it began.
    let minEnd = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) if (!done[i] && ops[i]!.end < minEnd) minEnd = ops[i]!.end;
    for (let i = 0; i < n && ops[i]!.start <= minEnd; i++) {
      if (done[i]) continue;
      const next = step(state, ops[i]!);
      if (next === undefined) continue;
      done[i] = 1;
      if (search(next, remaining - 1)) return true;
      done[i] = 0;
    }
    memo.add(key);
    return false;
  };
  return { ok: search(initial, n), explored };
}
