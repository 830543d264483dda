/**
 * Guest side of QEMU's fw_cfg (docs/specs/fw_cfg.rst facts): selector port
 * 0x510 (16-bit), data port 0x511 (8-bit), DMA address ports 0x514 (high 32
 * bits) / 0x518 (low 32 bits, starts the transfer), both big-endian.
 */
import type { GuestPlatform } from '../platform.js';
import type { GuestAllocator } from '../alloc.js';

/** fw_cfg I/O ports. */
export const FwCfgPort = {
  Selector: 0x510,
  Data: 0x511,
  DmaHigh: 0x514,
  DmaLow: 0x518,
} as const;

/** Well-known selector keys. */
export const FwCfgKey = {
  Signature: 0x00,
  Id: 0x01,
  FileDir: 0x19,
} as const;

/** FW_CFG_ID feature bits. */
export const FwCfgFeature = { Traditional: 1 << 0, Dma: 1 << 1 } as const;

/** FWCfgDmaAccess.control bits. */
export const FwCfgDmaCtl = {
  Error: 0x01,
  Read: 0x02,
  Skip: 0x04,
  Select: 0x08,
  Write: 0x10,
  SelectorShift: 16,
} as const;

/** Size of the DMA descriptor {be32 control, be32 length, be64 address}. */
const DMA_DESC_SIZE = 16;
/** One directory entry: be32 size, be16 select, be16 reserved, name[56]. */
const DIR_ENTRY_SIZE = 64;
const DIR_NAME_OFFSET = 8;
const DIR_NAME_LEN = 56;
/** Polls of the DMA control word before giving up. */
const DMA_POLL_LIMIT = 1000;

/** One file of the fw_cfg directory. */
export interface FwCfgFile {
  readonly name: string;
  readonly size: number;
  readonly select: number;
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** A firmware's view of fw_cfg. */
export class FwCfgGuest {
  private dmaScratch = 0;
  /** "QEMU" when present. */
  signature = '';
  /** FW_CFG_ID features. */
  features = 0;
  /** The file directory. */
  files: FwCfgFile[] = [];

  constructor(private readonly platform: GuestPlatform, private readonly alloc: GuestAllocator) {}

  /** Reads signature, features and the file directory. */
  async init(): Promise<boolean> {
    const sig = await this.readPio(FwCfgKey.Signature, 4);
    this.signature = String.fromCharCode(...sig);
    if (this.signature !== 'QEMU') return false;
    const id = await this.readPio(FwCfgKey.Id, 4);
    this.features = id[0]! | (id[1]! << 8);
    if (this.features & FwCfgFeature.Dma) this.dmaScratch = await this.alloc.alloc(DMA_DESC_SIZE, DMA_DESC_SIZE);
    const countBytes = await this.readItem(FwCfgKey.FileDir, 4);
    const count = ((countBytes[0]! << 24) | (countBytes[1]! << 16) | (countBytes[2]! << 8) | countBytes[3]!) >>> 0;
    const dir = (await this.readItem(FwCfgKey.FileDir, 4 + count * DIR_ENTRY_SIZE)).subarray(4);
    this.files = [];
    for (let i = 0; i < count; i++) {
      const e = dir.subarray(i * DIR_ENTRY_SIZE, (i + 1) * DIR_ENTRY_SIZE);
      const size = ((e[0]! << 24) | (e[1]! << 16) | (e[2]! << 8) | e[3]!) >>> 0;
      const select = (e[4]! << 8) | e[5]!;
      let name = '';
      for (let j = DIR_NAME_OFFSET; j < DIR_NAME_OFFSET + DIR_NAME_LEN && e[j] !== 0; j++) name += String.fromCharCode(e[j]!);
      this.files.push({ name, size, select });
    }
    return true;
  }

  /** Finds a file by name. */
  file(name: string): FwCfgFile | undefined {
    return this.files.find((f) => f.name === name);
  }

  /** Reads a whole named file (undefined when absent). */
  async readFile(name: string): Promise<Uint8Array | undefined> {
    const f = this.file(name);
    return f ? this.readItem(f.select, f.size) : undefined;
  }

  /** Reads `length` bytes of an item: by DMA into `dest` (or scratch) when available, else byte by byte. */
  async readItem(select: number, length: number): Promise<Uint8Array> {
    if (!(this.features & FwCfgFeature.Dma)) return this.readPio(select, length);
    const buf = await this.alloc.alloc(Math.max(length, 1), 16);
    await this.dma(select, buf, length);
    return this.platform.readBytes(buf, length);
  }

  /** DMA `length` bytes of item `select` to guest address `dest`. */
  async dma(select: number, dest: number, length: number): Promise<void> {
    const d = new Uint8Array(DMA_DESC_SIZE);
    const dv = new DataView(d.buffer);
    dv.setUint32(0, ((select << FwCfgDmaCtl.SelectorShift) | FwCfgDmaCtl.Select | FwCfgDmaCtl.Read) >>> 0, false);
    dv.setUint32(4, length, false);
    dv.setBigUint64(8, BigInt(dest), false);
    await this.platform.writeBytes(this.dmaScratch, d);
    await this.platform.out(FwCfgPort.DmaHigh, 4, bswap32(Math.floor(this.dmaScratch / 0x1_0000_0000)));
    await this.platform.out(FwCfgPort.DmaLow, 4, bswap32(this.dmaScratch >>> 0));
    for (let i = 0; i < DMA_POLL_LIMIT; i++) {
      const ctl = bswap32(await this.platform.read(this.dmaScratch, 4));
      if (ctl & FwCfgDmaCtl.Error) throw new Error(`fw_cfg DMA error on selector 0x${select.toString(16)}`);
      if (ctl === 0) return;
    }
    throw new Error('fw_cfg DMA did not complete');
  }

  private async readPio(select: number, length: number): Promise<Uint8Array> {
    await this.platform.out(FwCfgPort.Selector, 2, select);
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = await this.platform.in(FwCfgPort.Data, 1);
    return out;
  }
}
