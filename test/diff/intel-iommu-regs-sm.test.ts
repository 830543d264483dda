/**
 * Differential tests of the VT-d register file in scalable mode against
 * QEMU 11.1: for each scalable property set, CAP and ECAP (the values
 * measured on 11.1.3, written out as expectations), every register after
 * reset, the write masks (32-bit all-ones / zero, then 64-bit all-ones /
 * pattern / zero on every register but GCMD) and the file after the sweep.
 * With svm=on the page-request registers (0xC0-0xEC) exist; their masks,
 * reset values (PECTL.IM is clear at reset, unlike FECTL and IECTL) and
 * PRS's write-1-to-clear bits have a scenario of their own, reply by reply.
 * Register level only: GCMD.SRTP with RTADDR.SMT / TTM, IQA.DW latched by
 * QIE, an IQT with bit 4 set in a 256-bit queue (IQE, FECTL.IP, FSTS
 * write-1-to-clear); no GCMD.TE, no DMA, no page request.
 *
 * The three scalable-mode properties vtemu has beyond QEMU (x-fs5lp,
 * x-nested, x-smpwc) are off by default; a last scenario shows each set
 * changes CAP/ECAP by its bit only (vtemu alone: QEMU has no such property).
 */
import { describe, expect, it } from 'vitest';
import { DMAR_BASE, EventCtl, Fsts, Gcmd, Gsts, Iqa, Reg, REG_FILE_SIZE, Rtaddr } from '../../src/hw/intel-iommu/reg-layout.js';
import { checkTranscripts, hex, needQemu, type Step } from '../harness/index.js';

const qemu = needQemu('11.1', 'intel-iommu scalable-mode register differential tests');

/** qtest address of a VT-d register. */
const reg = (off: number) => hex(DMAR_BASE + off);
const okVal = (v: bigint | number) => `OK 0x${BigInt(v).toString(16).padStart(16, '0')}`;
const OK = 'OK';

const rl = (off: number, v?: number): Step => (v === undefined ? `readl ${reg(off)}` : { cmd: `readl ${reg(off)}`, expect: okVal(v >>> 0) });
const rq = (off: number, v?: bigint): Step => (v === undefined ? `readq ${reg(off)}` : { cmd: `readq ${reg(off)}`, expect: okVal(v) });
const wl = (off: number, v: number): Step => ({ cmd: `writel ${reg(off)} ${hex(v >>> 0)}`, expect: OK });
const wq = (off: number, v: bigint): Step => ({ cmd: `writeq ${reg(off)} ${hex(v)}`, expect: OK });

const ALL_ONES_64 = 0xffff_ffff_ffff_ffffn;
const PATTERN_64 = 0x5a5a_5a5a_5a5a_5a5an;

/** Every dword (readl) and qword (readq) of the register file. */
const dumpAll = (): Step[] => {
  const out: Step[] = [];
  for (let off = 0; off < REG_FILE_SIZE; off += 4) out.push(rl(off));
  for (let off = 0; off < REG_FILE_SIZE; off += 8) out.push(rq(off));
  return out;
};

/** Registers the 8-byte sweep leaves out: GCMD (its writes act). */
const NOT_SWEPT_64: readonly number[] = [Reg.GCMD];

/** Write masks: each dword all-ones then zero, each qword all-ones, a pattern, zero; GCMD excluded. */
const maskSweep = (): Step[] => {
  const out: Step[] = [];
  for (let off = 0; off < REG_FILE_SIZE; off += 4) {
    if (off === Reg.GCMD) continue;
    out.push(wl(off, 0xffff_ffff), rl(off), rq(off & ~7), wl(off, 0), rl(off));
  }
  for (let off = 0; off < REG_FILE_SIZE; off += 8) {
    if (NOT_SWEPT_64.includes(off)) continue;
    out.push(wq(off, ALL_ONES_64), rq(off), wq(off, PATTERN_64), rq(off), wq(off, 0n), rq(off));
  }
  return out;
};

/** A property set with the CAP and ECAP QEMU 11.1.3 reports for it. */
interface SmSet {
  readonly props: string;
  readonly cap: bigint;
  readonly ecap: bigint;
}

/** Measured on QEMU 11.1.3 (readq 0xfed90008 / 0xfed90010). */
const SETS: readonly SmSet[] = [
  // SMTS 43, SSTS 46, SRS 31 on top of the legacy ECAP 0xf00f4a.
  { props: 'scalable-mode=on', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_4800_80f0_0f4an },
  // FSTS 47 instead of SSTS/SRS; CAP.FS1GP 56.
  { props: 'scalable-mode=on,fsts=on', cap: 0x81d2_008c_222f_0606n, ecap: 0x0000_8800_00f0_0f4an },
  // PASID 40, PSS 39:35 = 7.
  { props: 'scalable-mode=on,pasid-bits=8', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_4938_80f0_0f4an },
  // PSS = 19.
  { props: 'scalable-mode=on,pasid-bits=20', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_4998_80f0_0f4an },
  // PRS 29, NWFS 33, PDS 42, DT 2: the page-request registers exist.
  { props: 'scalable-mode=on,svm=on,device-iotlb=on,fsts=on,pasid-bits=20', cap: 0x81d2_008c_222f_0606n, ecap: 0x0000_8d9a_20f0_0f4en },
  { props: 'scalable-mode=on,svm=on,device-iotlb=on,fsts=on,pasid-bits=8,fs1gp=off', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_8d3a_20f0_0f4en },
  // fs1gp only counts with fsts.
  { props: 'scalable-mode=on,fs1gp=off', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_4800_80f0_0f4an },
  { props: 'scalable-mode=on,fsts=on,fs1gp=off', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_8800_00f0_0f4an },
  { props: 'scalable-mode=on,aw-bits=39', cap: 0x80d2_008c_2226_0206n, ecap: 0x0000_4800_80f0_0f4an },
  { props: 'scalable-mode=on,caching-mode=on', cap: 0x80d2_008c_222f_0686n, ecap: 0x0000_4800_80f0_0f4an },
  // SAGAW 0; fsts keeps FS1GP.
  { props: 'scalable-mode=on,dma-translation=off', cap: 0x80d2_008c_222f_0006n, ecap: 0x0000_4800_80f0_0f4an },
  { props: 'scalable-mode=on,fsts=on,dma-translation=off', cap: 0x81d2_008c_222f_0006n, ecap: 0x0000_8800_00f0_0f4an },
  { props: 'scalable-mode=on,snoop-control=on', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_4800_80f0_0fcan },
  { props: 'scalable-mode=on,stale-tm=on,device-iotlb=on', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_4800_80f0_0f4en },
  // No IR, MHMV.
  { props: 'scalable-mode=on,intremap=off', cap: 0x80d2_008c_222f_0606n, ecap: 0x0000_4800_8000_0f42n },
  { props: 'scalable-mode=on,eim=on,fsts=on,pasid-bits=16', cap: 0x81d2_008c_222f_0606n, ecap: 0x0000_8978_00f0_0f5an },
];

const SVM = 'scalable-mode=on,svm=on,device-iotlb=on,fsts=on,pasid-bits=20';

async function diff(props: string, steps: Step[]): Promise<void> {
  const r = await checkTranscripts(['-device', `intel-iommu,${props}`], steps, { qemu });
  expect(r.unmet).toEqual([]);
  expect(r.difference).toBeNull();
  expect(r.vtemu.length).toBe(steps.length);
}

describe.skipIf(!qemu)('intel-iommu scalable-mode registers vs QEMU 11.1', () => {
  for (const s of SETS) {
    it(`reset values and write masks: ${s.props}`, async () => {
      await diff(s.props, [rq(Reg.CAP, s.cap), rq(Reg.ECAP, s.ecap), ...dumpAll(), ...maskSweep(), ...dumpAll()]);
    });
  }
});

describe('intel-iommu scalable-mode registers, reply by reply (vtemu always, QEMU 11.1 when present)', () => {
  it('svm=on: the page-request registers, their masks and PRS write-1-to-clear', async () => {
    const steps: Step[] = [
      // Reset: all 0, PECTL.IM included (FECTL and IECTL reset with IM set).
      rq(Reg.PQH, 0n), rq(Reg.PQT, 0n), rq(Reg.PQA, 0n), rl(Reg.PRS, 0), rl(Reg.PECTL, 0),
      rl(Reg.PEDATA, 0), rl(Reg.PEADDR, 0), rl(Reg.PEUADDR, 0),
      rl(Reg.FECTL, EventCtl.IM), rl(Reg.IECTL, EventCtl.IM),
      // PQH / PQT: index bits 18:5 (32-byte descriptors); PQA: base 63:12 and PQS 2:0.
      wq(Reg.PQH, ALL_ONES_64), rq(Reg.PQH, 0x7_ffe0n),
      wq(Reg.PQT, ALL_ONES_64), rq(Reg.PQT, 0x7_ffe0n),
      wl(Reg.PQT + 4, 0xffff_ffff), rq(Reg.PQT, 0x7_ffe0n),
      wq(Reg.PQA, ALL_ONES_64), rq(Reg.PQA, 0xffff_ffff_ffff_f007n),
      wl(Reg.PQA, 0x1234_5ff8), rq(Reg.PQA, 0xffff_ffff_1234_5000n),
      // PRS: nothing writable, PPR / PRO write-1-to-clear (nothing pending: stays 0).
      wl(Reg.PRS, 0xffff_ffff), rl(Reg.PRS, 0),
      // PECTL: only IM writable (IP is set by page requests only).
      wl(Reg.PECTL, 0xffff_ffff), rl(Reg.PECTL, EventCtl.IM),
      wl(Reg.PECTL, 0), rl(Reg.PECTL, 0),
      // PEDATA 15:0, PEADDR 31:2, PEUADDR all 32 bits (FEUADDR / IEUADDR are read-only).
      wl(Reg.PEDATA, 0xffff_ffff), rl(Reg.PEDATA, 0xffff),
      wl(Reg.PEADDR, 0xffff_ffff), rl(Reg.PEADDR, 0xffff_fffc),
      wl(Reg.PEUADDR, 0xffff_ffff), rl(Reg.PEUADDR, 0xffff_ffff),
      wl(Reg.FEUADDR, 0xffff_ffff), rl(Reg.FEUADDR, 0),
      wl(Reg.IEUADDR, 0xffff_ffff), rl(Reg.IEUADDR, 0),
      // 8-byte accesses: PEADDR+PEUADDR as one quad; the dword before PRS (0xD8) is not a register.
      wq(Reg.PEADDR, 0x1234_5678_9abc_def3n), rq(Reg.PEADDR, 0x1234_5678_9abc_def0n),
      wq(Reg.PRS - 4, ALL_ONES_64), rq(Reg.PRS - 4, 0n),
      // Unaligned 8-byte accesses are split in two dwords: PRS then PECTL; PEUADDR then IVA (write-only).
      wq(Reg.PRS, ALL_ONES_64), rl(Reg.PRS, 0), rl(Reg.PECTL, EventCtl.IM),
      wq(Reg.PEUADDR, 0x1111_1111_2222_2222n), rl(Reg.PEUADDR, 0x2222_2222), rq(Reg.PEUADDR, 0x2222_2222n), rq(Reg.IVA, 0n),
      wl(Reg.PECTL, 0),
      // Reset-to-zero writes.
      wq(Reg.PQH, 0n), wq(Reg.PQT, 0n), wq(Reg.PQA, 0n), wl(Reg.PEDATA, 0), wq(Reg.PEADDR, 0n),
      rq(Reg.PQH, 0n), rq(Reg.PQT, 0n), rq(Reg.PQA, 0n), rq(Reg.PEDATA - 4, 0n), rq(Reg.PEADDR, 0n),
    ];
    await diff(SVM, steps);
  });

  // QEMU 11.1 truncates an 8-byte PECTL write to PECTL, as for FECTL and IECTL.
  it('svm=on: an 8-byte write to PECTL stores PECTL only, PEDATA keeps its value', async () => {
    const steps: Step[] = [
      wl(Reg.PEDATA, 0x1234),
      wq(Reg.PECTL, ALL_ONES_64), rq(Reg.PECTL, 0x1234_8000_0000n),
      wq(Reg.PECTL, 0n), rq(Reg.PECTL, 0x1234_0000_0000n),
    ];
    await diff(SVM, steps);
  });

  it('svm=off: the page-request offsets read 0 and ignore writes', async () => {
    const steps: Step[] = [];
    for (const off of [Reg.PQH, Reg.PQT, Reg.PQA, Reg.PRS - 4, Reg.PECTL, Reg.PEADDR]) {
      steps.push(wq(off, ALL_ONES_64), rq(off, 0n));
    }
    for (const off of [Reg.PRS, Reg.PECTL, Reg.PEDATA, Reg.PEADDR, Reg.PEUADDR]) steps.push(wl(off, 0xffff_ffff), rl(off, 0));
    await diff('scalable-mode=on,fsts=on,pasid-bits=20,device-iotlb=on', steps);
  });

  it('RTADDR: TTM (11:10) writable, SRTP latches it, GSTS.RTPS; IQA.DW latched by QIE', async () => {
    const g = (v: number) => wl(Reg.GCMD, v);
    const base = 0x100_0000n;
    const smt = BigInt(Rtaddr.SMT);
    const steps: Step[] = [
      wq(Reg.RTADDR, ALL_ONES_64), rq(Reg.RTADDR, 0xffff_ffff_ffff_fc00n),
      wq(Reg.RTADDR, base | smt | 0x3ffn), rq(Reg.RTADDR, base | smt),
      g(Gcmd.SRTP), rl(Reg.GSTS, Gsts.RTPS), rq(Reg.RTADDR, base | smt),
      // TTM = 11b (reserved) and 10b: stored as written, SRTP still reports RTPS.
      wq(Reg.RTADDR, base | (3n << 10n)), g(Gcmd.SRTP), rl(Reg.GSTS, Gsts.RTPS), rq(Reg.RTADDR, base | (3n << 10n)),
      wq(Reg.RTADDR, base | (2n << 10n)), g(Gcmd.SRTP), rl(Reg.GSTS, Gsts.RTPS), rq(Reg.RTADDR, base | (2n << 10n)),
      wq(Reg.RTADDR, base | smt), g(Gcmd.SRTP), rl(Reg.GSTS, Gsts.RTPS),
      // IQA: DW (11) and QS (2:0) read back at once, the base once QIE latches it.
      wq(Reg.IQA, 0x200_0000n | BigInt(Iqa.DW) | 0x7fn), rq(Reg.IQA, BigInt(Iqa.DW) | 0x7n),
      g(Gcmd.QIE), rl(Reg.GSTS, Gsts.RTPS | Gsts.QIES), rq(Reg.IQA, 0x200_0000n | BigInt(Iqa.DW) | 0x7n),
      rq(Reg.IQH, 0n), rq(Reg.IQT, 0n),
    ];
    await diff('scalable-mode=on', steps);
  });

  it('256-bit queue, IQT bit 4: IQE, FECTL.IP; FSTS write-1-to-clear clears both', async () => {
    const steps: Step[] = [
      wq(Reg.IQA, 0x200_0000n | BigInt(Iqa.DW)),
      wl(Reg.GCMD, Gcmd.QIE), rl(Reg.GSTS, Gsts.QIES),
      // A tail that is not 32-byte aligned: IQE (interrupt masked, so only IP).
      wq(Reg.IQT, 0x10n), rl(Reg.FSTS, Fsts.IQE), rl(Reg.FECTL, EventCtl.IM | EventCtl.IP),
      rq(Reg.IQH, 0n), rq(Reg.IQT, 0x10n),
      // Writing FSTS's read-only bits changes nothing; IQE is write-1-to-clear and takes IP with it.
      wl(Reg.FSTS, ~Fsts.IQE), rl(Reg.FSTS, Fsts.IQE), rl(Reg.FECTL, EventCtl.IM | EventCtl.IP),
      wl(Reg.FSTS, 0xffff_ffff), rl(Reg.FSTS, 0), rl(Reg.FECTL, EventCtl.IM),
      wl(Reg.FECTL, 0), rl(Reg.FECTL, 0),
    ];
    await diff('scalable-mode=on', steps);
  });
});

describe('beyond QEMU: x-fs5lp, x-nested, x-smpwc (vtemu only; QEMU 11.1 has no such property)', () => {
  /** fsts=on's CAP / ECAP (QEMU 11.1 row above) plus exactly the extension's bits. */
  const FS_CAP = 0x81d2_008c_222f_0606n;
  const FS_ECAP = 0x0000_8800_00f0_0f4an;
  const FS5LP = 1n << 60n;
  const NEST = 1n << 26n;
  const SSTS = 1n << 46n;
  const SMPWC = 1n << 48n;
  const cases: [string, bigint, bigint][] = [
    ['x-fs5lp=on', FS_CAP | FS5LP, FS_ECAP],
    ['x-nested=on', FS_CAP, FS_ECAP | NEST | SSTS],
    ['x-smpwc=on', FS_CAP, FS_ECAP | SMPWC],
    ['x-fs5lp=on,x-nested=on,x-smpwc=on', FS_CAP | FS5LP, FS_ECAP | NEST | SSTS | SMPWC],
  ];
  for (const [extra, cap, ecap] of cases) {
    it(`scalable-mode=on,fsts=on,${extra}: CAP / ECAP through the front door, page-request offsets still absent`, async () => {
      const steps: Step[] = [rq(Reg.CAP, cap), rq(Reg.ECAP, ecap), wl(Reg.PECTL, 0xffff_ffff), rl(Reg.PECTL, 0)];
      const r = await checkTranscripts(['-device', `intel-iommu,scalable-mode=on,fsts=on,${extra}`], steps, { qemu: false });
      expect(r.unmet).toEqual([]);
      expect(r.vtemu.length).toBe(steps.length);
    });
  }

  it('x-fs5lp=on lets fsts=on take aw-bits=57 (SAGAW 57/48/39, MGAW 56)', async () => {
    const steps: Step[] = [rq(Reg.CAP, 0x91d2_008c_2238_0e06n)];
    const r = await checkTranscripts(['-device', 'intel-iommu,scalable-mode=on,fsts=on,x-fs5lp=on,aw-bits=57'], steps, { qemu: false });
    expect(r.unmet).toEqual([]);
  });
});
