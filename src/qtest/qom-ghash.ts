/**
 * The iteration order of a GLib GHashTable keyed by strings (g_str_hash,
 * insertions only), which is the order QOM keeps an object's own properties
 * in: `qom-list` of a container lists its children in the reverse of this
 * order.  Modelled on GLib's documented open-addressing scheme: buckets are
 * a power of two (at least 8) addressed by `(hash * 11 mod 2^32) % prime`, quadratic
 * probing, growth to `nnodes * 1.333` when occupancy passes 15/16, and the
 * in-place rehash that walks the old buckets in order, evicting as it goes.
 */

/** GLib's primes just below each power of two (prime_mod), by shift. */
const PRIME_MOD = [1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521];

/** HASH_TABLE_MIN_SHIFT. */
const MIN_SHIFT = 3;

/** g_str_hash (djb2 over signed chars of the UTF-8 bytes), as GHashTable stores it (never below 2). */
export function gStrHash(key: string): number {
  let h = 5381;
  for (const b of Buffer.from(key, 'utf8')) h = (Math.imul(h, 33) + (b >= 0x80 ? b - 0x100 : b)) >>> 0;
  return h < 2 ? 2 : h;
}

/** The keys of a string-keyed GHashTable after inserting `keys` in order, in iteration order. */
export function ghashOrder(keys: readonly string[]): string[] {
  let shift = MIN_SHIFT;
  let size = 1 << shift;
  let hashes: number[] = new Array<number>(size).fill(0);
  let slots: (string | null)[] = new Array<string | null>(size).fill(null);
  let nnodes = 0;
  // `hash * 11` wraps at 32 bits (guint arithmetic).
  const index = (h: number): number => (Math.imul(h, 11) >>> 0) % PRIME_MOD[shift]!;

  const resize = (): void => {
    const oldSize = size;
    let n = Math.floor(nnodes * 1.333);
    let s = 0;
    for (; n; s++) n >>= 1;
    shift = Math.max(s, MIN_SHIFT);
    size = 1 << shift;
    const mask = size - 1;
    if (size > oldSize) {
      hashes = hashes.concat(new Array<number>(size - oldSize).fill(0));
      slots = slots.concat(new Array<string | null>(size - oldSize).fill(null));
    }
    const moved = new Uint8Array(Math.max(size, oldSize));
    for (let i = 0; i < oldSize; i++) {
      if (hashes[i]! < 2 || moved[i]) continue;
      let h = hashes[i]!;
      let key = slots[i]!;
      hashes[i] = 0;
      slots[i] = null;
      for (;;) {
        let at = index(h);
        for (let step = 1; moved[at]; step++) at = (at + step) & mask;
        moved[at] = 1;
        const replaced = hashes[at]!;
        const replacedKey = slots[at]!;
        hashes[at] = h;
        slots[at] = key;
        if (replaced < 2) break;
        h = replaced;
        key = replacedKey;
      }
    }
    if (size < oldSize) {
      hashes.length = size;
      slots.length = size;
    }
  };

  for (const key of keys) {
    const h = gStrHash(key);
    const mask = size - 1;
    let at = index(h);
    let dup = false;
    for (let step = 1; hashes[at] !== 0; step++) {
      if (hashes[at] === h && slots[at] === key) {
        dup = true;
        break;
      }
      at = (at + step) & mask;
    }
    if (dup) continue;
    hashes[at] = h;
    slots[at] = key;
    nnodes++;
    // g_hash_table_maybe_resize (no tombstones: occupied == nnodes).
    if ((size > nnodes * 4 && size > 1 << MIN_SHIFT) || size <= nnodes + Math.floor(nnodes / 16)) resize();
  }
  return slots.filter((k): k is string => k !== null);
}
