/**
 * A guest's DMAR parser (VT-d spec 3.x chapter 8): header, then remapping
 * structures DRHD (8.3), RMRR (8.4), ATSR (8.5), RHSA (8.6), ANDD (8.7),
 * SATC (8.8), each with device scopes (8.3.1).  Malformed input yields
 * `problems`, never an exception.
 */
import { le } from '../alloc.js';

/** DMAR header fields after the 36-byte SDT header. */
export const DmarHeader = { HostAddressWidth: 36, Flags: 37, Reserved: 38, Size: 48 } as const;
/** DMAR flags. */
export const DmarFlag = { IntrRemap: 1 << 0, X2ApicOptOut: 1 << 1, DmaCtrlPlatformOptIn: 1 << 2 } as const;
/** Remapping structure types. */
export const DmarType = { Drhd: 0, Rmrr: 1, Atsr: 2, Rhsa: 3, Andd: 4, Satc: 5 } as const;
/** DRHD flags. */
export const DrhdFlag = { IncludePciAll: 1 << 0 } as const;
/** ATSR flags. */
export const AtsrFlag = { AllPorts: 1 << 0 } as const;
/** Device scope types. */
export const ScopeType = { PciEndpoint: 1, PciSubHierarchy: 2, IoApic: 3, Hpet: 4, AcpiNamespace: 5 } as const;

/** Names used in printouts. */
export const SCOPE_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'PCI Endpoint', 2: 'PCI Bridge', 3: 'IOAPIC', 4: 'HPET', 5: 'ACPI Namespace',
};

/** Device scope layout. */
const SCOPE = { Type: 0, Length: 1, Flags: 2, EnumId: 4, StartBus: 5, Path: 6, PathEntry: 2 } as const;
/** Minimal sizes of each structure type. */
const MIN_LEN: Readonly<Record<number, number>> = { 0: 16, 1: 24, 2: 8, 3: 20, 4: 8, 5: 8 };

/** One device scope: start bus and a path of (device, function) hops. */
export interface DeviceScope {
  readonly type: number;
  readonly enumerationId: number;
  readonly startBus: number;
  readonly path: ReadonlyArray<readonly [device: number, fn: number]>;
}

/** DRHD: one remapping unit. */
export interface Drhd { readonly type: 0; readonly flags: number; readonly size: number; readonly segment: number; readonly base: number; readonly scopes: readonly DeviceScope[] }
/** RMRR: memory a device keeps using (identity-mapped). */
export interface Rmrr { readonly type: 1; readonly segment: number; readonly base: number; readonly limit: number; readonly scopes: readonly DeviceScope[] }
/** ATSR: root ports supporting ATS. */
export interface Atsr { readonly type: 2; readonly flags: number; readonly segment: number; readonly scopes: readonly DeviceScope[] }
/** RHSA: a unit's proximity domain. */
export interface Rhsa { readonly type: 3; readonly base: number; readonly proximity: number }
/** ANDD: ACPI name of a namespace device. */
export interface Andd { readonly type: 4; readonly deviceNumber: number; readonly name: string }
/** SATC: devices with ATS requirements. */
export interface Satc { readonly type: 5; readonly flags: number; readonly segment: number; readonly scopes: readonly DeviceScope[] }
/** A structure of a type this parser does not know (kept, not interpreted). */
export interface UnknownStructure { readonly type: number; readonly length: number }

/** Any remapping structure. */
export type DmarStructure = Drhd | Rmrr | Atsr | Rhsa | Andd | Satc | UnknownStructure;

/** A parsed DMAR. */
export interface Dmar {
  readonly hostAddressWidth: number;
  readonly flags: number;
  readonly structures: readonly DmarStructure[];
  readonly problems: readonly string[];
}

function parseScopes(b: Uint8Array, start: number, end: number, problems: string[]): DeviceScope[] {
  const out: DeviceScope[] = [];
  let o = start;
  while (o + SCOPE.Path <= end) {
    const len = b[o + SCOPE.Length]!;
    if (len < SCOPE.Path || o + len > end) { problems.push(`bad device scope length ${len} at ${o}`); break; }
    const path: Array<readonly [number, number]> = [];
    for (let p = o + SCOPE.Path; p + SCOPE.PathEntry <= o + len; p += SCOPE.PathEntry) path.push([b[p]!, b[p + 1]!]);
    out.push({ type: b[o + SCOPE.Type]!, enumerationId: b[o + SCOPE.EnumId]!, startBus: b[o + SCOPE.StartBus]!, path });
    o += len;
  }
  return out;
}

/** Parses a whole DMAR table (header included). */
export function parseDmar(b: Uint8Array): Dmar {
  const problems: string[] = [];
  if (b.length < DmarHeader.Size || le.str(b, 0, 4) !== 'DMAR') {
    return { hostAddressWidth: 0, flags: 0, structures: [], problems: ['not a DMAR table'] };
  }
  const length = Math.min(b.length, le.u32(b, 4));
  const structures: DmarStructure[] = [];
  let o: number = DmarHeader.Size;
  while (o + 4 <= length) {
    const type = le.u16(b, o);
    const len = le.u16(b, o + 2);
    if (len < 4 || o + len > length || len < (MIN_LEN[type] ?? 4)) { problems.push(`bad structure length ${len} (type ${type}) at ${o}`); break; }
    const end = o + len;
    switch (type) {
      case DmarType.Drhd:
        structures.push({ type, flags: b[o + 4]!, size: b[o + 5]!, segment: le.u16(b, o + 6), base: le.u64n(b, o + 8), scopes: parseScopes(b, o + 16, end, problems) });
        break;
      case DmarType.Rmrr:
        structures.push({ type, segment: le.u16(b, o + 6), base: le.u64n(b, o + 8), limit: le.u64n(b, o + 16), scopes: parseScopes(b, o + 24, end, problems) });
        break;
      case DmarType.Atsr:
        structures.push({ type, flags: b[o + 4]!, segment: le.u16(b, o + 6), scopes: parseScopes(b, o + 8, end, problems) });
        break;
      case DmarType.Rhsa:
        structures.push({ type, base: le.u64n(b, o + 8), proximity: le.u32(b, o + 16) });
        break;
      case DmarType.Andd:
        structures.push({ type, deviceNumber: b[o + 7]!, name: le.str(b, o + 8, len - 8) });
        break;
      case DmarType.Satc:
        structures.push({ type, flags: b[o + 4]!, segment: le.u16(b, o + 6), scopes: parseScopes(b, o + 8, end, problems) });
        break;
      default:
        structures.push({ type, length: len });
    }
    o = end;
  }
  return { hostAddressWidth: b[DmarHeader.HostAddressWidth]! + 1, flags: b[DmarHeader.Flags]!, structures, problems };
}

const hex = (v: number, w = 0): string => '0x' + v.toString(16).toUpperCase().padStart(w, '0');

function scopeLines(scopes: readonly DeviceScope[]): string[] {
  return scopes.map((s) =>
    `    scope ${SCOPE_TYPE_NAMES[s.type] ?? `type ${s.type}`} enum ${s.enumerationId} bus ${hex(s.startBus, 2)} path ` +
    s.path.map(([d, f]) => `${hex(d, 2)},${hex(f, 2)}`).join(' '));
}

/** A short human-readable dump (in the spirit of `iasl -d`). */
export function formatDmar(d: Dmar): string[] {
  const out = [`DMAR: Host Address Width ${d.hostAddressWidth} bits, flags ${hex(d.flags, 2)}` +
    (d.flags & DmarFlag.IntrRemap ? ' (INTR_REMAP)' : '')];
  for (const s of d.structures) {
    switch (s.type) {
      case DmarType.Drhd: {
        const x = s as Drhd;
        out.push(`  DRHD base ${hex(x.base, 8)} segment ${x.segment} flags ${hex(x.flags, 2)}${x.flags & DrhdFlag.IncludePciAll ? ' (INCLUDE_PCI_ALL)' : ''}`, ...scopeLines(x.scopes));
        break;
      }
      case DmarType.Rmrr: {
        const x = s as Rmrr;
        out.push(`  RMRR ${hex(x.base, 8)}-${hex(x.limit, 8)} segment ${x.segment}`, ...scopeLines(x.scopes));
        break;
      }
      case DmarType.Atsr: {
        const x = s as Atsr;
        out.push(`  ATSR flags ${hex(x.flags, 2)}${x.flags & AtsrFlag.AllPorts ? ' (ALL_PORTS)' : ''} segment ${x.segment}`, ...scopeLines(x.scopes));
        break;
      }
      case DmarType.Rhsa: {
        const x = s as Rhsa;
        out.push(`  RHSA base ${hex(x.base, 8)} proximity ${x.proximity}`);
        break;
      }
      case DmarType.Andd: {
        const x = s as Andd;
        out.push(`  ANDD device ${x.deviceNumber} "${x.name}"`);
        break;
      }
      case DmarType.Satc: {
        const x = s as Satc;
        out.push(`  SATC flags ${hex(x.flags, 2)} segment ${x.segment}`, ...scopeLines(x.scopes));
        break;
      }
      default:
        out.push(`  unknown structure type ${s.type} length ${(s as UnknownStructure).length}`);
    }
  }
  for (const p of d.problems) out.push(`  problem: ${p}`);
  return out;
}
