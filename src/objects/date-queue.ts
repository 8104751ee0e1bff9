import type { Commit } from './commit.js';

/**
 * Commits waiting to be walked, newest (committer time) first out: the order git walks history in when it looks for
 * merge bases or for what one side has that the other lacks. A commit's time is read once.
 */
export class DateQueue {
  private readonly times = new Map<string, number>();
  /** Oldest → newest, so that pop() takes the newest; equal times: the last pushed comes out first. */
  readonly items: string[] = [];

  constructor(private readonly read: (oid: string) => Promise<Commit>) {}

  async push(oid: string): Promise<void> {
    let t = this.times.get(oid);
    if (t === undefined) {
      t = (await this.read(oid)).committer.timestamp;
      this.times.set(oid, t);
    }
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.times.get(this.items[mid]!)! <= t) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, oid);
  }

  pop(): string | undefined {
    return this.items.pop();
  }
}
