/**
 * Watcher i's prefix in the watch benches: `local/domain/<i>` (flat: one directory of as many entries as watchers,
 * as xenstore lays out its VMs), or `local/domain/<i mod 100>/<i>` (nested: directories of at most 100 entries, so a
 * write's cost does not grow with the number of watchers; what the fan-out itself costs).
 */
export const watchPrefix = (i: number, nested: boolean): string =>
  nested ? `local/domain/${i % 100}/${i}` : `local/domain/${i}`;
