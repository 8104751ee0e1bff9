import http from 'node:http';
import { watchPrefix } from './watch-prefix.js';

/**
 * A watcher process of the watch benches (bench/live.ts forks a few): opens one SSE connection per watcher in
 * [from, to) on `?prefix=<watchPrefix(i)>`, each its own socket (no agent: a pooled agent's maxSockets would leave
 * the rest queued for ever, SSE streams never free their socket), at most `inFlight` connecting at once. It tells its
 * parent over IPC:
 * - `{ type: 'ready', connectMs, opened, failed }` once every stream has sent its first bytes (or failed);
 * - `{ type: 'arrived', keys, times }` every 50 ms: each event's key and when it arrived (ms of the system-wide
 *   monotonic clock, `process.hrtime`, the same clock in every process of the machine);
 * - `{ type: 'done', stats }` after the parent's `{ type: 'stop' }`, then it closes its streams and exits.
 */

const now = () => Number(process.hrtime.bigint()) / 1e6;

const [url, fromArg, toArg, inFlightArg, layout] = process.argv.slice(2);
const from = Number(fromArg);
const to = Number(toArg);
const inFlight = Number(inFlightArg ?? 200);

const send = (message: unknown) => process.send?.(message);

const streams: http.ClientRequest[] = [];
let keys: string[] = [];
let times: number[] = [];
const stats = { events: 0, wrongPrefix: 0, streamErrors: 0, endedEarly: 0, bytes: 0 };
let stopping = false;

function open(i: number): Promise<boolean> {
  const prefix = watchPrefix(i, layout === 'nested');
  return new Promise((resolve) => {
    const req = http.get(`${url}/v1/branches/main/watch?prefix=${prefix}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        resolve(false);
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      res.once('data', () => resolve(true));
      res.on('data', (chunk: string) => {
        stats.bytes += chunk.length;
        buffer += chunk;
        let start = 0;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n', start)) {
          const message = buffer.slice(start, end);
          start = end + 2;
          const at = message.indexOf('data: ');
          if (at < 0) continue;
          const nl = message.indexOf('\n', at);
          const { key } = JSON.parse(message.slice(at + 6, nl < 0 ? undefined : nl)) as { key: string };
          stats.events++;
          if (!key.startsWith(`${prefix}/`)) stats.wrongPrefix++;
          keys.push(key);
          times.push(now());
        }
        buffer = buffer.slice(start);
      });
      res.on('close', () => {
        if (!stopping) stats.endedEarly++;
      });
    });
    req.on('error', () => {
      if (!stopping) stats.streamErrors++;
      resolve(false);
    });
    streams.push(req);
  });
}

const t0 = now();
let next = from;
let opened = 0;
let failed = 0;
await Promise.all(
  Array.from({ length: Math.min(inFlight, to - from) }, async () => {
    while (next < to) {
      if (await open(next++)) opened++;
      else failed++;
    }
  }),
);
send({ type: 'ready', connectMs: Math.round(now() - t0), opened, failed });

const flush = () => {
  if (keys.length === 0) return;
  send({ type: 'arrived', keys, times });
  keys = [];
  times = [];
};
const timer = setInterval(flush, 50);

process.on('message', (message: { type: string }) => {
  if (message.type !== 'stop') return;
  stopping = true;
  clearInterval(timer);
  flush();
  send({ type: 'done', stats });
  for (const s of streams) s.destroy();
  process.disconnect();
});
