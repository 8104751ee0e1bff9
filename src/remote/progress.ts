import type { Progress } from './types.js';

// `Receiving objects:  45% (9/20), 1.20 MiB | 2.00 MiB/s`, `Enumerating objects: 5, done.`, and the same from the
// other side prefixed `remote: ` (its counting and compressing).
const PROGRESS = /^(?:remote: )?([A-Z][a-z]+(?: [a-z]+)*):\s+(?:(\d+)%\s+\((\d+)\/(\d+)\)|(\d+))(?:,|$)/;

/** One record of git's progress (a line, or a redraw ended by `\r`) as Progress, or null when it is not one. */
export function parseProgress(record: string): Progress | null {
  const m = PROGRESS.exec(record.trim());
  if (!m) return null;
  if (m[5] !== undefined) return { phase: m[1]!, done: Number(m[5]) };
  return { phase: m[1]!, done: Number(m[3]), total: Number(m[4]) };
}

/**
 * Splits git's stderr into progress, handed to `onProgress` as it comes, and the other lines (errors, hints, a
 * remote's messages), kept for the error a failure raises. Git redraws progress in place with `\r`, so a record
 * ends at `\r` or `\n`.
 */
export class StderrReader {
  private partial = '';
  readonly lines: string[] = [];

  constructor(private readonly onProgress?: (progress: Progress) => void) {}

  push(text: string): void {
    this.partial += text;
    for (let end = this.partial.search(/[\r\n]/); end >= 0; end = this.partial.search(/[\r\n]/)) {
      this.record(this.partial.slice(0, end));
      this.partial = this.partial.slice(end + 1);
    }
  }

  end(): void {
    if (this.partial !== '') this.record(this.partial);
    this.partial = '';
  }

  private record(text: string): void {
    const progress = parseProgress(text);
    if (progress) {
      this.onProgress?.(progress);
      return;
    }
    const line = text.trimEnd();
    if (line.trim() !== '' && line.trim() !== 'remote:') this.lines.push(line);
  }
}
