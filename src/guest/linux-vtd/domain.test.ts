import { describe, expect, it } from 'vitest';
import { dirPerm, psi } from './domain.js';

describe('psi', () => {
  it('uses AM = log2(roundup_pow2(pages)) with an address aligned to it', () => {
    expect(psi(3, 0x5000, 0x1000, false)).toEqual({ kind: 'page', did: 3, addr: 0x5000, am: 0, ih: false });
    expect(psi(3, 0x4000, 0x3000, true)).toMatchObject({ addr: 0x4000, am: 2, ih: true });
    // a range straddling an alignment boundary needs a larger mask
    expect(psi(1, 0x3000, 0x2000, false)).toMatchObject({ addr: 0x0, am: 3 });
  });
});

describe('dirPerm', () => {
  it('follows Linux: READ unless from-device with ZLR', () => {
    expect(dirPerm('to-device', true)).toEqual({ read: true, write: false });
    expect(dirPerm('from-device', true)).toEqual({ read: false, write: true });
    expect(dirPerm('from-device', false)).toEqual({ read: true, write: true });
    expect(dirPerm('bidirectional', true)).toEqual({ read: true, write: true });
  });
});
