/**
 * The DMAR the machine publishes: QEMU's build_dmar_q35 from the first
 * intel-iommu and the root bus, plus extras a machine file may add beyond
 * QEMU: RMRRs naming devices by id, several DRHD units, and RHSA, ANDD and
 * SATC structures (types real firmware emits).
 */
import { q35DmarOptions } from '../hw/acpi/dmar.js';
import type { Andd, DeviceScope, DmarOptions, DrhdUnit, Rhsa, Rmrr, Satc } from '../hw/acpi/dmar-types.js';
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import type { PciDevice } from '../pci/device.js';
import type { Device } from './device-type.js';
import type { DeviceSpec } from './registry.js';
import { ConfigError } from './registry.js';

/** An RMRR from a machine file: a guest-physical range and the devices (ids) that need it. */
export interface RmrrExtra {
  readonly base: string | number;
  readonly limit: string | number;
  readonly devices: readonly string[];
}

/** One DRHD of a machine with several VT-d units (beyond QEMU). */
export interface DrhdExtra {
  /** id= of the intel-iommu device. */
  readonly iommu: string;
  /** Register base (the unit's MMIO window moves there). */
  readonly base: string | number;
  /** ids of the PCI functions (bridges: their sub-hierarchy) in its scope. */
  readonly devices?: readonly string[];
  /** INCLUDE_PCI_ALL: every requester no other unit claims (and the IOAPIC). */
  readonly includePciAll?: boolean;
}

/** An RHSA from a machine file: the NUMA proximity domain of the DRHD at `base`. */
export interface RhsaExtra {
  readonly base: string | number;
  readonly proximityDomain: number;
}

/** An ANDD from a machine file: an ACPI namespace device and its device number. */
export interface AnddExtra {
  readonly deviceNumber: number;
  /** Fully qualified ACPI object name, e.g. "\\_SB.PCI0.DMA0". */
  readonly name: string;
}

/** A SATC from a machine file: devices (ids) with an address translation cache. */
export interface SatcExtra {
  readonly devices: readonly string[];
  /** Flags bit 0 (ATC_REQUIRED): software must enable ATS on these devices. */
  readonly atcRequired?: boolean;
}

/** DMAR contents beyond QEMU's. */
export interface DmarExtras {
  readonly rmrr?: readonly RmrrExtra[];
  readonly units?: readonly DrhdExtra[];
  readonly rhsa?: readonly RhsaExtra[];
  readonly andd?: readonly AnddExtra[];
  readonly satc?: readonly SatcExtra[];
}

/** What the DMAR wiring reads from the machine. */
export interface DmarMachineSide {
  readonly iommus: readonly IntelIommu[];
  readonly devices: readonly { readonly spec: DeviceSpec; readonly device: Device; readonly devfn?: number }[];
  readonly pci: { rootDevices(): { devfn: number; bridge: boolean }[] };
}

/** A number from a machine file (JSON number or numeric string, hex allowed). */
export function num(v: string | number, what: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`machine file: bad ${what} '${String(v)}'`);
  return n;
}

/** Device scope of a PCI device: bus number at build time and its devfn. */
function scopeOf(dev: PciDevice): DeviceScope {
  return {
    type: dev.isBridge ? 'bridge' : 'endpoint',
    enumId: 0,
    startBus: dev.bus.busNumber(),
    path: [{ dev: dev.devfn >>> 3, fn: dev.devfn & 7 }],
  };
}

/** The PCI function created with `id`; ConfigError when there is none. */
export function pciById(m: DmarMachineSide, id: string, what: string): PciDevice {
  const d = m.devices.find((x) => x.spec.id === id);
  if (!d || d.spec.type.bus !== 'pci') throw new ConfigError(`machine file: ${what} device '${id}' is not a PCI device id`);
  return d.device as PciDevice;
}

/** IOAPIC scope as QEMU writes it (IOAPIC id 0, bus 0xFF, path 0:0). */
const IOAPIC_SCOPE: DeviceScope = { type: 'ioapic', enumId: 0, startBus: 0xff, path: [{ dev: 0, fn: 0 }] };

/** The DMAR options for the machine, or null without an IOMMU. */
export function buildMachineDmar(m: DmarMachineSide, extras?: DmarExtras): DmarOptions | null {
  const iommu = m.iommus[0];
  if (!iommu) return null;
  let base = q35DmarOptions({ ...iommu.dmarConfig(), rootBus: m.pci.rootDevices() });
  if (extras?.units?.length) {
    const units: DrhdUnit[] = extras.units.map((u) => ({
      base: num(u.base, 'DRHD base'),
      segment: 0,
      includePciAll: u.includePciAll === true,
      scopes: [...(u.includePciAll ? [IOAPIC_SCOPE] : []), ...(u.devices ?? []).map((id) => scopeOf(pciById(m, id, 'DRHD')))],
    }));
    // INCLUDE_PCI_ALL must be the last DRHD of the segment.
    units.sort((a, b) => Number(a.includePciAll) - Number(b.includePciAll));
    base = { ...base, units };
  }
  const rmrr: Rmrr[] = (extras?.rmrr ?? []).map((r) => ({
    segment: 0,
    base: num(r.base, 'RMRR base'),
    limit: num(r.limit, 'RMRR limit'),
    scopes: r.devices.map((id) => scopeOf(pciById(m, id, 'RMRR'))),
  }));
  if (rmrr.length) base = { ...base, rmrr };
  const rhsa: Rhsa[] = (extras?.rhsa ?? []).map((r) => {
    const at = num(r.base, 'RHSA base');
    if (!base.units.some((u) => u.base === at)) {
      throw new ConfigError(`machine file: RHSA base 0x${at.toString(16)} names no DRHD unit`);
    }
    return { base: at, proximityDomain: num(r.proximityDomain, 'RHSA proximity domain') };
  });
  if (rhsa.length) base = { ...base, rhsa };
  const andd: Andd[] = (extras?.andd ?? []).map((a) => {
    if (!a.name.startsWith('\\')) throw new ConfigError(`machine file: ANDD name '${a.name}' must be a fully qualified ACPI path`);
    return { deviceNumber: num(a.deviceNumber, 'ANDD device number'), name: a.name };
  });
  if (andd.length) base = { ...base, andd };
  const satc: Satc[] = (extras?.satc ?? []).map((x) => ({
    segment: 0,
    atcRequired: x.atcRequired === true,
    scopes: x.devices.map((id) => scopeOf(pciById(m, id, 'SATC'))),
  }));
  return satc.length ? { ...base, satc } : base;
}
