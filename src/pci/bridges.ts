/**
 * QEMU's bridge and port devices with their device types:
 *
 *   pcie-root-port      1b36:000c  PCIe root port (secondary bus PCIe)
 *   x3130-upstream      104c:8232  TI XIO3130 switch upstream port
 *   xio3130-downstream  104c:8233  TI XIO3130 switch downstream port
 *   pcie-pci-bridge     1b36:000e  PCIe-to-PCI bridge (secondary bus conventional;
 *                                  requester ID alias = secondary bus, devfn 0)
 *   pci-bridge          1b36:0001  conventional PCI-PCI bridge (alias = the bridge)
 *
 * Header values, capability layout and write masks follow QEMU 7.2 as probed
 * over CF8/CFC; only configuration-space behaviour is modelled (no hot-plug
 * events or error reporting; AER/ACS registers are data only, MSI-X/SHPC
 * tables are inert).
 */
import { MmioRegion, type MmioOps } from '../memory/region.js';
import type { DeviceType, PropValues } from '../machine/device-type.js';
import { PciBridge } from './bridge.js';
import { rangesOverlap } from './config.js';
import {
  addAcsCap,
  addAerCap,
  addMsixCap,
  addPcieCap,
  addPmCap,
  addShpcCap,
  addSlotIdCap,
  addSsvidCap,
  ExpReg,
  PcieType,
  resetSlotPower,
  slotControlWritten,
  syncLinkStatus,
} from './pcie-cap.js';

const REDHAT = 0x1b36;
const TI = 0x104c;

/** A register window that reads zero and drops writes (inert MSI-X / SHPC tables). */
const INERT_OPS: MmioOps = { read: () => 0, write: () => {} };

/** Device capabilities as QEMU 7.2 reports them: role-based error reporting (bit 15). */
const DEVCAP_RBER = 0x0000_8000;
/** XIO3130 ports add a captured slot power limit scale (bit 28). */
const DEVCAP_XIO3130 = 0x1000_8000;
/** Error reporting enables (CERE, NFERE, FERE, URRE). */
const DEVCTL_ERR_ENABLES = 0x000f;
/** Device capabilities 2: ARI forwarding (bit 5), extended fmt field and end-end TLP prefix (bits 20-21). */
const DEVCAP2_ARI_EXT = 0x0030_0020;
const DEVCAP2_EXT = 0x0030_0000;
/** Device control 2: ARI forwarding enable and end-end TLP prefix blocking. */
const DEVCTL2_ARI_EETLPPB = 0x8020;
const DEVCTL2_EETLPPB = 0x8000;
/** Link: x1 at 2.5 GT/s with L0s (0x411), link status x1 2.5 GT/s. */
const LINKCAP_X1 = 0x0000_0411;
const LINKSTA_X1 = 0x0011;
/** Root port link: x32 at 16 GT/s, DLL active and bandwidth notification capable. */
const LINKCAP_ROOT = 0x0030_0604;
const LINKSTA_ROOT = 0x0204;
const LINKCAP2_ROOT = 0x0000_001e;
const LINKCTL2_ROOT = 0x0004;
/** Downstream port link capability. */
const LINKCAP_DOWNSTREAM = 0x0000_0400;
/** Root control: system error on correctable/non-fatal/fatal error enables. */
const ROOTCTL_SERR_ENABLES = 0x0007;

/**
 * A downstream port with a hot-plug slot (root port, switch downstream port;
 * QEMU pcie_cap_slot_*): slot control writes complete at once, and the slot
 * is powered while populated.
 */
abstract class SlotPort extends PciBridge {
  /** Offset of the PCIe capability (set by the subclass constructor). */
  protected abstract readonly expCap: number;

  override configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    super.configWrite(offset, size, value);
    slotControlWritten(this, this.expCap, offset, size, value);
  }

  override secondaryDevicePlugged(): void {
    resetSlotPower(this, this.expCap, true);
  }

  protected override deviceReset(): void {
    super.deviceReset();
    resetSlotPower(this, this.expCap, this.secondaryBus.devices().length > 0);
  }
}

/** pcie-root-port (QEMU 7.2 gen root port). */
export class PcieRootPort extends SlotPort {
  protected readonly expCap: number;

  constructor(opts: { chassis?: number; slot?: number; port?: number; busName?: string } = {}) {
    super({
      typeName: 'pcie-root-port',
      vendorId: REDHAT,
      deviceId: 0x000c,
      revision: 0,
      interruptPin: 1,
      express: true,
      secondaryExpress: true,
      busName: opts.busName,
    });
    this.registerBar(0, new MmioRegion('pcie-root-port-msix', 0x1000, INERT_OPS), 'mem32');
    addSsvidCap(this, 0x40, REDHAT, 0);
    addMsixCap(this, 0x48, 1, 0, 0, 0x800);
    this.expCap = addPcieCap(this, 0x54, {
      type: PcieType.RootPort,
      devCap: DEVCAP_RBER,
      devCtlWmask: DEVCTL_ERR_ENABLES,
      linkCap: LINKCAP_ROOT,
      linkSta: LINKSTA_ROOT,
      port: opts.port ?? 0,
      slot: opts.slot ?? 0,
      rootCtlWmask: ROOTCTL_SERR_ENABLES,
      devCap2: DEVCAP2_ARI_EXT,
      devCtl2Wmask: DEVCTL2_ARI_EETLPPB,
      linkCap2: LINKCAP2_ROOT,
      linkCtl2: LINKCTL2_ROOT,
    });
    addAerCap(this, 0x100, { multiHeader: true, root: true });
    addAcsCap(this, 0x148);
    this.initPcieBridgeRegs();
    this.disableBaseLimit();
  }

  /**
   * Link status is synchronised with the device below before it is read
   * (QEMU 7.2 does this for its root ports; the XIO3130 downstream port keeps
   * a fixed x1 2.5 GT/s status, as observed).
   */
  override configRead(offset: number, size: 1 | 2 | 4): number {
    const sta = this.expCap + ExpReg.LinkSta;
    if (rangesOverlap(offset, size, sta, 2) && this.plugged) syncLinkStatus(this, this.expCap, this.secondaryBus.device(0));
    return super.configRead(offset, size);
  }
}

/** x3130-upstream: the upstream port of a TI XIO3130 switch. */
export class X3130Upstream extends PciBridge {
  constructor(opts: { port?: number; busName?: string } = {}) {
    super({
      typeName: 'x3130-upstream',
      vendorId: TI,
      deviceId: 0x8232,
      revision: 2,
      express: true,
      secondaryExpress: true,
      busName: opts.busName,
    });
    this.initMsi(0x70, 1, true, false);
    addSsvidCap(this, 0x80, 0, 0);
    addPcieCap(this, 0x90, {
      type: PcieType.Upstream,
      devCap: DEVCAP_XIO3130,
      devCtlWmask: 0,
      linkCap: LINKCAP_X1,
      linkSta: LINKSTA_X1,
      port: opts.port ?? 0,
      devCap2: DEVCAP2_EXT,
      devCtl2Wmask: DEVCTL2_EETLPPB,
    });
    addAerCap(this, 0x100, { multiHeader: true, root: false });
    this.initPcieBridgeRegs();
  }
}

/** xio3130-downstream: a downstream port of a TI XIO3130 switch. */
export class Xio3130Downstream extends SlotPort {
  protected readonly expCap: number;

  constructor(opts: { chassis?: number; slot?: number; port?: number; busName?: string } = {}) {
    super({
      typeName: 'xio3130-downstream',
      vendorId: TI,
      deviceId: 0x8233,
      revision: 1,
      express: true,
      secondaryExpress: true,
      busName: opts.busName,
    });
    this.initMsi(0x70, 1, true, false);
    addSsvidCap(this, 0x80, 0, 0);
    this.expCap = addPcieCap(this, 0x90, {
      type: PcieType.Downstream,
      devCap: DEVCAP_XIO3130,
      devCtlWmask: 0,
      linkCap: LINKCAP_DOWNSTREAM,
      linkSta: LINKSTA_X1,
      port: opts.port ?? 0,
      slot: opts.slot ?? 0,
      devCap2: DEVCAP2_ARI_EXT,
      devCtl2Wmask: DEVCTL2_ARI_EETLPPB,
    });
    addAerCap(this, 0x100, { multiHeader: true, root: false });
    this.initPcieBridgeRegs();
  }
}

/** pcie-pci-bridge: PCIe-to-PCI bridge; its secondary bus is conventional PCI. */
export class PciePciBridge extends PciBridge {
  constructor(opts: { busName?: string } = {}) {
    super({
      typeName: 'pcie-pci-bridge',
      vendorId: REDHAT,
      deviceId: 0x000e,
      revision: 0,
      interruptPin: 1,
      express: true,
      secondaryExpress: false,
      busName: opts.busName,
    });
    this.registerBar(0, new MmioRegion('pcie-pci-bridge-shpc', 0x100, INERT_OPS), 'mem64');
    addShpcCap(this, 0x40);
    addPcieCap(this, 0x48, {
      type: PcieType.PcieToPciBridge,
      devCap: DEVCAP_RBER,
      devCtlWmask: DEVCTL_ERR_ENABLES,
      linkCap: LINKCAP_X1,
      linkSta: LINKSTA_X1,
      devCap2: DEVCAP2_ARI_EXT,
      devCtl2Wmask: DEVCTL2_ARI_EETLPPB,
    });
    addPmCap(this, 0x84);
    this.initMsi(0x8c, 1, true, true);
    addAerCap(this, 0x100, { multiHeader: false, root: false });
  }
}

/** pci-bridge: a conventional PCI-PCI bridge (DMA from behind it carries the bridge's requester ID). */
export class PciPciBridge extends PciBridge {
  constructor(opts: { chassisNr: number; busName?: string }) {
    super({
      typeName: 'pci-bridge',
      vendorId: REDHAT,
      deviceId: 0x0001,
      revision: 0,
      interruptPin: 1,
      secondaryExpress: false,
      busName: opts.busName,
    });
    this.registerBar(0, new MmioRegion('pci-bridge-shpc', 0x100, INERT_OPS), 'mem64');
    addShpcCap(this, 0x40);
    addSlotIdCap(this, 0x48, opts.chassisNr);
    this.initMsi(0x4c, 1, true, true);
  }
}

const num = (props: PropValues, k: string): number => Number(props[k] ?? 0);

/** Properties of a PCIe downstream port (root port or switch downstream port): QEMU's chassis/slot/port. */
const DOWNSTREAM_PORT_PROPS = {
  chassis: { kind: 'uint8', default: 0 },
  slot: { kind: 'uint16', default: 0 },
  port: { kind: 'uint8', default: 0 },
} as const;

/** Chassis, slot and port numbers from parsed properties. */
const portNumbers = (props: PropValues) => ({ chassis: num(props, 'chassis'), slot: num(props, 'slot'), port: num(props, 'port') });

/** `-device pcie-root-port,chassis=N,slot=N,port=N`. */
export const pcieRootPortType: DeviceType<PcieRootPort> = {
  name: 'pcie-root-port',
  description: 'PCI Express root port (QEMU generic, 1b36:000c)',
  bus: 'pci',
  props: DOWNSTREAM_PORT_PROPS,
  create: (ctx, props) =>
    new PcieRootPort({ ...portNumbers(props), busName: ctx.id }),
};

/** `-device x3130-upstream,port=N`. */
export const x3130UpstreamType: DeviceType<X3130Upstream> = {
  name: 'x3130-upstream',
  description: 'TI X3130 Upstream Port of PCI Express Switch',
  bus: 'pci',
  props: { port: { kind: 'uint8', default: 0 } },
  create: (ctx, props) => new X3130Upstream({ port: num(props, 'port'), busName: ctx.id }),
};

/** `-device xio3130-downstream,chassis=N,slot=N,port=N`. */
export const xio3130DownstreamType: DeviceType<Xio3130Downstream> = {
  name: 'xio3130-downstream',
  description: 'TI X3130 Downstream Port of PCI Express Switch',
  bus: 'pci',
  props: DOWNSTREAM_PORT_PROPS,
  create: (ctx, props) =>
    new Xio3130Downstream({ ...portNumbers(props), busName: ctx.id }),
};

/** `-device pcie-pci-bridge`. */
export const pciePciBridgeType: DeviceType<PciePciBridge> = {
  name: 'pcie-pci-bridge',
  description: 'PCI Express to PCI bridge (1b36:000e)',
  bus: 'pci',
  props: {},
  create: (ctx) => new PciePciBridge({ busName: ctx.id }),
};

/** `-device pci-bridge,chassis_nr=N`. */
export const pciBridgeType: DeviceType<PciPciBridge> = {
  name: 'pci-bridge',
  description: 'Standard PCI Bridge (1b36:0001)',
  bus: 'pci',
  props: { chassis_nr: { kind: 'uint8', default: 0 } },
  create: (ctx, props) => {
    const chassisNr = num(props, 'chassis_nr');
    if (chassisNr === 0) {
      throw new Error('Bridge chassis not specified. Each bridge is required to be assigned a unique chassis id > 0.');
    }
    return new PciPciBridge({ chassisNr, busName: ctx.id });
  },
};

/** Every bridge device type, for the machine's registry. */
export const bridgeDeviceTypes: readonly DeviceType[] = [
  pcieRootPortType,
  x3130UpstreamType,
  xio3130DownstreamType,
  pciePciBridgeType,
  pciBridgeType,
];
