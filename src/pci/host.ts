/**
 * The Q35 PCI Express host bridge (QEMU q35-pcihost + mch): the root bus
 * with the chipset's built-in functions, configuration mechanism #1 on ports
 * 0xCF8/0xCFC (PCI Local Bus 3.0 §3.2.2.3.2), the ECAM window placed by the
 * MCH's PCIEXBAR (PCIe Base 4.0 §7.2.2), INTx routing through the ICH9 PIRQs
 * to IOAPIC GSIs 16-23, and the IOMMU hook (QEMU pci_setup_iommu).
 */
import type { AddressSpace } from '../memory/address-space.js';
import { ContainerRegion, MmioRegion, type AccessRules, type MmioOps } from '../memory/region.js';
import { NO_PASID, type AtsEndpoint, type AtsPort, type DmaIommu, type DmaRequester, type DmaTranslator } from '../memory/iommu.js';
import { NO_IRQ, type IrqLine } from '../core/irq.js';
import { PCI_CONFIG_SPACE_SIZE } from './config.js';
import { SnapshotError, toB64, type SectionReader, type SnapshotSection } from '../core/snapshot-state.js';
import { PciBus, type PciBusHost, pciDevfn } from './bus.js';
import type { PciDevice } from './device.js';
import {
  ICH9_NUM_PIRQS,
  ICH9_PIRQ_GSI_BASE,
  Ich9AhciDevice,
  Ich9LpcDevice,
  Ich9SmbusDevice,
  MchDevice,
  PirqRout,
} from './ich9.js';

/** Configuration mechanism #1: CONFIG_ADDRESS port. */
export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
/** Configuration mechanism #1: CONFIG_DATA port (4 bytes). */
export const PCI_CONFIG_DATA_PORT = 0xcfc;

/** CONFIG_ADDRESS fields. */
export const ConfigAddress = {
  Enable: 0x8000_0000,
  BusShift: 16,
  DevfnShift: 8,
  RegMask: 0xfc,
} as const;

/** ECAM address fields: bus << 20 | devfn << 12 | register. */
export const Ecam = {
  BusShift: 20,
  BusMask: 0x1ff,
  DevfnShift: 12,
  DevfnMask: 0xff,
  RegMask: 0xfff,
} as const;

/** ICH9 reset control register (port 0xCF9, overlapping CONFIG_ADDRESS byte 1; ICH9 datasheet §13.7.5). */
export const RstCnt = {
  Port: 0xcf9,
  /** Offset inside the CONFIG_ADDRESS window. */
  Offset: 1,
  SysRst: 0x02,
  ResetCpu: 0x04,
  FullRst: 0x08,
  /** Bits that read back (QEMU keeps SYS_RST and FULL_RST). */
  Keep: 0x0a,
} as const;

/** Built-in devfns of q35. */
export const Q35Devfn = {
  Mch: pciDevfn(0, 0),
  Lpc: pciDevfn(0x1f, 0),
  Ahci: pciDevfn(0x1f, 2),
  Smbus: pciDevfn(0x1f, 3),
} as const;

/** Largest ECAM window (256 buses). */
const ECAM_MAX_SIZE = 0x1000_0000;
/** Size of the root bus memory container (QEMU: UINT64_MAX). */
const PCI_MEMORY_SIZE = 2 ** 64;
/** Priority of PCI memory below everything else in system memory (QEMU pc_pci_as_mapping_init). */
const PCI_MEMORY_PRIORITY = -1;
/** ISA IRQs a PIRQ may be routed to: not 0, 1, 2, 8, 13 (ICH9 datasheet §13.1.18). */
const PIRQ_ISA_IRQ_VALID = 0xdef8;

const ONES = [0, 0xff, 0xffff, 0xffffff, 0xffffffff];

/**
 * ECAM access rules as QEMU 7.2 behaves: 8-byte accesses are split into two
 * dwords and unaligned accesses reach the config space as they are.
 */
const ECAM_RULES: AccessRules = { valid: { min: 1, max: 8, unaligned: true }, impl: { min: 1, max: 4 } };

/** What the machine hands the host. */
export interface Q35PciHostContext {
  /** CPU memory map (the root bus's memory is mapped here at priority -1; ECAM at priority 0). */
  readonly systemMemory: ContainerRegion;
  /** CPU port I/O space (CF8/CFC and I/O BARs of root-bus devices). */
  readonly ioSpace: ContainerRegion;
  /** Address space over systemMemory: where device DMA lands after translation. */
  readonly memory: AddressSpace;
  /** IOAPIC input for a GSI (PCI INTx arrives on 16-23, routed PIRQs on ISA IRQs). */
  readonly ioapicLine?: (gsi: number) => IrqLine;
  /**
   * Require every upstream bridge's bus-master bit for device DMA (PCIe Base
   * 4.0 §7.5.1.1.3).  Default false: QEMU 7.2 only checks the device's own bit
   * (verified: edu behind a pcie-root-port with bus master off still DMAs).
   */
  readonly bridgeMasterGating?: boolean;
  /** Called when the guest writes the reset bit of RST_CNT (port 0xCF9). */
  readonly onResetRequest?: () => void;
}

/** A found function, for enumeration. */
export interface PciFunctionInfo {
  readonly bus: PciBus;
  readonly busNumber: number;
  readonly devfn: number;
  readonly device: PciDevice;
}

/** The q35 host bridge with its root bus. */
export class Q35PciHost implements PciBusHost {
  readonly rootIrqCount = ICH9_NUM_PIRQS;
  readonly dmaMemory: AddressSpace;
  readonly bridgeMasterGating: boolean;
  /** Called when the guest requests a reset through port 0xCF9 (the machine wires it). */
  onResetRequest: (() => void) | null;
  readonly rootBus: PciBus;
  readonly mch: MchDevice;
  readonly lpc: Ich9LpcDevice;
  readonly ahci: Ich9AhciDevice;
  readonly smbus: Ich9SmbusDevice;
  /** The ECAM window (mapped while PCIEXBAR enables it). */
  readonly ecam: MmioRegion;
  private iommu: DmaIommu | null = null;
  private iommuGen = 0;
  private configAddress = 0;
  private rstCnt = 0;
  private ecamMapped = false;
  /** Where the ECAM window is mapped (while ecamMapped). */
  private ecamBase = 0;
  private readonly ioapicLine: (gsi: number) => IrqLine;
  private readonly isaLevel = new Uint8Array(16);

  constructor(private readonly ctx: Q35PciHostContext) {
    this.dmaMemory = ctx.memory;
    this.bridgeMasterGating = ctx.bridgeMasterGating ?? false;
    this.onResetRequest = ctx.onResetRequest ?? null;
    this.ioapicLine = ctx.ioapicLine ?? (() => NO_IRQ);
    const pciMemory = new ContainerRegion('pci', PCI_MEMORY_SIZE);
    ctx.systemMemory.add(pciMemory, 0, PCI_MEMORY_PRIORITY);
    this.rootBus = new PciBus('pcie.0', this, null, true, { memory: pciMemory, io: ctx.ioSpace });

    ctx.ioSpace.add(new MmioRegion('pci-conf-idx', 4, this.addressOps()), PCI_CONFIG_ADDRESS_PORT);
    ctx.ioSpace.add(new MmioRegion('pci-conf-data', 4, this.dataOps()), PCI_CONFIG_DATA_PORT);
    this.ecam = new MmioRegion('pcie-mmcfg-mmio', ECAM_MAX_SIZE, this.ecamOps(), ECAM_RULES);

    this.mch = new MchDevice();
    this.mch.onPciexBar = (enabled, base, length) => this.mapEcam(enabled, base, length);
    this.lpc = new Ich9LpcDevice();
    this.ahci = new Ich9AhciDevice();
    this.smbus = new Ich9SmbusDevice();
    this.rootBus.plug(this.mch, { devfn: Q35Devfn.Mch });
    this.rootBus.plug(this.lpc, { devfn: Q35Devfn.Lpc, multifunction: true });
    this.rootBus.plug(this.ahci, { devfn: Q35Devfn.Ahci, multifunction: true });
    this.rootBus.plug(this.smbus, { devfn: Q35Devfn.Smbus, multifunction: true });
  }

  // ---- IOMMU ------------------------------------------------------------------

  /**
   * Installs (or removes) the IOMMU every device's DMA goes through (QEMU
   * pci_setup_iommu); every plugged function gets its translator from it at
   * once (see PciDevice.refreshIommu).
   */
  setIommu(iommu: DmaIommu | null): void {
    this.iommu = iommu;
    this.iommuGen++;
    for (const f of this.allFunctions()) f.device.refreshIommu();
  }

  /** Generation of the IOMMU setting (devices re-fetch their translator when it changes). */
  get iommuGeneration(): number {
    return this.iommuGen;
  }

  /** The translator for a requester and PASID (NO_PASID: requests without one; null without an IOMMU). */
  translatorFor(requester: DmaRequester, pasid: number = NO_PASID): DmaTranslator | null {
    return this.iommu ? this.iommu.translatorFor(requester, pasid) : null;
  }

  /** The IOMMU's ATS/PRI port for a requester (null without an IOMMU or one without ATS). */
  atsPort(requester: DmaRequester, endpoint: AtsEndpoint): AtsPort | null {
    return this.iommu?.atsPort?.(requester, endpoint) ?? null;
  }

  // ---- INTx ---------------------------------------------------------------------

  /** Root-bus pin to PIRQ via the LPC's routing table. */
  mapRootIrq(devfn: number, pin: number): number {
    return this.lpc.mapIrq(devfn, pin);
  }

  /**
   * PIRQ `pirq` changed level: GSI 16 + pirq follows it; the ISA IRQ named
   * by the PIRQ's route register (enabled or not, as QEMU ich9_lpc_set_irq
   * does) is re-evaluated as the OR of every PIRQ whose route is enabled and
   * points at it.  IRQs a PIRQ may not use (0, 1, 2, 8, 13) are left alone.
   */
  setRootIrq(pirq: number, level: boolean): void {
    this.ioapicLine(ICH9_PIRQ_GSI_BASE + pirq).set(level);
    const isa = this.lpc.pirqRoute(pirq) & PirqRout.IrqMask;
    if (!((PIRQ_ISA_IRQ_VALID >>> isa) & 1)) return;
    let any = false;
    for (let p = 0; p < ICH9_NUM_PIRQS; p++) {
      const r = this.lpc.pirqRoute(p);
      if (!(r & PirqRout.Disable) && (r & PirqRout.IrqMask) === isa && this.rootBus.irqLevel(p)) any = true;
    }
    if ((this.isaLevel[isa] === 1) !== any) {
      this.isaLevel[isa] = any ? 1 : 0;
      this.ioapicLine(isa).set(any);
    }
  }

  // ---- configuration access -------------------------------------------------------

  /** The function at (bus number, devfn), found through bridges. */
  findDevice(busNumber: number, devfn: number): PciDevice | undefined {
    return this.rootBus.findBus(busNumber)?.device(devfn);
  }

  /**
   * A configuration read as the host delivers it (QEMU
   * pci_host_config_read_common): absent functions and registers beyond
   * the function's limit read all-ones.  `extended` is true for ECAM (4 KiB
   * per function on PCIe buses), false for CF8/CFC (256 bytes).
   */
  configRead(busNumber: number, devfn: number, reg: number, size: 1 | 2 | 4, extended = false): number {
    const bus = this.rootBus.findBus(busNumber);
    const dev = bus?.device(devfn);
    if (!bus || !dev) return ONES[size]!;
    const limit = this.limitFor(bus, dev, extended);
    if (reg >= limit) return ONES[size]!;
    if (reg + size <= limit) return dev.configRead(reg, size);
    let v = 0;
    for (let i = 0; i < limit - reg; i++) v |= dev.configRead(reg + i, 1) << (8 * i);
    return v >>> 0;
  }

  /** A configuration write (QEMU pci_host_config_write_common); absent targets drop it. */
  configWrite(busNumber: number, devfn: number, reg: number, size: 1 | 2 | 4, value: number, extended = false): void {
    const bus = this.rootBus.findBus(busNumber);
    const dev = bus?.device(devfn);
    if (!bus || !dev) return;
    const limit = this.limitFor(bus, dev, extended);
    if (reg >= limit) return;
    if (reg + size <= limit) {
      dev.configWrite(reg, size, value);
      return;
    }
    for (let i = 0; i < limit - reg; i++) dev.configWrite(reg + i, 1, (value >>> (8 * i)) & 0xff);
  }

  private limitFor(bus: PciBus, dev: PciDevice, extended: boolean): number {
    if (!extended) return PCI_CONFIG_SPACE_SIZE;
    return allowsExtendedConfig(bus) ? dev.config.size : PCI_CONFIG_SPACE_SIZE;
  }

  /** Current CONFIG_ADDRESS (port 0xCF8) value. */
  get configAddressRegister(): number {
    return this.configAddress;
  }

  private addressOps(): MmioOps {
    return {
      // Byte 1 is the LPC's RST_CNT (it overlaps in QEMU); otherwise QEMU returns
      // the whole register for any width and the bus keeps the low bytes.
      read: (off, size) => {
        if (off === RstCnt.Offset && size === 1) return this.rstCnt;
        return size === 4 ? this.configAddress : this.configAddress & ONES[size]!;
      },
      write: (off, size, value) => {
        if (off === RstCnt.Offset && size === 1) {
          this.rstCnt = value & RstCnt.Keep;
          if (value & RstCnt.ResetCpu) this.onResetRequest?.();
          return;
        }
        if (off === 0 && size === 4) this.configAddress = value >>> 0;
      },
    };
  }

  private dataOps(): MmioOps {
    return {
      read: (off, size) => {
        const a = this.configAddress;
        if (!(a & ConfigAddress.Enable)) return ONES[size]!;
        const addr = (a | (off & 3)) >>> 0;
        return this.configRead((addr >>> ConfigAddress.BusShift) & 0xff, (addr >>> ConfigAddress.DevfnShift) & 0xff, addr & 0xff, size);
      },
      write: (off, size, value) => {
        const a = this.configAddress;
        if (!(a & ConfigAddress.Enable)) return;
        const addr = (a | (off & 3)) >>> 0;
        this.configWrite((addr >>> ConfigAddress.BusShift) & 0xff, (addr >>> ConfigAddress.DevfnShift) & 0xff, addr & 0xff, size, value);
      },
    };
  }

  private ecamOps(): MmioOps {
    return {
      read: (off, size) =>
        this.configRead(
          (off >>> Ecam.BusShift) & Ecam.BusMask,
          (off >>> Ecam.DevfnShift) & Ecam.DevfnMask,
          off & Ecam.RegMask,
          size,
          true,
        ),
      write: (off, size, value) =>
        this.configWrite(
          (off >>> Ecam.BusShift) & Ecam.BusMask,
          (off >>> Ecam.DevfnShift) & Ecam.DevfnMask,
          off & Ecam.RegMask,
          size,
          value,
          true,
        ),
    };
  }

  /** Maps/unmaps the ECAM window (QEMU pcie_host_mmcfg_update). */
  private mapEcam(enabled: boolean, base: number, length: number): void {
    const sys = this.ctx.systemMemory;
    if (this.ecamMapped) {
      sys.remove(this.ecam);
      this.ecamMapped = false;
    }
    if (!enabled) return;
    if (this.ecam.size !== length) this.ecam.resize(length);
    sys.add(this.ecam, base);
    this.ecamMapped = true;
    this.ecamBase = base;
  }

  /** Current ECAM window, or null while unmapped. */
  ecamWindow(): { base: number; length: number } | null {
    return this.ecamMapped ? this.mch.ecamWindow() : null;
  }

  // ---- enumeration and reset --------------------------------------------------------

  /** Every function reachable now, depth first, with its current bus number. */
  allFunctions(): PciFunctionInfo[] {
    const out: PciFunctionInfo[] = [];
    const walk = (bus: PciBus): void => {
      for (const e of bus.devices()) {
        out.push({ bus, busNumber: bus.busNumber(), devfn: e.devfn, device: e.device });
        const sec = (e.device as { secondaryBus?: PciBus }).secondaryBus;
        if (sec) walk(sec);
      }
    };
    walk(this.rootBus);
    return out;
  }

  /**
   * Snapshot of the host bridge's own state: CONFIG_ADDRESS, RST_CNT, the
   * ISA IRQ levels the PIRQs drive, the root bus's INTx counts and the ECAM
   * window as mapped (a reserved PCIEXBAR length leaves the old one).
   * Functions are saved one by one (PciDevice.saveState).
   */
  saveState(): SnapshotSection {
    const ecam = this.ecamMapped ? { base: this.ecamBase, length: this.ecam.size } : null;
    return { configAddress: this.configAddress, rstCnt: this.rstCnt, isaLevel: toB64(this.isaLevel), irqCount: this.rootBus.saveIrqCounts(), ecam };
  }

  /** Loads what saveState saved (after the functions: nothing is re-derived from them). */
  loadState(r: SectionReader): void {
    const configAddress = r.u32('configAddress');
    const rstCnt = r.int('rstCnt', 0, 0xff);
    const isa = r.bytes('isaLevel', this.isaLevel.length);
    const counts = r.array('irqCount');
    if (counts.length !== this.rootIrqCount || counts.some((c) => typeof c !== 'number' || !Number.isInteger(c) || c < 0)) {
      throw new SnapshotError(`snapshot: ${r.where}.irqCount: expected ${this.rootIrqCount} counts`);
    }
    const e = r.optSub('ecam');
    const ecam = e === null ? null : { base: e.int('base'), length: e.int('length', 1, ECAM_MAX_SIZE) };
    this.configAddress = configAddress;
    this.rstCnt = rstCnt;
    this.isaLevel.set(isa);
    this.rootBus.loadIrqCounts(counts as number[]);
    this.mapEcam(ecam !== null, ecam?.base ?? 0, ecam?.length ?? 0);
  }

  /** Machine reset: every function back to its reset state. */
  reset(): void {
    this.configAddress = 0;
    this.rstCnt = 0;
    this.rootBus.reset();
  }
}

/** QEMU pci_bus_allows_extended_config_space: PCIe buses all the way up. */
export function allowsExtendedConfig(bus: PciBus): boolean {
  for (let b: PciBus = bus; ; b = b.parent.bus) {
    if (!b.isExpress) return false;
    if (!b.parent) return true;
  }
}

/** Creates the q35 host bridge, its root bus and built-in functions. */
export function createQ35PciHost(ctx: Q35PciHostContext): Q35PciHost {
  return new Q35PciHost(ctx);
}
