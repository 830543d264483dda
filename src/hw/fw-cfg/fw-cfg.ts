/**
 * QEMU's firmware configuration device (fw_cfg): numbered items and named
 * files handed to the firmware, read a byte at a time through the data port
 * or in bulk through the DMA interface (QEMU docs/specs/fw_cfg.rst,
 * hw/nvram/fw_cfg.c).  This module is the item store and the transfer
 * engine; ports.ts maps it into the I/O space.
 *
 * Guest input never throws: unknown selectors select nothing (reads return
 * 0), failed DMA sets the ERROR bit in the descriptor, refused writes set it
 * too.  Host mistakes (duplicate file names, too many files) throw.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { MemTx } from '../../memory/address-space.js';
import type { Device } from '../../machine/device-type.js';
import { SnapshotError, toB64, type SectionReader, type SnapshotSection } from '../../core/snapshot-state.js';
import {
  FW_CFG_FILE_SLOTS,
  FW_CFG_SIGNATURE,
  FwCfgDir,
  FwCfgDmaCtl,
  FwCfgDmaDesc,
  FwCfgFeature,
  FwCfgKey,
  FwCfgSelector,
} from './abi.js';

export * from './abi.js';

/** Options of a file item. */
export interface FwCfgFileOptions {
  /** The guest may write it with a DMA WRITE (QEMU: allow_write). */
  readonly writable?: boolean;
  /** Called when the item is selected (QEMU: select_cb, e.g. ACPI rebuild). */
  readonly onSelect?: () => void;
  /** Called after a successful guest write of [offset, offset+length). */
  readonly onWrite?: (offset: number, length: number) => void;
}

interface Entry {
  data: Uint8Array;
  writable: boolean;
  onSelect: (() => void) | undefined;
  onWrite: ((offset: number, length: number) => void) | undefined;
}

interface FileRecord {
  readonly name: string;
  readonly entry: Entry;
}

/** Options of the device. */
export interface FwCfgOptions {
  /** Where DMA descriptors and buffers live (the machine's memory address space). */
  readonly memory: AddressSpace;
  /** Advertise and implement the DMA interface (default true, as QEMU on q35). */
  readonly dma?: boolean;
  /** Number of file slots (default 0x20). */
  readonly fileSlots?: number;
}

const be32 = (v: number, out: Uint8Array, at: number): void => {
  out[at] = (v >>> 24) & 0xff;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
};
const readBe32 = (b: Uint8Array, at: number): number =>
  ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** The fw_cfg item store and transfer engine (a system device, QEMU type fw_cfg_io). */
export class FwCfg implements Device {
  readonly typeName = 'fw_cfg_io';
  readonly dmaEnabled: boolean;
  private readonly memory: AddressSpace;
  private readonly maxEntry: number;
  private readonly entries: [Array<Entry | undefined>, Array<Entry | undefined>] = [[], []];
  private files: FileRecord[] = [];
  private curEntry: number = FwCfgSelector.INVALID;
  private curOffset = 0;
  /** DMA descriptor address being assembled from the two 32-bit halves. */
  private dmaAddrHi = 0;
  private dmaAddrLo = 0;
  private readonly desc = new Uint8Array(FwCfgDmaDesc.SIZE);
  private readonly ctlBytes = new Uint8Array(4);

  constructor(opts: FwCfgOptions) {
    this.memory = opts.memory;
    this.dmaEnabled = opts.dma ?? true;
    this.maxEntry = FwCfgKey.FILE_FIRST + (opts.fileSlots ?? FW_CFG_FILE_SLOTS);
    this.addString(FwCfgKey.SIGNATURE, FW_CFG_SIGNATURE, false);
    this.addI32(FwCfgKey.ID, FwCfgFeature.TRADITIONAL | (this.dmaEnabled ? FwCfgFeature.DMA : 0));
    this.rebuildDirectory();
    this.select(FwCfgKey.SIGNATURE);
  }

  /** Adds (or replaces) a numbered item. */
  addBytes(key: number, data: Uint8Array): void {
    const index = key & FwCfgSelector.ENTRY_MASK;
    if (index >= this.maxEntry || (key & ~(FwCfgSelector.ENTRY_MASK | FwCfgSelector.ARCH_LOCAL)) !== 0) {
      throw new RangeError(`fw_cfg: key 0x${key.toString(16)} out of range`);
    }
    this.entries[key & FwCfgSelector.ARCH_LOCAL ? 1 : 0][index] = { data, writable: false, onSelect: undefined, onWrite: undefined };
  }

  /** Adds a little-endian 16-bit item. */
  addI16(key: number, v: number): void {
    this.addBytes(key, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff));
  }

  /** Adds a little-endian 32-bit item. */
  addI32(key: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.addBytes(key, b);
  }

  /** Adds a little-endian 64-bit item. */
  addI64(key: number, v: number | bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
    this.addBytes(key, b);
  }

  /** Adds an ASCII string item (NUL-terminated unless `nul` is false). */
  addString(key: number, s: string, nul = true): void {
    const b = new Uint8Array(s.length + (nul ? 1 : 0));
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
    this.addBytes(key, b);
  }

  /**
   * Adds a named file.  As in QEMU, the directory is kept sorted by name and
   * selectors are handed out from 0x20 in directory order, so adding a file
   * renumbers the ones after it.  Returns the file's selector at this point.
   */
  addFile(name: string, data: Uint8Array, opts: FwCfgFileOptions = {}): number {
    if (name.length === 0 || name.length >= FwCfgDir.NAME_LEN) throw new RangeError(`fw_cfg: bad file name "${name}"`);
    if (this.files.some((f) => f.name === name)) throw new Error(`fw_cfg: duplicate file "${name}"`);
    if (FwCfgKey.FILE_FIRST + this.files.length >= this.maxEntry) throw new Error(`fw_cfg: no free file slot for "${name}"`);
    const entry: Entry = { data, writable: opts.writable ?? false, onSelect: opts.onSelect, onWrite: opts.onWrite };
    let at = this.files.findIndex((f) => compareNames(name, f.name) < 0);
    if (at < 0) at = this.files.length;
    this.files.splice(at, 0, { name, entry });
    this.rebuildDirectory();
    return FwCfgKey.FILE_FIRST + at;
  }

  /** Replaces a file's contents (its size in the directory follows). */
  modifyFile(name: string, data: Uint8Array): void {
    const f = this.files.find((x) => x.name === name);
    if (!f) throw new Error(`fw_cfg: no file "${name}"`);
    f.entry.data = data;
    this.rebuildDirectory();
  }

  /** A file's current contents, or undefined. */
  file(name: string): Uint8Array | undefined {
    return this.files.find((x) => x.name === name)?.entry.data;
  }

  /** The selector of a file, or -1. */
  fileSelector(name: string): number {
    const i = this.files.findIndex((x) => x.name === name);
    return i < 0 ? -1 : FwCfgKey.FILE_FIRST + i;
  }

  /** File names in directory order. */
  fileNames(): string[] {
    return this.files.map((f) => f.name);
  }

  private rebuildDirectory(): void {
    const dir = new Uint8Array(FwCfgDir.COUNT_SIZE + FwCfgDir.ENTRY_SIZE * this.files.length);
    be32(this.files.length, dir, 0);
    this.files.forEach((f, i) => {
      const at = FwCfgDir.COUNT_SIZE + i * FwCfgDir.ENTRY_SIZE;
      const index = FwCfgKey.FILE_FIRST + i;
      be32(f.entry.data.length, dir, at + FwCfgDir.SIZE);
      dir[at + FwCfgDir.SELECT] = index >> 8;
      dir[at + FwCfgDir.SELECT + 1] = index & 0xff;
      for (let c = 0; c < f.name.length; c++) dir[at + FwCfgDir.NAME + c] = f.name.charCodeAt(c) & 0xff;
      this.entries[0][index] = f.entry;
    });
    this.entries[0][FwCfgKey.FILE_DIR] = { data: dir, writable: false, onSelect: undefined, onWrite: undefined };
  }

  /** Writes the selector (port 0x510 / DMA SELECT); returns true when the key exists in range. */
  select(key: number): boolean {
    this.curOffset = 0;
    if ((key & FwCfgSelector.ENTRY_MASK) >= this.maxEntry) {
      this.curEntry = FwCfgSelector.INVALID;
      return false;
    }
    this.curEntry = key & 0xffff;
    this.currentEntry()?.onSelect?.();
    return true;
  }

  /** The current selector (0xFFFF when invalid). */
  get selector(): number {
    return this.curEntry;
  }

  private currentEntry(): Entry | undefined {
    if (this.curEntry === FwCfgSelector.INVALID) return undefined;
    return this.entries[this.curEntry & FwCfgSelector.ARCH_LOCAL ? 1 : 0][this.curEntry & FwCfgSelector.ENTRY_MASK];
  }

  /**
   * Reads `size` bytes from the data register: the next bytes of the item,
   * first byte most significant, zero-padded past the end (fw_cfg_data_read).
   */
  readData(size: number): number {
    const e = this.currentEntry();
    let value = 0;
    let left = size;
    if (e && this.curOffset < e.data.length) {
      do {
        value = value * 256 + e.data[this.curOffset++]!;
      } while (--left > 0 && this.curOffset < e.data.length);
    }
    return left > 0 ? value * 2 ** (8 * left) : value;
  }

  /** Write of the DMA address register's high half (port 0x514, value already big-endian decoded). */
  dmaWriteHigh(v: number): void {
    this.dmaAddrHi = v >>> 0;
    this.dmaAddrLo = 0;
  }

  /** Write of the low half (port 0x518): ORs into the address and starts the transfer. */
  dmaWriteLow(v: number): void {
    this.dmaAddrLo = (this.dmaAddrLo | v) >>> 0;
    this.dmaTransfer();
  }

  /** A single 64-bit write of the DMA address: starts the transfer. */
  dmaWrite64(addr: number): void {
    this.dmaAddrHi = Math.floor(addr / 2 ** 32) >>> 0;
    this.dmaAddrLo = addr >>> 0;
    this.dmaTransfer();
  }

  /** Runs one FWCfgDmaAccess at the latched address (fw_cfg_dma_transfer). */
  private dmaTransfer(): void {
    const descAddr = this.dmaAddrHi * 2 ** 32 + this.dmaAddrLo;
    this.dmaAddrHi = 0;
    this.dmaAddrLo = 0;
    if (!this.dmaEnabled) return;
    const desc = this.desc;
    if (this.memory.readBytes(descAddr, desc) !== MemTx.Ok) {
      this.writeControl(descAddr, FwCfgDmaCtl.ERROR);
      return;
    }
    let control = readBe32(desc, FwCfgDmaDesc.CONTROL);
    let length = readBe32(desc, FwCfgDmaDesc.LENGTH);
    let address = readBe32(desc, FwCfgDmaDesc.ADDRESS) * 2 ** 32 + readBe32(desc, FwCfgDmaDesc.ADDRESS + 4);
    if (control & FwCfgDmaCtl.SELECT) this.select(control >>> FwCfgDmaCtl.SELECTOR_SHIFT);
    const e = this.currentEntry();
    let read = false;
    let write = false;
    if (control & FwCfgDmaCtl.READ) read = true;
    else if (control & FwCfgDmaCtl.WRITE) write = true;
    else if (!(control & FwCfgDmaCtl.SKIP)) length = 0;
    control = 0;
    while (length > 0 && !(control & FwCfgDmaCtl.ERROR)) {
      let len: number;
      if (!e || this.curOffset >= e.data.length) {
        len = length;
        if (read && this.memory.fill(address, len, 0) !== MemTx.Ok) control |= FwCfgDmaCtl.ERROR;
        if (write) control |= FwCfgDmaCtl.ERROR;
      } else {
        len = Math.min(length, e.data.length - this.curOffset);
        const window = e.data.subarray(this.curOffset, this.curOffset + len);
        if (read && this.memory.writeBytes(address, window) !== MemTx.Ok) control |= FwCfgDmaCtl.ERROR;
        if (write) {
          if (!e.writable || len !== length || this.memory.readBytes(address, window) !== MemTx.Ok) control |= FwCfgDmaCtl.ERROR;
          else e.onWrite?.(this.curOffset, len);
        }
        this.curOffset += len;
      }
      address += len;
      length -= len;
    }
    this.writeControl(descAddr, control);
  }

  private writeControl(descAddr: number, control: number): void {
    be32(control, this.ctlBytes, 0);
    this.memory.writeBytes(descAddr + FwCfgDmaDesc.CONTROL, this.ctlBytes);
  }

  /**
   * Snapshot (QEMU vmstate_fw_cfg: cur_entry, cur_offset; plus the DMA
   * address half written and the contents of the files the guest may
   * write).  Read-only items follow from the configuration.
   */
  saveState(): SnapshotSection {
    const files: Record<string, string> = {};
    for (const f of this.files) if (f.entry.writable) files[f.name] = toB64(f.entry.data);
    return { curEntry: this.curEntry, curOffset: this.curOffset, dmaAddrHi: this.dmaAddrHi, dmaAddrLo: this.dmaAddrLo, writableFiles: files };
  }

  /** Loads what saveState saved (no select callback runs). */
  loadState(r: SectionReader): void {
    const curEntry = r.int('curEntry', 0, 0xffff);
    const curOffset = r.int('curOffset');
    const hi = r.u32('dmaAddrHi');
    const lo = r.u32('dmaAddrLo');
    const files = r.sub('writableFiles');
    const data = new Map<Entry, Uint8Array>();
    for (const f of this.files) {
      if (!f.entry.writable) continue;
      const b = files.bytes(f.name);
      if (b.length !== f.entry.data.length) throw new SnapshotError(`snapshot: ${files.where}.${f.name}: expected ${f.entry.data.length} bytes, got ${b.length}`);
      data.set(f.entry, b);
    }
    this.curEntry = curEntry;
    this.curOffset = curOffset;
    this.dmaAddrHi = hi;
    this.dmaAddrLo = lo;
    for (const [e, b] of data) e.data.set(b);
  }

  /** Device reset: selects key 0 (QEMU fw_cfg_reset) and forgets a half-written DMA address. */
  reset(): void {
    this.select(FwCfgKey.SIGNATURE);
    this.dmaAddrHi = 0;
    this.dmaAddrLo = 0;
  }
}

/** QEMU orders the directory with strcmp: plain byte order. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
