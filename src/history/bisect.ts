import { invalidArgument, StoreError } from '../errors.js';
import type { ObjectDb } from '../objects/db.js';

/** What a tested snapshot turned out to be; `skip` cannot be tested (git bisect's exit code 125). */
export type Verdict = 'good' | 'bad' | 'skip';

/** The outcome of a bisection: the first bad commit on the first-parent chain, and what it took to find it. */
export interface BisectOutcome {
  firstBad: string;
  /** Snapshots tested, in order: the bad end, the good end, then the bisection's steps. */
  tested: { commit: string; verdict: Verdict }[];
  /** Commits between good and bad that could not be tested and may hide the first bad one (skipped neighbours). */
  candidates: string[];
}

/** Decides a snapshot; `condition` says in words what makes one bad (for errors), e.g. `s equals "bad"`. */
export type BisectTest = ((commit: string) => Promise<Verdict>) & { condition?: string };

/**
 * Finds the first bad commit on `bad`'s first-parent chain after `good`, testing O(log n) snapshots. `test` decides
 * each one; `progress` hears how many steps are left (about log2 of the commits still in doubt). A skipped commit is
 * stepped around, nearest first, as git does; when only skipped commits separate a good one from a bad one, the
 * first bad one cannot be told apart from them, and they are returned as candidates.
 *
 * The two ends are tested first, the bad one before the good one: git bisect takes them on trust and, when the bad
 * end is in fact good, names it "the first bad commit" — a wrong answer that looks like a right one. Here an end that
 * is not what it was said to be (or cannot be tested) is an INVALID_ARGUMENT naming it. `names` are the revisions as
 * the caller gave them, for those messages. A `good` of null is the first commit of the history: the chain is walked
 * once, to its end.
 */
export async function bisect(
  db: ObjectDb,
  givenGood: string | null,
  bad: string,
  test: BisectTest,
  progress: (stepsLeft: number, inDoubt: number) => void = () => {},
  names: { good?: string; bad?: string } = {},
): Promise<BisectOutcome> {
  // chain[0] is the commit after `good`, chain[n-1] is `bad`.
  const chain: string[] = [];
  for (let oid: string | undefined = bad; oid !== givenGood; ) {
    if (oid === undefined) {
      if (givenGood === null) break;
      throw invalidArgument(`${givenGood} is not on the first-parent history of ${bad}; give an older --good`);
    }
    chain.push(oid);
    oid = (await db.readCommit(oid)).parents[0];
  }
  const good = givenGood ?? chain.pop()!;
  if (chain.length === 0) {
    throw invalidArgument(
      givenGood === null
        ? `${bad} is the first commit: nothing before it to bisect`
        : '--good and --bad name the same commit',
    );
  }
  chain.reverse();
  const tested: BisectOutcome['tested'] = [];
  for (const end of ['bad', 'good'] as const) {
    const commit = end === 'bad' ? bad : good;
    const verdict = await test(commit);
    tested.push({ commit, verdict });
    if (verdict !== end) throw wrongEnd(end, verdict, commit, names[end], test.condition);
  }
  // Invariant: everything before lo is good (or skipped), chain[hi] is bad.
  let lo = 0;
  let hi = chain.length - 1;
  const skipped = new Set<number>();
  while (lo < hi) {
    progress(Math.ceil(Math.log2(hi - lo + 1)), hi - lo);
    const mid = pick(lo, hi, skipped);
    if (mid === null) break;
    const verdict = await test(chain[mid]!);
    tested.push({ commit: chain[mid]!, verdict });
    if (verdict === 'skip') skipped.add(mid);
    else if (verdict === 'bad') hi = mid;
    else lo = mid + 1;
  }
  progress(0, 0);
  const candidates: string[] = [];
  for (let i = lo; i < hi; i++) if (skipped.has(i)) candidates.push(chain[i]!);
  return { firstBad: chain[hi]!, tested, candidates };
}

/** The error for an end of the range that is not what the caller said it is. */
function wrongEnd(
  end: 'good' | 'bad',
  verdict: Verdict,
  commit: string,
  name: string | undefined,
  condition: string | undefined,
): StoreError {
  const which = `--${end} ${name && name !== commit ? `${name} (${commit.slice(0, 12)})` : commit.slice(0, 12)}`;
  let message: string;
  if (verdict === 'skip') {
    message = `${which} cannot be tested (the command skipped it, exit 125); give a --${end} it can decide`;
  } else if (end === 'bad') {
    message =
      `${which} is not bad: ${condition ? `${condition} does not hold there` : 'the test says good there'}, so nothing ` +
      'between --good and it went bad; give a --bad where it holds';
  } else {
    message =
      `${which} is not good: ${condition ? `${condition} already holds there` : 'the test says bad there'}; ` +
      'give an older --good';
  }
  return invalidArgument(message, { end, revision: name ?? commit, commit, verdict });
}

/** The untested index in [lo, hi) nearest the middle; null when all of them were skipped. */
function pick(lo: number, hi: number, skipped: Set<number>): number | null {
  const mid = (lo + hi) >> 1;
  for (let d = 0; mid - d >= lo || mid + d < hi; d++) {
    if (mid + d < hi && !skipped.has(mid + d)) return mid + d;
    if (mid - d >= lo && !skipped.has(mid - d)) return mid - d;
  }
  return null;
}

/** What marks a snapshot bad, for the key predicates (`--equals`, `--matches`, `--missing`). */
export type KeyPredicate =
  | { key: string; equals: string }
  | { key: string; matches: string }
  | { key: string; missing: true };

/** A verdict function for a key predicate, given how to read the key at a commit (null: absent). */
export function keyTest(predicate: KeyPredicate, valueAt: (commit: string) => Promise<Uint8Array | null>): BisectTest {
  let re: RegExp | null = null;
  if ('matches' in predicate) {
    try {
      re = new RegExp(predicate.matches);
    } catch (e) {
      throw invalidArgument(`--matches: ${(e as Error).message}`);
    }
  }
  const test = async (commit: string): Promise<Verdict> => {
    const value = await valueAt(commit);
    if ('missing' in predicate) return value === null ? 'bad' : 'good';
    if (value === null) return 'good';
    const text = new TextDecoder().decode(value);
    if ('equals' in predicate) return text === predicate.equals ? 'bad' : 'good';
    return re!.test(text) ? 'bad' : 'good';
  };
  const condition =
    'missing' in predicate
      ? `${predicate.key} is missing`
      : 'equals' in predicate
        ? `${predicate.key} equals ${JSON.stringify(predicate.equals)}`
        : `${predicate.key} matches /${predicate.matches}/`;
  return Object.assign(test, { condition });
}

/** git bisect run's exit codes: 0 good, 125 skip, 1–127 bad, anything else stops the bisection. */
export function verdictOfExit(code: number | null, command: string): Verdict {
  if (code === 0) return 'good';
  if (code === 125) return 'skip';
  if (code !== null && code >= 1 && code <= 127) return 'bad';
  throw new StoreError('INVALID_ARGUMENT', `${command} exited with ${code ?? 'a signal'}: stopping the bisection`, {});
}
