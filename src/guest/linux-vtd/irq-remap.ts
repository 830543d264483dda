/**
 * Interrupt remapping bring-up and IRTE programming (Linux
 * irq_remapping.c facts): IRTA = table | S, SIRTP, global IEC (unless
 * CAP.ESIRTPS), IRE, compatibility-format interrupts blocked (CFI off).
 */
import { Gcmd, Reg } from './regs.js';
import type { VtdUnit } from './unit.js';

/** Linux uses S = 0xF: 2^(S+1) = 65536 entries of 16 bytes (1 MiB). */
export const IR_TABLE_S = 0xf;
const IRTE_SIZE = 16;
const IR_ENTRIES = 2 ** (IR_TABLE_S + 1);

/** IRTE fields (include/linux/dmar.h). */
export const Irte = {
  P: 1n, FPD: 2n, DM: 4n, RH: 8n, TM: 16n, DLM_SHIFT: 5n, IM: 1n << 15n, VECTOR_SHIFT: 16n, DST_SHIFT: 32n, XAPIC_DEST_SHIFT: 8n,
  SQ_SHIFT: 16n, SVT_SHIFT: 18n,
} as const;
/** Source validation types. */
export const Svt = { None: 0, Requester: 1, BusRange: 2 } as const;

/** Remappable MSI address fields. */
export const RemapMsi = { BASE: 0xfee0_0000, HANDLE_LO_SHIFT: 5, HANDLE_LO_MASK: 0x7fff, FORMAT: 1 << 4, SHV: 1 << 3, HANDLE_HI: 1 << 2, HANDLE_HI_SHIFT: 15 } as const;

/** An IRTE to program. */
export interface IrteSpec {
  readonly vector: number;
  /** xAPIC destination APIC ID. */
  readonly dest: number;
  readonly sid: number;
  readonly svt?: number;
  readonly sq?: number;
  readonly levelTriggered?: boolean;
}

/** Interrupt remapping state of one unit. */
export class InterruptRemapping {
  table = 0;
  private next = 0;
  constructor(private readonly unit: VtdUnit) {}

  /** Sets up the table and turns IR on. */
  async enable(): Promise<void> {
    const u = this.unit;
    this.table = await u.alloc.alloc(IR_ENTRIES * IRTE_SIZE, 0x1000);
    const irta = BigInt(this.table) | BigInt(IR_TABLE_S);
    await u.p.write64(u.base + Reg.IRTA, irta);
    let gsts = await u.oneShot(Gcmd.SIRTP, true);
    u.log.push(`  IR: IRTA 0x${irta.toString(16)} (${IR_ENTRIES} entries, xAPIC), GCMD.SIRTP -> GSTS 0x${gsts.toString(16)}`);
    if (!u.capf('ESIRTPS')) await u.invalidator.iec(true);
    gsts = await u.setPersistent(Gcmd.IRE, true);
    if (gsts & Gcmd.CFI) gsts = await u.setPersistent(Gcmd.CFI, false);
    u.log.push(`  IR: global IEC, GCMD.IRE -> GSTS 0x${gsts.toString(16)}`);
  }

  /** Allocates the next IRTE index. */
  allocIndex(): number {
    return this.next++;
  }

  /** Writes an IRTE and invalidates its cache entry (modify_irte). */
  async program(index: number, s: IrteSpec): Promise<void> {
    const u = this.unit;
    const lo = Irte.P | (s.levelTriggered ? Irte.TM : 0n) | (BigInt(s.vector) << Irte.VECTOR_SHIFT) |
      (BigInt(s.dest) << (Irte.DST_SHIFT + Irte.XAPIC_DEST_SHIFT));
    const hi = BigInt(s.sid) | (BigInt(s.sq ?? 0) << Irte.SQ_SHIFT) | (BigInt(s.svt ?? Svt.Requester) << Irte.SVT_SHIFT);
    const at = this.table + index * IRTE_SIZE;
    await u.p.write64(at + 8, hi);
    await u.p.write64(at, lo);
    await u.flushIec('modify-irte-iec', index, 0);
  }

  /** MSI address/data that select IRTE `index` (remappable format, no subhandle). */
  static msiFor(index: number): { address: number; data: number } {
    const address = RemapMsi.BASE | ((index & RemapMsi.HANDLE_LO_MASK) << RemapMsi.HANDLE_LO_SHIFT) | RemapMsi.FORMAT |
      ((index >> RemapMsi.HANDLE_HI_SHIFT) & 1 ? RemapMsi.HANDLE_HI : 0);
    return { address: address >>> 0, data: 0 };
  }
}
