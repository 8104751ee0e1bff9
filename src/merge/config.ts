import { invalidArgument } from '../errors.js';
import { parseJsonFile } from '../tree/json-file.js';
import { STRATEGY_NAMES, type StrategyName } from './strategies.js';

/** Where a repository declares its merge strategies: versioned with the data, visible to git. */
export const MERGE_CONFIG_KEY = '.store/merge.json';

/**
 * Which strategy merges which keys. `.store/merge.json` holds `{"default": "conflict", "prefixes": {"stats":
 * "counter", "vm/cfg": "json"}}`; the longest prefix (whole segments) containing a key wins.
 */
export interface MergePolicy {
  default: StrategyName;
  prefixes: Record<string, StrategyName>;
}

export const DEFAULT_POLICY: MergePolicy = { default: 'conflict', prefixes: {} };

function checkName(name: unknown, where: string): StrategyName {
  if (typeof name === 'string' && (STRATEGY_NAMES as readonly string[]).includes(name)) return name as StrategyName;
  throw invalidArgument(
    `unknown merge strategy ${JSON.stringify(name)} in ${where}; use one of ${STRATEGY_NAMES.join(', ')}`,
    {
      strategy: name,
    },
  );
}

/** Parses a policy (from `.store/merge.json` or a caller); INVALID_ARGUMENT says what is wrong. */
export function parsePolicy(value: unknown, where: string): MergePolicy {
  if (typeof value === 'string') return { default: checkName(value, where), prefixes: {} };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(`${where} must be a strategy name or {"default", "prefixes"}`);
  }
  const v = value as { default?: unknown; prefixes?: unknown };
  const prefixes: Record<string, StrategyName> = {};
  if (v.prefixes !== undefined) {
    if (typeof v.prefixes !== 'object' || v.prefixes === null)
      throw invalidArgument(`${where}: "prefixes" must be an object`);
    for (const [prefix, name] of Object.entries(v.prefixes)) {
      prefixes[prefix.replace(/^\/+|\/+$/g, '')] = checkName(name, where);
    }
  }
  return { default: v.default === undefined ? 'conflict' : checkName(v.default, where), prefixes };
}

/** Reads the policy from the bytes of `.store/merge.json` (absent: everything conflicts). */
export function policyFromFile(bytes: Uint8Array | null): MergePolicy {
  if (bytes === null) return DEFAULT_POLICY;
  return parsePolicy(parseJsonFile(bytes, MERGE_CONFIG_KEY, '; fix it before merging'), MERGE_CONFIG_KEY);
}

/** The strategy for one key under a policy. */
export function strategyFor(policy: MergePolicy, key: string): StrategyName {
  let best = -1;
  let chosen = policy.default;
  for (const [prefix, name] of Object.entries(policy.prefixes)) {
    const covers = prefix === '' || key === prefix || key.startsWith(`${prefix}/`);
    if (covers && prefix.length > best) {
      best = prefix.length;
      chosen = name;
    }
  }
  return chosen;
}
