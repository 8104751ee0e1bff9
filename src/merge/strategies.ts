import { fromUtf8, utf8 } from '../objects/object.js';

/** The three versions of one key that a strategy reconciles (null: absent), and when each side last changed it. */
export interface MergeInput {
  key: string;
  base: Uint8Array | null;
  ours: Uint8Array | null;
  theirs: Uint8Array | null;
  /**
   * When each side last changed THIS key (seconds): the committer time of the commit that introduced the side's value
   * (see last-change.ts). Filled for `lww` only; 0 for the other strategies, which do not look at time.
   */
  oursChangedAt: number;
  theirsChangedAt: number;
}

/** A strategy's answer: the merged value (null: the key is deleted), or `undefined` for a conflict. */
export type Resolution = { value: Uint8Array | null } | undefined;

/** Merges one key that both sides changed differently. Pure: no I/O, same answer for the same input. */
export type Strategy = (input: MergeInput) => Resolution;

export const STRATEGY_NAMES = ['conflict', 'ours', 'theirs', 'lww', 'counter', 'json', 'set'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

const integer = (bytes: Uint8Array | null): bigint | undefined => {
  if (bytes === null) return 0n;
  const text = fromUtf8.decode(bytes).trim();
  return /^-?\d+$/.test(text) ? BigInt(text) : undefined;
};

/** Counters merge by adding both sides' deltas: base + (ours − base) + (theirs − base). Deletion conflicts. */
const counter: Strategy = ({ base, ours, theirs }) => {
  if (ours === null || theirs === null) return undefined;
  const [b, o, t] = [integer(base), integer(ours), integer(theirs)];
  if (b === undefined || o === undefined || t === undefined) return undefined;
  return { value: utf8.encode(String(o + t - b)) };
};

/** Orders values for tie-breaks: absent lowest, then bytewise (a shorter prefix first). */
export function compareValues(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * The side that changed the key last wins. A tie (same second) goes to the greater value, not to a side: replicas
 * merge each other in opposite directions and must both pick the same value.
 */
const lww: Strategy = ({ ours, theirs, oursChangedAt, theirsChangedAt }) => {
  if (oursChangedAt !== theirsChangedAt) return { value: oursChangedAt > theirsChangedAt ? ours : theirs };
  return { value: compareValues(ours, theirs) >= 0 ? ours : theirs };
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const CONFLICT = Symbol('conflict');
const ABSENT = Symbol('absent');
type Merged = Json | typeof ABSENT | typeof CONFLICT;

const isObject = (v: unknown): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);
const field = (o: { [k: string]: Json }, k: string): Json | typeof ABSENT => (Object.hasOwn(o, k) ? o[k]! : ABSENT);
/** An object with no prototype: a field named `__proto__` is then a field like any other. */
const record = (): { [k: string]: Json } => Object.create(null) as { [k: string]: Json };

/** Structural equality: field order does not matter (two sides may write the same object in different orders). */
function same(a: Json | typeof ABSENT, b: Json | typeof ABSENT): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => same(v, b[i]!));
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && same(a[k]!, b[k]!));
}

/** Deep three-way merge of JSON values: objects merge per field, anything else is a leaf that must not clash. */
function mergeJson(base: Json | typeof ABSENT, ours: Json | typeof ABSENT, theirs: Json | typeof ABSENT): Merged {
  if (same(ours, theirs)) return ours;
  if (same(base, ours)) return theirs;
  if (same(base, theirs)) return ours;
  if (!isObject(ours) || !isObject(theirs)) return CONFLICT;
  const b = isObject(base) ? base : {};
  const out = record();
  for (const k of new Set([...Object.keys(ours), ...Object.keys(theirs), ...Object.keys(b)])) {
    const m = mergeJson(field(b, k), field(ours, k), field(theirs, k));
    if (m === CONFLICT) return CONFLICT;
    if (m !== ABSENT) out[k] = m;
  }
  return out;
}

/**
 * The merged value with a field order that depends on nothing but the base and the result (never on which side is
 * ours): an object's fields in the base's order (the base's object at the same path), then the fields the base lacks,
 * sorted. Array elements match the base's element at the same index.
 */
function canonical(value: Json, base: Json | typeof ABSENT): Json {
  if (Array.isArray(value))
    return value.map((v, i) => canonical(v, Array.isArray(base) && i < base.length ? base[i]! : ABSENT));
  if (!isObject(value)) return value;
  const b = isObject(base) ? base : record();
  const keys = Object.keys(b).filter((k) => Object.hasOwn(value, k));
  keys.push(
    ...Object.keys(value)
      .filter((k) => !Object.hasOwn(b, k))
      .sort(),
  );
  const out = record();
  for (const k of keys) out[k] = canonical(value[k]!, field(b, k));
  return out;
}

const parseJson = (bytes: Uint8Array | null): Json | typeof ABSENT | typeof CONFLICT => {
  if (bytes === null) return ABSENT;
  try {
    return JSON.parse(fromUtf8.decode(bytes)) as Json;
  } catch {
    return CONFLICT;
  }
};

const json: Strategy = ({ base, ours, theirs }) => {
  const b = parseJson(base);
  const o = parseJson(ours);
  const t = parseJson(theirs);
  if (b === CONFLICT || o === CONFLICT || t === CONFLICT) return undefined;
  const m = mergeJson(b, o, t);
  if (m === CONFLICT) return undefined;
  if (m === ABSENT) return { value: null };
  return { value: utf8.encode(`${JSON.stringify(canonical(m, b), null, 2)}\n`) };
};

const lines = (bytes: Uint8Array | null) =>
  bytes === null
    ? []
    : fromUtf8
        .decode(bytes)
        .split('\n')
        .filter((l) => l !== '');

/**
 * Lines as a set: a line is in the result if both sides kept it or either side added it. The order is canonical, so
 * both directions of a merge write the same bytes: the base's lines that stay, in the base's order, then the added
 * lines, sorted.
 */
const set: Strategy = ({ base, ours, theirs }) => {
  if (ours === null || theirs === null) return undefined;
  const b = new Set(lines(base));
  const o = new Set(lines(ours));
  const t = new Set(lines(theirs));
  const kept = [...b].filter((line) => o.has(line) && t.has(line));
  const added = [...new Set([...o, ...t])].filter((line) => !b.has(line)).sort();
  return { value: utf8.encode([...kept, ...added].map((l) => `${l}\n`).join('')) };
};

/**
 * The built-in strategies by name. All but `ours` and `theirs` are symmetric: swapping ours and theirs (and their
 * times) gives the same bytes, which replicas merging each other need to converge. `ours` and `theirs` are one-sided
 * by definition.
 */
export const STRATEGIES: Record<StrategyName, Strategy> = {
  conflict: () => undefined,
  ours: ({ ours }) => ({ value: ours }),
  theirs: ({ theirs }) => ({ value: theirs }),
  lww,
  counter,
  json,
  set,
};
