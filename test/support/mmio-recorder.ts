/**
 * A fake MMIO device for memory-layer tests: the byte at offset i reads
 * (i + 1) & 0xff (so every access width and offset gives a distinct value),
 * and every call the region's handlers get is recorded in order.
 */
import { type AccessRules, MmioRegion } from '../../src/memory/region.js';

/** One call the fake device saw. */
export type Call = [op: 'r' | 'w' | 'r64' | 'w64', offset: number, size: number, value?: number | bigint];

/** An MMIO region whose byte at offset i reads (i + 1) & 0xff, recording every call. */
export function recorder(size: number, rules?: AccessRules, name = 'dev'): { region: MmioRegion; calls: Call[] } {
  const calls: Call[] = [];
  const valueAt = (off: number, n: number) => {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + ((off + i + 1) & 0xff);
    return v;
  };
  const region = new MmioRegion(
    name,
    size,
    {
      read(offset, n) {
        calls.push(['r', offset, n]);
        return valueAt(offset, n);
      },
      write(offset, n, value) {
        calls.push(['w', offset, n, value]);
      },
      read64(offset) {
        calls.push(['r64', offset, 8]);
        return (BigInt(valueAt(offset + 4, 4)) << 32n) | BigInt(valueAt(offset, 4));
      },
      write64(offset, value) {
        calls.push(['w64', offset, 8, value]);
      },
    },
    rules,
  );
  return { region, calls };
}
