import type { FastifyPluginAsync } from 'fastify';
import {
  CONTENT_TYPES,
  formatEvents,
  formatStreamError,
  formatStreamStart,
  HEADERS,
  KEEP_ALIVE,
  ROUTES,
} from '../../src/http/contract.js';
import type { CommitEvents, Store } from '../../src/index.js';
import { accessNow, forbidden } from '../auth.js';
import { checkRevisions } from '../history-access.js';
import { WatchCounter } from '../limits.js';
import { operation } from '../spec.js';
import { branchParams, header } from './shared.js';

/** How often an idle event stream sends a comment, so proxies and clients know it is alive. */
const KEEP_ALIVE_MS = 15_000;
/** How often an open watch looks at its token and the rules again (a revocation reaches it within this). */
const RECHECK_MS = 1000;

/**
 * Server-Sent Events of a branch's changes. Every event's data is `{commit, key, kind, oid}`; the `id:` field — the
 * commit — is sent with the last event of each commit, so a client resuming with Last-Event-ID gets every commit
 * after the last one it received whole (at least once, never a gap).
 */
export function watchRoutes(store: Store, maxWatches: number): FastifyPluginAsync {
  const counter = new WatchCounter(maxWatches);
  return async (app) => {
    // Streams never finish by themselves: end them when the server shuts down, so it can.
    const open = new Set<{ close(): void }>();
    app.addHook('preClose', async () => {
      for (const stream of open) stream.close();
    });
    app.get<{ Params: { branch: string }; Querystring: { prefix?: string; since?: string } }>(
      ROUTES.watch,
      {
        schema: operation({
          operationId: 'watch',
          summary: 'Server-Sent Events for every change under ?prefix on {branch}, from ?since (or Last-Event-ID)',
          description:
            'Each event is `data: {"commit","key","kind","oid"}`; the last event of a commit carries `id: <commit>`, ' +
            'so a client resuming with Last-Event-ID (or `since`) gets every commit after the last whole one it saw. ' +
            'The stream opens with an id-only message naming where it starts, and sends comments to keep it alive.',
          tags: ['watch'],
          params: branchParams,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              prefix: { type: 'string', description: 'Only keys at or below this key or prefix.' },
              since: { type: 'string', description: 'Replay the commits after this revision first.' },
            },
          },
          headers: ['lastEventId'],
          ok: {
            200: {
              description: 'The event stream; it ends only when the client or the server goes.',
              content: { type: CONTENT_TYPES.events, schema: { type: 'string' } },
            },
          },
          // 429: the caller has as many open watches as it may.
          errors: [400, 404, 410, 429],
        }),
      },
      async (request, reply) => {
        const { branch } = request.params;
        const prefix = request.query.prefix ?? '';
        let access = request.access;
        if (access.enabled && !access.grants.canSee(branch, prefix)) {
          throw forbidden(`watch ${prefix || 'all'} of ${branch}`);
        }
        // Events of keys the caller may not read are never sent, not even their names.
        const readable = (group: CommitEvents): CommitEvents =>
          access.enabled
            ? { ...group, events: group.events.filter((e) => access.grants.can('read', branch, e.key)) }
            : group;
        // The token and the rules are looked at again at most once a RECHECK_MS while events flow: a revoked token
        // or a narrowed rule ends or cuts the stream, without a verification per event per watcher (10,000 watchers
        // at 1,000 writes/s would make that ten million a second).
        let checkedAt = Date.now();
        const stillAllowed = async (): Promise<string | null> => {
          if (!access.enabled || Date.now() - checkedAt < RECHECK_MS) return null;
          checkedAt = Date.now();
          const now = await accessNow(request, store);
          if (!now) return 'the token is no longer valid: revoked or expired';
          if (!now.grants.canSee(branch, prefix))
            return `this token may no longer watch ${prefix || 'all'} of ${branch}`;
          access = now;
          return null;
        };
        const since = request.query.since ?? header(request, HEADERS.lastEventId);
        // A revision of another branch would replay its differences from this one (server/history-access.ts).
        await checkRevisions(request, store, branch, [since]);
        // Opened before the stream starts, so a bad branch, prefix or revision is an ordinary 4xx answer.
        const leave = counter.enter(request);
        let watch: Awaited<ReturnType<Store['watch']>>;
        try {
          watch = await store.watch({ branch: request.params.branch, prefix: request.query.prefix ?? '', since });
        } catch (e) {
          leave();
          throw e;
        }
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, {
          [HEADERS.contentType]: `${CONTENT_TYPES.events}; charset=utf-8`,
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        // An id-only message sets the client's Last-Event-ID to where the stream starts, so even a client that drops
        // before its first event resumes without a gap.
        out.write(formatStreamStart(watch.after));
        const keepAlive = setInterval(() => out.write(KEEP_ALIVE), KEEP_ALIVE_MS);
        // Ending a stream also ends a wait for a client that stopped reading: its socket goes, and 'close' fires.
        const stream = {
          close: () => {
            watch.close();
            out.destroy();
          },
        };
        open.add(stream);
        request.raw.on('close', () => watch.close());
        try {
          for await (const all of watch.commits()) {
            const ended = await stillAllowed();
            if (ended) {
              out.write(formatStreamError(ended));
              break;
            }
            const group = readable(all);
            if (group.events.length === 0) continue;
            if (!out.write(formatEvents(group))) {
              await new Promise<void>((resolve) => {
                const done = () => {
                  out.off('drain', done);
                  out.off('close', done);
                  resolve();
                };
                out.once('drain', done);
                out.once('close', done);
              });
            }
          }
        } catch (e) {
          out.write(formatStreamError((e as Error).message));
        } finally {
          leave();
          clearInterval(keepAlive);
          open.delete(stream);
          out.end();
        }
      },
    );
  };
}
