import { benchWatch } from './live.js';

/**
 * The watch fan-out section of bench/run.ts by itself, at one or more sizes:
 * `node dist/bench/fanout.js [--seconds 10] [--rate 1000] [--processes N] [--nested] [watchers ...]` (default 10000). Prints one
 * JSON line per size on stdout, progress on stderr.
 */

const args = process.argv.slice(2);
const option = (name: string): number | undefined => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [value] = args.splice(i, 2).slice(1);
  return Number(value);
};
const seconds = option('--seconds') ?? 10;
const rate = option('--rate') ?? 1000;
const watcherProcesses = option('--processes');
const nested = args.includes('--nested') && args.splice(args.indexOf('--nested'), 1).length > 0;
const sizes = args.length ? args.map(Number) : [10_000];
for (const watchers of sizes) {
  const start = Date.now();
  process.stderr.write(`fan-out: ${watchers} watchers, ${rate} writes/s, ${seconds} s … `);
  const figures = await benchWatch(seconds, watchers, rate, { watcherProcesses, nested });
  const wallS = Math.round((Date.now() - start) / 100) / 10;
  process.stderr.write(`${wallS} s\n`);
  process.stdout.write(`${JSON.stringify({ ...figures, wallS })}\n`);
}
