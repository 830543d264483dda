/**
 * Runs QEMU's `etc/table-loader` script like SeaBIOS does (hw/acpi/bios-linker-loader.c
 * facts): 128-byte commands ALLOCATE, ADD_POINTER, ADD_CHECKSUM, WRITE_POINTER.
 * Files are patched in host copies, then written to their guest addresses.
 */
import { le, type GuestAllocator } from '../alloc.js';
import type { GuestPlatform } from '../platform.js';
import type { FwCfgGuest } from './fw-cfg.js';

/** Loader command numbers. */
export const LoaderCmd = {
  Allocate: 1,
  AddPointer: 2,
  AddChecksum: 3,
  WritePointer: 4,
} as const;

/** ALLOCATE zones. */
export const LoaderZone = { High: 1, FSeg: 2 } as const;

/** Size of one loader command and of its file-name fields. */
const ENTRY_SIZE = 128;
const NAME_LEN = 56;
/** Field offsets inside a command (after the u32 command word). */
const F = {
  name1: 4,
  name2: 4 + NAME_LEN,
  allocAlign: 4 + NAME_LEN,
  allocZone: 4 + NAME_LEN + 4,
  ptrOffset: 4 + 2 * NAME_LEN,
  ptrSize: 4 + 2 * NAME_LEN + 4,
  sumOffset: 4 + NAME_LEN,
  sumStart: 4 + NAME_LEN + 4,
  sumLength: 4 + NAME_LEN + 8,
} as const;

/** A file placed in guest memory by the loader. */
export interface LoadedFile {
  readonly name: string;
  readonly addr: number;
  readonly bytes: Uint8Array;
}

/** Result of running the loader. */
export interface LoaderResult {
  readonly files: ReadonlyMap<string, LoadedFile>;
  /** Commands not understood (counted, skipped). */
  readonly skipped: number;
}

/** Allocators for the two zones. */
export interface LoaderZones {
  readonly high: GuestAllocator;
  readonly fseg: GuestAllocator;
}

function addLe(b: Uint8Array, off: number, size: number, add: number): void {
  let carry = add;
  for (let i = 0; i < size && off + i < b.length; i++) {
    const v = b[off + i]! + (carry % 256);
    carry = Math.floor(carry / 256) + (v > 0xff ? 1 : 0);
    b[off + i] = v & 0xff;
  }
}

/** Executes the loader script from fw_cfg; returns where each file landed. */
export async function runTableLoader(platform: GuestPlatform, fw: FwCfgGuest, zones: LoaderZones): Promise<LoaderResult> {
  const script = await fw.readFile('etc/table-loader');
  const files = new Map<string, LoadedFile>();
  let skipped = 0;
  if (!script) return { files, skipped };
  for (let o = 0; o + ENTRY_SIZE <= script.length; o += ENTRY_SIZE) {
    const cmd = le.u32(script, o);
    const name1 = le.str(script, o + F.name1, NAME_LEN);
    switch (cmd) {
      case 0:
        break;
      case LoaderCmd.Allocate: {
        const content = await fw.readFile(name1);
        if (!content) { skipped++; break; }
        const align = Math.max(1, le.u32(script, o + F.allocAlign));
        const zone = script[o + F.allocZone] === LoaderZone.FSeg ? zones.fseg : zones.high;
        const addr = await zone.alloc(Math.max(1, content.length), align);
        files.set(name1, { name: name1, addr, bytes: content });
        break;
      }
      case LoaderCmd.AddPointer: {
        const dst = files.get(name1);
        const src = files.get(le.str(script, o + F.name2, NAME_LEN));
        if (!dst || !src) { skipped++; break; }
        addLe(dst.bytes, le.u32(script, o + F.ptrOffset), script[o + F.ptrSize]!, src.addr);
        break;
      }
      case LoaderCmd.AddChecksum: {
        const f = files.get(name1);
        if (!f) { skipped++; break; }
        const off = le.u32(script, o + F.sumOffset);
        const start = le.u32(script, o + F.sumStart);
        const len = le.u32(script, o + F.sumLength);
        let sum = 0;
        for (let i = start; i < start + len && i < f.bytes.length; i++) sum += f.bytes[i]!;
        if (off < f.bytes.length) f.bytes[off] = (f.bytes[off]! - sum) & 0xff;
        break;
      }
      default:
        skipped++; // WRITE_POINTER needs a writable fw_cfg file; not used for ACPI tables
    }
  }
  for (const f of files.values()) await platform.writeBytes(f.addr, f.bytes);
  return { files, skipped };
}
