/**
 * QEMU-style qtest of the VT-d register file through the libqtest client, on
 * QEMU 11.1 and vtemu: `-device intel-iommu,scalable-mode=on,fsts=on` (QEMU
 * 11.1 names the first-stage property `fsts`; `x-flts` is gone).  CAP and ECAP
 * are the constants QEMU 11.1.3 reports; the whole block 0x00-0x100 and the
 * fault recording register (CAP.NFR = 0: one, at CAP.FRO 0x220) read the same
 * after system_reset as at power-on, after the guest wrote registers,
 * latched a root table, enabled queued invalidation and made the queue fault.
 */
import { describe, expect, it } from 'vitest';
import { LibQtest } from '../harness/libqtest.js';
import { libqtestTargets } from '../harness/libqtest-targets.js';

const TARGETS = libqtestTargets('test/libqtest/vtd-regs.test.ts');
const ARGS = '-machine q35 -device intel-iommu,scalable-mode=on,fsts=on';

/** q35's DMAR unit. */
const VTD = 0xfed9_0000;
/** Register offsets (VT-d spec 11.4). */
const R = {
  VER: 0x00, CAP: 0x08, ECAP: 0x10, GCMD: 0x18, GSTS: 0x1c, RTADDR: 0x20, FSTS: 0x34,
  FECTL: 0x38, FEDATA: 0x3c, FEADDR: 0x40, FEUADDR: 0x44, PMEN: 0x64, IQH: 0x80, IQT: 0x88, IQA: 0x90,
  IECTL: 0xa0, IEDATA: 0xa4, IEADDR: 0xa8, IEUADDR: 0xac, IRTA: 0xb8, FRCD0: 0x220,
} as const;
/** GCMD / GSTS bits. */
const G = { SRTP: 0x4000_0000, QIE: 0x0400_0000 } as const;
/** FSTS.IQE, FECTL/IECTL.IM. */
const FSTS_IQE = 0x10;
const IM = 0x8000_0000;

/** CAP and ECAP of scalable-mode=on,fsts=on on QEMU 11.1.3 (CAP.FS1GP, ECAP.FSTS/SMTS). */
const CAP = 0x81d2_008c_222f_0606n;
const ECAP = 0x0000_8800_00f0_0f4an;

/** Dwords that are not zero at power-on: VER 1.0, CAP, ECAP, FECTL.IM, IECTL.IM. */
const POWER_ON: Record<number, number> = {
  0x00: 0x10, 0x08: 0x222f_0606, 0x0c: 0x81d2_008c, 0x10: 0x00f0_0f4a, 0x14: 0x8800, 0x38: IM, 0xa0: IM,
};

/** Offsets of the dwords compared: 0x00-0xFC and FRCD 0 (0x220-0x22C). */
const OFFSETS = [...Array.from({ length: 0x40 }, (_, i) => i * 4), 0x220, 0x224, 0x228, 0x22c];

async function snapshot(q: LibQtest): Promise<Record<number, number>> {
  const out: Record<number, number> = {};
  for (const off of OFFSETS) out[off] = await q.readl(VTD + off);
  return out;
}

function expected(nonZero: Record<number, number>): Record<number, number> {
  return Object.fromEntries(OFFSETS.map((o) => [o, nonZero[o] ?? 0]));
}

describe.each(TARGETS)('libqtest intel-iommu registers on $name', ({ binary }) => {
  it.skipIf(!binary)('CAP and ECAP are QEMU 11.1’s constants', async () => {
    const q = await LibQtest.start(binary!, ARGS);
    try {
      expect(q.arch).toBe('x86_64');
      expect(await q.readq(VTD + R.CAP)).toBe(CAP);
      expect(await q.readq(VTD + R.ECAP)).toBe(ECAP);
    } finally {
      await q.quit();
    }
  });

  it.skipIf(!binary)('system_reset brings the block 0x00-0x100 and FRCD 0 back to power-on after guest writes', async () => {
    const q = await LibQtest.start(binary!, ARGS);
    try {
      expect(await snapshot(q)).toEqual(expected(POWER_ON));
      // Fault event and invalidation event registers, protected memory, a root table, interrupt remapping table.
      await q.writel(VTD + R.FECTL, 0);
      await q.writel(VTD + R.FEDATA, 0x4021);
      await q.writel(VTD + R.FEADDR, 0xfee0_0000);
      await q.writel(VTD + R.FEUADDR, 0x1);
      await q.writel(VTD + R.IECTL, 0);
      await q.writel(VTD + R.IEDATA, 0x4022);
      await q.writel(VTD + R.IEADDR, 0xfee0_1000);
      await q.writel(VTD + R.IEUADDR, 0x2);
      await q.writel(VTD + R.PMEN, 0x8000_0000);
      await q.writeq(VTD + R.RTADDR, 0x0123_4000 | 0x400);
      await q.writel(VTD + R.GCMD, G.SRTP);
      await q.writeq(VTD + R.IRTA, 0x0300_0007);
      // Queued invalidation over a zeroed 256-bit queue: one descriptor of type 0 is invalid (FSTS.IQE).
      await q.memset(0x0200_0000, 0x1000, 0);
      await q.writeq(VTD + R.IQA, 0x0200_0000 | 0x800);
      await q.writeq(VTD + R.IQT, 0);
      await q.writel(VTD + R.GCMD, G.SRTP | G.QIE);
      await q.writeq(VTD + R.IQT, 0x20);
      const written = await snapshot(q);
      expect(written[R.GSTS]).toBe(G.SRTP | G.QIE);
      expect(written[R.RTADDR]).toBe(0x0123_4400);
      expect(written[R.IQA]).toBe(0x0200_0800);
      expect(written[R.IQT]).toBe(0x20);
      expect(written[R.IQH]).toBe(0);
      expect(written[R.FSTS]).toBe(FSTS_IQE);
      expect(written[R.FEDATA]).toBe(0x4021);
      expect(written[R.IEADDR]).toBe(0xfee0_1000);
      expect(written[R.IRTA]).toBe(0x0300_0007);
      await q.systemReset();
      expect(await snapshot(q)).toEqual(expected(POWER_ON));
    } finally {
      await q.quit();
    }
  });
});
