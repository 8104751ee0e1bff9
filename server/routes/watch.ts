import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../../src/index.js';
import { errorSchema } from '../errors.js';
import { branchParams } from './shared.js';

/** How often an idle event stream sends a comment, so proxies and clients know it is alive. */
const KEEP_ALIVE_MS = 15_000;
const errors = { '4xx': errorSchema };

/**
 * Server-Sent Events of a branch's changes. Every event's data is `{commit, key, kind, oid}`; the `id:` field — the
 * commit — is sent with the last event of each commit, so a client resuming with Last-Event-ID gets every commit
 * after the last one it received whole (at least once, never a gap).
 */
export function watchRoutes(store: Store): FastifyPluginAsync {
  return async (app) => {
    // Streams never finish by themselves: end them when the server shuts down, so it can.
    const open = new Set<{ close(): void }>();
    app.addHook('preClose', async () => {
      for (const stream of open) stream.close();
    });
    app.get<{ Params: { b: string }; Querystring: { prefix?: string; since?: string } }>(
      '/v1/branches/:b/watch',
      {
        schema: {
          summary: 'Server-Sent Events for every change under ?prefix on :b, from ?since (or Last-Event-ID)',
          tags: ['watch'],
          params: branchParams,
          querystring: { type: 'object', properties: { prefix: { type: 'string' }, since: { type: 'string' } } },
          response: errors,
        },
      },
      async (request, reply) => {
        const lastEventId = request.headers['last-event-id'];
        const since =
          request.query.since ?? (typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : undefined);
        // Opened before the stream starts, so a bad branch, prefix or revision is an ordinary 4xx answer.
        const watch = await store.watch({ branch: request.params.b, prefix: request.query.prefix ?? '', since });
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        // An id-only message sets the client's Last-Event-ID to where the stream starts, so even a client that drops
        // before its first event resumes without a gap.
        out.write(watch.after ? `: watching\nid: ${watch.after}\n\n` : ': watching\n\n');
        const keepAlive = setInterval(() => out.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
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
          for await (const group of watch.commits()) {
            let text = '';
            group.events.forEach((event, i) => {
              if (i === group.events.length - 1) text += `id: ${group.commit}\n`;
              text += `data: ${JSON.stringify(event)}\n\n`;
            });
            if (!out.write(text)) {
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
          out.write(`event: error\ndata: ${JSON.stringify({ message: (e as Error).message })}\n\n`);
        } finally {
          clearInterval(keepAlive);
          open.delete(stream);
          out.end();
        }
      },
    );
  };
}
