/**
 * ACPI discovery from guest memory: RSDP -> RSDT (rev 0) or XSDT (rev >= 2)
 * -> tables, with checksum verification (ACPI 6.x sections 5.2.5-5.2.8).
 */
import { le } from '../alloc.js';
import type { GuestPlatform } from '../platform.js';

/** Header layout shared by every system description table. */
export const SdtHeader = {
  Signature: 0,
  Length: 4,
  Revision: 8,
  Checksum: 9,
  OemId: 10,
  OemTableId: 16,
  OemRevision: 24,
  CreatorId: 28,
  CreatorRevision: 32,
  Size: 36,
} as const;

/** RSDP layout. */
export const Rsdp = {
  Signature: 0,
  Checksum: 8,
  OemId: 9,
  Revision: 15,
  RsdtAddress: 16,
  V1Size: 20,
  Length: 20,
  XsdtAddress: 24,
  ExtChecksum: 32,
  V2Size: 36,
} as const;

/** The BIOS area searched for the RSDP when its address is not known. */
const RSDP_SCAN_BASE = 0xe0000;
const RSDP_SCAN_SIZE = 0x20000;
const RSDP_ALIGN = 16;
const RSDP_SIG = 'RSD PTR ';

/** One table found. */
export interface AcpiTable {
  readonly signature: string;
  readonly addr: number;
  readonly bytes: Uint8Array;
  readonly checksumOk: boolean;
  readonly revision: number;
  readonly oemId: string;
  readonly oemTableId: string;
}

/** What discovery found. */
export interface AcpiInfo {
  readonly rsdpAddr: number;
  readonly rsdpRevision: number;
  readonly rootSignature: 'RSDT' | 'XSDT';
  readonly rootAddr: number;
  readonly tables: readonly AcpiTable[];
}

/** Sum of bytes modulo 256 (0 for a valid checksum). */
export function byteSum(b: Uint8Array, start = 0, end = b.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + b[i]!) & 0xff;
  return s;
}

async function scanRsdp(p: GuestPlatform): Promise<number | undefined> {
  const area = await p.readBytes(RSDP_SCAN_BASE, RSDP_SCAN_SIZE);
  for (let o = 0; o + Rsdp.V1Size <= area.length; o += RSDP_ALIGN) {
    if (le.str(area, o, 8) === RSDP_SIG && byteSum(area, o, o + Rsdp.V1Size) === 0) return RSDP_SCAN_BASE + o;
  }
  return undefined;
}

/** Reads one table at `addr` (header first, then the whole length). */
export async function readTable(p: GuestPlatform, addr: number): Promise<AcpiTable> {
  const head = await p.readBytes(addr, SdtHeader.Size);
  const length = Math.max(SdtHeader.Size, le.u32(head, SdtHeader.Length));
  const bytes = await p.readBytes(addr, length);
  return {
    signature: le.str(bytes, SdtHeader.Signature, 4),
    addr,
    bytes,
    checksumOk: byteSum(bytes) === 0,
    revision: bytes[SdtHeader.Revision]!,
    oemId: le.str(bytes, SdtHeader.OemId, 6),
    oemTableId: le.str(bytes, SdtHeader.OemTableId, 8),
  };
}

/** Finds the RSDP (at `rsdpHint` or by scanning) and reads every table. */
export async function discoverAcpi(p: GuestPlatform, rsdpHint?: number): Promise<AcpiInfo | undefined> {
  const rsdpAddr = rsdpHint ?? (await scanRsdp(p));
  if (rsdpAddr === undefined) return undefined;
  const rsdp = await p.readBytes(rsdpAddr, Rsdp.V2Size);
  if (le.str(rsdp, 0, 8) !== RSDP_SIG) return undefined;
  const rev = rsdp[Rsdp.Revision]!;
  const useX = rev >= 2 && le.u64n(rsdp, Rsdp.XsdtAddress) !== 0;
  const rootAddr = useX ? le.u64n(rsdp, Rsdp.XsdtAddress) : le.u32(rsdp, Rsdp.RsdtAddress);
  const root = await readTable(p, rootAddr);
  const entry = useX ? 8 : 4;
  const tables: AcpiTable[] = [];
  for (let o = SdtHeader.Size; o + entry <= root.bytes.length; o += entry) {
    const addr = useX ? le.u64n(root.bytes, o) : le.u32(root.bytes, o);
    const t = await readTable(p, addr);
    tables.push(t);
    if (t.signature === 'FACP') {
      const dsdt = le.u32(t.bytes, FADT_DSDT);
      if (dsdt) tables.push(await readTable(p, dsdt));
    }
  }
  return { rsdpAddr, rsdpRevision: rev, rootSignature: useX ? 'XSDT' : 'RSDT', rootAddr, tables };
}

/** FADT offset of the 32-bit DSDT pointer. */
const FADT_DSDT = 40;
