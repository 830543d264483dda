/**
 * The memory views the Q35 MCH switches with its SMRAM registers, as the
 * CPU sees them outside SMM (QEMU hw/pci-host/q35.c mch_update_smram and
 * mch_update_smbase_smram; Intel 3 Series Express Chipset datasheet §5.1.17-18):
 *
 *   smram-region     0xA0000-0xBFFFF, priority 1: the PCI (VGA/MMIO) view
 *                    over RAM.  Shown unless SMRAM.D_OPEN is set with
 *                    ESMRAMC.H_SMRAME clear (then RAM shows through).  It is
 *                    an alias of the PCI memory container, so where no PCI
 *                    region decodes the addresses RAM is still seen.
 *   smram-open-high  0xFEDA0000-0xFEDBFFFF, priority 1: RAM 0xA0000-0xBFFFF,
 *                    shown while D_OPEN and H_SMRAME are both set.
 *   tseg-blackhole   the top `size` bytes of low RAM, priority 1: reads
 *                    all-ones, drops writes, while ESMRAMC.T_EN and
 *                    SMRAM.G_SMRAME are both set; size 1/2/8 MiB by
 *                    TSEG_SZ, or the MCH's `extended-tseg-mbytes` for 3.
 *   smbase-blackhole 0x30000-0x4FFFF, priority 1: the same black hole
 *                    once the guest locked F_SMBASE.
 *
 * The SMM-only views (QEMU's "smram" container, low/high SMRAM, TSEG and
 * SMBASE windows) are not modelled: vtemu runs no CPU in SMM.
 */
import { AliasRegion, ContainerRegion, MmioRegion, type MmioOps, type Region } from '../memory/region.js';

/** Fixed addresses of the SMRAM windows (QEMU include/hw/pci-host/q35.h). */
export const SmramMap = {
  /** Compatible SMRAM (C_BASE_SEG = 010b): the legacy VGA window. */
  LEGACY_BASE: 0xa_0000,
  LEGACY_SIZE: 0x2_0000,
  /** High SMRAM: the legacy window's RAM seen at 0xFEDA0000. */
  HIGH_BASE: 0xfeda_0000,
  /** SMRAM at SMBASE (QEMU's smbase-smram feature). */
  SMBASE_BASE: 0x3_0000,
  SMBASE_SIZE: 0x2_0000,
  /** Over RAM, the BIOS ROMs' level. */
  PRIORITY: 1,
} as const;

/** TSEG sizes selected by ESMRAMC.TSEG_SZ (bits 2:1); 3 selects the extended size. */
export const TSEG_SIZE_BY_FIELD: readonly (number | null)[] = [0x10_0000, 0x20_0000, 0x80_0000, null];

const MIB = 0x10_0000;

/** What the non-SMM view shows, derived from the MCH registers. */
export interface SmramState {
  /** The PCI view over 0xA0000-0xBFFFF (smram-region enabled). */
  readonly legacyPci: boolean;
  /** RAM 0xA0000-0xBFFFF mirrored at 0xFEDA0000. */
  readonly openHigh: boolean;
  /** Bytes of TSEG black hole at the top of low RAM (0: none). */
  readonly tsegSize: number;
  /** The SMBASE black hole is mapped. */
  readonly smbaseLocked: boolean;
}

/** Register values the views depend on. */
export interface SmramRegs {
  readonly smram: number;
  readonly esmramc: number;
  /** F_SMBASE lock bit is latched (QEMU's lck). */
  readonly smbaseLocked: boolean;
  /** The MCH's extended-tseg-mbytes property. */
  readonly extTsegMbytes: number;
}

/** SMRAM (0x9D) and ESMRAMC (0x9E) bits the views read. */
const D_OPEN = 0x40;
const G_SMRAME = 0x08;
const H_SMRAME = 0x80;
const T_EN = 0x01;
const TSEG_SZ_SHIFT = 1;
const TSEG_SZ_FIELD = 0x3;

/** The views for a register state (pure; QEMU mch_update_smram). */
export function smramState(r: SmramRegs): SmramState {
  const open = (r.smram & D_OPEN) !== 0;
  const high = (r.esmramc & H_SMRAME) !== 0;
  let tsegSize = 0;
  if (r.esmramc & T_EN && r.smram & G_SMRAME) {
    tsegSize = TSEG_SIZE_BY_FIELD[(r.esmramc >>> TSEG_SZ_SHIFT) & TSEG_SZ_FIELD] ?? r.extTsegMbytes * MIB;
  }
  return { legacyPci: open ? high : true, openHigh: open && high, tsegSize, smbaseLocked: r.smbaseLocked };
}

/** QEMU's blackhole_ops: 4-byte implementation, reads all-ones, writes dropped. */
const BLACKHOLE_OPS: MmioOps = {
  read: (_offset, size) => (size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff),
  write: () => {},
};
const BLACKHOLE_RULES = { valid: { min: 1, max: 4 }, impl: { min: 4, max: 4 } } as const;

/** Where the views live. */
export interface SmramWiring {
  /** The CPU's memory map. */
  readonly systemMemory: ContainerRegion;
  /** The root bus's memory container (what smram-region shows). */
  readonly pciMemory: ContainerRegion;
  /** Guest RAM as a region whose offset 0 is guest-physical 0 (the RAM block). */
  readonly ram: Region;
  /** RAM below 4 GiB in bytes (TSEG ends there). */
  readonly ramBelow4g: number;
}

/** The non-SMM SMRAM views of one machine. */
export class SmramViews {
  private readonly legacy: AliasRegion;
  private readonly openHigh: AliasRegion | null;
  private readonly tseg: MmioRegion;
  private readonly smbase: MmioRegion;
  private tsegMapped = false;

  constructor(private readonly w: SmramWiring) {
    this.legacy = new AliasRegion('smram-region', SmramMap.LEGACY_SIZE, w.pciMemory, SmramMap.LEGACY_BASE);
    w.systemMemory.add(this.legacy, SmramMap.LEGACY_BASE, SmramMap.PRIORITY);
    // The mirror needs RAM behind the legacy window (any real -m has it).
    this.openHigh =
      w.ram.size >= SmramMap.LEGACY_BASE + SmramMap.LEGACY_SIZE ? new AliasRegion('smram-open-high', SmramMap.LEGACY_SIZE, w.ram, SmramMap.LEGACY_BASE) : null;
    if (this.openHigh) w.systemMemory.add(this.openHigh, SmramMap.HIGH_BASE, SmramMap.PRIORITY);
    this.tseg = new MmioRegion('tseg-blackhole', MIB, BLACKHOLE_OPS, BLACKHOLE_RULES);
    this.smbase = new MmioRegion('smbase-blackhole', SmramMap.SMBASE_SIZE, BLACKHOLE_OPS, BLACKHOLE_RULES);
    w.systemMemory.add(this.smbase, SmramMap.SMBASE_BASE, SmramMap.PRIORITY);
    this.apply({ legacyPci: true, openHigh: false, tsegSize: 0, smbaseLocked: false });
  }

  /** Shows `s`. */
  apply(s: SmramState): void {
    this.legacy.setEnabled(s.legacyPci);
    this.openHigh?.setEnabled(s.openHigh);
    this.smbase.setEnabled(s.smbaseLocked);
    // A TSEG larger than low RAM cannot be placed (QEMU would wrap below 0): leave it unmapped.
    const size = s.tsegSize <= this.w.ramBelow4g ? s.tsegSize : 0;
    if (size === 0) {
      this.tseg.setEnabled(false);
      return;
    }
    if (this.tseg.size !== size) this.tseg.resize(size);
    const at = this.w.ramBelow4g - size;
    if (!this.tsegMapped) {
      this.w.systemMemory.add(this.tseg, at, SmramMap.PRIORITY);
      this.tsegMapped = true;
    } else {
      this.w.systemMemory.move(this.tseg, at);
    }
    this.tseg.setEnabled(true);
  }
}
