import { invalidArgument } from '../errors.js';
import { parseJsonFile } from '../tree/json-file.js';
import { checkBranchName } from '../tree/keys.js';

/** Where a repository declares its replicas: versioned with the data, like `.store/merge.json`. */
export const REPLICATION_CONFIG_KEY = '.store/replication.json';

/**
 * What a replica keeps in step, and with whom. `.store/replication.json` holds
 * `{"peers": ["http://10.0.0.2:7070"], "branches": ["main"], "intervalMs": 1000}`; `store serve --peer URL` adds
 * peers to it. A peer is the base URL of another `store serve`: its git server is `<peer>/git`, its watch
 * `<peer>/v1/branches/<b>/watch`.
 */
export interface ReplicationConfig {
  peers: string[];
  /** The branches replicated (default: the store's default branch). */
  branches: string[];
  /** How often each peer is pulled even when its watch says nothing (default 1,000 ms). */
  intervalMs: number;
}

const FIELDS = new Set(['peers', 'branches', 'intervalMs']);

/** A peer's base URL, checked: http(s) only, no credentials in it (they would land in logs and `/v1/replication`). */
export function checkPeerUrl(text: unknown, where: string): string {
  let url: URL;
  try {
    url = new URL(String(text));
  } catch {
    throw invalidArgument(`${where}: ${JSON.stringify(text)} is not a URL; give a store server's base URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidArgument(`${where}: a peer is a store server's http(s) URL, not ${url.protocol}`);
  }
  if (url.username || url.password) throw invalidArgument(`${where}: put no credentials in a peer URL`);
  if (url.search || url.hash) throw invalidArgument(`${where}: a peer URL has no query or fragment`);
  return url.href.replace(/\/+$/, '');
}

/** Parses a replication config (the file's JSON, or a caller's object); INVALID_ARGUMENT says what is wrong. */
export function parseReplication(value: unknown, where: string, defaultBranch: string): ReplicationConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(`${where} must be an object {"peers", "branches", "intervalMs"}`);
  }
  const v = value as Record<string, unknown>;
  const unknown = Object.keys(v).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw invalidArgument(`${where}: unknown field ${JSON.stringify(unknown[0])}`);
  const list = (name: string, items: unknown): unknown[] => {
    if (items === undefined) return [];
    if (!Array.isArray(items)) throw invalidArgument(`${where}: "${name}" must be an array`);
    return items;
  };
  const peers = [...new Set(list('peers', v.peers).map((p) => checkPeerUrl(p, where)))];
  const branchList = list('branches', v.branches).map((b) => {
    if (typeof b !== 'string') throw invalidArgument(`${where}: "branches" holds branch names`);
    return checkBranchName(b);
  });
  const intervalMs = v.intervalMs ?? 1000;
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs < 50 || intervalMs > 3_600_000) {
    throw invalidArgument(`${where}: "intervalMs" must be a whole number of milliseconds from 50 to 3,600,000`);
  }
  return { peers, branches: branchList.length > 0 ? [...new Set(branchList)] : [defaultBranch], intervalMs };
}

/** Reads the config from the bytes of `.store/replication.json` (absent: no peers). */
export function replicationFromFile(bytes: Uint8Array | null, defaultBranch: string): ReplicationConfig {
  if (bytes === null) return { peers: [], branches: [defaultBranch], intervalMs: 1000 };
  return parseReplication(parseJsonFile(bytes, REPLICATION_CONFIG_KEY), REPLICATION_CONFIG_KEY, defaultBranch);
}

/**
 * The replication a store serves: `.store/replication.json` on its default branch, plus `extraPeers` (from
 * `store serve --peer`). Read once at start; INVALID_ARGUMENT when the file is malformed.
 */
export async function replicationOf(
  read: (key: string) => Promise<Uint8Array | null>,
  defaultBranch: string,
  extraPeers: readonly string[] = [],
): Promise<ReplicationConfig> {
  const file = replicationFromFile(await read(REPLICATION_CONFIG_KEY), defaultBranch);
  const peers = [...new Set([...file.peers, ...extraPeers.map((p) => checkPeerUrl(p, '--peer'))])];
  return { ...file, peers };
}
