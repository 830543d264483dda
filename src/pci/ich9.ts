/**
 * The q35 built-in PCI functions with the configuration space QEMU 7.2
 * presents to a firmware-less guest (values and write masks verified
 * against `qemu-system-x86_64 -machine q35 -nodefaults` over CF8/CFC):
 *
 *   00:00.0  MCH host bridge    8086:29c0  (Intel 3 Series Express Chipset datasheet §5.1)
 *   00:1f.0  ICH9 LPC bridge    8086:2918  (Intel ICH9 datasheet §13.1)
 *   00:1f.2  ICH9 AHCI          8086:2922  (ICH9 datasheet §14.1)
 *   00:1f.3  ICH9 SMBus         8086:2930  (ICH9 datasheet §17.1)
 *
 * Like QEMU, device-specific registers from 0x40 up are writable unless a
 * device narrows them.  Besides configuration space, the MCH switches the
 * SMRAM/TSEG/SMBASE memory views (mch-smram.ts) as QEMU 11.1 does; the AHCI
 * and SMBus BARs map empty register windows.
 */
import { MmioRegion, type MmioOps } from '../memory/region.js';
import { rangesOverlap } from './config.js';
import { PciDevice } from './device.js';
import { smramState, type SmramState } from './mch-smram.js';
import type { SectionReader, SnapshotSection } from '../core/snapshot-state.js';

/** QEMU's subsystem IDs for its chipset functions (Red Hat, Inc. / QEMU). */
const QEMU_SUBSYSTEM_VENDOR = 0x1af4;
const QEMU_SUBSYSTEM = 0x1100;
const INTEL = 0x8086;

/** MCH (D0:F0) registers (3 Series chipset datasheet §5.1; QEMU q35.h). */
export const MchReg = {
  ExtTsegMbytes: 0x50,
  PciexBar: 0x60,
  Pam0: 0x90,
  FSmbase: 0x9c,
  Smram: 0x9d,
  Esmramc: 0x9e,
} as const;

/** PCIEXBAR fields. */
export const PciexBar = {
  Enable: 0x1,
  LengthMask: 0x6,
  Length256M: 0x0,
  Length128M: 0x2,
  Length64M: 0x4,
  LengthReserved: 0x6,
  /** Address bits 35:28 (256 MiB), plus 27 for 128 MiB, plus 26 for 64 MiB. */
  AddrMask256M: 0xf0000000,
  AddrBit128M: 0x08000000,
  AddrBit64M: 0x04000000,
  /** Reset value: base 0xB0000000, disabled (QEMU mch_reset). */
  Default: 0xb0000000,
} as const;

/** SMRAM (0x9D) bits. */
export const Smram = {
  DOpen: 0x40,
  DCls: 0x20,
  DLck: 0x10,
  GSmrame: 0x08,
  CBaseSeg: 0x02,
  Wmask: 0x78,
  WmaskLocked: 0x20,
} as const;

/** ESMRAMC (0x9E) bits. */
export const Esmramc = {
  HSmrame: 0x80,
  ESmerr: 0x40,
  SmCache: 0x20,
  SmL1: 0x10,
  SmL2: 0x08,
  TsegSzMask: 0x06,
  TEn: 0x01,
  Default: 0x38,
  Wmask: 0x87,
  WmaskLocked: 0x00,
} as const;

/** F_SMBASE (0x9C) values (QEMU SMRAM-at-SMBASE feature negotiation). */
export const FSmbase = {
  Query: 0xff,
  InRam: 0x01,
  Lock: 0x02,
} as const;

/** EXT_TSEG_MBYTES: writing the query value makes it read the MCH's extended TSEG size. */
export const ExtTseg = {
  Query: 0xffff,
  /** vtemu's default (QEMU pc-q35-7.2; QEMU 11.1's pc-q35-11.1 has 64). */
  Mbytes: 16,
  /** The largest `extended-tseg-mbytes` QEMU accepts. */
  Max: 0xfff,
} as const;

/** The MCH's qdev properties (QEMU mch_props). */
export interface MchProps {
  /** `extended-tseg-mbytes` (uint16, at most 0xFFF): the TSEG size TSEG_SZ=3 selects. */
  readonly extendedTsegMbytes?: number;
  /** `smbase-smram` (bool, default on): F_SMBASE negotiates the SMBASE black hole. */
  readonly smbaseSmram?: boolean;
}

/** Listener told when the guest moves or toggles the ECAM window. */
export type PciexBarListener = (enabled: boolean, base: number, length: number) => void;

/** What the MCH tells about its SMRAM views (mch-smram.ts SmramViews implements it). */
export interface SmramSink {
  apply(state: SmramState): void;
}

/** 00:00.0, the Q35 memory controller hub / host bridge. */
export class MchDevice extends PciDevice {
  /** Called after every write that touches PCIEXBAR and at reset. */
  onPciexBar: PciexBarListener | null = null;
  private extTsegMbytes: number = ExtTseg.Mbytes;
  private smbaseSmram = true;
  /** F_SMBASE lock latched (QEMU: smbase_blackhole enabled). */
  private smbaseLocked = false;
  private smramSink: SmramSink | null = null;

  constructor() {
    super({
      typeName: 'mch',
      vendorId: INTEL,
      deviceId: 0x29c0,
      revision: 0,
      classCode: 0x060000,
      subsystemVendorId: QEMU_SUBSYSTEM_VENDOR,
      subsystemId: QEMU_SUBSYSTEM,
    });
    this.setResetState();
  }

  /**
   * Applies the MCH properties (before the machine starts) and returns to
   * the reset state with them.  Throws for a value QEMU refuses at realize.
   */
  configure(props: MchProps): void {
    const ext = props.extendedTsegMbytes ?? this.extTsegMbytes;
    if (ext > ExtTseg.Max) throw new Error(`invalid extended-tseg-mbytes value: ${ext}`);
    this.extTsegMbytes = ext;
    this.smbaseSmram = props.smbaseSmram ?? this.smbaseSmram;
    this.setResetState();
  }

  /** The extended TSEG size in MiB (the property, not the register). */
  get extendedTsegMbytes(): number {
    return this.extTsegMbytes;
  }

  /** Connects the memory views SMRAM/ESMRAMC/F_SMBASE switch and shows the current state. */
  connectSmram(sink: SmramSink): void {
    this.smramSink = sink;
    this.updateSmramViews();
  }

  private setResetState(): void {
    const c = this.config;
    c.setLong(MchReg.PciexBar, PciexBar.Default);
    c.setLong(MchReg.PciexBar + 4, 0);
    // QEMU mch_reset writes the query value, which mch_update turns into the size.
    c.setWord(MchReg.ExtTsegMbytes, this.extTsegMbytes);
    c.setByte(MchReg.FSmbase, 0);
    c.setByte(MchReg.Smram, Smram.CBaseSeg);
    c.setByte(MchReg.Esmramc, Esmramc.Default);
    c.setWmask(MchReg.FSmbase, 1, 0xff);
    c.setWmask(MchReg.Smram, 1, Smram.Wmask);
    c.setWmask(MchReg.Esmramc, 1, Esmramc.Wmask);
    this.smbaseLocked = false;
    this.updateSmramViews();
  }

  /** Current ECAM window from PCIEXBAR: null while disabled or with the reserved length. */
  ecamWindow(): { base: number; length: number } | null {
    const lo = this.config.getLong(MchReg.PciexBar);
    const hi = this.config.getLong(MchReg.PciexBar + 4) & 0xf; // address bits 35:32
    if (!(lo & PciexBar.Enable)) return null;
    let mask: number = PciexBar.AddrMask256M;
    let length = 0x1000_0000;
    switch (lo & PciexBar.LengthMask) {
      case PciexBar.Length128M:
        mask |= PciexBar.AddrBit128M | PciexBar.AddrBit64M;
        length = 0x0800_0000;
        break;
      case PciexBar.Length64M:
        mask |= PciexBar.AddrBit64M;
        length = 0x0400_0000;
        break;
      case PciexBar.LengthReserved:
        return null;
    }
    return { base: hi * 0x1_0000_0000 + ((lo & mask) >>> 0), length };
  }

  override configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    super.configWrite(offset, size, value);
    if (rangesOverlap(offset, size, MchReg.PciexBar, 8)) this.updatePciexBar();
    if (rangesOverlap(offset, size, MchReg.Smram, 2)) this.updateSmram();
    if (rangesOverlap(offset, size, MchReg.ExtTsegMbytes, 2)) this.updateExtTsegMbytes();
    if (rangesOverlap(offset, size, MchReg.FSmbase, 1)) this.updateFSmbase();
  }

  private updatePciexBar(): void {
    // The reserved length leaves the current mapping alone (QEMU logs a guest error).
    if ((this.config.getLong(MchReg.PciexBar) & PciexBar.LengthMask) === PciexBar.LengthReserved) return;
    const w = this.ecamWindow();
    this.onPciexBar?.(w !== null, w?.base ?? 0, w?.length ?? 0);
  }

  /** The query value reads back as the extended TSEG size (QEMU mch_update_ext_tseg_mbytes; not when the size is 0). */
  private updateExtTsegMbytes(): void {
    if (this.extTsegMbytes > 0 && this.config.getWord(MchReg.ExtTsegMbytes) === ExtTseg.Query) {
      this.config.setWord(MchReg.ExtTsegMbytes, this.extTsegMbytes);
    }
  }

  /** SMRAM.D_LCK: clears D_OPEN and locks SMRAM/ESMRAMC until reset; then the views follow. */
  private updateSmram(): void {
    const c = this.config;
    if (c.getByte(MchReg.Smram) & Smram.DLck) {
      c.setByte(MchReg.Smram, c.getByte(MchReg.Smram) & ~Smram.DOpen);
      c.setWmask(MchReg.Smram, 1, Smram.WmaskLocked);
      c.setWmask(MchReg.Esmramc, 1, Esmramc.WmaskLocked);
    }
    this.updateSmramViews();
  }

  /**
   * F_SMBASE negotiation as QEMU 11.1 answers it (measured; QEMU
   * mch_update_smbase_smram): writing the query value (0xFF) or "in RAM"
   * (0x01) reads back 0x01 and leaves only the lock bit writable; any value
   * with the lock bit latches 0x02 (no bit writable until reset) and maps the
   * SMBASE black hole; other values are kept as written.  Without the
   * smbase-smram feature it is a plain register.
   */
  private updateFSmbase(): void {
    if (!this.smbaseSmram) return;
    const c = this.config;
    const reg = c.getByte(MchReg.FSmbase);
    if (reg === FSmbase.Query || reg === FSmbase.InRam) {
      c.setWmask(MchReg.FSmbase, 1, FSmbase.Lock);
      c.setByte(MchReg.FSmbase, FSmbase.InRam);
      return;
    }
    this.smbaseLocked = (reg & FSmbase.Lock) !== 0;
    if (this.smbaseLocked) {
      c.setWmask(MchReg.FSmbase, 1, 0);
      c.setByte(MchReg.FSmbase, FSmbase.Lock);
    }
    this.updateSmramViews();
  }

  private updateSmramViews(): void {
    this.smramSink?.apply(
      smramState({
        smram: this.config.getByte(MchReg.Smram),
        esmramc: this.config.getByte(MchReg.Esmramc),
        smbaseLocked: this.smbaseLocked,
        extTsegMbytes: this.extTsegMbytes,
      }),
    );
  }

  /** Snapshot: the latched F_SMBASE lock (config space and masks are the base class's). */
  protected override saveDeviceState(): SnapshotSection {
    return { smbaseLocked: this.smbaseLocked };
  }

  protected override loadDeviceState(r: SectionReader): void {
    this.smbaseLocked = r.bool('smbaseLocked');
  }

  /** Snapshot: the SMRAM views follow the loaded registers (the ECAM window is the host's). */
  protected override afterLoad(): void {
    super.afterLoad();
    this.updateSmramViews();
  }

  /** QEMU's reset leaves EXT_TSEG_MBYTES as the guest wrote it when the extended size is 0 (no query to answer). */
  override reset(): void {
    const extTseg = this.config.getWord(MchReg.ExtTsegMbytes);
    super.reset();
    if (this.extTsegMbytes === 0) this.config.setWord(MchReg.ExtTsegMbytes, extTseg);
  }

  protected override deviceReset(): void {
    this.setResetState();
    this.updatePciexBar();
  }
}

/** ICH9 LPC registers (ICH9 datasheet §13.1). */
export const LpcReg = {
  PmBase: 0x40,
  AcpiCtrl: 0x44,
  PirqARout: 0x60,
  PirqERout: 0x68,
  GenPmcon1: 0xa0,
  Rcba: 0xf0,
} as const;

/** PIRQx_ROUT fields. */
export const PirqRout = {
  /** Bit 7: routing to an ISA IRQ disabled. */
  Disable: 0x80,
  IrqMask: 0x0f,
  Default: 0x80,
} as const;

/** PMBASE reset value (bit 0: I/O space indicator) and write mask as QEMU 7.2 has them. */
const PMBASE_DEFAULT = 0x0000_0001;
const PMBASE_WMASK = 0x0000_ff87;

/** Number of PIRQ lines (A-H). */
export const ICH9_NUM_PIRQS = 8;
/** GSI of PIRQA on the IOAPIC; PIRQx goes to GSI 16 + x. */
export const ICH9_PIRQ_GSI_BASE = 16;
/** First slot whose INTx routing comes from the chipset D25IR-D31IR registers. */
const ICH9_DIR_FIRST_SLOT = 25;
/** Default D25IR-D31IR (0x3210): INTA-D to PIRQA-D. */
const ICH9_DIR_DEFAULT = 0x3210;
const ICH9_DIR_SHIFT = 4;
const ICH9_DIR_MASK = 0x7;
/** PIRQ of slots below 25: INTx of slot s goes to PIRQ E-H as (s + pin) % 4 + 4. */
const ICH9_PIRQ_E = 4;

/** 00:1f.0, the ICH9 LPC/ISA bridge; owns the PIRQ routing registers. */
export class Ich9LpcDevice extends PciDevice {
  /** PIRQ index for [slot][pin] (QEMU ich9_cc_init / ich9_lpc_map_irq). */
  private readonly irr = new Uint8Array(32 * 4);

  constructor() {
    super({
      typeName: 'ICH9-LPC',
      vendorId: INTEL,
      deviceId: 0x2918,
      revision: 2,
      classCode: 0x060100,
      subsystemVendorId: QEMU_SUBSYSTEM_VENDOR,
      subsystemId: QEMU_SUBSYSTEM,
    });
    const c = this.config;
    c.setLong(LpcReg.PmBase, PMBASE_DEFAULT);
    c.setWmask(LpcReg.PmBase, 4, PMBASE_WMASK);
    for (let i = 0; i < 4; i++) {
      c.setByte(LpcReg.PirqARout + i, PirqRout.Default);
      c.setByte(LpcReg.PirqERout + i, PirqRout.Default);
    }
    for (let slot = 0; slot < 32; slot++) {
      for (let pin = 0; pin < 4; pin++) {
        this.irr[slot * 4 + pin] =
          slot >= ICH9_DIR_FIRST_SLOT
            ? (ICH9_DIR_DEFAULT >>> (pin * ICH9_DIR_SHIFT)) & ICH9_DIR_MASK
            : ((slot + pin) % 4) + ICH9_PIRQ_E;
      }
    }
  }

  /** PIRQ (0 = A ... 7 = H) a root-bus device pin routes to. */
  mapIrq(devfn: number, pin: number): number {
    return this.irr[((devfn >>> 3) & 31) * 4 + (pin & 3)]!;
  }

  /** PIRQx_ROUT register of `pirq`. */
  pirqRoute(pirq: number): number {
    const off = pirq < 4 ? LpcReg.PirqARout + pirq : LpcReg.PirqERout + (pirq - 4);
    return this.config.getByte(off);
  }
}

/** ICH9 AHCI registers. */
export const AhciReg = {
  /** Index/data pair I/O BAR (BAR4, 32 bytes). */
  IdpBar: 4,
  /** AHCI base address (ABAR, BAR5, 4 KiB memory). */
  AbarBar: 5,
  MsiCap: 0x80,
  /** Address map register: bit 6 = AHCI mode. */
  Map: 0x90,
  SataCap: 0xa8,
} as const;

/** SATA capability (ID 0x12) fields. */
const PCI_CAP_ID_SATA = 0x12;
const SATA_CAP_SIZE = 8;
const SATA_CAP_REV = 0x10;
/** SATA capability BAR location: BARLOC 8 (BAR4 at 0x20) | BAROFST 4 << 4 (index/data pair at BAR offset 0x10). */
const SATA_CAP_BARLOC = 0x48;
const AHCI_MAP_DEFAULT = 0x40;
const AHCI_IDP_SIZE = 32;
const AHCI_ABAR_SIZE = 0x1000;

/** Register window that reads zero and ignores writes (behaviour is not modelled). */
const EMPTY_OPS: MmioOps = {
  read: () => 0,
  write: () => {},
};

/** 00:1f.2, the ICH9 AHCI controller (config space only). */
export class Ich9AhciDevice extends PciDevice {
  constructor() {
    super({
      typeName: 'ich9-ahci',
      vendorId: INTEL,
      deviceId: 0x2922,
      revision: 2,
      classCode: 0x010601,
      subsystemVendorId: QEMU_SUBSYSTEM_VENDOR,
      subsystemId: QEMU_SUBSYSTEM,
      interruptPin: 1,
    });
    this.registerBar(AhciReg.IdpBar, new MmioRegion('ahci-idp', AHCI_IDP_SIZE, EMPTY_OPS), 'io');
    this.registerBar(AhciReg.AbarBar, new MmioRegion('ahci', AHCI_ABAR_SIZE, EMPTY_OPS), 'mem32');
    this.config.setByte(AhciReg.Map, AHCI_MAP_DEFAULT);
    const sata = this.addCapability(PCI_CAP_ID_SATA, AhciReg.SataCap, SATA_CAP_SIZE);
    this.config.setWord(sata + 2, SATA_CAP_REV);
    this.config.setLong(sata + 4, SATA_CAP_BARLOC);
    this.initMsi(AhciReg.MsiCap, 1, true, false);
  }
}

/** ICH9 SMBus registers. */
export const SmbReg = {
  /** SMBus I/O BAR (BAR4, 64 bytes). */
  Bar: 4,
  HostC: 0x40,
} as const;

/** HOSTC writable bits as QEMU 7.2 has them (bit 3 read-only). */
const SMB_HOSTC_WMASK = 0xf7;
const SMB_IO_SIZE = 64;

/** 00:1f.3, the ICH9 SMBus controller (config space only). */
export class Ich9SmbusDevice extends PciDevice {
  constructor() {
    super({
      typeName: 'ICH9-SMB',
      vendorId: INTEL,
      deviceId: 0x2930,
      revision: 2,
      classCode: 0x0c0500,
      subsystemVendorId: QEMU_SUBSYSTEM_VENDOR,
      subsystemId: QEMU_SUBSYSTEM,
      interruptPin: 1,
    });
    this.registerBar(SmbReg.Bar, new MmioRegion('pm-smbus', SMB_IO_SIZE, EMPTY_OPS), 'io');
    this.config.setWmask(SmbReg.HostC, 1, SMB_HOSTC_WMASK);
  }
}
