/**
 * A second, minimal guest equivalent to kvm-unit-tests x86/intel-iommu
 * (lib/x86/intel-iommu.c facts): its own way of programming VT-d, which
 * differs from Linux on purpose:
 *  - GCMD writes are `GSTS | bit` (one-shot bits not polled), so later
 *    writes repeat SRTP/SIRTP whose status bits share positions;
 *  - QIE is set without ever programming IQA/IQT;
 *  - IRTA = one page | S=0xF, no EIME;
 *  - context entry DID = BDF, AW = 1 (39-bit), TT = 0, FPD = 1;
 *  - page tables are built after TE=1 with no invalidation (CM=0: nothing
 *    not-present may be cached).
 * Checks: FSTS == 0, GSTS has QIES|RTPS|IRTPS|TES|IRES, CAP SAGAW 39-bit and
 * SLLPS 2M/1G, the "DMAR 4B memcpy" through edu, and interrupts remapped
 * via MSI (IRTE 2, vector 0xEE) and via the IOAPIC (IRTE 1, vector 0xED)
 * where the platform can observe them.
 */
import { GuestAllocator, PAGE_SIZE } from '../alloc.js';
import { EDU_DEVICE, EDU_VENDOR, EduDriver } from '../edu.js';
import { GuestRamLayout } from '../firmware/boot.js';
import { PciConfigAccess, bdfId, enableMsi } from '../firmware/pci-config.js';
import { enumeratePci } from '../firmware/pci-enum.js';
import type { GuestPlatform } from '../platform.js';
import { Cap, Gcmd, Reg, field } from '../linux-vtd/regs.js';
import { InterruptRemapping, Irte } from '../linux-vtd/irq-remap.js';

/** The q35 VT-d unit address kvm-unit-tests hard-codes. */
export const Q35_IOMMU_BASE = 0xfed9_0000;
/** IOAPIC registers. */
export const IoApic = { BASE: 0xfec0_0000, IOREGSEL: 0x00, IOWIN: 0x10, RTE_BASE: 0x10, MASKED: 1 << 16, LEVEL: 1 << 15 } as const;
/** IOAPIC RTE remappable format: bit 48 format, bits 63:49 handle[14:0], bit 11 handle[15]. */
const RTE_REMAP_FORMAT = 1 << 16; // of the high dword
const RTE_HANDLE_SHIFT = 17; // of the high dword
/** Test constants from the original. */
export const KUT = {
  DMA_TEST_WORD: 0x12345678,
  IR_MSI_INDEX: 2, IR_MSI_VECTOR: 0xee,
  IR_IOAPIC_INDEX: 1, IR_IOAPIC_VECTOR: 0xed,
  IRTA_S: 0xf,
  SAGAW_39: 1 << 1,
  SLLPS_2M_1G: 0x3,
} as const;
const EDU_IRQ_BIT = 1;
const IRQ_WAIT_NS = 10_000_000;
const IRQ_WAIT_ROUNDS = 20;
const ROOT_P = 1n;
const CTX = { P: 1n, FPD: 2n, AW_39: 1n, DID_SHIFT: 8n } as const;
const PTE_RW = 3n;
const LEVEL_SHIFTS = [30, 21, 12] as const;
const ENTRIES = 512;

/** A report line like kvm-unit-tests prints. */
export interface KutReport {
  readonly name: string;
  /** 'pass' | 'fail' | 'skip' (with the reason in detail). */
  readonly result: 'pass' | 'fail' | 'skip';
  readonly detail: string;
}

/** The guest. */
export class KvmUnitTestsIntelIommu {
  readonly reports: KutReport[] = [];
  private readonly alloc: GuestAllocator;
  private readonly cfg: PciConfigAccess;
  private irta = 0;
  private root = 0;
  private readonly ctxTables = new Map<number, number>();
  private readonly slpt = new Map<number, number>();

  constructor(private readonly p: GuestPlatform, private readonly base = Q35_IOMMU_BASE) {
    this.alloc = new GuestAllocator(p, GuestRamLayout.osBase, GuestRamLayout.osLimit);
    this.cfg = new PciConfigAccess(p);
  }

  private report(name: string, ok: boolean | 'skip', detail = ''): void {
    this.reports.push({ name, result: ok === 'skip' ? 'skip' : ok ? 'pass' : 'fail', detail });
  }

  private async gcmdOr(cmd: number): Promise<void> {
    const status = await this.p.read(this.base + Reg.GSTS, 4);
    await this.p.write(this.base + Reg.GCMD, 4, (status | cmd) >>> 0);
    if (cmd & (Gcmd.SRTP | Gcmd.SIRTP | Gcmd.WBF | Gcmd.SFL)) return;
    for (let i = 0; i < 10_000; i++) if ((await this.p.read(this.base + Reg.GSTS, 4)) & cmd) return;
    throw new Error(`vtd_gcmd_or 0x${cmd.toString(16)}: status never set`);
  }

  /** vtd_init + the checks of x86/intel-iommu.c main(). */
  async init(): Promise<void> {
    const ver = await this.p.read(this.base + Reg.VER, 4);
    const cap = await this.p.read64(this.base + Reg.CAP);
    this.report('VT-d version', ver !== 0 && ver !== 0xffffffff, `VER 0x${ver.toString(16)}`);
    this.report('DMAR support 39 bits address width', (field(cap, Cap.SAGAW) & KUT.SAGAW_39) !== 0, `SAGAW 0x${field(cap, Cap.SAGAW).toString(16)}`);
    this.report('DMAR support huge pages', (field(cap, Cap.SLLPS) & KUT.SLLPS_2M_1G) === KUT.SLLPS_2M_1G, `SLLPS 0x${field(cap, Cap.SLLPS).toString(16)}`);
    await this.gcmdOr(Gcmd.QIE);
    this.root = await this.alloc.page();
    await this.p.write64(this.base + Reg.RTADDR, BigInt(this.root));
    await this.gcmdOr(Gcmd.SRTP);
    this.irta = await this.alloc.page();
    await this.p.write64(this.base + Reg.IRTA, BigInt(this.irta) | BigInt(KUT.IRTA_S));
    await this.gcmdOr(Gcmd.SIRTP);
    await this.gcmdOr(Gcmd.TE);
    await this.gcmdOr(Gcmd.IRE);
    const fsts = await this.p.read(this.base + Reg.FSTS, 4);
    const gsts = await this.p.read(this.base + Reg.GSTS, 4);
    this.report('fault status check', fsts === 0, `FSTS 0x${fsts.toString(16)}`);
    const bit = (b: number, n: string): void => this.report(n, (gsts & b) !== 0, `GSTS 0x${gsts.toString(16)}`);
    bit(Gcmd.QIE, 'QI enablement');
    bit(Gcmd.SRTP, 'DMAR table setup');
    bit(Gcmd.SIRTP, 'IR table setup');
    bit(Gcmd.TE, 'DMAR enablement');
    bit(Gcmd.IRE, 'IR enablement');
  }

  /** vtd_map_range: root/context entries on demand, 3-level tables, no invalidation. */
  async mapRange(sid: number, iova: number, pa: number, size: number): Promise<void> {
    const bus = sid >> 8;
    let ctx = this.ctxTables.get(bus);
    if (ctx === undefined) {
      ctx = await this.alloc.page();
      this.ctxTables.set(bus, ctx);
      await this.p.write64(this.root + bus * 16, BigInt(ctx) | ROOT_P);
    }
    let top = this.slpt.get(sid);
    if (top === undefined) {
      top = await this.alloc.page();
      this.slpt.set(sid, top);
      const ce = ctx + (sid & 0xff) * 16;
      await this.p.write64(ce + 8, (BigInt(sid) << CTX.DID_SHIFT) | CTX.AW_39);
      await this.p.write64(ce, BigInt(top) | CTX.FPD | CTX.P);
    }
    for (let off = 0; off < size; off += PAGE_SIZE) {
      let table = top;
      for (let lvl = 0; lvl < LEVEL_SHIFTS.length; lvl++) {
        const idx = Math.floor((iova + off) / 2 ** LEVEL_SHIFTS[lvl]!) % ENTRIES;
        const at = table + idx * 8;
        if (lvl === LEVEL_SHIFTS.length - 1) { await this.p.write64(at, BigInt(pa + off) | PTE_RW); break; }
        const e = await this.p.read64(at);
        if (e & PTE_RW) { table = Number(e & ~0xfffn); continue; }
        const next = await this.alloc.page();
        await this.p.write64(at, BigInt(next) | PTE_RW);
        table = next;
      }
    }
  }

  /** Runs everything; returns the reports. */
  async run(): Promise<KutReport[]> {
    await this.init();
    const pci = await enumeratePci(this.p);
    const fn = pci.find(EDU_VENDOR, EDU_DEVICE)[0];
    if (!fn) { this.report('edu device', false, 'no edu found'); return this.reports; }
    const edu = EduDriver.bind(this.p, fn);
    const sid = bdfId(fn);

    // DMAR 4B memcpy test
    const page = await this.alloc.page();
    await this.p.write(page, 4, KUT.DMA_TEST_WORD);
    await this.mapRange(sid, 0, page, PAGE_SIZE);
    await edu.toDevice(0, 4);
    await edu.fromDevice(4, 4);
    const got = await this.p.read(page + 4, 4);
    this.report('DMAR 4B memcpy test', got === KUT.DMA_TEST_WORD, `read back 0x${got.toString(16)}`);

    // IR IOAPIC: find the edu's IOAPIC pin by observing INTx, then a remappable RTE.
    await this.irIoapic(edu, sid);
    // IR MSI
    await this.irMsi(edu, sid);
    return this.reports;
  }

  private async writeIrte(index: number, vector: number, sid: number): Promise<void> {
    const lo = Irte.P | (BigInt(vector) << Irte.VECTOR_SHIFT);
    const hi = BigInt(sid) | (1n << Irte.SVT_SHIFT);
    await this.p.write64(this.irta + index * 16 + 8, hi);
    await this.p.write64(this.irta + index * 16, lo);
  }

  private async waitVector(vector: number): Promise<boolean> {
    for (let i = 0; i < IRQ_WAIT_ROUNDS; i++) {
      if (this.p.takeInterrupts().some((x) => x.kind === 'msi' && x.vector === vector)) return true;
      await this.p.sleep(IRQ_WAIT_NS);
    }
    return false;
  }

  private async irIoapic(edu: EduDriver, sid: number): Promise<void> {
    if (!this.p.interrupts.intx) { this.report('IR IOAPIC', 'skip', 'IOAPIC inputs not observable on this platform'); return; }
    this.p.takeInterrupts();
    await edu.raise(EDU_IRQ_BIT);
    let pin: number | undefined;
    for (let i = 0; i < IRQ_WAIT_ROUNDS && pin === undefined; i++) {
      await this.p.sleep(IRQ_WAIT_NS);
      pin = this.p.takeInterrupts().find((x) => x.kind === 'intx' && x.level && x.vector >= 16)?.vector;
    }
    await edu.ack(EDU_IRQ_BIT);
    if (pin === undefined) { this.report('IR IOAPIC', false, 'edu INTx never reached an IOAPIC input'); return; }
    await this.writeIrte(KUT.IR_IOAPIC_INDEX, KUT.IR_IOAPIC_VECTOR, sid);
    const rte = IoApic.RTE_BASE + 2 * pin;
    await this.ioapicWrite(rte + 1, RTE_REMAP_FORMAT | ((KUT.IR_IOAPIC_INDEX & 0x7fff) << RTE_HANDLE_SHIFT));
    await this.ioapicWrite(rte, KUT.IR_IOAPIC_VECTOR | IoApic.LEVEL);
    if (!this.p.interrupts.msi) {
      this.report('IR IOAPIC', 'skip', `edu INTx seen on IOAPIC pin ${pin}; remapped vector not observable on this platform`);
      return;
    }
    this.p.takeInterrupts();
    await edu.raise(EDU_IRQ_BIT);
    const ok = await this.waitVector(KUT.IR_IOAPIC_VECTOR);
    await edu.ack(EDU_IRQ_BIT);
    await this.ioapicWrite(rte, IoApic.MASKED);
    this.report('IR IOAPIC', ok, `pin ${pin} -> IRTE ${KUT.IR_IOAPIC_INDEX} -> vector 0x${KUT.IR_IOAPIC_VECTOR.toString(16)}`);
  }

  private async irMsi(edu: EduDriver, sid: number): Promise<void> {
    await this.writeIrte(KUT.IR_MSI_INDEX, KUT.IR_MSI_VECTOR, sid);
    const msi = InterruptRemapping.msiFor(KUT.IR_MSI_INDEX);
    await enableMsi(this.cfg, edu.fn, msi.address, msi.data);
    if (!this.p.interrupts.msi) { this.report('IR MSI', 'skip', 'MSIs not observable on this platform'); return; }
    this.p.takeInterrupts();
    await edu.raise(EDU_IRQ_BIT);
    const ok = await this.waitVector(KUT.IR_MSI_VECTOR);
    await edu.ack(EDU_IRQ_BIT);
    this.report('IR MSI', ok, `MSI 0x${msi.address.toString(16)} -> IRTE ${KUT.IR_MSI_INDEX} -> vector 0x${KUT.IR_MSI_VECTOR.toString(16)}`);
  }

  private async ioapicWrite(index: number, value: number): Promise<void> {
    await this.p.write(IoApic.BASE + IoApic.IOREGSEL, 4, index);
    await this.p.write(IoApic.BASE + IoApic.IOWIN, 4, value >>> 0);
  }
}

/**
 * Runs the guest and returns its reports.  `base` is the unit to program
 * (kvm-unit-tests hard-codes 0xFED90000; on a machine with several units
 * pass the one whose scope holds the IOAPIC and the first edu).
 */
export function runKvmUnitTests(p: GuestPlatform, base = Q35_IOMMU_BASE): Promise<KutReport[]> {
  return new KvmUnitTestsIntelIommu(p, base).run();
}
