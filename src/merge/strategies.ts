import { fromUtf8, utf8 } from '../objects/object.js';

/** The three versions of one key that a strategy reconciles (null: absent), and when each side last moved. */
export interface MergeInput {
  key: string;
  base: Uint8Array | null;
  ours: Uint8Array | null;
  theirs: Uint8Array | null;
  /** Commit times (seconds) of the two heads, for last-writer-wins. */
  oursTime: number;
  theirsTime: number;
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

/** The side whose head is newer wins; a tie goes to theirs, the side being merged in. */
const lww: Strategy = ({ ours, theirs, oursTime, theirsTime }) => ({ value: oursTime > theirsTime ? ours : theirs });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const CONFLICT = Symbol('conflict');
const ABSENT = Symbol('absent');
type Merged = Json | typeof ABSENT | typeof CONFLICT;

const isObject = (v: unknown): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Deep three-way merge of JSON values: objects merge per field, anything else is a leaf that must not clash. */
function mergeJson(base: Json | typeof ABSENT, ours: Json | typeof ABSENT, theirs: Json | typeof ABSENT): Merged {
  if (same(ours, theirs)) return ours;
  if (same(base, ours)) return theirs;
  if (same(base, theirs)) return ours;
  if (!isObject(ours) || !isObject(theirs)) return CONFLICT;
  const b = isObject(base) ? base : {};
  const out: { [k: string]: Json } = {};
  for (const k of new Set([...Object.keys(ours), ...Object.keys(theirs), ...Object.keys(b)])) {
    const field = (o: { [k: string]: Json }): Json | typeof ABSENT => (Object.hasOwn(o, k) ? o[k]! : ABSENT);
    const m = mergeJson(field(b), field(ours), field(theirs));
    if (m === CONFLICT) return CONFLICT;
    if (m !== ABSENT) out[k] = m;
  }
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
  return { value: utf8.encode(`${JSON.stringify(m, null, 2)}\n`) };
};

const lines = (bytes: Uint8Array | null) =>
  bytes === null
    ? []
    : fromUtf8
        .decode(bytes)
        .split('\n')
        .filter((l) => l !== '');

/** Lines as a set: a line is in the result if both sides kept it or either side added it. */
const set: Strategy = ({ base, ours, theirs }) => {
  if (ours === null || theirs === null) return undefined;
  const b = new Set(lines(base));
  const o = lines(ours);
  const t = new Set(lines(theirs));
  const oSet = new Set(o);
  const result = new Set<string>();
  for (const line of o) if (t.has(line) || !b.has(line)) result.add(line);
  for (const line of t) if (!oSet.has(line) && !b.has(line)) result.add(line);
  return { value: utf8.encode([...result].map((l) => `${l}\n`).join('')) };
};

/** The built-in strategies by name. */
export const STRATEGIES: Record<StrategyName, Strategy> = {
  conflict: () => undefined,
  ours: ({ ours }) => ({ value: ours }),
  theirs: ({ theirs }) => ({ value: theirs }),
  lww,
  counter,
  json,
  set,
};
