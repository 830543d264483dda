import { describe, expect, it } from 'vitest';
import { availableRamBackends, createRam } from './ram-backend.js';

describe.each(availableRamBackends())('forEachNonZeroPage (%s)', (backend) => {
  it('visits exactly the pages holding a non-zero byte, in order', () => {
    const ram = createRam(64 * 1024 * 1024, backend);
    ram.writeU8(0x1fff, 1);
    ram.writeU32(0x5000, 0x80000000);
    ram.writeU8(0x30_0000 + 4095, 7);
    ram.writeU8(0x3ff_ffff, 9);
    ram.writeU32(0x8000, 0); // written, but zero
    const seen: [number, number][] = [];
    ram.forEachNonZeroPage((off, page) => seen.push([off, page.length]));
    expect(seen).toEqual([
      [0x1000, 4096],
      [0x5000, 4096],
      [0x30_0000, 4096],
      [0x3ff_f000, 4096],
    ]);
  });
});
