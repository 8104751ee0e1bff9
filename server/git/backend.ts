import { spawn } from 'node:child_process';
import type { IncomingHttpHeaders } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { GitRestriction } from './access.js';

/**
 * One request of git's smart HTTP protocol, answered the way git hosts do: `git http-backend` run as a CGI program
 * per request, with the repository named by GIT_PROJECT_ROOT. The request body streams into it as it arrives and its
 * answer streams back out; nothing is buffered whole, so a push of a long history costs no more memory than a small
 * one.
 */

export interface BackendOptions {
  /** The repository, an absolute path. */
  repo: string;
  /** The directory whose `pre-receive` checks every push (core.hooksPath, for this process only). */
  hooksDir: string;
  /** The largest request body, and the largest pack a push may send (git's receive.maxInputSize). */
  maxBodyBytes: number;
}

export interface BackendRequest {
  method: string;
  /** The path below the repository: `/info/refs`, `/git-upload-pack`, `/git-receive-pack`. */
  pathInfo: string;
  query: string;
  headers: IncomingHttpHeaders;
  remoteAddr: string;
  /** The raw request body (undefined for GET). */
  body: Readable | undefined;
  /** What a caller with a limited token may see and push (access.ts); undefined: everything. */
  restriction?: GitRestriction;
}

export interface BackendAnswer {
  status: number;
  /** The status line's text (`Not Found`). */
  reason: string;
  headers: Record<string, string>;
  body: Readable;
  /** What http-backend (and git below it) said on stderr, complete once `done` resolves. */
  stderr(): string;
  /** What the push hook reported for the server log (see `hookLog`), complete once `done` resolves. */
  hookLog(): string;
  /** Resolves with the exit status when the process has ended. */
  done: Promise<number | null>;
}

/** Why a request could not be answered by http-backend at all. */
export class BackendError extends Error {
  constructor(
    message: string,
    readonly status: 413 | 500,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/**
 * Variables of the server's own environment that would make git work on another repository, object directory or
 * configuration than the one given here, or that a CGI request sets itself.
 */
const INHERITED_NOT = new Set([
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_COMMON_DIR',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_QUARANTINE_PATH',
  'GIT_NAMESPACE',
  'GIT_CONFIG',
  'GIT_CONFIG_PARAMETERS',
  'GIT_CONFIG_COUNT',
  'GIT_CONFIG_GLOBAL',
  'GIT_CONFIG_SYSTEM',
  'GIT_PROTOCOL',
  'GIT_PROJECT_ROOT',
  'GIT_HTTP_EXPORT_ALL',
  'GIT_GRAFT_FILE',
  'GIT_SHALLOW_FILE',
  'GIT_REPLACE_REF_BASE',
  'GIT_NO_REPLACE_OBJECTS',
  'GIT_PREFIX',
  'GIT_IMPLICIT_WORK_TREE',
  'PATH_TRANSLATED',
  'REMOTE_USER',
  'AUTH_TYPE',
  // Set per request for a limited caller; one inherited from the server's own environment would apply to all.
  'GITSTORE_PUSH_GRANTS',
  'GITSTORE_PUSH_AUTHOR',
]);

function inheritedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      INHERITED_NOT.has(name) ||
      /^GIT_CONFIG_(KEY|VALUE)_\d+$/.test(name) ||
      /^(HTTP|CONTENT|QUERY|REQUEST)_/.test(name)
    )
      continue;
    env[name] = value;
  }
  return env;
}

/** How long git waits for a ref lock someone else holds: the store's own writers wait as long (lockTimeoutMs). */
const REF_LOCK_TIMEOUT_MS = 10_000;

/** The file descriptor on which the pre-receive hook writes what the server should log (see GITSTORE_HOOK_LOG_FD). */
const HOOK_LOG_FD = 3;

/**
 * git's configuration for this process only, as GIT_CONFIG_COUNT/KEY/VALUE (git 2.31 and later): it reaches
 * receive-pack and its hook, and never the repository's `config` file, so plain git on the repository is unchanged.
 */
function gitConfig(options: BackendOptions): [string, string][] {
  return [
    // Every push goes through the store's check before any ref moves.
    ['core.hooksPath', options.hooksDir],
    // http-backend serves pushes only to users the web server authenticated unless told to: the store's own auth
    // (server/auth.ts) has let this request in, and the push hook checks what it may change.
    ['http.receivepack', 'true'],
    ['http.uploadpack', 'true'],
    // Pushed objects are checked as `git fsck` does: a push cannot make the repository fail `git fsck --strict`.
    ['receive.fsckObjects', 'true'],
    // The store packs its repository itself (`store gc`); git's automatic gc would repack under it after each push.
    ['receive.autogc', 'false'],
    ['receive.maxInputSize', String(options.maxBodyBytes)],
    // The store holds a ref's lock for the milliseconds of a write: git waits for it, as the store waits for git's.
    ['core.filesRefLockTimeout', String(REF_LOCK_TIMEOUT_MS)],
    ['core.packedRefsTimeout', String(REF_LOCK_TIMEOUT_MS)],
  ];
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
};

/** The CGI environment of one request (RFC 3875, and what http-backend reads besides). */
function cgiEnv(options: BackendOptions, request: BackendRequest): NodeJS.ProcessEnv {
  const { restriction } = request;
  const config = [...gitConfig(options), ...(restriction?.config ?? [])];
  const env: NodeJS.ProcessEnv = {
    ...inheritedEnv(),
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: request.method,
    GIT_PROJECT_ROOT: options.repo,
    PATH_INFO: request.pathInfo,
    QUERY_STRING: request.query,
    REMOTE_ADDR: request.remoteAddr,
    GIT_HTTP_EXPORT_ALL: '1',
    // The hook runs on the same node as this server, whatever PATH holds.
    GITSTORE_NODE: process.execPath,
    GITSTORE_HOOK_LOG_FD: String(HOOK_LOG_FD),
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  const type = header(request.headers, 'content-type');
  if (type) env.CONTENT_TYPE = type;
  // Without a length (a chunked body, as git sends large ones), http-backend reads the body to its end.
  const length = header(request.headers, 'content-length');
  if (length) env.CONTENT_LENGTH = length;
  // http-backend inflates a gzip body itself.
  const encoding = header(request.headers, 'content-encoding');
  if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
  // The push hook checks each key against the caller's grants (src/remote/push-access.ts).
  if (restriction) {
    env.GITSTORE_PUSH_GRANTS = restriction.grants;
    env.GITSTORE_PUSH_AUTHOR = restriction.author;
  }
  // Protocol v2 (and v1) is asked for in this header; git reads it from GIT_PROTOCOL. Not for a caller with hidden
  // branches: see GitRestriction.v0.
  const protocol = header(request.headers, 'git-protocol');
  if (protocol && protocol.length <= 1024 && !restriction?.v0) env.GIT_PROTOCOL = protocol;
  return env;
}

/** Splits CGI output into its header lines and the start of its body; null until the blank line has come. */
function splitHead(data: Buffer): { head: string; rest: Buffer } | null {
  const crlf = data.indexOf('\r\n\r\n');
  const lf = data.indexOf('\n\n');
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? { at: crlf, length: 4 } : lf >= 0 ? { at: lf, length: 2 } : null;
  if (!end) return null;
  return { head: data.subarray(0, end.at).toString('latin1'), rest: data.subarray(end.at + end.length) };
}

function parseHead(head: string): { status: number; reason: string; headers: Record<string, string> } {
  let status = 200;
  let reason = 'OK';
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'status') {
      status = Number.parseInt(value, 10) || 500;
      reason = value.replace(/^\d+\s*/, '');
    } else headers[name] = value;
  }
  return { status, reason, headers };
}

/**
 * Runs http-backend for one request. Resolves once its answer's headers are in, with its body still streaming;
 * rejects with BackendError when the body is over the limit or the process ends without an answer.
 */
export function runBackend(options: BackendOptions, request: BackendRequest): Promise<BackendAnswer> {
  // An argument list, never a shell; fd 3 is the hook's line to the server log.
  const child = spawn('git', ['http-backend'], {
    cwd: options.repo,
    env: cgiEnv(options, request),
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let hookLog = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    // Bounded: git's messages are short, and a log line should be too.
    if (stderr.length < 16_384) stderr += s;
  });
  const log = child.stdio[HOOK_LOG_FD] as Readable;
  log.setEncoding('utf8').on('data', (s: string) => {
    if (hookLog.length < 65_536) hookLog += s;
  });
  const done = new Promise<number | null>((resolve) => {
    child.on('close', (code) => resolve(code));
    child.on('error', () => resolve(null));
  });

  // The request body streams in, counted: past the limit the process is stopped.
  let received = 0;
  let tooLarge = false;
  const stdin = child.stdin!;
  // http-backend may answer (an error, say) before reading the whole body: a broken pipe is then no one's fault.
  stdin.on('error', () => {});
  if (request.body) {
    request.body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > options.maxBodyBytes && !tooLarge) {
        tooLarge = true;
        child.kill();
        request.body!.unpipe(stdin);
        stdin.destroy();
      }
    });
    request.body.pipe(stdin);
    // A client that hangs up mid-body leaves git a partial pack: stop it (a body received whole is served whole).
    request.body.on('close', () => {
      if (!request.body!.readableEnded) child.kill();
    });
  } else {
    stdin.end();
  }

  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    let answered = false;
    const stdout = child.stdout!;
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const split = splitHead(buffered);
      if (!split) {
        if (buffered.length > 65_536) child.kill();
        return;
      }
      answered = true;
      stdout.off('data', onData);
      stdout.pause();
      const { status, reason, headers } = parseHead(split.head);
      const body = new PassThrough();
      body.write(split.rest);
      stdout.pipe(body);
      // The client going away ends git's output pipe: git then stops at its next write.
      body.on('close', () => stdout.destroy());
      resolve({ status, reason, headers, body, stderr: () => stderr, hookLog: () => hookLog, done });
    };
    stdout.on('data', onData);
    void done.then((code) => {
      if (answered) return;
      if (tooLarge) {
        reject(new BackendError(`the request body is over ${options.maxBodyBytes} bytes`, 413, stderr));
      } else {
        reject(new BackendError(`git http-backend ended (exit ${code}) without an answer`, 500, stderr));
      }
    });
  });
}
