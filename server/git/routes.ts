import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { GIT_PATH } from '../../src/http/contract.js';
import { type Store, StoreError } from '../../src/index.js';
import { gitRestriction } from './access.js';
import { BackendError, runBackend } from './backend.js';
import { findHooksDir, isExecutable } from './hooks.js';

/**
 * `/git/*`: the store's repository over git's smart HTTP protocol, so `git clone/fetch/push http://HOST:PORT/git`
 * work with plain git. Each request runs `git http-backend` (backend.ts); every push passes the store's pre-receive
 * check (src/remote/receive-check.ts) before git moves a ref. This is git's protocol, not the JSON API: its routes
 * are left out of the OpenAPI document, but its own errors (no repository on disk, no git) answer in the API's shape.
 */

export interface GitServerOptions {
  /** The largest request body, and the largest pack a push may send (default 1 GiB). */
  maxBodyBytes?: number;
}

/** Large enough for the whole history of any configuration store; a push over it is refused with 413. */
export const DEFAULT_GIT_BODY_LIMIT = 1 << 30;

/** The oldest git that takes configuration from GIT_CONFIG_COUNT, which is how the hook is set for pushes only. */
const MIN_GIT: [number, number] = [2, 31];

/** The paths of git's smart protocol (the "dumb" one, raw files of the repository, is not served). */
const SMART_PATHS = /^\/(info\/refs|git-upload-pack|git-receive-pack)$/;

/** Checks once that a recent enough git is installed; null when it is, else why not. */
function probeGit(): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('git', ['--version'], { timeout: 30_000 }, (error, stdout) => {
      if (error) {
        resolve(
          (error as NodeJS.ErrnoException).code === 'ENOENT'
            ? 'git is not installed on the server (it runs `git http-backend` for /git); install git 2.31 or later'
            : 'git on the server does not run (`git --version` failed); see the server log',
        );
        return;
      }
      const m = /(\d+)\.(\d+)/.exec(stdout);
      const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
      const ok = major > MIN_GIT[0] || (major === MIN_GIT[0] && minor >= MIN_GIT[1]);
      resolve(ok ? null : `git on the server is ${stdout.trim()}; /git needs git ${MIN_GIT.join('.')} or later`);
    });
  });
}

const unavailable = (why: string) => new StoreError('NOT_FOUND', `/git is not served: ${why}`, {});

/** The API's error code for an error status http-backend answered with. */
function codeOf(status: number): 'NOT_FOUND' | 'FORBIDDEN' | 'INVALID_ARGUMENT' | 'INTERNAL' {
  if (status === 404) return 'NOT_FOUND';
  if (status === 403) return 'FORBIDDEN';
  if (status >= 400 && status < 500) return 'INVALID_ARGUMENT';
  return 'INTERNAL';
}

/** The server's log gets what git said, with the request it was about (git's messages may hold paths: never sent). */
function logGit(request: FastifyRequest, what: string, details: Record<string, unknown>): void {
  request.log.error({ git: { method: request.method, url: request.url, ...details } }, what);
}

export function gitRoutes(store: Store, options: GitServerOptions = {}): FastifyPluginAsync {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_GIT_BODY_LIMIT;
  // Only a repository on disk can be served: git runs on it. Decided at start; the git check once, on first use.
  const repo = store.files.raw === fs ? path.resolve(store.dir) : null;
  const hooksDir = findHooksDir();
  let gitProblem: Promise<string | null> | undefined;
  const problem = async (): Promise<string | null> => {
    if (!repo) return 'this store is in memory (--memory) and has no git repository; serve one with --repo DIR';
    if (!hooksDir || !isExecutable(path.join(hooksDir, 'pre-receive'))) {
      return 'the push check (git-hooks/pre-receive) is missing from the installation or not executable';
    }
    gitProblem ??= probeGit();
    const found = await gitProblem;
    // Installing git should not need a restart: a failed probe is tried again next time.
    if (found) gitProblem = undefined;
    return found;
  };

  return async (app) => {
    // The body goes to git as it arrives, whatever its type or encoding: no parsing, and no limit but ours.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    app.route<{ Params: { '*': string } }>({
      method: ['GET', 'POST'],
      url: `${GIT_PATH}/*`,
      // git's protocol, not the JSON API: see server/openapi.ts.
      config: { openapi: false },
      handler: async (request, reply) => {
        const why = await problem();
        if (why) throw unavailable(why);
        const pathInfo = `/${request.params['*']}`;
        if (!SMART_PATHS.test(pathInfo)) {
          throw new StoreError(
            'NOT_FOUND',
            `${GIT_PATH}${pathInfo} is not part of git's smart HTTP protocol; clone ${GIT_PATH} with git`,
            {},
          );
        }
        const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
        // Without `service`, http-backend answers the "dumb" listing of every ref, which hideRefs does not apply to.
        if (pathInfo === '/info/refs' && !/(^|&)service=git-(upload|receive)-pack(&|$)/.test(query)) {
          throw new StoreError('NOT_FOUND', `${GIT_PATH}/info/refs needs ?service=git-upload-pack: clone with git`, {});
        }
        const length = Number(request.headers['content-length'] ?? 0);
        if (length > maxBodyBytes) {
          throw new StoreError(
            'TOO_LARGE',
            `the request body is over the git server's limit of ${maxBodyBytes} bytes`,
            {
              limit: maxBodyBytes,
            },
          );
        }
        let answer: Awaited<ReturnType<typeof runBackend>>;
        try {
          answer = await runBackend(
            { repo: repo!, hooksDir: hooksDir!, maxBodyBytes },
            {
              method: request.method,
              pathInfo,
              query,
              headers: request.headers,
              remoteAddr: request.ip,
              body: request.method === 'POST' ? (request.body as Readable) : undefined,
              restriction: (await gitRestriction(request, store)) ?? undefined,
            },
          );
        } catch (e) {
          if (!(e instanceof BackendError)) throw e;
          if (e.status === 413) {
            throw new StoreError(
              'TOO_LARGE',
              `the request body is over the git server's limit of ${maxBodyBytes} bytes`,
              {
                limit: maxBodyBytes,
              },
            );
          }
          logGit(request, e.message, { stderr: e.stderr });
          throw new StoreError('INTERNAL', 'git http-backend failed; the server log has the details', {});
        }
        const failed = answer.status >= 400;
        void answer.done.then((code) => {
          const stderr = answer.stderr().trim();
          const hook = answer.hookLog().trim();
          if (hook) logGit(request, 'the push check failed', { hook });
          if (failed || code !== 0 || stderr) {
            logGit(request, `git http-backend answered ${answer.status} and exited ${code}`, { stderr });
          }
        });
        if (failed) {
          // git's own error answers have no body worth keeping; what it said, with the repository's path, is logged.
          answer.body.resume();
          const code = codeOf(answer.status);
          throw new StoreError(
            code,
            code === 'INTERNAL'
              ? 'git http-backend failed; the server log has the details'
              : `git http-backend refused the request: ${answer.status} ${answer.reason}`,
            {},
          );
        }
        reply.code(answer.status);
        for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
        return reply.send(answer.body);
      },
    });
  };
}
