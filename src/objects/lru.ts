/** A least-recently-used map bounded by a total weight (entries, bytes…), for the object caches. */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; weight: number }>();
  private total = 0;

  constructor(
    private readonly limit: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    // Re-inserting moves the key to the young end of the Map's insertion order.
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V): void {
    const old = this.map.get(key);
    if (old) {
      this.total -= old.weight;
      this.map.delete(key);
    }
    const weight = this.weigh(value);
    this.map.set(key, { value, weight });
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
