/** Where the CLI reads and writes: the real process, or buffers in tests. */
export interface Io {
  out(data: string | Uint8Array): void;
  err(data: string): void;
  readStdin(): Promise<Buffer>;
  env: NodeJS.ProcessEnv;
  /** stdout is a terminal (tables, colours, progress bars). */
  tty: boolean;
  /** stderr is a terminal: transfer progress is drawn there (stdout may be piped). */
  errTty?: boolean;
}

export function processIo(): Io {
  // `store log | head` closes the pipe early: that is the reader being done, not an error worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  return {
    out: (d) => process.stdout.write(d),
    err: (d) => process.stderr.write(d),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    },
    env: process.env,
    tty: process.stdout.isTTY === true,
    errTty: process.stderr.isTTY === true,
  };
}

/** ANSI styling, only on a terminal and never with NO_COLOR (https://no-color.org). */
export function styles(io: Io) {
  const on = io.tty && !('NO_COLOR' in io.env) && io.env.TERM !== 'dumb';
  const wrap = (code: number) => (s: string) => (on ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { bold: wrap(1), dim: wrap(2), red: wrap(31), green: wrap(32), yellow: wrap(33), cyan: wrap(36) };
}

/** Left-aligned columns, two spaces apart. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, visible(cell).length);
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visible(cell).length)))
        .join('  '),
    )
    .map((line) => `${line.trimEnd()}\n`)
    .join('');
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping ANSI escapes is the point
const visible = (s: string) => s.replace(/\u001b\[\d+m/g, '');
