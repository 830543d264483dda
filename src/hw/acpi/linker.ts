/**
 * QEMU's BIOS linker/loader (`etc/table-loader`, hw/acpi/bios-linker-loader.c):
 * a list of 128-byte commands telling the firmware to allocate fw_cfg files
 * in guest memory, patch pointers between them and fill in checksums.  This
 * module writes those commands and decodes them (the firmware side lives
 * in loader-run.ts).
 */

/** Command codes (COMMAND field, u32 LE). */
export const LoaderCmd = {
  ALLOCATE: 1,
  ADD_POINTER: 2,
  ADD_CHECKSUM: 3,
  WRITE_POINTER: 4,
} as const;

/** ALLOCATE zones. */
export const LoaderZone = {
  /** Anywhere in RAM (SeaBIOS: high memory). */
  HIGH: 1,
  /** The 0xE0000-0xFFFFF F-segment (where an RSDP must live). */
  FSEG: 2,
} as const;

/** Entry layout. */
export const LoaderEntry = {
  SIZE: 128,
  COMMAND: 0,
  /** File names are 56 bytes, NUL-padded (FW_CFG_MAX_FILE_PATH). */
  FILE_LEN: 56,
  /** ALLOCATE: file, align u32, zone u8. */
  ALLOC_FILE: 4,
  ALLOC_ALIGN: 60,
  ALLOC_ZONE: 64,
  /** ADD_POINTER: dest file, src file, offset u32, size u8. */
  PTR_DEST: 4,
  PTR_SRC: 60,
  PTR_OFFSET: 116,
  PTR_SIZE: 120,
  /** ADD_CHECKSUM: file, offset u32, start u32, length u32. */
  CKSUM_FILE: 4,
  CKSUM_OFFSET: 60,
  CKSUM_START: 64,
  CKSUM_LENGTH: 68,
  /** WRITE_POINTER: dest file, src file, dst offset u32, src offset u32, size u8. */
  WP_DEST: 4,
  WP_SRC: 60,
  WP_DST_OFFSET: 116,
  WP_SRC_OFFSET: 120,
  WP_SIZE: 124,
} as const;

/** The loader blob is padded to a multiple of this (QEMU ACPI_BUILD_ALIGN_SIZE). */
export const LOADER_ALIGN = 0x1000;

/** A decoded loader command. */
export type LoaderCommand =
  | { readonly kind: 'allocate'; readonly file: string; readonly align: number; readonly zone: number }
  | { readonly kind: 'add-pointer'; readonly dest: string; readonly src: string; readonly offset: number; readonly size: number }
  | { readonly kind: 'add-checksum'; readonly file: string; readonly offset: number; readonly start: number; readonly length: number }
  | {
      readonly kind: 'write-pointer';
      readonly dest: string;
      readonly src: string;
      readonly dstOffset: number;
      readonly srcOffset: number;
      readonly size: number;
    }
  | { readonly kind: 'unknown'; readonly command: number };

/** Builds a loader command list.  Allocations go first, as QEMU prepends them. */
export class BiosLinker {
  private allocs: Uint8Array[] = [];
  private others: Uint8Array[] = [];

  private static entry(cmd: number): [Uint8Array, DataView] {
    const e = new Uint8Array(LoaderEntry.SIZE);
    const v = new DataView(e.buffer);
    v.setUint32(LoaderEntry.COMMAND, cmd, true);
    return [e, v];
  }

  private static name(e: Uint8Array, at: number, name: string): void {
    if (name.length === 0 || name.length >= LoaderEntry.FILE_LEN) throw new RangeError(`table-loader: bad file name "${name}"`);
    for (let i = 0; i < name.length; i++) e[at + i] = name.charCodeAt(i) & 0xff;
  }

  /**
   * ALLOCATE: the firmware copies `file` into memory of `zone` aligned to
   * `align`.  Like QEMU's bios_linker_loader_alloc, each new allocation is
   * put in front of the earlier ones.
   */
  allocate(file: string, align: number, zone: number): void {
    if (!(align > 0) || (align & (align - 1)) !== 0) throw new RangeError(`table-loader: alignment ${align} is not a power of two`);
    const [e, v] = BiosLinker.entry(LoaderCmd.ALLOCATE);
    BiosLinker.name(e, LoaderEntry.ALLOC_FILE, file);
    v.setUint32(LoaderEntry.ALLOC_ALIGN, align, true);
    e[LoaderEntry.ALLOC_ZONE] = zone;
    this.allocs.unshift(e);
  }

  /** ADD_POINTER: add the address of `src` to the `size`-byte LE value at `dest`+`offset`. */
  addPointer(dest: string, offset: number, size: 1 | 2 | 4 | 8, src: string): void {
    const [e, v] = BiosLinker.entry(LoaderCmd.ADD_POINTER);
    BiosLinker.name(e, LoaderEntry.PTR_DEST, dest);
    BiosLinker.name(e, LoaderEntry.PTR_SRC, src);
    v.setUint32(LoaderEntry.PTR_OFFSET, offset, true);
    e[LoaderEntry.PTR_SIZE] = size;
    this.others.push(e);
  }

  /** ADD_CHECKSUM: the byte at `offset` is adjusted so that [start, start+length) sums to 0. */
  addChecksum(file: string, start: number, length: number, offset: number): void {
    const [e, v] = BiosLinker.entry(LoaderCmd.ADD_CHECKSUM);
    BiosLinker.name(e, LoaderEntry.CKSUM_FILE, file);
    v.setUint32(LoaderEntry.CKSUM_OFFSET, offset, true);
    v.setUint32(LoaderEntry.CKSUM_START, start, true);
    v.setUint32(LoaderEntry.CKSUM_LENGTH, length, true);
    this.others.push(e);
  }

  /** WRITE_POINTER: the firmware writes the address of `src`+`srcOffset` into the fw_cfg file `dest` at `dstOffset`. */
  writePointer(dest: string, dstOffset: number, size: 1 | 2 | 4 | 8, src: string, srcOffset: number): void {
    const [e, v] = BiosLinker.entry(LoaderCmd.WRITE_POINTER);
    BiosLinker.name(e, LoaderEntry.WP_DEST, dest);
    BiosLinker.name(e, LoaderEntry.WP_SRC, src);
    v.setUint32(LoaderEntry.WP_DST_OFFSET, dstOffset, true);
    v.setUint32(LoaderEntry.WP_SRC_OFFSET, srcOffset, true);
    e[LoaderEntry.WP_SIZE] = size;
    this.others.push(e);
  }

  /** The command blob, padded with zero entries to `pad` bytes (QEMU pads to 4 KiB). */
  toBytes(pad = LOADER_ALIGN): Uint8Array {
    const all = [...this.allocs, ...this.others];
    const used = all.length * LoaderEntry.SIZE;
    const out = new Uint8Array(pad > 0 ? Math.ceil(Math.max(used, 1) / pad) * pad : used);
    all.forEach((e, i) => out.set(e, i * LoaderEntry.SIZE));
    return out;
  }
}

function readName(b: Uint8Array, at: number): string {
  let s = '';
  for (let i = 0; i < LoaderEntry.FILE_LEN && b[at + i] !== 0 && at + i < b.length; i++) s += String.fromCharCode(b[at + i]!);
  return s;
}

/** Decodes a loader blob; zero entries (padding) are skipped.  Never throws. */
export function decodeLoader(blob: Uint8Array): LoaderCommand[] {
  const out: LoaderCommand[] = [];
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let at = 0; at + LoaderEntry.SIZE <= blob.length; at += LoaderEntry.SIZE) {
    const cmd = v.getUint32(at + LoaderEntry.COMMAND, true);
    switch (cmd) {
      case 0:
        break;
      case LoaderCmd.ALLOCATE:
        out.push({
          kind: 'allocate',
          file: readName(blob, at + LoaderEntry.ALLOC_FILE),
          align: v.getUint32(at + LoaderEntry.ALLOC_ALIGN, true),
          zone: blob[at + LoaderEntry.ALLOC_ZONE]!,
        });
        break;
      case LoaderCmd.ADD_POINTER:
        out.push({
          kind: 'add-pointer',
          dest: readName(blob, at + LoaderEntry.PTR_DEST),
          src: readName(blob, at + LoaderEntry.PTR_SRC),
          offset: v.getUint32(at + LoaderEntry.PTR_OFFSET, true),
          size: blob[at + LoaderEntry.PTR_SIZE]!,
        });
        break;
      case LoaderCmd.ADD_CHECKSUM:
        out.push({
          kind: 'add-checksum',
          file: readName(blob, at + LoaderEntry.CKSUM_FILE),
          offset: v.getUint32(at + LoaderEntry.CKSUM_OFFSET, true),
          start: v.getUint32(at + LoaderEntry.CKSUM_START, true),
          length: v.getUint32(at + LoaderEntry.CKSUM_LENGTH, true),
        });
        break;
      case LoaderCmd.WRITE_POINTER:
        out.push({
          kind: 'write-pointer',
          dest: readName(blob, at + LoaderEntry.WP_DEST),
          src: readName(blob, at + LoaderEntry.WP_SRC),
          dstOffset: v.getUint32(at + LoaderEntry.WP_DST_OFFSET, true),
          srcOffset: v.getUint32(at + LoaderEntry.WP_SRC_OFFSET, true),
          size: blob[at + LoaderEntry.WP_SIZE]!,
        });
        break;
      default:
        out.push({ kind: 'unknown', command: cmd });
    }
  }
  return out;
}
