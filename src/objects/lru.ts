/**
 * A least-recently-used map bounded by a total weight (entries, bytes…), for the object caches. Nearly LRU: a hit
 * moves its key to the young end of the Map's insertion order only once the key has aged past half the map (since
 * it was last moved). Moving on every hit (a delete and a set) was most of a Xenstore daemon's CPU at 1,000 VMs —
 * hot keys were moved thousands of times and the Map kept rehashing its tombstones — while a key that is hit often
 * stays young anyway.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; weight: number; moved: number }>();
  private total = 0;
  /** Counts insertions and moves: an entry's age is `clock - moved`. */
  private clock = 0;

  constructor(
    private readonly limit: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    if (this.clock - hit.moved > this.map.size >> 1) {
      this.map.delete(key);
      hit.moved = ++this.clock;
      this.map.set(key, hit);
    }
    return hit.value;
  }

  set(key: K, value: V): void {
    const old = this.map.get(key);
    if (old) {
      this.total -= old.weight;
      this.map.delete(key);
    }
    const weight = this.weigh(value);
    this.map.set(key, { value, weight, moved: ++this.clock });
    this.total += weight;
    // Only when over the limit: an iterator over a Map that `get` keeps reordering walks past its deleted slots.
    if (this.total <= this.limit) return;
    for (const [k, v] of this.map) {
      if (this.total <= this.limit || this.map.size === 1) break;
      this.map.delete(k);
      this.total -= v.weight;
    }
  }
}
