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

  /**
   * The newest commit, preferring among those of the newest time one that `prefer` picks. Commits made in the same
   * second are common (the times are in seconds), and a walk that must see one side's marks before the other's uses
   * this to finish each second in that order.
   */
  popPreferring(prefer: (oid: string) => boolean): string | undefined {
    const { items, times } = this;
    const newest = times.get(items[items.length - 1]!);
    for (let i = items.length - 1; i >= 0 && times.get(items[i]!) === newest; i--) {
      if (prefer(items[i]!)) return items.splice(i, 1)[0];
    }
    return items.pop();
  }
}
