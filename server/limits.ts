import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { StoreError } from '../src/index.js';
import { needOf } from './auth.js';

/**
 * Per-caller limits of `store serve` (README, "Security"). A caller is its token once the store has tokens, else
 * its address. Each refusal is 429 QUOTA saying which limit was hit and when to retry.
 */
export interface Limits {
  /** Requests per second per caller (0: no limit). */
  requestsPerSecond: number;
  /** Open watches per caller. */
  watches: number;
}

export const DEFAULT_LIMITS: Limits = { requestsPerSecond: 1000, watches: 1000 };

/** Who a limit counts against. */
export const callerOf = (request: FastifyRequest): string => {
  const principal = request.access?.principal;
  return principal ? `token ${principal.name}` : `address ${request.ip}`;
};

/** The request rate limit (`@fastify/rate-limit`, counted in memory per process); the open routes are not limited. */
export async function installRateLimit(app: FastifyInstance, limits: Limits): Promise<void> {
  if (limits.requestsPerSecond <= 0) return;
  await app.register(rateLimit, {
    max: limits.requestsPerSecond,
    timeWindow: 1000,
    // After authentication (server/auth.ts, an earlier onRequest hook), so a token is counted as itself.
    hook: 'onRequest',
    keyGenerator: callerOf,
    allowList: (request) => needOf(request)?.kind === 'public',
    errorResponseBuilder: (request, context) =>
      new StoreError(
        'QUOTA',
        `${callerOf(request)} is over the rate limit of ${context.max} requests per second (--rate-limit); ` +
          `retry in ${context.after}`,
        { limit: 'rate', max: context.max },
      ),
  });
}

/** Counts open watches per caller; `open` refuses the one past the limit. */
export class WatchCounter {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Registers a watch of the request's caller; the returned function ends it. */
  enter(request: FastifyRequest): () => void {
    const caller = callerOf(request);
    const n = this.open.get(caller) ?? 0;
    if (n >= this.max) {
      throw new StoreError(
        'QUOTA',
        `${caller} has ${n} open watches, the limit (--max-watches); close one before opening another`,
        { limit: 'watches', max: this.max },
      );
    }
    this.open.set(caller, n + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.open.get(caller) ?? 1) - 1;
      if (left > 0) this.open.set(caller, left);
      else this.open.delete(caller);
    };
  }
}
