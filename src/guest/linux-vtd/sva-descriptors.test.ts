/**
 * sva-descriptors.ts: the words of descriptors 5-9 as Linux builds them.
 */
import { describe, expect, it } from 'vitest';
import { DEVTLB_ALL_ORDER, devTlbPasidDesc, fenceWaitDesc, pageResponseDesc, pasidCacheDesc, piotlbDesc } from './sva-descriptors.js';

describe('descriptor words', () => {
  it('PASID-IOTLB: all of a PASID, or page-selective with AM and the address aligned to it', () => {
    expect(piotlbDesc(1, 5)).toMatchObject({ q0: 0x5_0001_0026n, q1: 0n });
    expect(piotlbDesc(1, 5, 0x1234_5000, 1)).toMatchObject({ q0: 0x5_0001_0036n, q1: 0x1234_5000n });
    expect(piotlbDesc(2, 5, 0x1234_5000, 3, true)).toMatchObject({ q0: 0x5_0002_0036n, q1: 0x1234_4000n | 0x40n | 2n });
  });

  it('PASID-cache, PASID-selective', () => {
    expect(pasidCacheDesc(1, 0x1234)).toMatchObject({ q0: 0x1234_0001_0017n, q1: 0n });
  });

  it('PASID device-TLB: one page without S; 2^n pages with S and n-1 address bits set from bit 12', () => {
    expect(devTlbPasidDesc(0x10, 1, 32, 0x5000, 0)).toMatchObject({ q0: 0x1_0010_0008n, q1: 0x5000n });
    expect(devTlbPasidDesc(0x10, 1, 8, 0x8000, 1)).toMatchObject({ q0: 0x1_0010_0088n, q1: 0x8800n });
    expect(devTlbPasidDesc(0x10, 1, 32, 0x8000, 3)).toMatchObject({ q1: 0xb800n });
    expect(devTlbPasidDesc(0x10, 1, 32, 0, DEVTLB_ALL_ORDER)).toMatchObject({ q1: 0x7fff_ffff_ffff_f800n });
  });

  it('page-group response: PP, code, RID, PASID; PRGI and LPIG', () => {
    expect(pageResponseDesc(0x10, 1, 4, 0, true)).toMatchObject({ q0: 0x1_0010_0019n, q1: 0x24n });
    expect(pageResponseDesc(0x10, 1, 5, 1, true)).toMatchObject({ q0: 0x1_0010_1019n, q1: 0x2cn });
    expect(pageResponseDesc(0x210, undefined, 0x1ff, 0xf, false)).toMatchObject({ q0: 0x210_f009n, q1: 0xff8n });
  });

  it('the drain\'s fenced wait: FN and status data, no status write, no PD', () => {
    expect(fenceWaitDesc()).toMatchObject({ q0: 0x2_0000_0045n, q1: 0n, what: 'wait FN' });
  });

});
