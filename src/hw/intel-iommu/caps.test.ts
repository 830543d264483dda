/**
 * CAP / ECAP values (VT-d spec 11.4.2 / 11.4.3) for the property sets QEMU
 * documents (reference: qemu-intel-iommu.md, qemu-11-vtd.md) and the ones
 * measured on QEMU 11.1.3 in scalable mode, field by field and as whole
 * register values; then vtemu's own bits (x-pi, x-fs5lp, x-nested,
 * x-smpwc).  A few tests feed capValue / ecapValue resolved configs with
 * single fields set directly, combinations validation would refuse, to show
 * that each field counts alone.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../test/support/prng.js';
import { Cap, capValue, Ecap, ecapValue, MAMV, postedInterrupts, sagawFor } from './caps.js';
import { resolveIommuConfig, type IommuConfig } from './props.js';
import type { PropValues } from '../../machine/device-type.js';
import { Reg } from './reg-layout.js';

const cfg = (props: PropValues = {}): IommuConfig => resolveIommuConfig(props);
/** A resolved config with some fields set directly (past validation). */
const beyond = (over: Partial<IommuConfig>, props: PropValues = {}): IommuConfig => ({ ...cfg(props), ...over });

const hex = (v: bigint) => '0x' + v.toString(16).padStart(16, '0');
const field = (v: bigint, lo: number, width: number) => Number((v >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));
const bit = (v: bigint, n: number) => field(v, n, 1) === 1;

describe('CAP / ECAP: QEMU register values', () => {
  // [properties, CAP, ECAP]: values read from QEMU (HEAD / 11.1) with readq.
  const QEMU: [string, PropValues, bigint, bigint][] = [
    ['defaults (aw-bits 48, TCG)', {}, 0x80d2008c222f0606n, 0x0000_0000_00f0_0f4an],
    ['aw-bits=39', { 'aw-bits': 39 }, 0x80d2008c22260206n, 0x0000_0000_00f0_0f4an],
    ['intremap=on,caching-mode=on', { intremap: 'on', 'caching-mode': true }, 0x80d2008c222f0686n, 0x00f0_0f4an],
    ['intremap=off', { intremap: 'off' }, 0x80d2008c222f0606n, 0x0000_0000_0000_0f42n],
    ['device-iotlb=on', { 'device-iotlb': true }, 0x80d2008c222f0606n, 0x00f0_0f4en],
    ['dma-translation=off', { 'dma-translation': false }, 0x80d2008c222f0006n, 0x00f0_0f4an],
  ];
  for (const [name, props, cap, ecap] of QEMU) {
    it(name, () => {
      const c = cfg(props);
      expect(hex(capValue(c))).toBe(hex(cap));
      expect(hex(ecapValue(c))).toBe(hex(ecap));
    });
  }

  // Scalable mode, read from QEMU 11.1.3 with readq (test/diff/intel-iommu-regs-sm.test.ts compares them live).
  const SM = { 'scalable-mode': true } as const;
  const FS = { 'scalable-mode': true, fsts: true } as const;
  const SVM = { ...FS, svm: true, 'device-iotlb': true } as const;
  const QEMU_SM: [string, PropValues, bigint, bigint][] = [
    // SMTS 43 | SSTS 46 | SRS 31.
    ['scalable-mode=on', SM, 0x80d2008c222f0606n, 0x0000_4800_80f0_0f4an],
    // FSTS 47 instead of SSTS | SRS; CAP.FS1GP 56.
    ['+fsts=on', FS, 0x81d2008c222f0606n, 0x0000_8800_00f0_0f4an],
    // PASID 40, PSS 39:35 = pasid-bits - 1.
    ['+pasid-bits=8', { ...SM, 'pasid-bits': 8 }, 0x80d2008c222f0606n, 0x0000_4938_80f0_0f4an],
    ['+pasid-bits=20', { ...SM, 'pasid-bits': 20 }, 0x80d2008c222f0606n, 0x0000_4998_80f0_0f4an],
    ['+fsts=on,pasid-bits=8', { ...FS, 'pasid-bits': 8 }, 0x81d2008c222f0606n, 0x0000_8938_00f0_0f4an],
    // PRS 29 | NWFS 33 | PDS 42 with svm; DT 2 from device-iotlb.
    ['+svm=on,device-iotlb=on,fsts=on,pasid-bits=20', { ...SVM, 'pasid-bits': 20 }, 0x81d2008c222f0606n, 0x0000_8d9a_20f0_0f4en],
    ['+svm=on,device-iotlb=on,fsts=on,pasid-bits=8,fs1gp=off', { ...SVM, 'pasid-bits': 8, fs1gp: false }, 0x80d2008c222f0606n, 0x0000_8d3a_20f0_0f4en],
    // fs1gp counts only with fsts.
    ['+fs1gp=off', { ...SM, fs1gp: false }, 0x80d2008c222f0606n, 0x0000_4800_80f0_0f4an],
    ['+fsts=on,fs1gp=off', { ...FS, fs1gp: false }, 0x80d2008c222f0606n, 0x0000_8800_00f0_0f4an],
    ['+aw-bits=39', { ...SM, 'aw-bits': 39 }, 0x80d2008c22260206n, 0x0000_4800_80f0_0f4an],
    ['+caching-mode=on', { ...SM, 'caching-mode': true }, 0x80d2008c222f0686n, 0x0000_4800_80f0_0f4an],
    ['+fsts=on,caching-mode=on', { ...FS, 'caching-mode': true }, 0x81d2008c222f0686n, 0x0000_8800_00f0_0f4an],
    // SAGAW 0; FS1GP stays with fsts.
    ['+dma-translation=off', { ...SM, 'dma-translation': false }, 0x80d2008c222f0006n, 0x0000_4800_80f0_0f4an],
    ['+fsts=on,dma-translation=off', { ...FS, 'dma-translation': false }, 0x81d2008c222f0006n, 0x0000_8800_00f0_0f4an],
    ['+snoop-control=on', { ...SM, 'snoop-control': true }, 0x80d2008c222f0606n, 0x0000_4800_80f0_0fcan],
    ['+stale-tm=on,device-iotlb=on', { ...SM, 'stale-tm': true, 'device-iotlb': true }, 0x80d2008c222f0606n, 0x0000_4800_80f0_0f4en],
    ['+device-iotlb=on', { ...SM, 'device-iotlb': true }, 0x80d2008c222f0606n, 0x0000_4800_80f0_0f4en],
    ['+intremap=off', { ...SM, intremap: 'off' }, 0x80d2008c222f0606n, 0x0000_4800_8000_0f42n],
    ['+eim=on', { ...SM, eim: 'on' }, 0x80d2008c222f0606n, 0x0000_4800_80f0_0f5an],
    ['+eim=on,fsts=on,pasid-bits=16', { ...FS, eim: 'on', 'pasid-bits': 16 }, 0x81d2008c222f0606n, 0x0000_8978_00f0_0f5an],
  ];
  for (const [name, props, cap, ecap] of QEMU_SM) {
    it(`QEMU 11.1 scalable mode: ${name}`, () => {
      const c = cfg(props);
      expect(hex(capValue(c))).toBe(hex(cap));
      expect(hex(ecapValue(c))).toBe(hex(ecap));
    });
  }

  it('QEMU 7.2 default (aw-bits 39) differs only by ESRTPS (bit 63)', () => {
    expect(hex(capValue(cfg({ 'aw-bits': 39 })) & ~Cap.ESRTPS)).toBe(hex(0x00d2008c22260206n));
  });
});

describe('CAP fields', () => {
  it('decodes the default value field by field', () => {
    const cap = capValue(cfg());
    expect(field(cap, 0, 3)).toBe(6); // ND: 2^16 domains
    expect(bit(cap, 7)).toBe(false); // CM
    expect(field(cap, 8, 5)).toBe(0x6); // SAGAW: 39 and 48 bits
    expect(field(cap, 16, 6)).toBe(47); // MGAW
    expect(field(cap, 22, 2)).toBe(0); // ZLR, ISOCH
    expect(field(cap, 24, 10)).toBe(0x22); // FRO
    expect(field(cap, 34, 4)).toBe(0x3); // SLLPS: 2 MiB, 1 GiB
    expect(bit(cap, 39)).toBe(true); // PSI
    expect(field(cap, 40, 8)).toBe(0); // NFR - 1
    expect(field(cap, 48, 6)).toBe(18); // MAMV
    expect(bit(cap, 54)).toBe(true); // DWD
    expect(bit(cap, 55)).toBe(true); // DRD
    expect(bit(cap, 56)).toBe(false); // FS1GP
    expect(bit(cap, 59)).toBe(false); // PI
    expect(bit(cap, 63)).toBe(true); // ESRTPS
  });

  it('FRO points at the first fault recording register, ECAP.IRO at IVA', () => {
    const c = cfg();
    expect(field(capValue(c), 24, 10) * 16).toBe(Reg.FRCD0);
    expect(field(ecapValue(c), 8, 10) * 16).toBe(Reg.IVA);
    expect(field(ecapValue(c), 8, 10) * 16 + 8).toBe(Reg.IOTLB);
  });

  for (const [aw, sagaw, mgaw] of [
    [39, 0x2, 38],
    [48, 0x6, 47],
    [57, 0xe, 56],
  ] as const) {
    it(`aw-bits=${aw}: SAGAW 0x${sagaw.toString(16)}, MGAW ${mgaw}`, () => {
      const c = cfg({ 'aw-bits': aw });
      expect(sagawFor(c)).toBe(BigInt(sagaw));
      expect(field(capValue(c), 8, 5)).toBe(sagaw);
      expect(field(capValue(c), 16, 6)).toBe(mgaw);
    });
  }

  it('aw-bits=57 (beyond QEMU): the whole value', () => {
    expect(hex(capValue(cfg({ 'aw-bits': 57 })))).toBe(hex(0x80d2008c22380e06n));
  });

  it('dma-translation=off clears SAGAW for every width, nothing else', () => {
    for (const aw of [39, 48, 57]) {
      const on = cfg({ 'aw-bits': aw });
      const off = cfg({ 'aw-bits': aw, 'dma-translation': false });
      expect(sagawFor(off)).toBe(0n);
      expect(capValue(off)).toBe(capValue(on) & ~(0x1fn << 8n));
      expect(ecapValue(off)).toBe(ecapValue(on));
    }
  });

  it('NFR is the number of fault recording registers minus one (bits 47:40)', () => {
    expect(hex(capValue(cfg({ nfr: 4 })))).toBe(hex(0x80d2038c222f0606n));
    expect(field(capValue(cfg({ nfr: 2 })), 40, 8)).toBe(1);
    expect(field(capValue(cfg({ nfr: 222 })), 40, 8)).toBe(221);
  });

  it('dma-drain=off (deprecated, 11.1 always drains) clears DWD and DRD only', () => {
    expect(hex(capValue(cfg({ 'dma-drain': false })))).toBe(hex(0x8012008c222f0606n));
  });

  it('caching-mode sets CM (bit 7) only', () => {
    expect(capValue(cfg({ 'caching-mode': true }))).toBe(capValue(cfg()) | 0x80n);
    expect(ecapValue(cfg({ 'caching-mode': true }))).toBe(ecapValue(cfg()));
  });

  it('FS1GP needs both fsts and fs1gp', () => {
    expect(bit(capValue(beyond({ fsts: true, fs1gp: true })), 56)).toBe(true);
    expect(bit(capValue(beyond({ fsts: true, fs1gp: false })), 56)).toBe(false);
    expect(bit(capValue(beyond({ fsts: false, fs1gp: true })), 56)).toBe(false);
  });

  it('x-fs5lp sets CAP.FS5LP (bit 60), with fsts only', () => {
    const fs = cfg({ 'scalable-mode': true, fsts: true });
    const fs5 = cfg({ 'scalable-mode': true, fsts: true, 'x-fs5lp': true });
    expect(hex(capValue(fs5))).toBe(hex(0x91d2008c222f0606n));
    expect(capValue(fs5) ^ capValue(fs)).toBe(Cap.FS5LP);
    expect(ecapValue(fs5)).toBe(ecapValue(fs));
    // With aw-bits=57 (accepted with x-fs5lp only): SAGAW 0xe, MGAW 56 as well.
    expect(hex(capValue(cfg({ 'scalable-mode': true, fsts: true, 'x-fs5lp': true, 'aw-bits': 57 })))).toBe(hex(0x91d2008c22380e06n));
    // The field alone: no first stage, no FS5LP.
    expect(bit(capValue(beyond({ fs5lp: true })), 60)).toBe(false);
    expect(bit(capValue(beyond({ fs5lp: true, fsts: true })), 60)).toBe(true);
  });

  it('x-pi sets CAP.PI (bit 59) only with interrupt remapping', () => {
    expect(hex(capValue(cfg({ 'x-pi': true })))).toBe(hex(0x88d2008c222f0606n));
    expect(postedInterrupts(cfg({ 'x-pi': true }))).toBe(true);
    expect(postedInterrupts(cfg({ 'x-pi': true, intremap: 'off' }))).toBe(false);
    expect(capValue(cfg({ 'x-pi': true, intremap: 'off' }))).toBe(capValue(cfg()));
    expect(postedInterrupts(cfg({ 'x-pi': false }))).toBe(false);
    expect(postedInterrupts(cfg())).toBe(false);
    // Only a boolean true turns it on.
    expect(postedInterrupts(cfg({ 'x-pi': 'on' }))).toBe(false);
    expect(postedInterrupts(cfg({ 'x-pi': 1 }))).toBe(false);
  });
});

describe('ECAP fields', () => {
  it('decodes the default value field by field', () => {
    const e = ecapValue(cfg());
    expect(bit(e, 0)).toBe(false); // C
    expect(bit(e, 1)).toBe(true); // QI
    expect(bit(e, 2)).toBe(false); // DT
    expect(bit(e, 3)).toBe(true); // IR
    expect(bit(e, 4)).toBe(false); // EIM (off without KVM)
    expect(bit(e, 6)).toBe(true); // PT
    expect(bit(e, 7)).toBe(false); // SC
    expect(field(e, 8, 10)).toBe(0xf); // IRO
    expect(field(e, 20, 4)).toBe(0xf); // MHMV
    expect(e >> 24n).toBe(0n); // nothing scalable
  });

  it('intremap=off drops IR, MHMV and EIM', () => {
    expect(ecapValue(cfg({ intremap: 'off' }))).toBe(0xf42n);
    expect(ecapValue(cfg({ intremap: 'off', 'x-buggy-eim': true }))).toBe(0xf42n);
  });

  it('EIM (bit 4) with eim=on (11.1 accepts it without KVM) or the deprecated x-buggy-eim, and intremap', () => {
    expect(hex(ecapValue(cfg({ eim: 'on' })))).toBe(hex(0xf00f5an));
    expect(hex(ecapValue(cfg({ eim: 'on', intremap: 'on' })))).toBe(hex(0xf00f5an));
    expect(hex(ecapValue(cfg({ eim: 'auto' })))).toBe(hex(0xf00f4an));
    expect(hex(ecapValue(cfg({ 'x-buggy-eim': true })))).toBe(hex(0xf00f5an));
    expect(hex(ecapValue(cfg({ 'x-buggy-eim': true, eim: 'on' })))).toBe(hex(0xf00f5an));
    expect(hex(ecapValue(cfg({ 'x-buggy-eim': true, eim: 'off' })))).toBe(hex(0xf00f4an));
    // EIM only counts under IR (a config whose IR is off never shows it).
    expect(ecapValue(beyond({ intremap: false, eim: true }))).toBe(0xf42n);
  });

  it('pt=off (deprecated, 11.1 always sets PT) clears PT (bit 6); snoop-control sets SC (bit 7); device-iotlb sets DT (bit 2)', () => {
    expect(ecapValue(cfg({ pt: false }))).toBe(0xf00f0an);
    expect(ecapValue(cfg({ 'snoop-control': true }))).toBe(0xf00fcan);
    expect(ecapValue(cfg({ 'device-iotlb': true }))).toBe(0xf00f4en);
    expect(ecapValue(cfg({ 'device-iotlb': true, pt: false, 'snoop-control': true, intremap: 'off' }))).toBe(0xf86n);
  });

  it('scalable mode: SMTS with SRS|SSTS, or FSTS alone with fsts', () => {
    const sm = ecapValue(beyond({ scalableMode: true }));
    expect([bit(sm, 43), bit(sm, 31), bit(sm, 46), bit(sm, 47)]).toEqual([true, true, true, false]);
    const fs = ecapValue(beyond({ scalableMode: true, fsts: true }));
    expect([bit(fs, 43), bit(fs, 31), bit(fs, 46), bit(fs, 47)]).toEqual([true, false, false, true]);
    // fsts without scalable mode changes no ECAP bit.
    expect(ecapValue(beyond({ fsts: true }))).toBe(ecapValue(cfg()));
  });

  it('x-nested sets ECAP.NEST (bit 26) and SSTS (bit 46) next to FSTS; x-smpwc sets SMPWC (bit 48)', () => {
    const fs = cfg({ 'scalable-mode': true, fsts: true });
    const nest = ecapValue(cfg({ 'scalable-mode': true, fsts: true, 'x-nested': true }));
    expect(hex(nest)).toBe(hex(0x0000_c800_04f0_0f4an));
    expect(nest ^ ecapValue(fs)).toBe(Ecap.NEST | Ecap.SSTS);
    // SRS stays with fsts=off only, as QEMU sets it.
    expect(bit(nest, 31)).toBe(false);
    expect(capValue(cfg({ 'scalable-mode': true, fsts: true, 'x-nested': true }))).toBe(capValue(fs));
    const smpwc = ecapValue(cfg({ 'scalable-mode': true, 'x-smpwc': true }));
    expect(hex(smpwc)).toBe(hex(0x0001_4800_80f0_0f4an));
    expect(smpwc ^ ecapValue(cfg({ 'scalable-mode': true }))).toBe(Ecap.SMPWC);
    expect(hex(ecapValue(cfg({ 'scalable-mode': true, fsts: true, 'x-smpwc': true, 'x-nested': true })))).toBe(hex(0x0001_c800_04f0_0f4an));
    // The fields count only in scalable mode.
    expect(ecapValue(beyond({ nested: true, smpwc: true }))).toBe(ecapValue(cfg()));
  });

  it('PASID (bit 40) and PSS = pasid-bits - 1 (bits 39:35); PRS, NWFS, PDS with svm', () => {
    const p = ecapValue(beyond({ pasidBits: 8 }));
    expect(bit(p, 40)).toBe(true);
    expect(field(p, 35, 5)).toBe(7);
    expect(p).toBe(ecapValue(cfg()) | (1n << 40n) | (7n << 35n));
    expect(field(ecapValue(beyond({ pasidBits: 1 })), 35, 5)).toBe(0);
    expect(field(ecapValue(beyond({ pasidBits: 20 })), 35, 5)).toBe(19);
    expect(ecapValue(beyond({ pasidBits: 0 }))).toBe(ecapValue(cfg()));
    const s = ecapValue(beyond({ svm: true }));
    expect(s).toBe(ecapValue(cfg()) | (1n << 29n) | (1n << 33n) | (1n << 42n));
  });
});

describe('named fields', () => {
  it('CAP bit positions (spec 11.4.2)', () => {
    expect(Cap.ND).toBe(6n);
    expect(Cap.CM).toBe(1n << 7n);
    expect([Cap.SAGAW_SHIFT, Cap.SAGAW_39, Cap.SAGAW_48, Cap.SAGAW_57]).toEqual([8n, 2n, 4n, 8n]);
    expect([Cap.MGAW_SHIFT, Cap.FRO_SHIFT, Cap.FRO]).toEqual([16n, 24n, 0x22n]);
    expect([Cap.SLLPS_2M, Cap.SLLPS_1G, Cap.PSI]).toEqual([1n << 34n, 1n << 35n, 1n << 39n]);
    expect([Cap.NFR_SHIFT, Cap.MAMV_SHIFT, Cap.MAMV]).toEqual([40n, 48n, 18n]);
    expect([Cap.DWD, Cap.DRD, Cap.FS1GP, Cap.PI, Cap.FS5LP, Cap.ESRTPS]).toEqual([1n << 54n, 1n << 55n, 1n << 56n, 1n << 59n, 1n << 60n, 1n << 63n]);
  });

  it('ECAP bit positions (spec 11.4.3)', () => {
    expect([Ecap.QI, Ecap.DT, Ecap.IR, Ecap.EIM, Ecap.PT, Ecap.SC]).toEqual([2n, 4n, 8n, 16n, 64n, 128n]);
    expect([Ecap.IRO_SHIFT, Ecap.IRO, Ecap.MHMV_SHIFT, Ecap.MHMV]).toEqual([8n, 0xfn, 20n, 0xfn]);
    expect([Ecap.PRS, Ecap.SRS, Ecap.NWFS]).toEqual([1n << 29n, 1n << 31n, 1n << 33n]);
    expect([Ecap.PSS_SHIFT, Ecap.PSS, Ecap.PASID, Ecap.PDS]).toEqual([35n, 7n, 1n << 40n, 1n << 42n]);
    expect([Ecap.SMTS, Ecap.SSTS, Ecap.FSTS, Ecap.SMPWC, Ecap.NEST]).toEqual([1n << 43n, 1n << 46n, 1n << 47n, 1n << 48n, 1n << 26n]);
  });

  it('MAMV is CAP.MAMV as a number', () => {
    expect(MAMV).toBe(18);
    expect(field(capValue(cfg()), 48, 6)).toBe(MAMV);
  });
});

describe('random property sets (seeded)', () => {
  it('every field follows its property and nothing else', () => {
    const seed = 0x5eed_ca95;
    const rng = new Rng(seed);
    for (let n = 0; n < 300; n++) {
      const props = {
        'aw-bits': rng.pick([39, 48, 57]),
        'caching-mode': rng.chance(0.5),
        'device-iotlb': rng.chance(0.5),
        'dma-drain': rng.chance(0.5),
        'dma-translation': rng.chance(0.5),
        intremap: rng.pick(['on', 'off', 'auto']),
        'x-buggy-eim': rng.chance(0.5),
        pt: rng.chance(0.5),
        'snoop-control': rng.chance(0.5),
        nfr: rng.range(1, 222),
        'x-pi': rng.chance(0.5),
      } as const;
      const c = cfg(props);
      const cap = capValue(c);
      const ecap = ecapValue(c);
      const ir = props.intremap !== 'off';
      const what = `seed ${seed} #${n} ${JSON.stringify(props)}`;
      const aw = props['aw-bits'];
      const sagaw = props['dma-translation'] ? (aw === 39 ? 2 : aw === 48 ? 6 : 14) : 0;
      expect(field(cap, 0, 3), what).toBe(6);
      expect(bit(cap, 7), what).toBe(props['caching-mode']);
      expect(field(cap, 8, 5), what).toBe(sagaw);
      expect(field(cap, 16, 6), what).toBe(aw - 1);
      expect(field(cap, 24, 10), what).toBe(0x22);
      expect(field(cap, 34, 6), what).toBe(0b100011); // SLLPS 2M|1G, PSI
      expect(field(cap, 40, 8), what).toBe(props.nfr - 1);
      expect(field(cap, 48, 6), what).toBe(18);
      expect(bit(cap, 54) && bit(cap, 55), what).toBe(props['dma-drain']);
      expect(bit(cap, 54) || bit(cap, 55), what).toBe(props['dma-drain']);
      expect(bit(cap, 56), what).toBe(false);
      expect(bit(cap, 59), what).toBe(ir && props['x-pi']);
      expect(bit(cap, 63), what).toBe(true);
      expect(cap & ((1n << 6n) | (3n << 22n) | (3n << 57n) | (7n << 60n)), what).toBe(0n);
      expect(bit(ecap, 1), what).toBe(true);
      expect(bit(ecap, 2), what).toBe(props['device-iotlb']);
      expect(bit(ecap, 3), what).toBe(ir);
      expect(bit(ecap, 4), what).toBe(ir && props['x-buggy-eim']);
      expect(bit(ecap, 6), what).toBe(props.pt);
      expect(bit(ecap, 7), what).toBe(props['snoop-control']);
      expect(field(ecap, 8, 10), what).toBe(0xf);
      expect(field(ecap, 20, 4), what).toBe(ir ? 0xf : 0);
      expect(ecap >> 24n, what).toBe(0n);
      expect(ecap & 0x21n, what).toBe(0n); // C, bit 5
    }
  });
});

describe('random scalable property sets (seeded)', () => {
  it('every scalable field follows its property, for every set validation accepts', () => {
    const seed = 0x5ca1_ab1e;
    const rng = new Rng(seed);
    let accepted = 0;
    const seen = new Set<string>();
    for (let n = 0; n < 600; n++) {
      const props = {
        'scalable-mode': rng.chance(0.8),
        fsts: rng.chance(0.5),
        fs1gp: rng.chance(0.5),
        'aw-bits': rng.pick([39, 48, 57]),
        'pasid-bits': rng.pick([0, 0, 1, 8, 16, 20]),
        svm: rng.chance(0.3),
        'device-iotlb': rng.chance(0.5),
        'dma-translation': rng.chance(0.8),
        'caching-mode': rng.chance(0.5),
        'x-fs5lp': rng.chance(0.3),
        'x-nested': rng.chance(0.3),
        'x-smpwc': rng.chance(0.3),
      } as const;
      let c: IommuConfig;
      try {
        c = cfg(props);
      } catch {
        continue;
      }
      accepted++;
      for (const k of ['fsts', 'svm', 'x-fs5lp', 'x-nested', 'x-smpwc'] as const) if (props[k]) seen.add(k);
      if (props['aw-bits'] === 57 && props.fsts) seen.add('fsts,aw-bits=57');
      const what = `seed ${seed} #${n} ${JSON.stringify(props)}`;
      const cap = capValue(c);
      const ecap = ecapValue(c);
      const sm = props['scalable-mode'];
      const fs = props.fsts;
      expect(bit(cap, 56), what).toBe(fs && props.fs1gp);
      expect(bit(cap, 60), what).toBe(props['x-fs5lp']);
      expect(bit(cap, 7), what).toBe(props['caching-mode']);
      expect(field(cap, 8, 5), what).toBe(props['dma-translation'] ? { 39: 2, 48: 6, 57: 14 }[props['aw-bits']] : 0);
      expect(bit(ecap, 43), what).toBe(sm);
      expect(bit(ecap, 47), what).toBe(fs);
      expect(bit(ecap, 46), what).toBe(sm && (!fs || props['x-nested']));
      expect(bit(ecap, 31), what).toBe(sm && !fs);
      expect(bit(ecap, 26), what).toBe(props['x-nested']);
      expect(bit(ecap, 48), what).toBe(props['x-smpwc']);
      expect(bit(ecap, 40), what).toBe(props['pasid-bits'] > 0);
      expect(field(ecap, 35, 5), what).toBe(Math.max(props['pasid-bits'] - 1, 0));
      for (const b of [29, 33, 42]) expect(bit(ecap, b), what).toBe(props.svm);
      expect(bit(ecap, 2), what).toBe(props['device-iotlb']);
      // Nothing else above bit 24 and no reserved CAP bit.
      expect(ecap & ~((1n << 24n) - 1n) & ~((1n << 26n) | (1n << 29n) | (1n << 31n) | (1n << 33n) | (0x3fn << 35n) | (1n << 42n) | (1n << 43n) | (7n << 46n)), what).toBe(0n);
      expect(cap & ((1n << 6n) | (3n << 22n) | (3n << 57n) | (3n << 61n)), what).toBe(0n);
    }
    // The generator reaches many accepted sets, of every kind checked above.
    expect(accepted).toBeGreaterThan(60);
    expect([...seen].sort()).toEqual(['fsts', 'fsts,aw-bits=57', 'svm', 'x-fs5lp', 'x-nested', 'x-smpwc']);
  });
});
