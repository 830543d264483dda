/**
 * The PCI device base class (QEMU PCIDevice in small): a configuration space
 * with masks, BARs mapped into the parent bus's memory/I/O containers while
 * decoding is enabled, a capability list, MSI, INTx and a DMA address space
 * gated by bus-master enable and routed through the host's IOMMU for the
 * device's requester ID.
 */
import type { MmioRegion } from '../memory/region.js';
import { MemTx } from '../memory/address-space.js';
import { DmaSpace, type DmaMemory } from '../memory/dma-space.js';
import { DmaRequestKind, MAX_PASID, NO_PASID, type AtsEndpoint, type AtsPort, type DmaRequester, type DmaTranslator } from '../memory/iommu.js';
import type { Device } from '../machine/device-type.js';
import {
  PciCommand,
  PciConfig,
  PciHeaderType,
  PciReg,
  PciStatus,
  PCI_CONFIG_SPACE_SIZE,
  PCIE_CONFIG_SPACE_SIZE,
  rangesOverlap,
} from './config.js';
import { BAR_UNMAPPED, PCI_NUM_BARS, barAddress, barOffset, declareBar, type BarType, type PciBar } from './bar.js';
import { MSI_CAP_ID, MsiCap } from './msi.js';
import { requesterOf } from './requester.js';
import { SnapshotError, toB64, type SectionReader, type SnapshotSection } from '../core/snapshot-state.js';
import type { PciBus } from './bus.js';

export { BAR_UNMAPPED, BarBits, PCI_NUM_BARS, type BarType, type PciBar } from './bar.js';

/** What a PCI device is created with. */
export interface PciDeviceInit {
  readonly typeName: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly revision: number;
  /** 24 bits: class << 16 | subclass << 8 | prog-if. */
  readonly classCode: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  /** Header type without the multi-function bit (0 normal, 1 bridge). */
  readonly headerType?: number;
  /** 1 = INTA ... 4 = INTD, 0 = none. */
  readonly interruptPin?: number;
  /** PCI Express function: 4 KiB configuration space. */
  readonly express?: boolean;
}

/** Extended capability header: ID bits 15:0, version 19:16, next pointer 31:20 (PCIe Base 4.0 §7.6.3). */
const EXT_CAP_VERSION_SHIFT = 16;
const EXT_CAP_NEXT_SHIFT = 20;
const EXT_CAP_NEXT_MASK = 0xfff;

/** The master gate of `iommuDma`: always open. */
const ungated = (): boolean => true;

/** Forwards to the DmaSpace created when the device is plugged; unplugged devices read 0 and drop writes. */
class DeviceDma implements DmaMemory {
  space: DmaSpace | null = null;
  read(addr: number, dst: Uint8Array): MemTx {
    if (this.space) return this.space.read(addr, dst);
    dst.fill(0);
    return MemTx.DecodeError;
  }
  write(addr: number, src: Uint8Array): MemTx {
    return this.space ? this.space.write(addr, src) : MemTx.DecodeError;
  }
  writeU32(addr: number, value: number): MemTx {
    return this.space ? this.space.writeU32(addr, value) : MemTx.DecodeError;
  }
  readWide(addr: bigint, dst: Uint8Array): MemTx {
    if (this.space) return this.space.readWide(addr, dst);
    dst.fill(0);
    return MemTx.DecodeError;
  }
  writeWide(addr: bigint, src: Uint8Array): MemTx {
    return this.space ? this.space.writeWide(addr, src) : MemTx.DecodeError;
  }
}

/** Base class of every PCI function. */
export abstract class PciDevice implements Device {
  /** Device type name (`edu`, `pcie-root-port`, ...). */
  readonly typeName: string;
  /** Configuration space with its write masks. */
  readonly config: PciConfig;
  /** This device's DMA address space (bus-master gated, through the IOMMU). */
  readonly dma: DmaMemory;
  /**
   * The same without the bus-master gate (QEMU pci_device_iommu_address_space):
   * for a device that, like QEMU's iommu-testdev, DMAs through the IOMMU
   * address space directly.  Other devices use `dma`.
   */
  readonly iommuDma: DmaMemory;
  /** Registered BARs by index. */
  readonly bars: (PciBar | undefined)[] = [];
  /** The MSI capability once initMsi ran. */
  protected msi: MsiCap | null = null;

  private readonly dmaImpl = new DeviceDma();
  private readonly iommuDmaImpl = new DeviceDma();
  private parentBus: PciBus | null = null;
  private devfnValue = -1;
  /** Bytes of config space taken by capabilities (QEMU PCIDevice.used). */
  private readonly used: Uint8Array;
  /** Current INTx level raised by the device (before INTx-disable). */
  private intxLevel = false;
  private translatorCache: DmaTranslator | null = null;
  private translatorGen = -1;
  /** DMA spaces of requests with a PASID prefix, by PASID (created on first use). */
  private readonly pasidSpaces = new Map<number, DeviceDma>();
  private requesterCache: DmaRequester | null = null;
  /** DMA spaces of translated requests, by PASID (NO_PASID: none). */
  private readonly translatedSpaces = new Map<number, DeviceDma>();
  private atsPortCache: AtsPort | null = null;
  private atsGen = -1;
  private atsEndpoint: AtsEndpoint | null = null;
  private declaredEndpoint: AtsEndpoint | null = null;

  constructor(init: PciDeviceInit) {
    this.typeName = init.typeName;
    this.config = new PciConfig(init.express ? PCIE_CONFIG_SPACE_SIZE : PCI_CONFIG_SPACE_SIZE);
    this.used = new Uint8Array(this.config.size);
    this.dma = this.dmaImpl;
    this.iommuDma = this.iommuDmaImpl;
    const c = this.config;
    c.setWord(PciReg.VendorId, init.vendorId);
    c.setWord(PciReg.DeviceId, init.deviceId);
    c.setByte(PciReg.RevisionId, init.revision);
    c.setByte(PciReg.ClassProg, init.classCode & 0xff);
    c.setWord(PciReg.ClassDevice, (init.classCode >>> 8) & 0xffff);
    const header = init.headerType ?? PciHeaderType.Normal;
    c.setByte(PciReg.HeaderType, header);
    if (header === PciHeaderType.Normal) {
      if (init.subsystemVendorId !== undefined) c.setWord(PciReg.SubsystemVendorId, init.subsystemVendorId);
      if (init.subsystemId !== undefined) c.setWord(PciReg.SubsystemId, init.subsystemId);
    }
    if (init.interruptPin) c.setByte(PciReg.InterruptPin, init.interruptPin);
    this.used.fill(1, 0, 0x40);
    // QEMU pci_init_wmask / pci_init_w1cmask.
    c.setWmask(PciReg.CacheLineSize, 1, 0xff);
    c.setWmask(PciReg.InterruptLine, 1, 0xff);
    c.setWmask(PciReg.Command, 2, PciCommand.Io | PciCommand.Memory | PciCommand.Master | PciCommand.IntxDisable | PciCommand.Serr);
    this.config.wmask.fill(0xff, 0x40);
    c.setW1cmask(
      PciReg.Status,
      2,
      PciStatus.ParityError |
        PciStatus.SigTargetAbort |
        PciStatus.RecTargetAbort |
        PciStatus.RecMasterAbort |
        PciStatus.SigSystemError |
        PciStatus.DetectedParity,
    );
  }

  /** The bus this device is plugged into (a host bug to ask before plugging). */
  get bus(): PciBus {
    if (!this.parentBus) throw new Error(`pci device ${this.typeName}: not plugged into a bus`);
    return this.parentBus;
  }

  /** True once plugged. */
  get plugged(): boolean {
    return this.parentBus !== null;
  }

  /** Device/function number on its bus (-1 before plugging). */
  get devfn(): number {
    return this.devfnValue;
  }

  /** True for a type-1 header (bridges override). */
  get isBridge(): boolean {
    return false;
  }

  /** True for a PCI Express function. */
  get isExpress(): boolean {
    return this.config.size === PCIE_CONFIG_SPACE_SIZE;
  }

  /**
   * Called by PciBus.plug: records the bus and devfn and creates the DMA
   * space.  Not for device code.
   */
  attach(bus: PciBus, devfn: number): void {
    if (this.parentBus) throw new Error(`pci device ${this.typeName}: already plugged`);
    this.parentBus = bus;
    this.devfnValue = devfn;
    this.dmaImpl.space = new DmaSpace(
      bus.host.dmaMemory,
      () => this.masterChainEnabled(),
      () => this.currentTranslator(),
    );
    this.iommuDmaImpl.space = new DmaSpace(bus.host.dmaMemory, ungated, () => this.currentTranslator());
    for (const [pasid, d] of this.pasidSpaces) d.space = this.pasidSpace(bus, pasid);
    this.refreshIommu();
  }

  // ---- BARs -------------------------------------------------------------

  /** BAR register offset of `index` (0x10 + 4 * index). */
  static barOffset(index: number): number {
    return barOffset(index);
  }

  /**
   * Registers BAR `index` backed by `region` (QEMU pci_register_bar).  The
   * region size must be a power of two (at least 16 for memory, 4 for I/O).
   */
  registerBar(index: number, region: MmioRegion, type: BarType, prefetchable = false): void {
    this.bars[index] = declareBar(this.config, this.bars, this.isBridge ? 2 : PCI_NUM_BARS, index, region, type, prefetchable, this.typeName);
  }

  /** Address BAR `index` decodes at now (QEMU pci_bar_address), or BAR_UNMAPPED. */
  barAddress(index: number): number {
    const bar = this.bars[index];
    return bar ? barAddress(this.config, bar) : BAR_UNMAPPED;
  }

  /** Maps/unmaps/moves every BAR to match config space (QEMU pci_update_mappings). */
  updateMappings(): void {
    for (const bar of this.bars) {
      if (!bar) continue;
      const addr = this.parentBus ? this.barAddress(bar.index) : BAR_UNMAPPED;
      if (addr === bar.addr) continue;
      if (bar.container) {
        bar.container.remove(bar.region);
        bar.container = null;
      }
      bar.addr = addr;
      if (addr !== BAR_UNMAPPED) {
        const container = bar.type === 'io' ? this.bus.io : this.bus.memory;
        container.add(bar.region, addr, 1);
        bar.container = container;
      }
    }
  }

  // ---- capabilities -----------------------------------------------------

  /**
   * Adds a capability of `size` bytes at `offset` (0: first free dword-aligned
   * space from 0x40) and links it at the head of the list (QEMU
   * pci_add_capability).  Returns the offset.
   */
  addCapability(id: number, offset: number, size: number): number {
    const c = this.config;
    if (offset === 0) offset = this.findSpace(size);
    if (offset < 0x40 || offset + size > PCI_CONFIG_SPACE_SIZE || offset & 3) {
      throw new RangeError(`pci device ${this.typeName}: capability 0x${id.toString(16)} at 0x${offset.toString(16)} does not fit`);
    }
    for (let i = offset; i < offset + size; i++) {
      if (this.used[i]) {
        throw new Error(`pci device ${this.typeName}: capability 0x${id.toString(16)} at 0x${offset.toString(16)} overlaps another`);
      }
    }
    c.setByte(offset, id);
    c.setByte(offset + 1, c.getByte(PciReg.CapabilityList));
    c.setByte(PciReg.CapabilityList, offset);
    c.setWord(PciReg.Status, c.getWord(PciReg.Status) | PciStatus.CapList);
    this.used.fill(1, offset, offset + size);
    c.wmask.fill(0, offset, offset + size);
    c.w1cmask.fill(0, offset, offset + size);
    c.setCmask(offset, 2, 0xffff);
    return offset;
  }

  /**
   * Adds a PCI Express extended capability at `offset` (0x100 and up, dword
   * aligned) and links it at the tail of the extended list (QEMU
   * pcie_add_capability).  Returns the offset.
   */
  addExtCapability(id: number, version: number, offset: number, size: number): number {
    const c = this.config;
    if (!this.isExpress || offset < PCI_CONFIG_SPACE_SIZE || offset & 3 || offset + size > c.size) {
      throw new RangeError(`pci device ${this.typeName}: extended capability 0x${id.toString(16)} at 0x${offset.toString(16)} does not fit`);
    }
    if (offset !== PCI_CONFIG_SPACE_SIZE) {
      let at: number = PCI_CONFIG_SPACE_SIZE;
      for (let next = c.getLong(at) >>> EXT_CAP_NEXT_SHIFT; next; next = c.getLong(at) >>> EXT_CAP_NEXT_SHIFT) at = next;
      c.setLong(at, ((c.getLong(at) & ~(EXT_CAP_NEXT_MASK << EXT_CAP_NEXT_SHIFT)) | (offset << EXT_CAP_NEXT_SHIFT)) >>> 0);
    }
    c.setLong(offset, (id | (version << EXT_CAP_VERSION_SHIFT)) >>> 0);
    c.wmask.fill(0, offset, offset + size);
    c.w1cmask.fill(0, offset, offset + size);
    c.cmask.fill(0xff, offset, offset + size);
    return offset;
  }

  /** Offset of the first capability with `id`, or 0. */
  findCapability(id: number): number {
    const c = this.config;
    if (!(c.getWord(PciReg.Status) & PciStatus.CapList)) return 0;
    let at = c.getByte(PciReg.CapabilityList);
    for (let ttl = 48; at && ttl > 0; ttl--) {
      if (c.getByte(at) === id) return at;
      at = c.getByte(at + 1);
    }
    return 0;
  }

  private findSpace(size: number): number {
    let run = 0;
    for (let i = 0x40; i < PCI_CONFIG_SPACE_SIZE; i++) {
      run = this.used[i] ? 0 : run + 1;
      if (run === size) {
        const start = i - size + 1;
        if ((start & 3) === 0) return start;
        run = 0;
        i = (start | 3);
      }
    }
    throw new Error(`pci device ${this.typeName}: no room for a ${size}-byte capability`);
  }

  // ---- MSI ----------------------------------------------------------------

  /** Adds an MSI capability like QEMU msi_init. */
  initMsi(offset: number, vectors: number, is64: boolean, perVectorMask: boolean): void {
    if (this.msi) throw new Error(`pci device ${this.typeName}: MSI initialised twice`);
    const size = MsiCap.capSize(is64, perVectorMask);
    const at = this.addCapability(MSI_CAP_ID, offset, size);
    this.msi = new MsiCap(this.config, at, vectors, is64, perVectorMask);
  }

  /** True when MSI is present and enabled by the guest. */
  msiEnabled(): boolean {
    return this.msi !== null && this.msi.enabled();
  }

  /** Signals MSI `vector` (QEMU msi_notify): pending if masked, else a DMA write. */
  msiNotify(vector: number): void {
    const m = this.msi;
    if (!m) return;
    if (m.maskedOrPend(vector)) return;
    this.dma.writeU32(m.address(), m.data(vector));
  }

  // ---- INTx ---------------------------------------------------------------

  /** Raises or lowers this function's INTx pin (QEMU pci_set_irq). */
  setIntx(level: boolean): void {
    if (level === this.intxLevel) return;
    this.intxLevel = level;
    const c = this.config;
    const status = c.getWord(PciReg.Status);
    c.setWord(PciReg.Status, level ? status | PciStatus.Interrupt : status & ~PciStatus.Interrupt);
    if (this.intxDisabled()) return;
    this.routeIntx(level ? 1 : -1);
  }

  private intxDisabled(): boolean {
    return (this.config.getWord(PciReg.Command) & PciCommand.IntxDisable) !== 0;
  }

  private routeIntx(change: number): void {
    const pin = this.config.getByte(PciReg.InterruptPin) - 1;
    if (pin < 0 || pin > 3 || !this.parentBus) return;
    this.parentBus.changeIrqLevel(this, pin, change);
  }

  // ---- bus mastering and DMA -----------------------------------------------

  /** This function's bus-master enable bit. */
  busMasterEnabled(): boolean {
    return (this.config.getWord(PciReg.Command) & PciCommand.Master) !== 0;
  }

  /** Bus master of this function and of every bridge above it. */
  masterChainEnabled(): boolean {
    return this.busMasterEnabled() && (this.parentBus ? this.parentBus.upstreamMasterEnabled() : false);
  }

  /** The requester ID the IOMMU sees for this device (QEMU pci_device_get_iommu_bus_devfn). */
  requester(): DmaRequester {
    if (!this.requesterCache) this.requesterCache = requesterOf(this);
    return this.requesterCache;
  }

  /**
   * This device's DMA address space for requests carrying `pasid` (a PCIe
   * PASID TLP prefix; 0..2^20-1), bus-master gated like `dma`.  With an
   * IOMMU the requests are translated in that PASID's space; without one
   * the PASID is ignored.  Throws on a PASID outside 20 bits (a device bug,
   * not guest input: a device model must mask what the guest programs).
   */
  dmaWithPasid(pasid: number): DmaMemory {
    if (!Number.isInteger(pasid) || pasid < 0 || pasid > MAX_PASID) throw new Error(`pci device ${this.typeName}: PASID ${pasid} out of range`);
    let d = this.pasidSpaces.get(pasid);
    if (d === undefined) {
      d = new DeviceDma();
      this.pasidSpaces.set(pasid, d);
      if (this.parentBus !== null) d.space = this.pasidSpace(this.parentBus, pasid);
    }
    return d;
  }

  /**
   * The DmaSpace of `pasid` (NO_PASID: none) on `bus`: gated like `dma`, its
   * translator re-fetched when the IOMMU changes; `kind` says whether its
   * requests are untranslated or translated by the device's ATC.
   */
  private pasidSpace(bus: PciBus, pasid: number, kind: DmaRequestKind = DmaRequestKind.Untranslated): DmaSpace {
    let gen = -1;
    let translator: DmaTranslator | null = null;
    const getTranslator = (): DmaTranslator | null => {
      if (gen !== bus.host.iommuGeneration) {
        translator = bus.host.translatorFor(this.requester(), pasid);
        gen = bus.host.iommuGeneration;
      }
      return translator;
    };
    return new DmaSpace(bus.host.dmaMemory, () => this.masterChainEnabled(), getTranslator, kind);
  }

  /**
   * This device's DMA space for translated requests (PCIe AT = 10b: the
   * address came from its ATC), with `pasid` or without one; bus-master
   * gated.  The IOMMU checks rather than translates them.  Not for a device
   * that is not plugged yet.
   */
  translatedDma(pasid: number = NO_PASID): DmaMemory {
    if (pasid !== NO_PASID && (!Number.isInteger(pasid) || pasid < 0 || pasid > MAX_PASID)) {
      throw new Error(`pci device ${this.typeName}: PASID ${pasid} out of range`);
    }
    let d = this.translatedSpaces.get(pasid);
    if (d === undefined) {
      d = new DeviceDma();
      this.translatedSpaces.set(pasid, d);
      d.space = this.pasidSpace(this.bus, pasid, DmaRequestKind.Translated);
    }
    return d;
  }

  /**
   * Declares this function's ATS/PRI endpoint: it is registered with the
   * host's IOMMU at once if plugged, when plugged otherwise, and again
   * whenever the IOMMU changes, so invalidations and page-group responses
   * reach it before its first translation or page request.
   */
  protected declareAtsEndpoint(endpoint: AtsEndpoint): void {
    this.declaredEndpoint = endpoint;
    this.refreshAtsPort();
  }

  /**
   * Plugged, or the host's IOMMU changed: registers the declared ATS/PRI
   * endpoint and creates this function's (no-PASID) translator now.  QEMU
   * creates every PCI device's IOMMU address space when the machine is
   * done (pci_init_bus_master), and an IOMMU keeps per-device state such as
   * VT-d's pass-through switch only for the address spaces that exist.
   */
  refreshIommu(): void {
    this.refreshAtsPort();
    if (this.parentBus !== null) this.currentTranslator();
  }

  /** Registers the declared ATS/PRI endpoint with the current IOMMU (refreshIommu calls it when the IOMMU changes). */
  refreshAtsPort(): void {
    if (this.declaredEndpoint !== null && this.parentBus !== null) this.atsPort(this.declaredEndpoint);
  }

  /**
   * The host's ATS/PRI port for this function, registering `endpoint` to
   * receive its ATC invalidations and page-group responses; re-registered
   * whenever the IOMMU changes.  Null without an IOMMU, with one that has
   * no ATS, or while unplugged.
   */
  atsPort(endpoint: AtsEndpoint): AtsPort | null {
    if (this.parentBus === null) return null;
    const host = this.parentBus.host;
    if (this.atsGen !== host.iommuGeneration || this.atsEndpoint !== endpoint) {
      this.atsPortCache = host.atsPort ? host.atsPort(this.requester(), endpoint) : null;
      this.atsGen = host.iommuGeneration;
      this.atsEndpoint = endpoint;
    }
    return this.atsPortCache;
  }

  private currentTranslator(): DmaTranslator | null {
    const host = this.bus.host;
    if (this.translatorGen !== host.iommuGeneration) {
      this.translatorCache = host.translatorFor(this.requester());
      this.translatorGen = host.iommuGeneration;
    }
    return this.translatorCache;
  }

  // ---- config access --------------------------------------------------------

  /** Config read as the host bridge delivers it (QEMU pci_default_read_config). */
  configRead(offset: number, size: 1 | 2 | 4): number {
    return this.config.read(offset, size);
  }

  /** Config write (QEMU pci_default_write_config): masks, then side effects. */
  configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    const wasIntxDisabled = this.intxDisabled();
    this.config.guestWrite(offset, size, value);
    // Like QEMU (range_covers_byte), only a write covering the command register's first byte counts.
    const coversCommand = rangesOverlap(offset, size, PciReg.Command, 1);
    if (coversCommand || rangesOverlap(offset, size, PciReg.Bar0, 4 * (this.isBridge ? 2 : PCI_NUM_BARS))) this.updateMappings();
    if (coversCommand) {
      const disabled = this.intxDisabled();
      if (disabled !== wasIntxDisabled && this.intxLevel) this.routeIntx(disabled ? -1 : 1);
    }
    if (this.msi && this.msi.overlaps(offset, size)) {
      if (this.msi.enabled() && this.intxLevel) this.setIntx(false);
      this.msi.afterWrite((vector) => this.msiNotify(vector));
    }
  }

  // ---- lifecycle --------------------------------------------------------------

  /** Hook after plugging (override, call super). */
  realize(): void {}

  /** Device reset: config back to reset values, BARs unmapped, then deviceReset(). */
  reset(): void {
    if (this.intxLevel) this.setIntx(false);
    this.config.restoreReset();
    this.updateMappings();
    this.deviceReset();
  }

  /** Device-specific reset (override). */
  protected deviceReset(): void {}

  // ---- snapshot -----------------------------------------------------------------

  /**
   * Snapshot section of this function (QEMU vmstate_pci_device plus the
   * device's own fields): config space values and the masks a device may
   * change at run time (MCH lock bits), the INTx level it drives, and
   * `saveDeviceState()` under `device`.
   */
  saveState(): SnapshotSection {
    const c = this.config;
    return { config: toB64(c.bytes), wmask: toB64(c.wmask), w1cmask: toB64(c.w1cmask), intx: this.intxLevel, device: this.saveDeviceState() };
  }

  /**
   * Loads a section saved by `saveState` into this (plugged, same-type)
   * function, then maps its BARs and runs `afterLoad`.  Nothing is
   * delivered: the bus's INTx counts are the host's to restore.
   */
  loadState(r: SectionReader): void {
    const c = this.config;
    const config = r.bytes('config', c.size);
    const wmask = r.bytes('wmask', c.size);
    const w1cmask = r.bytes('w1cmask', c.size);
    const intx = r.bool('intx');
    const dev = r.optSub('device');
    if ((dev === null) !== (this.saveDeviceState() === null)) throw new SnapshotError(`snapshot: ${r.where}.device: does not match a ${this.typeName}`);
    c.bytes.set(config);
    c.wmask.set(wmask);
    c.w1cmask.set(w1cmask);
    this.intxLevel = intx;
    if (dev !== null) this.loadDeviceState(dev);
    this.updateMappings();
    this.afterLoad();
  }

  /** The device's own snapshot fields (null: none; override with loadDeviceState). */
  protected saveDeviceState(): SnapshotSection | null {
    return null;
  }

  /** Loads what saveDeviceState saved (override). */
  protected loadDeviceState(_r: SectionReader): void {}

  /** After loadState set config space and device fields: derived views (windows, SMRAM) follow (override, call super). */
  protected afterLoad(): void {}
}
