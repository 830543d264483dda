/**
 * The sva-testdev device-TLB through its public interface: entry sizes from
 * the completion's addrMask, PASID keys, replacement of overlapping entries,
 * first-in first-out eviction, and invalidation by PASID / NO_PASID /
 * ALL_PASIDS over S-bit sized ranges up to 2^64.
 */
import { describe, expect, it } from 'vitest';
import { ALL_PASIDS, AtsStatus, NO_PASID, type AtsCompletion } from '../../memory/iommu.js';
import { ATC_PAGE_SIZE, DeviceAtc, translationSize } from './atc.js';
import { SVA_ATC_ENTRIES } from './regs.js';

const KIB4 = 0x1000;
const MIB2 = 0x20_0000;
const GIB1 = 0x4000_0000;

/** A Success completion of `size` bytes translating to `translated`. */
function done(translated: number, size = KIB4, read = true, write = true, untranslatedOnly = false): AtsCompletion {
  return { status: AtsStatus.Success, iova: 0, translated, addrMask: size - 1, read, write, untranslatedOnly };
}

describe('ATC entries', () => {
  it('a 4 KiB entry covers its page only, keyed by PASID', () => {
    const atc = new DeviceAtc();
    const e = atc.insert(7, 0x12_3456_7000, done(0xabc000));
    expect(e).toMatchObject({ pasid: 7, iova: 0x12_3456_7000, addrMask: 0xfff, translated: 0xabc000, read: true, write: true, untranslatedOnly: false });
    expect(atc.count).toBe(1);
    expect(atc.lookup(7, 0x12_3456_7000)).toBe(e);
    expect(atc.lookup(7, 0x12_3456_7fff)).toBe(e);
    expect(atc.lookup(7, 0x12_3456_8000)).toBeNull();
    expect(atc.lookup(7, 0x12_3456_6fff)).toBeNull();
    expect(atc.lookup(8, 0x12_3456_7000)).toBeNull();
    expect(atc.lookup(NO_PASID, 0x12_3456_7000)).toBeNull();
  });

  it('2 MiB and 1 GiB entries are aligned to their size around the requested page, translated address too', () => {
    const atc = new DeviceAtc();
    const big = atc.insert(NO_PASID, 0x4030_5000, done(0x8000_0000 + 0x10_5000, MIB2));
    expect(big).toMatchObject({ iova: 0x4020_0000, addrMask: MIB2 - 1, translated: 0x8000_0000 });
    expect(atc.lookup(NO_PASID, 0x4020_0000)).toBe(big);
    expect(atc.lookup(NO_PASID, 0x403f_f000)).toBe(big);
    expect(atc.lookup(NO_PASID, 0x4040_0000)).toBeNull();
    const huge = atc.insert(3, 0x1_7fff_f000, done(0x4000_0000, GIB1));
    expect(huge).toMatchObject({ iova: 0x1_4000_0000, addrMask: GIB1 - 1, translated: 0x4000_0000 });
    expect(atc.lookup(3, 0x1_4000_0000)).toBe(huge);
    expect(atc.lookup(3, 0x1_3fff_f000)).toBeNull();
  });

  it('a mask that is not a power of two minus one, or below 4 KiB, counts as 4 KiB', () => {
    expect([translationSize(0xfff), translationSize(MIB2 - 1), translationSize(2 ** 64 - 1)]).toEqual([KIB4, MIB2, 2 ** 64]);
    expect([translationSize(0), translationSize(0x7ff), translationSize(0x2fff), translationSize(-1), translationSize(NaN)]).toEqual([
      KIB4,
      KIB4,
      KIB4,
      KIB4,
      KIB4,
    ]);
    const atc = new DeviceAtc();
    const c = done(0x5000);
    c.addrMask = 0x2fff;
    expect(atc.insert(1, 0x9000, c)).toMatchObject({ iova: 0x9000, addrMask: ATC_PAGE_SIZE - 1 });
  });

  it('a new completion replaces the overlapping entries of its PASID only', () => {
    const atc = new DeviceAtc();
    atc.insert(1, 0x20_0000, done(0x1000, KIB4, true, false));
    atc.insert(1, 0x20_1000, done(0x2000));
    atc.insert(2, 0x20_0000, done(0x3000));
    expect(atc.count).toBe(3);
    const fresh = atc.insert(1, 0x20_0000, done(0x40_0000, MIB2));
    expect(atc.count).toBe(2);
    expect(atc.lookup(1, 0x20_1000)).toBe(fresh);
    expect(atc.lookup(2, 0x20_0000)).toMatchObject({ translated: 0x3000 });
    // Re-requesting a page replaces its read-only entry.
    atc.insert(2, 0x20_0000, done(0x3000, KIB4, true, false));
    expect(atc.count).toBe(2);
    expect(atc.lookup(2, 0x20_0000)).toMatchObject({ write: false });
  });

  it('keeps U and the permissions as given', () => {
    const atc = new DeviceAtc();
    expect(atc.insert(NO_PASID, 0xfee0_0000, done(0xfee0_0000, KIB4, false, false, true))).toMatchObject({ read: false, write: false, untranslatedOnly: true });
    expect(atc.insert(NO_PASID, 0x1000, done(0x1000, KIB4, false, true))).toMatchObject({ read: false, write: true });
  });

  it(`holds ${SVA_ATC_ENTRIES} entries and replaces the oldest first, hits or not`, () => {
    const atc = new DeviceAtc();
    for (let i = 0; i < SVA_ATC_ENTRIES; i++) atc.insert(NO_PASID, i * KIB4, done(0x100_0000 + i * KIB4));
    expect(atc.count).toBe(SVA_ATC_ENTRIES);
    expect(atc.lookup(NO_PASID, 0)).not.toBeNull();
    atc.insert(NO_PASID, SVA_ATC_ENTRIES * KIB4, done(0));
    expect(atc.count).toBe(SVA_ATC_ENTRIES);
    expect(atc.lookup(NO_PASID, 0)).toBeNull();
    expect(atc.lookup(NO_PASID, KIB4)).not.toBeNull();
    atc.insert(NO_PASID, (SVA_ATC_ENTRIES + 1) * KIB4, done(0));
    expect(atc.lookup(NO_PASID, KIB4)).toBeNull();
    expect(atc.lookup(NO_PASID, 2 * KIB4)).not.toBeNull();
    // A freed slot is used before anything is evicted.
    atc.invalidate(NO_PASID, 10 * KIB4, KIB4);
    atc.insert(NO_PASID, 0x100_0000, done(0));
    expect(atc.lookup(NO_PASID, 2 * KIB4)).not.toBeNull();
    expect(atc.count).toBe(SVA_ATC_ENTRIES);
  });

  it('a small capacity and bad capacities', () => {
    const atc = new DeviceAtc(2);
    atc.insert(1, 0, done(0));
    atc.insert(1, KIB4, done(0));
    atc.insert(1, 2 * KIB4, done(0));
    expect([atc.count, atc.lookup(1, 0), atc.lookup(1, KIB4) !== null]).toEqual([2, null, true]);
    for (const n of [0, -1, 1.5]) expect(() => new DeviceAtc(n)).toThrow(RangeError);
  });

  it('flush drops everything', () => {
    const atc = new DeviceAtc();
    atc.insert(1, 0, done(0));
    atc.insert(NO_PASID, 0, done(0));
    atc.flush();
    expect([atc.count, atc.lookup(1, 0), atc.lookup(NO_PASID, 0)]).toEqual([0, null, null]);
  });
});

describe('ATC invalidation', () => {
  /** An ATC with 4 KiB entries at pages 0..7 of 0x10_0000 for PASIDs 1 and 2 and without one, and a 2 MiB entry at 0x4000_0000 for PASID 1. */
  const filled = (): DeviceAtc => {
    const atc = new DeviceAtc();
    for (const p of [1, 2, NO_PASID]) for (let i = 0; i < 8; i++) atc.insert(p, 0x10_0000 + i * KIB4, done(0));
    atc.insert(1, 0x4000_0000, done(0, MIB2));
    return atc;
  };

  it('4 KiB: the one page of the PASID', () => {
    const atc = filled();
    expect(atc.invalidate(1, 0x10_3000, KIB4)).toBe(1);
    expect(atc.lookup(1, 0x10_3000)).toBeNull();
    expect([atc.lookup(1, 0x10_2000), atc.lookup(1, 0x10_4000), atc.lookup(2, 0x10_3000), atc.lookup(NO_PASID, 0x10_3000)].every((e) => e !== null)).toBe(true);
    expect(atc.count).toBe(24);
  });

  it('8 KiB (S bit, address bit 12 set): the aligned pair of pages', () => {
    const atc = filled();
    // The S-bit encoding 0x...1000 | S names the 8 KiB range at 0x10_2000: the address is aligned down.
    expect(atc.invalidate(2, 0x10_3000, 2 * KIB4)).toBe(2);
    expect([atc.lookup(2, 0x10_2000), atc.lookup(2, 0x10_3000)]).toEqual([null, null]);
    expect(atc.lookup(2, 0x10_1000)).not.toBeNull();
    expect(atc.lookup(2, 0x10_4000)).not.toBeNull();
  });

  it('NO_PASID invalidates only the entries without a PASID', () => {
    const atc = filled();
    expect(atc.invalidate(NO_PASID, 0, MIB2)).toBe(8);
    expect(atc.lookup(NO_PASID, 0x10_0000)).toBeNull();
    expect(atc.lookup(1, 0x10_0000)).not.toBeNull();
    expect(atc.count).toBe(17);
  });

  it('a 4 KiB invalidation inside a 2 MiB entry drops the whole entry; a 2 MiB one drops the pages inside', () => {
    const atc = filled();
    expect(atc.invalidate(1, 0x4010_0000, KIB4)).toBe(1);
    expect(atc.lookup(1, 0x4000_0000)).toBeNull();
    expect(atc.invalidate(1, 0x10_5000, MIB2)).toBe(8);
    expect(atc.lookup(1, 0x10_7000)).toBeNull();
    expect(atc.invalidate(1, 0x20_0000, MIB2)).toBe(0);
  });

  it('ALL_PASIDS: every entry in the range, with a PASID or without', () => {
    const atc = filled();
    expect(atc.invalidate(ALL_PASIDS, 0x10_6000, 2 * KIB4)).toBe(6);
    expect(atc.count).toBe(19);
    for (const p of [1, 2, NO_PASID]) expect(atc.lookup(p, 0x10_7000)).toBeNull();
  });

  it('2^64 at address 0 drops every entry of the PASID, wherever it is', () => {
    const atc = filled();
    atc.insert(1, 2 ** 64 - KIB4, done(0));
    expect(atc.invalidate(1, 0, 2 ** 64)).toBe(10);
    expect(atc.count).toBe(16);
    expect(atc.invalidate(ALL_PASIDS, 0, 2 ** 64)).toBe(16);
    expect(atc.count).toBe(0);
  });

  it('entries near 2^64 and sizes that are not powers of two (rounded up: dropping more is safe)', () => {
    const atc = new DeviceAtc();
    atc.insert(1, 2 ** 64 - KIB4, done(0));
    atc.insert(1, 2 ** 64 - 2 * MIB2, done(0, MIB2));
    expect(atc.invalidate(1, 2 ** 64 - KIB4, KIB4)).toBe(1);
    expect(atc.count).toBe(1);
    atc.insert(1, 0x3000, done(0));
    expect(atc.invalidate(1, 0x4000, 3 * KIB4)).toBe(0);
    expect(atc.invalidate(1, 0x1000, 3 * KIB4)).toBe(1);
    atc.insert(1, 0x3000, done(0));
    expect(atc.invalidate(1, 0x3000, 0)).toBe(1);
    expect(atc.invalidate(1, 0, Infinity)).toBe(1);
    expect(atc.count).toBe(0);
  });
});
