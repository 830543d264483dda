/**
 * The firmware's side of `etc/table-loader`, as SeaBIOS's romfile_loader
 * does it: allocate each file at an address of its zone, add allocation
 * addresses into pointers, and fix checksums.  Then walk RSDP -> RSDT/XSDT
 * -> tables (and FADT -> FACS/DSDT) to get the final tables as bytes.
 *
 * Works on host copies of the files; writing them into guest memory is the
 * caller's choice (reader.ts).  Never throws: malformed commands are
 * reported in `errors` and skipped.
 */
import { decodeLoader, LoaderZone, type LoaderCommand } from './linker.js';
import { AcpiHeader, byteSum, readU32, readU64, tableSignature } from './table.js';
import { ACPI_RSDP_FILE, FadtOff } from './tables.js';
import { RsdpOff } from './build.js';

/** Where allocations go. */
export interface LoaderLayout {
  /** F-segment window [fsegBase, fsegEnd). */
  readonly fsegBase?: number;
  readonly fsegEnd?: number;
  /** HIGH allocations are placed top-down below this address (SeaBIOS: end of low RAM). */
  readonly highTop?: number;
}

/** A file after loading: its address and patched contents. */
export interface LoadedFile {
  readonly name: string;
  readonly addr: number;
  readonly zone: number;
  readonly data: Uint8Array;
}

/** A WRITE_POINTER the firmware must send back to fw_cfg. */
export interface PointerWrite {
  readonly file: string;
  readonly offset: number;
  readonly size: number;
  readonly value: number;
}

/** The outcome of running the loader. */
export interface LoaderRun {
  readonly files: Map<string, LoadedFile>;
  readonly pointerWrites: PointerWrite[];
  readonly errors: string[];
}

const DEFAULT_FSEG_BASE = 0xe_0000;
const DEFAULT_FSEG_END = 0x10_0000;
const DEFAULT_HIGH_TOP = 0x800_0000;
const POINTER_SIZES = new Set([1, 2, 4, 8]);

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

function readLe(b: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i]!);
  return v;
}

function writeLe(b: Uint8Array, at: number, size: number, v: bigint): void {
  let x = BigInt.asUintN(size * 8, v);
  for (let i = 0; i < size; i++, x >>= 8n) b[at + i] = Number(x & 0xffn);
}

/** Runs the loader commands over `fetch`ed file contents. */
export function runTableLoader(loader: Uint8Array | readonly LoaderCommand[], fetch: (name: string) => Uint8Array | undefined, layout: LoaderLayout = {}): LoaderRun {
  const cmds = loader instanceof Uint8Array ? decodeLoader(loader) : loader;
  const files = new Map<string, LoadedFile>();
  const pointerWrites: PointerWrite[] = [];
  const errors: string[] = [];
  let fseg = layout.fsegBase ?? DEFAULT_FSEG_BASE;
  const fsegEnd = layout.fsegEnd ?? DEFAULT_FSEG_END;
  let high = layout.highTop ?? DEFAULT_HIGH_TOP;
  for (const c of cmds) {
    switch (c.kind) {
      case 'allocate': {
        const src = fetch(c.file);
        if (!src) {
          errors.push(`allocate: no file "${c.file}"`);
          break;
        }
        if (files.has(c.file)) {
          errors.push(`allocate: "${c.file}" allocated twice`);
          break;
        }
        const align = c.align > 0 && (c.align & (c.align - 1)) === 0 ? c.align : 1;
        let addr: number;
        if (c.zone === LoaderZone.FSEG) {
          addr = alignUp(fseg, align);
          if (addr + src.length > fsegEnd) {
            errors.push(`allocate: "${c.file}" does not fit in the F-segment`);
            break;
          }
          fseg = addr + src.length;
        } else {
          if (c.zone !== LoaderZone.HIGH) errors.push(`allocate: "${c.file}" has unknown zone ${c.zone}; using HIGH`);
          addr = Math.floor((high - src.length) / align) * align;
          high = addr;
        }
        files.set(c.file, { name: c.file, addr, zone: c.zone, data: src.slice() });
        break;
      }
      case 'add-pointer': {
        const dest = files.get(c.dest);
        const src = files.get(c.src);
        if (!dest || !src) {
          errors.push(`add-pointer: file "${dest ? c.src : c.dest}" not allocated`);
          break;
        }
        if (!POINTER_SIZES.has(c.size) || c.offset + c.size > dest.data.length) {
          errors.push(`add-pointer: bad size ${c.size} or offset ${c.offset} in "${c.dest}"`);
          break;
        }
        writeLe(dest.data, c.offset, c.size, readLe(dest.data, c.offset, c.size) + BigInt(src.addr));
        break;
      }
      case 'add-checksum': {
        const f = files.get(c.file);
        if (!f) {
          errors.push(`add-checksum: file "${c.file}" not allocated`);
          break;
        }
        if (c.offset >= f.data.length || c.start + c.length > f.data.length) {
          errors.push(`add-checksum: range out of "${c.file}"`);
          break;
        }
        f.data[c.offset] = (f.data[c.offset]! - byteSum(f.data, c.start, c.length)) & 0xff;
        break;
      }
      case 'write-pointer': {
        const src = files.get(c.src);
        if (!src || !POINTER_SIZES.has(c.size)) {
          errors.push(`write-pointer: bad source "${c.src}" or size ${c.size}`);
          break;
        }
        pointerWrites.push({ file: c.dest, offset: c.dstOffset, size: c.size, value: src.addr + c.srcOffset });
        break;
      }
      case 'unknown':
        errors.push(`unknown loader command ${c.command}`);
    }
  }
  return { files, pointerWrites, errors };
}

/** One table found by walking from the RSDP. */
export interface FoundTable {
  readonly signature: string;
  readonly address: number;
  readonly bytes: Uint8Array;
}

/** The tables reachable from the RSDP, in RSDT/XSDT order with FACS and DSDT after the FADT. */
export interface AcpiTableSet {
  readonly rsdp: Uint8Array;
  readonly root: FoundTable | null;
  readonly tables: FoundTable[];
  readonly errors: string[];
}

/** Reads `length` bytes at guest address `addr` out of the loaded files. */
function slice(run: LoaderRun, addr: number, length: number): Uint8Array | null {
  for (const f of run.files.values()) {
    if (addr >= f.addr && addr + length <= f.addr + f.data.length) return f.data.subarray(addr - f.addr, addr - f.addr + length);
  }
  return null;
}

function tableAt(run: LoaderRun, addr: number, errors: string[], what: string): FoundTable | null {
  const head = slice(run, addr, 8);
  if (!head) {
    errors.push(`${what}: address 0x${addr.toString(16)} is not in any loaded file`);
    return null;
  }
  const len = readU32(head, AcpiHeader.LENGTH);
  const bytes = slice(run, addr, len);
  if (!bytes || len < 8) {
    errors.push(`${what}: table at 0x${addr.toString(16)} has bad length ${len}`);
    return null;
  }
  const signature = tableSignature(bytes);
  if (signature !== 'FACS' && byteSum(bytes) !== 0) errors.push(`${signature}: checksum does not sum to zero`);
  return { signature, address: addr, bytes };
}

/** Walks RSDP -> RSDT/XSDT -> tables over the loaded files. */
export function collectTables(run: LoaderRun): AcpiTableSet {
  const errors: string[] = [];
  const rsdpFile = run.files.get(ACPI_RSDP_FILE);
  if (!rsdpFile) return { rsdp: new Uint8Array(0), root: null, tables: [], errors: ['no RSDP file allocated'] };
  const rsdp = rsdpFile.data;
  if (byteSum(rsdp, 0, RsdpOff.V1_SIZE) !== 0) errors.push('RSDP: checksum does not sum to zero');
  const rev = rsdp[RsdpOff.REVISION] ?? 0;
  const xsdt = rev >= 2 ? Number(readU64(rsdp, RsdpOff.XSDT_ADDRESS)) : 0;
  const root = xsdt ? tableAt(run, xsdt, errors, 'XSDT') : tableAt(run, readU32(rsdp, RsdpOff.RSDT_ADDRESS), errors, 'RSDT');
  const tables: FoundTable[] = [];
  if (root) {
    const entry = xsdt ? 8 : 4;
    for (let at = AcpiHeader.SIZE; at + entry <= root.bytes.length; at += entry) {
      const addr = xsdt ? Number(readU64(root.bytes, at)) : readU32(root.bytes, at);
      const t = tableAt(run, addr, errors, `${root.signature} entry ${(at - AcpiHeader.SIZE) / entry}`);
      if (!t) continue;
      tables.push(t);
      if (t.signature === 'FACP') {
        const facs = tableAt(run, readU32(t.bytes, FadtOff.FIRMWARE_CTRL), errors, 'FACS');
        const dsdtAddr = Number(readU64(t.bytes, FadtOff.X_DSDT)) || readU32(t.bytes, FadtOff.DSDT);
        const dsdt = tableAt(run, dsdtAddr, errors, 'DSDT');
        if (facs) tables.push(facs);
        if (dsdt) tables.push(dsdt);
      }
    }
  }
  return { rsdp, root, tables, errors };
}
