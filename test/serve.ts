import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cliEnv } from './helpers.js';

/** `store serve` as a real child process (bin/store.js → dist/, so `npm run build` first). */

const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));

export interface Served {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `store serve --repo <repo> --port 0` (`args` replace `--port 0`, e.g. a fixed port and `--peer`s; `env`
 * replaces cliEnv()); resolves with its URL (the first stdout line).
 */
export function startServe(
  repo: string,
  args: string[] = ['--port', '0'],
  env: NodeJS.ProcessEnv = cliEnv(),
): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--repo', repo, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, url: out.slice(0, nl).trim(), stderr: () => err, exited });
    });
    void exited.then(({ code }) => reject(new Error(`store serve exited (${code}) before printing its URL: ${err}`)));
  });
}

/** SIGTERM, then the exit status (SIGKILL if it hangs for more than `ms`). */
export async function stopServe(s: Served, ms = 15_000): Promise<{ code: number | null; signal: string | null }> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return s.exited;
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), ms);
  const status = await s.exited;
  clearTimeout(timer);
  return status;
}

/**
 * A PUT of `value` at `key` on `branch` (with `headers`: a token, say); the status and body (status 0: no answer,
 * body the connection error).
 */
export async function put(
  url: string,
  key: string,
  value: string,
  branch = 'main',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(`${url}/v1/branches/${branch}/keys/${key.split('/').map(encodeURIComponent).join('/')}`, {
      method: 'PUT',
      body: value,
      headers: { 'content-type': 'application/octet-stream', ...headers },
    });
    return { status: res.status, body: await res.text() };
  } catch (e) {
    return { status: 0, body: String((e as Error & { cause?: unknown }).cause ?? e) };
  }
}
