/**
 * DMAR decoder: bytes (from guest memory, fw_cfg or a file) to typed data.
 * Never throws; every problem is reported in `errors` and decoding goes on
 * as far as the bytes allow (a guest firmware or OS driver reads the same
 * table and must cope with a bad one).
 */
import { AcpiHeader, byteSum, readAscii, readU16, readU32, readU64, tableSignature } from './table.js';
import {
  DmarFixedLen,
  DmarFlag,
  DmarOff,
  DmarStructFlag,
  DmarStructOff,
  DmarType,
  ScopeOff,
  ScopeTypeCode,
  type Andd,
  type Atsr,
  type DevicePathEntry,
  type DeviceScope,
  type DeviceScopeType,
  type DrhdUnit,
  type Rhsa,
  type Rmrr,
  type Satc,
} from './dmar-types.js';

/** A structure of a type this decoder does not know (kept, not decoded). */
export interface UnknownDmarStruct {
  readonly type: number;
  readonly offset: number;
  readonly length: number;
}

/** The decoded table. */
export interface DmarTable {
  readonly revision: number;
  readonly length: number;
  readonly checksumOk: boolean;
  readonly oemId: string;
  readonly oemTableId: string;
  readonly oemRevision: number;
  readonly creatorId: string;
  readonly creatorRevision: number;
  /** HAW field + 1. */
  readonly hostAddressWidth: number;
  readonly flags: number;
  readonly intremap: boolean;
  readonly x2apicOptOut: boolean;
  readonly dmaCtrlOptIn: boolean;
  readonly units: DrhdUnit[];
  readonly rmrr: Rmrr[];
  readonly atsr: Atsr[];
  readonly rhsa: Rhsa[];
  readonly andd: Andd[];
  readonly satc: Satc[];
  readonly unknown: UnknownDmarStruct[];
}

/** Result of parseDmar: the table (null if not even the header is usable) and every problem found. */
export interface DmarParseResult {
  readonly table: DmarTable | null;
  readonly errors: string[];
}

const SCOPE_TYPES = new Map<number, DeviceScopeType>(
  Object.entries(ScopeTypeCode).map(([name, code]) => [code, name as DeviceScopeType]),
);

const STRUCT_HEADER_LEN = 4;

function parseScopes(bytes: Uint8Array, start: number, end: number, where: string, errors: string[]): DeviceScope[] {
  const scopes: DeviceScope[] = [];
  let at = start;
  while (at < end) {
    if (end - at < ScopeOff.PATH) {
      errors.push(`${where}: ${end - at} trailing bytes, too short for a device scope`);
      break;
    }
    const code = bytes[at + ScopeOff.TYPE]!;
    const len = bytes[at + ScopeOff.LENGTH]!;
    if (len < ScopeOff.PATH + 2 || at + len > end) {
      errors.push(`${where}: device scope at ${at} has bad length ${len}`);
      break;
    }
    if ((len - ScopeOff.PATH) % 2 !== 0) errors.push(`${where}: device scope at ${at} has an odd path length`);
    const type = SCOPE_TYPES.get(code);
    if (type === undefined) {
      errors.push(`${where}: device scope at ${at} has unknown type ${code}`);
    } else {
      const path: DevicePathEntry[] = [];
      for (let p = at + ScopeOff.PATH; p + 1 < at + len; p += 2) path.push({ dev: bytes[p]!, fn: bytes[p + 1]! });
      scopes.push({ type, enumId: bytes[at + ScopeOff.ENUM_ID]!, startBus: bytes[at + ScopeOff.START_BUS]!, path });
    }
    at += len;
  }
  return scopes;
}

function u64Number(bytes: Uint8Array, at: number): number {
  return Number(readU64(bytes, at));
}

/** Decodes a DMAR table. */
export function parseDmar(bytes: Uint8Array): DmarParseResult {
  const errors: string[] = [];
  if (bytes.length < DmarOff.STRUCTURES) {
    errors.push(`table is ${bytes.length} bytes, shorter than the ${DmarOff.STRUCTURES}-byte DMAR header`);
    return { table: null, errors };
  }
  const sig = tableSignature(bytes);
  if (sig !== 'DMAR') errors.push(`signature is "${sig}", not "DMAR"`);
  let length = readU32(bytes, AcpiHeader.LENGTH);
  if (length > bytes.length) {
    errors.push(`header length ${length} exceeds the ${bytes.length} bytes available`);
    length = bytes.length;
  } else if (length < DmarOff.STRUCTURES) {
    errors.push(`header length ${length} is shorter than the DMAR header`);
    length = DmarOff.STRUCTURES;
  }
  const checksumOk = byteSum(bytes, 0, length) === 0;
  if (!checksumOk) errors.push('checksum does not sum to zero');
  const flags = bytes[DmarOff.FLAGS]!;
  const table: DmarTable = {
    revision: bytes[AcpiHeader.REVISION]!,
    length,
    checksumOk,
    oemId: readAscii(bytes, AcpiHeader.OEM_ID, 6),
    oemTableId: readAscii(bytes, AcpiHeader.OEM_TABLE_ID, 8),
    oemRevision: readU32(bytes, AcpiHeader.OEM_REVISION),
    creatorId: readAscii(bytes, AcpiHeader.CREATOR_ID, 4),
    creatorRevision: readU32(bytes, AcpiHeader.CREATOR_REVISION),
    hostAddressWidth: bytes[DmarOff.HAW]! + 1,
    flags,
    intremap: (flags & DmarFlag.INTR_REMAP) !== 0,
    x2apicOptOut: (flags & DmarFlag.X2APIC_OPT_OUT) !== 0,
    dmaCtrlOptIn: (flags & DmarFlag.DMA_CTRL_PLATFORM_OPT_IN) !== 0,
    units: [],
    rmrr: [],
    atsr: [],
    rhsa: [],
    andd: [],
    satc: [],
    unknown: [],
  };
  let lastType = -1;
  let at: number = DmarOff.STRUCTURES;
  while (at < length) {
    if (length - at < STRUCT_HEADER_LEN) {
      errors.push(`${length - at} trailing bytes at ${at}, too short for a remapping structure`);
      break;
    }
    const type = readU16(bytes, at + DmarStructOff.TYPE);
    const len = readU16(bytes, at + DmarStructOff.LENGTH);
    if (len < STRUCT_HEADER_LEN || at + len > length) {
      errors.push(`structure at ${at} (type ${type}) has bad length ${len}`);
      break;
    }
    if (type < lastType) errors.push(`structure at ${at} (type ${type}) follows type ${lastType}: not in type order`);
    lastType = Math.max(lastType, type);
    const where = `structure at ${at} (type ${type})`;
    const end = at + len;
    const need = (fixed: number): boolean => {
      if (len >= fixed) return true;
      errors.push(`${where}: length ${len} shorter than its fixed part (${fixed})`);
      return false;
    };
    switch (type) {
      case DmarType.DRHD:
        if (need(DmarFixedLen.DRHD)) {
          const f = bytes[at + DmarStructOff.FLAGS]!;
          table.units.push({
            base: u64Number(bytes, at + DmarStructOff.BASE),
            segment: readU16(bytes, at + DmarStructOff.SEGMENT),
            includePciAll: (f & DmarStructFlag.INCLUDE_PCI_ALL) !== 0,
            flags: f & ~DmarStructFlag.INCLUDE_PCI_ALL,
            size: bytes[at + DmarStructOff.DRHD_SIZE]!,
            scopes: parseScopes(bytes, at + DmarFixedLen.DRHD, end, where, errors),
          });
        }
        break;
      case DmarType.RMRR:
        if (need(DmarFixedLen.RMRR)) {
          table.rmrr.push({
            segment: readU16(bytes, at + DmarStructOff.SEGMENT),
            base: u64Number(bytes, at + DmarStructOff.BASE),
            limit: u64Number(bytes, at + DmarStructOff.RMRR_LIMIT),
            scopes: parseScopes(bytes, at + DmarFixedLen.RMRR, end, where, errors),
          });
        }
        break;
      case DmarType.ATSR:
        if (need(DmarFixedLen.ATSR)) {
          table.atsr.push({
            segment: readU16(bytes, at + DmarStructOff.SEGMENT),
            allPorts: (bytes[at + DmarStructOff.FLAGS]! & DmarStructFlag.ALL_PORTS) !== 0,
            scopes: parseScopes(bytes, at + DmarFixedLen.ATSR, end, where, errors),
          });
        }
        break;
      case DmarType.RHSA:
        if (need(DmarFixedLen.RHSA)) {
          table.rhsa.push({
            base: u64Number(bytes, at + DmarStructOff.BASE),
            proximityDomain: readU32(bytes, at + DmarStructOff.RHSA_DOMAIN),
          });
        }
        break;
      case DmarType.ANDD:
        if (need(DmarFixedLen.ANDD + 1)) {
          let name = '';
          let terminated = false;
          for (let p = at + DmarStructOff.ANDD_NAME; p < end; p++) {
            if (bytes[p] === 0) {
              terminated = true;
              break;
            }
            name += String.fromCharCode(bytes[p]!);
          }
          if (!terminated) errors.push(`${where}: ANDD object name is not NUL-terminated`);
          table.andd.push({ deviceNumber: bytes[at + DmarStructOff.ANDD_NUMBER]!, name });
        }
        break;
      case DmarType.SATC:
        if (need(DmarFixedLen.SATC)) {
          table.satc.push({
            segment: readU16(bytes, at + DmarStructOff.SEGMENT),
            atcRequired: (bytes[at + DmarStructOff.FLAGS]! & DmarStructFlag.ATC_REQUIRED) !== 0,
            scopes: parseScopes(bytes, at + DmarFixedLen.SATC, end, where, errors),
          });
        }
        break;
      default:
        table.unknown.push({ type, offset: at, length: len });
    }
    at = end;
  }
  checkIncludeAll(table.units, errors);
  return { table, errors };
}

function checkIncludeAll(units: readonly DrhdUnit[], errors: string[]): void {
  units.forEach((u, i) => {
    if (u.includePciAll && units.slice(i + 1).some((l) => l.segment === u.segment)) {
      errors.push(`INCLUDE_PCI_ALL DRHD ${i} of segment ${u.segment} is not the last of its segment`);
    }
  });
}
