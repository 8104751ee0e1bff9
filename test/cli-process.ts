import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cliEnv } from './helpers.js';

/** The real `store` binary (bin/store.js runs the bundle in dist/: `npm run build` first). */
export const BIN = fileURLToPath(new URL('../bin/store.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  input?: string | Buffer;
  /** Added to cliEnv() (git's test identity, no colour, no STORE_*); a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Runs the binary without blocking the event loop (a server in this process keeps answering meanwhile). */
export function cli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...cliEnv(), ...options.env };
  for (const [k, v] of Object.entries(options.env ?? {})) if (v === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    // The timeout only ends a hang (a command that should have failed started a server instead, say).
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: options.cwd, timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => {}).end(options.input ?? '');
  });
}

/** `store serve` over `repo` on a free port: its URL, and a stop that waits for it to exit. */
export async function serve(
  repo: string,
  env: Record<string, string> = {},
): Promise<{ url: string; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--repo', repo, '--port', '0'], {
    env: { ...cliEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    log += s;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`store serve exited (${code}) before printing its URL: ${log}`)));
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return { url, stop };
}
