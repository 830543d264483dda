/** The vfio-like example (examples/vfio-shadow.ts) runs through the public entry point and does what it says. */
import { describe, expect, it } from 'vitest';
import { demo } from '../../examples/vfio-shadow.js';

describe('examples/vfio-shadow.ts', () => {
  it('keeps a host mapping table from the notifications alone', () => {
    const { log, mappings } = demo();
    expect(log).toEqual([
      'map 0x4000 +0x1000 -> 0x800000 perm 3',
      'map 0x200000 +0x200000 -> 0x400000 perm 1',
      'unmap 0x4000 +0x1000',
    ]);
    expect(mappings).toEqual([{ iova: 0x20_0000, size: 0x20_0000, translated: 0x40_0000, perm: 1 }]);
  });
});
