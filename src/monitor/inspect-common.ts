/**
 * What every view of the VT-d inspector shares: the decoded-entry record
 * (one structure entry read from guest memory, its raw qwords and its fields
 * by name), number and requester formatting, fault reasons by name, and a
 * read-only view of guest memory through which the unit's own lookup and
 * walk code runs without side effects (first-stage A/D write-backs are
 * dropped, MMIO is neither read nor written: only RAM is inspected).
 */
import { MemTx, type AddressSpace } from '../memory/address-space.js';
import { VtdFault } from '../hw/intel-iommu/fault-reasons.js';
import { newQword, readQword, type Qword } from '../hw/intel-iommu/guest-mem.js';

/** A field value: a flag, a small number, or a text (addresses and 64-bit values are hex texts). */
export type FieldValue = boolean | number | string;

/** One structure entry as read from guest memory. */
export interface EntryView {
  /** What it is: `root`, `context`, `pasid-dir`, `pasid`, `L4` ... (page-table level), `irte`. */
  readonly kind: string;
  /** Index in its table. */
  readonly index: number;
  /** Guest-physical address of the entry. */
  readonly addr: string;
  /** False when the entry could not be read (not RAM): `raw` and `fields` are then empty. */
  readonly readable: boolean;
  /** The entry's qwords, lowest first, as 16-digit hex. */
  readonly raw: readonly string[];
  /** Decoded fields, in the order the formatter prints them. */
  readonly fields: Readonly<Record<string, FieldValue>>;
  /** Reserved bits set, per qword (hex masks, only the qwords with some), by the unit's own rules; empty: none. */
  readonly reserved: readonly string[];
  /** A remark (`not present`, `leaf 2 MiB`, ...), or ''. */
  readonly note: string;
}

/** `0x` and 16 hex digits of a non-negative number below 2^64. */
export function hex64(v: number | bigint): string {
  return `0x${BigInt(v).toString(16).padStart(16, '0')}`;
}

/** Short hex: `0x` and as many digits as needed. */
export function hexShort(v: number | bigint): string {
  return `0x${BigInt(v).toString(16)}`;
}

/** A qword as 16 hex digits (no prefix). */
export function qwordHex(q: Qword): string {
  return q.hi.toString(16).padStart(8, '0') + q.lo.toString(16).padStart(8, '0');
}

/** A 64-bit value from halves, as a number (exact below 2^53). */
export function joinHalves(lo: number, hi: number): number {
  return (hi >>> 0) * 2 ** 32 + (lo >>> 0);
}

/** BB:DD.F of a source ID. */
export function bdf(sid: number): string {
  const h = (v: number): string => v.toString(16).padStart(2, '0');
  return `${h((sid >>> 8) & 0xff)}:${h((sid >>> 3) & 0x1f)}.${sid & 7}`;
}

/** Parses BB:DD.F (hex, as lspci prints it) into a source ID, or null. */
export function parseBdf(text: string): number | null {
  const m = /^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/.exec(text);
  if (!m) return null;
  const dev = parseInt(m[2]!, 16);
  if (dev > 0x1f) return null;
  return (parseInt(m[1]!, 16) << 8) | (dev << 3) | Number(m[3]);
}

const REASON_NAMES = new Map<number, string>(Object.entries(VtdFault).map(([name, code]) => [code, name]));

/** The name of a fault reason (VtdFault key), or `UNKNOWN`. */
export function faultReasonName(reason: number): string {
  return REASON_NAMES.get(reason) ?? 'UNKNOWN';
}

/** `0x06 READ`: a fault reason with its name. */
export function faultText(reason: number): string {
  return `0x${reason.toString(16).padStart(2, '0')} ${faultReasonName(reason)}`;
}

/**
 * A view of `mem` that reads RAM only and writes nothing: the unit's lookup
 * and walk functions run on it exactly as on the real space, except that a
 * first-stage A/D update "succeeds" without changing guest memory when the
 * entry is in RAM, and anything that is not RAM reads as unreadable.
 */
export function readOnlyMemory(mem: AddressSpace): AddressSpace {
  const view = Object.create(mem) as AddressSpace;
  const ramOnly = (addr: number, len: number): boolean => addr >= 0 && mem.isRam(addr, len);
  Object.assign(view, {
    readBytes: (addr: number, dst: Uint8Array): MemTx => (ramOnly(addr, dst.length) ? mem.readBytes(addr, dst) : MemTx.DecodeError),
    write: (addr: number, size: number): MemTx => (ramOnly(addr, size) ? MemTx.Ok : MemTx.DecodeError),
    writeBytes: (addr: number, src: Uint8Array): MemTx => (ramOnly(addr, src.length) ? MemTx.Ok : MemTx.DecodeError),
  });
  return view;
}

/** Reads `count` qwords at `addr` from RAM; null when any is not RAM. */
export function readQwords(mem: AddressSpace, addr: number, count: number): Qword[] | null {
  if (!mem.isRam(addr, count * 8)) return null;
  const out: Qword[] = [];
  for (let i = 0; i < count; i++) {
    const q = newQword();
    if (!readQword(mem, addr + i * 8, q)) return null;
    out.push(q);
  }
  return out;
}

/** Reserved bits of one qword as a hex mask ('' when none). */
export function reservedMask(q: Qword, loMask: number, hiMask: number): string {
  const lo = (q.lo & loMask) >>> 0;
  const hi = (q.hi & hiMask) >>> 0;
  return lo === 0 && hi === 0 ? '' : hexShort(joinHalves(lo, hi));
}

/** Builds an EntryView; `reserved` lists per-qword masks, empty ones dropped (labelled `qwN:` when several qwords). */
export function entryView(
  kind: string,
  index: number,
  addr: number,
  qwords: readonly Qword[] | null,
  fields: Record<string, FieldValue>,
  reserved: readonly string[],
  note: string,
): EntryView {
  if (qwords === null) return { kind, index, addr: hex64(addr), readable: false, raw: [], fields: {}, reserved: [], note: 'unreadable (not RAM)' };
  const rsvd = reserved.length > 1 ? reserved.map((m, i) => (m ? `qw${i}:${m}` : '')).filter((m) => m) : reserved.filter((m) => m);
  return { kind, index, addr: hex64(addr), readable: true, raw: qwords.map(qwordHex), fields, reserved: rsvd, note };
}
