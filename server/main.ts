import fs from 'node:fs';
import { openStore } from '../src/index.js';
import { buildApp } from './app.js';

export interface ServeOptions {
  repo: string;
  host: string;
  port: number;
  memory?: boolean;
  bodyLimit?: number;
  log?: (line: string) => void;
}

/**
 * Opens (creating if missing) the store and listens. SIGTERM/SIGINT stop accepting, let in-flight requests finish
 * — an acknowledged write is already durable — then close the store.
 */
export async function serve(options: ServeOptions): Promise<{ url: string; close: () => Promise<void> }> {
  const store = await openStore(options.memory ? { memory: true } : { fs, dir: options.repo, create: true });
  const app = await buildApp({ store, bodyLimit: options.bodyLimit });
  const url = await app.listen({ host: options.host, port: options.port });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await app.close();
      await store.close();
    })();
    return closing;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      options.log?.(`${signal}: finishing in-flight requests`);
      close().then(() => {
        process.exitCode = 0;
      });
    });
  }
  return { url, close };
}
