/**
 * Differential tests of the VT-d register file against QEMU 11.1: values
 * after reset for several property sets, write masks of every register
 * (32- and 64-bit writes), and a GCMD sequence.  11.1 sets CAP.ESRTPS (bit
 * 63) as vtemu does, so CAP is compared whole (the 7.2 suite masked it).
 * 11.1's legacy-mode deltas from 7.2 have their own scenario with the
 * replies written out (IQA.DW read back, CAP.DRD/DWD and ECAP.PT always
 * set, eim=on without KVM, 8-byte writes to 32-bit registers truncated).
 */
import { describe, expect, it } from 'vitest';
import { DMAR_BASE, Gcmd, Reg, REG_FILE_SIZE } from '../../src/hw/intel-iommu/reg-layout.js';
import { needQemu, checkTranscripts, diffTranscripts, type Step } from '../harness/index.js';

const qemu = needQemu('11.1', 'intel-iommu register differential tests');

/** qtest address of a VT-d register. */
const reg = (off: number) => '0x' + (DMAR_BASE + off).toString(16);

const q16 = (v: bigint | number) => `OK 0x${BigInt(v).toString(16).padStart(16, '0')}`;

async function diff(props: string, lines: Step[]): Promise<void> {
  const r = await diffTranscripts(['-device', `intel-iommu${props ? ',' + props : ''}`], lines);
  expect(r.difference).toBeNull();
  expect(r.unmet).toEqual([]);
  expect(r.vtemu.length).toBe(lines.length);
}

const dumpAll = (): string[] => {
  const out: string[] = [];
  for (let off = 0; off < REG_FILE_SIZE; off += 4) out.push(`readl ${reg(off)}`);
  for (let off = 0; off < REG_FILE_SIZE; off += 8) out.push(`readq ${reg(off)}`);
  return out;
};

describe.skipIf(!qemu)('intel-iommu registers vs QEMU 11.1', () => {
  for (const props of [
    '',
    'aw-bits=39',
    'aw-bits=39,caching-mode=on',
    'aw-bits=39,intremap=off',
    'aw-bits=39,device-iotlb=on',
    'aw-bits=48,eim=on',
    'aw-bits=39,snoop-control=on',
    'aw-bits=39,dma-translation=off',
    'intremap=on,eim=on,caching-mode=on,device-iotlb=on,snoop-control=on,stale-tm=on,fs1gp=off,version=3',
  ]) {
    it(`reset values: ${props || '(defaults)'}`, async () => {
      await diff(props, dumpAll());
    });
  }

  // Without KVM the irqchip mode does not change intremap/eim resolution
  // (QEMU 11.1 -accel qtest: ECAP 0xf00f4a for kernel-irqchip=on and =split).
  for (const irqchip of ['on', 'split']) {
    it(`reset values with -machine q35,kernel-irqchip=${irqchip}`, async () => {
      const lines = dumpAll();
      const r = await diffTranscripts(['-machine', `q35,kernel-irqchip=${irqchip}`, '-device', 'intel-iommu,aw-bits=39'], lines);
      expect(r.difference).toBeNull();
      expect(r.vtemu.length).toBe(lines.length);
    });
  }

  it('write masks of every register (32-bit then 64-bit sweeps, GCMD excluded)', async () => {
    const lines: string[] = [];
    for (let off = 0; off < REG_FILE_SIZE; off += 4) {
      if (off === Reg.GCMD) continue;
      lines.push(`writel ${reg(off)} 0xffffffff`, `readl ${reg(off)}`, `readq ${reg(off & ~7)}`);
      lines.push(`writel ${reg(off)} 0x0`, `readl ${reg(off)}`);
    }
    // QEMU 11.1 truncates 64-bit writes to FECTL, IECTL and IEADDR (7.2 aborted): compared too.
    for (let off = 0; off < REG_FILE_SIZE; off += 8) {
      if (off === Reg.GCMD) continue;
      lines.push(`writeq ${reg(off)} 0xffffffffffffffff`, `readq ${reg(off)}`);
      lines.push(`writeq ${reg(off)} 0x5a5a5a5a5a5a5a5a`, `readq ${reg(off)}`);
      lines.push(`writeq ${reg(off)} 0x0`, `readq ${reg(off)}`);
    }
    lines.push(...dumpAll());
    await diff('aw-bits=39', lines);
  });

  it("11.1's legacy-mode register deltas from 7.2, reply by reply", async () => {
    const steps: Step[] = [
      // CAP: ESRTPS (63), DRD/DWD (55:54) always; ECAP.PT (6) always; eim=on accepted without KVM (EIM, bit 4).
      { cmd: `readq ${reg(Reg.CAP)}`, expect: q16(0x80d2_008c_222f_0606n) },
      { cmd: `readq ${reg(Reg.ECAP)}`, expect: q16(0xf0_0f5a) },
      // IQA.DW (bit 11) is writable and read back, next to QS; the base reads 0 until QIE latches it.
      { cmd: `writeq ${reg(Reg.IQA)} 0x3000807`, expect: 'OK' },
      { cmd: `readq ${reg(Reg.IQA)}`, expect: q16(0x807) },
      { cmd: `readl ${reg(Reg.IQA)}`, expect: q16(0x807) },
      { cmd: `writel ${reg(Reg.IQA)} 0x3000000`, expect: 'OK' },
      { cmd: `readq ${reg(Reg.IQA)}`, expect: q16(0) },
      // An 8-byte write to FECTL stores FECTL only: FEDATA keeps its value.
      { cmd: `writel ${reg(Reg.FEDATA)} 0x1234`, expect: 'OK' },
      { cmd: `writeq ${reg(Reg.FECTL)} 0xffffffff00000000`, expect: 'OK' },
      { cmd: `readq ${reg(Reg.FECTL)}`, expect: q16(0x1234_0000_0000n) },
      { cmd: `writeq ${reg(Reg.FECTL)} 0xffffffff`, expect: 'OK' },
      { cmd: `readq ${reg(Reg.FECTL)}`, expect: q16(0x1234_8000_0000n) },
      // The same for IECTL / IEDATA.
      { cmd: `writel ${reg(Reg.IEDATA)} 0x5678`, expect: 'OK' },
      { cmd: `writeq ${reg(Reg.IECTL)} 0xffffffff00000000`, expect: 'OK' },
      { cmd: `readq ${reg(Reg.IECTL)}`, expect: q16(0x5678_0000_0000n) },
    ];
    const r = await checkTranscripts(['-device', 'intel-iommu,eim=on'], steps, { qemu });
    expect(r.unmet).toEqual([]);
    expect(r.difference).toBeNull();
  });

  it('refuses 1- and 2-byte accesses', async () => {
    const lines: Step[] = [
      `writew ${reg(Reg.FEDATA)} 0x1234`,
      `readl ${reg(Reg.FEDATA)}`,
      `writeb ${reg(Reg.FEDATA)} 0x12`,
      `readl ${reg(Reg.FEDATA)}`,
      `readw ${reg(Reg.VER)}`,
      `readb ${reg(Reg.VER)}`,
    ];
    const r = await diffTranscripts(['-device', 'intel-iommu,aw-bits=39'], lines);
    expect(r.qemu.map((l) => l.reply)).toEqual(['OK', 'OK 0x0000000000000000', 'OK', 'OK 0x0000000000000000', 'OK 0x0000000000000000', 'OK 0x0000000000000000']);
    expect(r.difference).toBeNull();
  });

  it('GCMD sequence: SRTP, TE, GSTS|bit rewrites, IRE, SIRTP, QIE, TE off', async () => {
    const g = (v: number) => `writel ${reg(Reg.GCMD)} 0x${(v >>> 0).toString(16)}`;
    const sts = `readl ${reg(Reg.GSTS)}`;
    const lines: Step[] = [
      `writeq ${reg(Reg.RTADDR)} 0x1000000`,
      g(Gcmd.SRTP),
      sts,
      g(Gcmd.TE),
      sts,
      g(Gcmd.TE | Gcmd.SRTP),
      sts,
      g(Gcmd.TE | Gcmd.SRTP | Gcmd.IRE),
      sts,
      `writeq ${reg(Reg.IRTA)} 0x2000000f`,
      g(Gcmd.TE | Gcmd.IRE | Gcmd.SIRTP),
      sts,
      `writeq ${reg(Reg.IQA)} 0x3000000`,
      g(Gcmd.TE | Gcmd.IRE | Gcmd.QIE),
      sts,
      `readq ${reg(Reg.IQA)}`,
      g(Gcmd.TE | Gcmd.IRE | Gcmd.QIE | Gcmd.CFI | Gcmd.WBF | Gcmd.SFL),
      sts,
      g(Gcmd.IRE | Gcmd.QIE),
      sts,
      g(Gcmd.QIE),
      sts,
      `readl ${reg(Reg.GCMD)}`,
      `readq ${reg(Reg.RTADDR)}`,
      `readq ${reg(Reg.IRTA)}`,
      `writel ${reg(Reg.GSTS)} 0xffffffff`,
      sts,
    ];
    await diff('aw-bits=39', lines);
  });

  it('register-based invalidation: granularities, write-back, low-half writes, ignored under QI', async () => {
    const ccmd = `readq ${reg(Reg.CCMD)}`;
    const iotlb = `readq ${reg(Reg.IOTLB)}`;
    const lines: Step[] = [
      `writeq ${reg(Reg.CCMD)} 0xa000000000000000`, ccmd, // global
      `writeq ${reg(Reg.CCMD)} 0xc000000000000005`, ccmd, // domain -> global
      `writeq ${reg(Reg.CCMD)} 0xe000000300080005`, ccmd, // device + FM
      `writeq ${reg(Reg.CCMD)} 0x8000000000000000`, ccmd, // granularity 0
      `writel ${reg(Reg.CCMD)} 0x12345678`, ccmd, // low half: stored, nothing runs
      `writel ${reg(Reg.CCMD + 4)} 0xa0000000`, ccmd, // high half triggers
      `writeq ${reg(Reg.IOTLB)} 0x9000000000000000`, iotlb, // global
      `writeq ${reg(Reg.IOTLB)} 0xa000000500000000`, iotlb, // domain
      `writeq ${reg(Reg.IVA)} 0x12345052`, `readq ${reg(Reg.IVA)}`,
      `writeq ${reg(Reg.IOTLB)} 0xb000000500000000`, iotlb, // page, AM=0x12
      `writeq ${reg(Reg.IVA)} 0x13`,
      `writeq ${reg(Reg.IOTLB)} 0xb000000500000000`, iotlb, // AM=19: not done
      `writeq ${reg(Reg.IOTLB)} 0x8003000500000000`, iotlb, // granularity 0, DR/DW
      `writel ${reg(Reg.IOTLB)} 0x0`, iotlb,
      `writel ${reg(Reg.IOTLB + 4)} 0x90000000`, iotlb,
      `writeq ${reg(Reg.IQA)} 0x3000000`,
      `writel ${reg(Reg.GCMD)} 0x${Gcmd.QIE.toString(16)}`, `readl ${reg(Reg.GSTS)}`,
      `writeq ${reg(Reg.CCMD)} 0xa000000000000000`, ccmd, // ignored: ICC stays set
      `writeq ${reg(Reg.IOTLB)} 0x9000000000000000`, iotlb, // ignored: IVT stays set
      `readq ${reg(Reg.IQA)}`, `readq ${reg(Reg.IQH)}`, `readq ${reg(Reg.IQT)}`,
    ];
    await diff('aw-bits=39', lines);
  });
});
