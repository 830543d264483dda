/**
 * DMAR table builder (Intel VT-d spec chapter 8), byte-compatible with QEMU's
 * build_dmar_q35 for the structures QEMU emits (one DRHD with an IOAPIC
 * scope and one scope per root-bus device, optional ATSR), and able to emit
 * what QEMU does not: RMRR, RHSA, ANDD, SATC, several DRHDs.
 *
 * Input is plain data (dmar-types.ts), so the builder does not depend on the
 * PCI code.  Configuration mistakes (a bad path, INCLUDE_PCI_ALL not last)
 * throw: they are host errors, not guest input.
 */
import { ByteWriter, beginTable, finishTable } from './table.js';
import {
  DmarFlag,
  DmarStructFlag,
  DmarType,
  ScopeTypeCode,
  type DeviceScope,
  type DmarOptions,
  type DrhdUnit,
} from './dmar-types.js';

export * from './dmar-types.js';

/** DMAR table revision QEMU writes. */
export const DMAR_REVISION = 1;

/** QEMU's VT-d register base (Q35_HOST_BRIDGE_IOMMU_ADDR). */
export const Q35_IOMMU_BASE = 0xfed9_0000;

/** Size of a device scope with one path entry. */
const SCOPE_HEADER_LEN = 6;
const PATH_ENTRY_LEN = 2;
const MAX_U8 = 0xff;
const MAX_U16 = 0xffff;
const MAX_DEV = 31;
const MAX_FN = 7;

/** A device on the root bus, as QEMU's DMAR lists it. */
export interface RootBusDevice {
  /** devfn = dev << 3 | fn. */
  readonly devfn: number;
  /** PCI-PCI bridges (incl. PCIe root ports) get a sub-hierarchy scope. */
  readonly bridge: boolean;
}

/** What build_dmar_q35 takes from the intel-iommu device (shaped like its `dmarConfig()`). */
export interface Q35IommuDmarConfig {
  /** aw-bits (QEMU 7.2 default 39). */
  readonly hostAddressWidth: number;
  readonly intremap: boolean;
  readonly deviceIotlb: boolean;
  /** Register base (default 0xFED90000). */
  readonly base?: number;
}

/**
 * The options QEMU 7.2's build_dmar_q35 derives from an intel-iommu device
 * and the root bus: IOAPIC scope (id 0, bus 0xFF, path 0:0), then one scope
 * per root-bus device in devfn order.  Spread extras (rmrr, satc, ...) over
 * the result to go beyond QEMU.
 */
export function q35DmarOptions(opts: Q35IommuDmarConfig & { readonly rootBus: readonly RootBusDevice[] }): DmarOptions {
  const scopes: DeviceScope[] = [{ type: 'ioapic', enumId: 0, startBus: 0xff, path: [{ dev: 0, fn: 0 }] }];
  const devices = [...opts.rootBus].sort((a, b) => a.devfn - b.devfn);
  for (const d of devices) {
    scopes.push({ type: d.bridge ? 'bridge' : 'endpoint', enumId: 0, startBus: 0, path: [{ dev: d.devfn >> 3, fn: d.devfn & 7 }] });
  }
  return {
    hostAddressWidth: opts.hostAddressWidth,
    intremap: opts.intremap,
    deviceIotlb: opts.deviceIotlb,
    units: [{ base: opts.base ?? Q35_IOMMU_BASE, segment: 0, includePciAll: false, scopes }],
  };
}

function checkRange(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`DMAR: ${what} ${v} out of range 0..${max}`);
}

function writeScopes(w: ByteWriter, scopes: readonly DeviceScope[]): void {
  for (const s of scopes) {
    const code = ScopeTypeCode[s.type];
    if (code === undefined) throw new Error(`DMAR: unknown device scope type ${String(s.type)}`);
    if (s.path.length === 0) throw new Error('DMAR: a device scope needs at least one path entry');
    checkRange('scope enumeration id', s.enumId, MAX_U8);
    checkRange('scope start bus', s.startBus, MAX_U8);
    const len = SCOPE_HEADER_LEN + PATH_ENTRY_LEN * s.path.length;
    checkRange('scope length', len, MAX_U8);
    w.u8(code);
    w.u8(len);
    w.u8(0); // flags (reserved)
    w.u8(0); // reserved
    w.u8(s.enumId);
    w.u8(s.startBus);
    for (const p of s.path) {
      checkRange('path device', p.dev, MAX_DEV);
      checkRange('path function', p.fn, MAX_FN);
      w.u8(p.dev);
      w.u8(p.fn);
    }
  }
}

/** Writes {type, length placeholder}; returns the structure's offset. */
function beginStruct(w: ByteWriter, type: number): number {
  const at = w.u16(type);
  w.u16(0);
  return at;
}

function endStruct(w: ByteWriter, at: number): void {
  const len = w.length - at;
  checkRange('structure length', len, MAX_U16);
  w.put(at + 2, len, 2);
}

function checkUnitOrder(units: readonly DrhdUnit[]): void {
  units.forEach((u, i) => {
    checkRange('DRHD segment', u.segment, MAX_U16);
    if (!u.includePciAll) return;
    if (units.slice(i + 1).some((later) => later.segment === u.segment)) {
      throw new Error(`DMAR: the INCLUDE_PCI_ALL DRHD of segment ${u.segment} must be the last DRHD of that segment`);
    }
    if (units.slice(0, i).some((earlier) => earlier.segment === u.segment && earlier.includePciAll)) {
      throw new Error(`DMAR: segment ${u.segment} has two INCLUDE_PCI_ALL DRHDs`);
    }
  });
}

/**
 * Builds a complete DMAR table with its checksum filled in.  Structures are
 * emitted in type order (DRHD, RMRR, ATSR, RHSA, ANDD, SATC) as the spec
 * requires; within a type, in the order given.
 */
export function buildDmar(opts: DmarOptions): Uint8Array {
  checkRange('host address width', opts.hostAddressWidth, 64);
  if (opts.hostAddressWidth < 1) throw new RangeError('DMAR: host address width must be at least 1');
  checkUnitOrder(opts.units);
  const w = new ByteWriter();
  beginTable(w, 'DMAR', DMAR_REVISION, {
    ...(opts.oemId !== undefined ? { oemId: opts.oemId } : {}),
    ...(opts.oemTableId !== undefined ? { oemTableId: opts.oemTableId } : {}),
  });
  w.u8(opts.hostAddressWidth - 1);
  let flags = 0;
  if (opts.intremap) flags |= DmarFlag.INTR_REMAP;
  if (opts.x2apicOptOut) flags |= DmarFlag.X2APIC_OPT_OUT;
  if (opts.dmaCtrlOptIn) flags |= DmarFlag.DMA_CTRL_PLATFORM_OPT_IN;
  w.u8(flags);
  w.zeros(10);

  for (const u of opts.units) {
    const at = beginStruct(w, DmarType.DRHD);
    checkRange('DRHD flags', u.flags ?? 0, MAX_U8);
    checkRange('DRHD size', u.size ?? 0, MAX_U8);
    w.u8((u.includePciAll ? DmarStructFlag.INCLUDE_PCI_ALL : 0) | (u.flags ?? 0));
    w.u8(u.size ?? 0);
    w.u16(u.segment);
    w.u64(u.base);
    writeScopes(w, u.scopes);
    endStruct(w, at);
  }
  for (const r of opts.rmrr ?? []) {
    if (r.limit < r.base) throw new RangeError(`DMAR: RMRR limit ${r.limit} below base ${r.base}`);
    checkRange('RMRR segment', r.segment, MAX_U16);
    const at = beginStruct(w, DmarType.RMRR);
    w.u16(0); // reserved
    w.u16(r.segment);
    w.u64(r.base);
    w.u64(r.limit);
    writeScopes(w, r.scopes);
    endStruct(w, at);
  }
  const atsrs = [...(opts.deviceIotlb ? [{ segment: 0, allPorts: true, scopes: [] }] : []), ...(opts.atsr ?? [])];
  for (const a of atsrs) {
    checkRange('ATSR segment', a.segment, MAX_U16);
    const at = beginStruct(w, DmarType.ATSR);
    w.u8(a.allPorts ? DmarStructFlag.ALL_PORTS : 0);
    w.u8(0); // reserved
    w.u16(a.segment);
    writeScopes(w, a.scopes);
    endStruct(w, at);
  }
  for (const r of opts.rhsa ?? []) {
    checkRange('RHSA proximity domain', r.proximityDomain, 0xffff_ffff);
    const at = beginStruct(w, DmarType.RHSA);
    w.u32(0); // reserved
    w.u64(r.base);
    w.u32(r.proximityDomain);
    endStruct(w, at);
  }
  for (const a of opts.andd ?? []) {
    checkRange('ANDD device number', a.deviceNumber, MAX_U8);
    const at = beginStruct(w, DmarType.ANDD);
    w.zeros(3);
    w.u8(a.deviceNumber);
    w.ascii(a.name, a.name.length);
    w.u8(0); // NUL terminator
    endStruct(w, at);
  }
  for (const s of opts.satc ?? []) {
    checkRange('SATC segment', s.segment, MAX_U16);
    const at = beginStruct(w, DmarType.SATC);
    w.u8(s.atcRequired ? DmarStructFlag.ATC_REQUIRED : 0);
    w.u8(0); // reserved
    w.u16(s.segment);
    writeScopes(w, s.scopes);
    endStruct(w, at);
  }
  return finishTable(w);
}
