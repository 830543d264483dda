/**
 * QEMU-style qtest of DMA through intel-iommu with `iommu-testdev` (QEMU 11.1
 * hw/misc/iommu-testdev.c; src/hw/iommu-testdev), through the libqtest
 * client on QEMU 11.1 and vtemu.  The device sits at 00:04.0 (devfn 0x20,
 * clear of QEMU's default VGA and NIC); libqos-style PCI code maps its BAR0.
 * A DMA writes the pattern 78 56 34 12 at the IOVA (translated) and reads it
 * back at the GPA (untranslated): 0 when the IOVA went to the GPA, 0xDEAD0004
 * when it went elsewhere.
 *
 * Modes: legacy pass-through (context TT=2), legacy translated (TT=0, 3-level
 * second-level tables), scalable pass-through (PGTT=4), second stage (PGTT=2)
 * and first stage (PGTT=1, `fsts=on`).  In each translating mode a changed
 * leaf is not seen while the old translation is cached (the DMA still lands
 * on the old page) until an invalidation covers it: global, domain-selective
 * and page-selective IOTLB invalidation through the registers (IVA/IOTLB at
 * ECAP.IRO = 0xF0) and through the invalidation queue, and in scalable mode
 * the PASID-based P_IOTLB (whole PASID, and page).  Invalidations that do
 * not cover the entry (another domain, another page) leave it stale.
 * QEMU 11.1, measured: register-based IOTLB invalidation works in scalable
 * mode too; a page-selective P_IOTLB does not drop a second-stage (PGTT=2)
 * translation; a page-selective IOTLB invalidation (type 2, no PASID) drops
 * all first-stage translations of the domain, whatever page it names.
 * Table layouts come from test/support/vtd-sm-tables.ts.
 */
import { describe, expect, it } from 'vitest';
import { LibQtest, type LibQtestBinary } from '../harness/libqtest.js';
import { QPciBus } from '../harness/libqtest-pci.js';
import { libqtestTargets } from '../harness/libqtest-targets.js';
import type { Step } from '../harness/transcript.js';
import {
  Desc, enableTranslation, Gcmd, PageAllocator, PageTables, pasidEntryQwords, Pgtt, smChain, VtdReg, type Desc256, type SmLayout,
} from '../support/vtd-sm-tables.js';

const TARGETS = libqtestTargets('test/libqtest/vtd-dma.test.ts');

const VTD = 0xfed9_0000;
/** Register-based IOTLB invalidation (ECAP.IRO 0xF: IVA at 0xF0, IOTLB at 0xF8; spec 11.4.8). */
const IOTLB_REG = { IVA: 0xf0, IOTLB: 0xf8 } as const;
const IOTLB_IVT = 1n << 63n;
const IIRG_SHIFT = 60n;
const IOTLB_DID_SHIFT = 32n;
/** Invalidation granularity (IIRG / descriptor G). */
const Gran = { GLOBAL: 1, DOMAIN: 2, PAGE: 3 } as const;
/** IQA.DW (256-bit descriptors), GSTS bits. */
const IQA_DW = 0x800;

const DEVFN = 0x20;
const DEVICE = 'iommu-testdev,addr=0x4.0';
const DID = 1;
/** iommu-testdev BAR0 registers and results. */
const Reg = { TRIGGER: 0x00, IOVA_LO: 0x04, IOVA_HI: 0x08, LEN: 0x0c, RESULT: 0x10, DBELL: 0x14, GPA_LO: 0x1c, GPA_HI: 0x20 } as const;
const Res = { OK: 0, MISMATCH: 0xdead_0004 } as const;
/** The pattern as a little-endian dword. */
const PATTERN = 0x1234_5678;

// Guest memory: legacy root + context, scalable structures, page tables, the queue, two target pages.
const LEGACY_ROOT = 0x100_0000;
const LEGACY_CTX = 0x100_1000;
const SM_LAYOUT: SmLayout = { root: 0x100_0000, lowerContext: 0x100_1000, upperContext: 0x100_2000, pasidDir: 0x100_3000, pasidTable: 0x100_4000 };
const TABLES = 0x110_0000;
const TABLES_END = 0x120_0000;
const QUEUE = 0x180_0000;
const QUEUE_STATUS = 0x181_0000;
const PAGE_A = 0x200_0000;
const PAGE_B = 0x210_0000;
/** The IOVA the staleness rounds remap, and another page nothing maps. */
const IOVA = 0x40_0000;
const OTHER_IOVA = 0x80_0000;
/** Output address bits of a leaf (51:12). */
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

/** A started machine with the device's BAR mapped. */
class Rig {
  private constructor(
    readonly q: LibQtest,
    private readonly bar: number,
  ) {}

  static async start(binary: LibQtestBinary, iommu: string): Promise<Rig> {
    const q = await LibQtest.start(binary, `-machine q35 -device intel-iommu,${iommu} -device ${DEVICE}`);
    try {
      const pci = new QPciBus(q);
      const dev = await pci.device(DEVFN);
      if (!dev) throw new Error('iommu-testdev not at 00:04.0');
      const bar = await dev.iomap(0);
      await dev.enable();
      return new Rig(q, bar.addr);
    } catch (e) {
      await q.quit().catch(() => {});
      throw e;
    }
  }

  /** Runs table-building steps; every expectation they carry must hold. */
  async steps(s: readonly Step[]): Promise<void> {
    expect(await this.q.run(s)).toEqual([]);
  }

  /** One 4-byte DMA; its result code. */
  async dma(iova: number, gpa: number): Promise<number> {
    const w = (off: number, v: number) => this.q.writel(this.bar + off, v);
    await w(Reg.IOVA_LO, iova);
    await w(Reg.IOVA_HI, 0);
    await w(Reg.GPA_LO, gpa);
    await w(Reg.GPA_HI, 0);
    await w(Reg.LEN, 4);
    await w(Reg.DBELL, 1);
    await this.q.readl(this.bar + Reg.TRIGGER);
    return this.q.readl(this.bar + Reg.RESULT);
  }

  async clearPages(): Promise<void> {
    await this.q.memset(PAGE_A, 0x1000, 0);
    await this.q.memset(PAGE_B, 0x1000, 0);
  }

  /** Register-based IOTLB invalidation of granularity `g` (page: `addr`, AM 0); IVT must clear. */
  async regInvalidate(g: number, did = DID, addr = IOVA): Promise<void> {
    if (g === Gran.PAGE) await this.q.writeq(VTD + IOTLB_REG.IVA, addr);
    await this.q.writeq(VTD + IOTLB_REG.IOTLB, IOTLB_IVT | (BigInt(g) << IIRG_SHIFT) | (BigInt(did) << IOTLB_DID_SHIFT));
    expect((await this.q.readq(VTD + IOTLB_REG.IOTLB)) & IOTLB_IVT).toBe(0n);
  }

  async quit(): Promise<void> {
    await this.q.quit();
  }
}

/** An invalidation queue of 128-bit (legacy) or 256-bit descriptors; each batch ends with a status-writing wait. */
class Queue {
  private tail = 0;
  private token = 0;
  constructor(
    private readonly rig: Rig,
    private readonly wide: boolean,
  ) {}

  private get size(): number {
    return this.wide ? 32 : 16;
  }

  /** Sets IQA and IQT 0 and turns QI on next to TE. */
  async enable(): Promise<void> {
    const q = this.rig.q;
    await q.memset(QUEUE, 0x1000, 0);
    await q.writeq(VTD + VtdReg.IQA, QUEUE | (this.wide ? IQA_DW : 0));
    await q.writeq(VTD + VtdReg.IQT, 0);
    await q.writel(VTD + VtdReg.GCMD, (Gcmd.TE | Gcmd.QIE) >>> 0);
    expect(await q.readl(VTD + VtdReg.GSTS)).toBe((Gcmd.TE | Gcmd.SRTP | Gcmd.QIE) >>> 0);
  }

  async submit(...descs: Desc256[]): Promise<void> {
    const q = this.rig.q;
    const all = [...descs, Desc.wait(++this.token, QUEUE_STATUS)];
    for (const d of all) {
      const at = QUEUE + this.tail * this.size;
      for (let i = 0; i < this.size / 8; i++) await q.writeq(at + 8 * i, d[i] ?? 0n);
      this.tail++;
    }
    await q.writeq(VTD + VtdReg.IQT, this.tail * this.size);
    expect(Number(await q.readq(VTD + VtdReg.IQH))).toBe(this.tail * this.size);
    expect(await q.readl(QUEUE_STATUS)).toBe(this.token);
    expect(await q.readl(VTD + VtdReg.FSTS)).toBe(0);
  }
}

/** An invalidation under test: a name, what it does, and whether it covers the remapped entry. */
interface Invalidation {
  readonly name: string;
  readonly run: (rig: Rig, queue: Queue) => Promise<void>;
  readonly covers: boolean;
}

const reg = (name: string, g: number, covers: boolean, did = DID, addr = IOVA): Invalidation => ({
  name: `register ${name}`, run: (r) => r.regInvalidate(g, did, addr), covers,
});
const queued = (name: string, d: Desc256, covers: boolean): Invalidation => ({ name: `queued ${name}`, run: (_r, q) => q.submit(d), covers });

/** IOTLB invalidations (type 2), as registers or descriptors. */
const regIotlb: Invalidation[] = [
  reg('domain-selective, another domain', Gran.DOMAIN, false, DID + 1),
  reg('page-selective, another page', Gran.PAGE, false, DID, OTHER_IOVA),
  reg('global', Gran.GLOBAL, true),
  reg('domain-selective', Gran.DOMAIN, true),
  reg('page-selective', Gran.PAGE, true),
];
const queuedIotlb: Invalidation[] = [
  queued('IOTLB domain-selective, another domain', Desc.iotlbDomain(DID + 1), false),
  queued('IOTLB page-selective, another page', Desc.iotlbPage(DID, OTHER_IOVA), false),
  queued('IOTLB global', Desc.iotlbGlobal(), true),
  queued('IOTLB domain-selective', Desc.iotlbDomain(DID), true),
  queued('IOTLB page-selective', Desc.iotlbPage(DID, IOVA), true),
];
const queuedPiotlb: Invalidation[] = [
  queued('P_IOTLB PASID-selective, another PASID', Desc.piotlbPasid(DID, 1), false),
  queued('P_IOTLB page, another page', Desc.piotlbPage(DID, 0, OTHER_IOVA), false),
  queued('P_IOTLB PASID-selective', Desc.piotlbPasid(DID, 0), true),
  queued('P_IOTLB page-selective', Desc.piotlbPage(DID, 0, IOVA), true),
];

/**
 * The staleness rounds: per invalidation, the DMA primes the cache with the
 * current page, the leaf moves to the other page, the DMA still lands on the
 * old one (0xDEAD0004, pattern there), then after the invalidation it lands
 * on the new one exactly when the invalidation covers the entry (if it does
 * not, a global one follows so the next round starts clean).
 */
async function staleness(rig: Rig, t: PageTables, invs: readonly Invalidation[], queue: Queue, flush: Invalidation): Promise<string[]> {
  let cur = Number(t.entry(IOVA, 1) & ADDR_MASK);
  const outcomes: string[] = [];
  for (const inv of invs) {
    const next = cur === PAGE_A ? PAGE_B : PAGE_A;
    await rig.clearPages();
    expect(await rig.dma(IOVA, cur), `priming before ${inv.name}`).toBe(Res.OK);
    await rig.steps(t.replace(IOVA, 1, BigInt(next) | t.leafFlags));
    await rig.clearPages();
    expect(await rig.dma(IOVA, next)).toBe(Res.MISMATCH);
    expect(await rig.q.readl(cur)).toBe(PATTERN);
    await inv.run(rig, queue);
    await rig.clearPages();
    const r = await rig.dma(IOVA, next);
    outcomes.push(`${inv.name}: ${r === Res.OK ? 'new translation' : r === Res.MISMATCH ? 'stale' : r.toString(16)}`);
    if (r !== Res.OK) await flush.run(rig, queue);
    cur = next;
  }
  return outcomes;
}

/** The outcome of each round: `covers` decides, except for the names in `flipped` (QEMU 11.1's exceptions, see the header). */
const expectedOutcomes = (invs: readonly Invalidation[], flipped: readonly string[] = []) =>
  invs.map((i) => `${i.name}: ${i.covers !== flipped.includes(i.name) ? 'new translation' : 'stale'}`);

/** Legacy root + context entry (TT, AW 1 = 3-level, DID) for the device. */
function legacyContext(tt: number, slpt: number): Step[] {
  return [
    `memset 0x${LEGACY_ROOT.toString(16)} 0x2000 0x0`,
    `writeq 0x${LEGACY_ROOT.toString(16)} 0x${(LEGACY_CTX | 1).toString(16)}`,
    `writeq 0x${(LEGACY_CTX + DEVFN * 16).toString(16)} 0x${(slpt | (tt << 2) | 1).toString(16)}`,
    `writeq 0x${(LEGACY_CTX + DEVFN * 16 + 8).toString(16)} 0x${(1 | (DID << 8)).toString(16)}`,
  ];
}

describe.each(TARGETS)('libqtest VT-d DMA with iommu-testdev on $name', ({ binary }) => {
  async function withRig(iommu: string, f: (rig: Rig) => Promise<void>): Promise<void> {
    const rig = await Rig.start(binary!, iommu);
    try {
      await f(rig);
    } finally {
      await rig.quit();
    }
  }

  it.skipIf(!binary)('legacy pass-through (TT=2): IOVA = GPA', async () => {
    await withRig('aw-bits=39', async (rig) => {
      await rig.steps([...legacyContext(2, 0), ...enableTranslation(LEGACY_ROOT, true)]);
      await rig.clearPages();
      expect(await rig.dma(PAGE_A, PAGE_A)).toBe(Res.OK);
      expect(await rig.dma(PAGE_B + 0x10, PAGE_B + 0x10)).toBe(Res.OK);
      expect(await rig.dma(PAGE_B + 0x20, PAGE_A + 0x20)).toBe(Res.MISMATCH);
    });
  });

  it.skipIf(!binary)('legacy translated (TT=0): DMA, then staleness and register then queued IOTLB invalidation', async () => {
    await withRig('aw-bits=39', async (rig) => {
      const t = new PageTables(new PageAllocator(TABLES, TABLES_END), 'second', 3);
      await rig.steps([...t.map(IOVA, PAGE_A), ...legacyContext(0, t.top), ...enableTranslation(LEGACY_ROOT, true)]);
      await rig.clearPages();
      expect(await rig.dma(IOVA + 0x40, PAGE_A + 0x40)).toBe(Res.OK);
      expect(await rig.dma(IOVA + 0x80, IOVA + 0x80)).toBe(Res.MISMATCH);
      const queue = new Queue(rig, false);
      expect(await staleness(rig, t, regIotlb, queue, reg('global', Gran.GLOBAL, true))).toEqual(expectedOutcomes(regIotlb));
      await queue.enable();
      expect(await staleness(rig, t, queuedIotlb, queue, queued('global', Desc.iotlbGlobal(), true))).toEqual(expectedOutcomes(queuedIotlb));
    });
  });

  /** Scalable mode: the chain to PASID 0's entry (requests without PASID use it), translation on. */
  async function scalable(rig: Rig, pasidEntry: bigint[]): Promise<void> {
    await rig.steps([...smChain(SM_LAYOUT, DEVFN, pasidEntry), ...enableTranslation(SM_LAYOUT.root)]);
  }

  for (const props of ['scalable-mode=on', 'scalable-mode=on,fsts=on']) {
    it.skipIf(!binary)(`scalable pass-through (PGTT=4, ${props}): IOVA = GPA`, async () => {
      await withRig(props, async (rig) => {
        await scalable(rig, pasidEntryQwords({ pgtt: Pgtt.PassThrough, aw: 2, did: DID }));
        await rig.clearPages();
        expect(await rig.dma(PAGE_A, PAGE_A)).toBe(Res.OK);
        expect(await rig.dma(PAGE_B + 0x20, PAGE_A + 0x20)).toBe(Res.MISMATCH);
      });
    });
  }

  const scalableModes = [
    {
      name: 'second stage (PGTT=2)', props: 'scalable-mode=on', stage: 'second' as const, levels: 3,
      entry: (t: PageTables) => pasidEntryQwords({ pgtt: Pgtt.SecondStage, aw: 1, did: DID, ssTable: t.top }),
      // A page-selective P_IOTLB leaves second-stage translations alone.
      flipped: ['queued P_IOTLB page-selective'],
    },
    {
      name: 'first stage (PGTT=1)', props: 'scalable-mode=on,fsts=on', stage: 'first' as const, levels: 4,
      entry: (t: PageTables) => pasidEntryQwords({ pgtt: Pgtt.FirstStage, aw: 2, did: DID, fsTable: t.top }),
      // A page-selective IOTLB invalidation (no PASID) drops every first-stage translation of the domain.
      flipped: ['register page-selective, another page', 'queued IOTLB page-selective, another page'],
    },
  ];
  for (const m of scalableModes) {
    it.skipIf(!binary)(`scalable ${m.name}: DMA, then staleness and register, queued IOTLB and P_IOTLB invalidation`, async () => {
      await withRig(m.props, async (rig) => {
        const t = new PageTables(new PageAllocator(TABLES, TABLES_END), m.stage, m.levels);
        await rig.steps(t.map(IOVA, PAGE_A));
        await scalable(rig, m.entry(t));
        await rig.clearPages();
        expect(await rig.dma(IOVA + 0x40, PAGE_A + 0x40)).toBe(Res.OK);
        expect(await rig.dma(IOVA + 0x80, IOVA + 0x80)).toBe(Res.MISMATCH);
        const queue = new Queue(rig, true);
        expect(await staleness(rig, t, regIotlb, queue, reg('global', Gran.GLOBAL, true))).toEqual(expectedOutcomes(regIotlb, m.flipped));
        await queue.enable();
        const invs = [...queuedIotlb, ...queuedPiotlb];
        const flush = queued('P_IOTLB', Desc.piotlbPasid(DID, 0), true);
        expect(await staleness(rig, t, invs, queue, flush)).toEqual(expectedOutcomes(invs, m.flipped));
      });
    });
  }
});
