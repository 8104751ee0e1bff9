import { type ChildProcess, spawn } from 'node:child_process';

/** A writer process (a test fixture printing `ack <key> <commit>` per acknowledged write) and what it acknowledged. */
export interface Writer {
  child: ChildProcess;
  /** key → commit, in the order the acks arrived. */
  acks: Map<string, string>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once at least `n` writes were acknowledged (rejects if the process ends first). */
  acked(n: number): Promise<void>;
}

/** Starts `node script ...args`; `stdin: 'pipe'` for fixtures that stop when their stdin ends. */
export function startWriter(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  stdin: 'ignore' | 'pipe' = 'ignore',
): Writer {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: [stdin, 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const acks = new Map<string, string>();
  let err = '';
  let partial = '';
  const waiters: { n: number; resolve: () => void }[] = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const m = /^ack (\S+) ([0-9a-f]{40})$/.exec(line);
      if (m) acks.set(m[1]!, m[2]!);
      else if (!/^done \d+$/.test(line)) err += `unexpected stdout line: ${line}\n`;
    }
    for (const w of waiters.splice(0)) {
      if (acks.size >= w.n) w.resolve();
      else waiters.push(w);
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    acks,
    stderr: () => err,
    exited,
    acked: (n) =>
      new Promise<void>((resolve, reject) => {
        if (acks.size >= n) return resolve();
        waiters.push({ n, resolve });
        void exited.then(({ code, signal }) =>
          reject(new Error(`writer ${args.join(' ')} ended (${code ?? signal}) after ${acks.size} acks: ${err}`)),
        );
      }),
  };
}

/** Stops child processes a failed test left running (call it in afterEach, before temporary directories go). */
export async function stopChildren(children: ChildProcess[]): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGKILL');
    await closed;
  }
}
