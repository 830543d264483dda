/**
 * The firmware's side of fw_cfg: what SeaBIOS/OVMF do to read items and
 * files, over any bus that can do port I/O and memory access.  The bus
 * methods may be synchronous (our machine) or asynchronous (a qtest
 * connection to QEMU), so every method here is async.  Used by the ACPI
 * reader, the guest firmware and the differential tests.
 */
import { FwCfgDir, FwCfgDmaCtl, FwCfgDmaDesc, FwCfgFeature, FwCfgKey, FW_CFG_SIGNATURE } from './fw-cfg.js';
import { bswap32, FwCfgPort } from './ports.js';
import type { AddressSpace } from '../../memory/address-space.js';

/** Port I/O and memory access, as a CPU or a qtest client sees them. */
export interface FirmwareBus {
  outw(port: number, value: number): void | Promise<void>;
  outl(port: number, value: number): void | Promise<void>;
  inb(port: number): number | Promise<number>;
  /** Reads guest memory in memory order. */
  memRead(addr: number, length: number): Uint8Array | Promise<Uint8Array>;
  memWrite(addr: number, bytes: Uint8Array): void | Promise<void>;
}

/** A FirmwareBus over our own I/O and memory address spaces (a CPU's view). */
export function addressSpaceBus(io: AddressSpace, memory: AddressSpace): FirmwareBus {
  return {
    outw: (port, value) => void io.write(port, 2, value & 0xffff),
    outl: (port, value) => void io.write(port, 4, value >>> 0),
    inb: (port) => io.read(port, 1),
    memRead: (addr, length) => {
      const out = new Uint8Array(length);
      memory.readBytes(addr, out);
      return out;
    },
    memWrite: (addr, bytes) => void memory.writeBytes(addr, bytes),
  };
}

/** One directory entry. */
export interface FwCfgFileInfo {
  readonly name: string;
  readonly size: number;
  readonly select: number;
}

/** Where the client may put its DMA descriptor and bounce buffer in guest RAM. */
export interface FwCfgClientOptions {
  /** 16 bytes for the FWCfgDmaAccess (default 0x7000). */
  readonly descAddr?: number;
  /** Bounce buffer for DMA reads (default 0x100000). */
  readonly bufAddr?: number;
  /** Largest transfer per descriptor (default 64 KiB). */
  readonly chunk?: number;
}

const DEFAULT_DESC = 0x7000;
const DEFAULT_BUF = 0x10_0000;
const DEFAULT_CHUNK = 0x1_0000;

/** Thrown when the device reports a DMA error (a firmware-side failure, not device input). */
export class FwCfgDmaError extends Error {}

/** A firmware-style fw_cfg reader. */
export class FwCfgClient {
  private readonly descAddr: number;
  private readonly bufAddr: number;
  private readonly chunk: number;

  constructor(
    private readonly bus: FirmwareBus,
    opts: FwCfgClientOptions = {},
  ) {
    this.descAddr = opts.descAddr ?? DEFAULT_DESC;
    this.bufAddr = opts.bufAddr ?? DEFAULT_BUF;
    this.chunk = opts.chunk ?? DEFAULT_CHUNK;
  }

  /** Selects a key through the selector port. */
  async select(key: number): Promise<void> {
    await this.bus.outw(FwCfgPort.CTL, key);
  }

  /** Reads `length` bytes of the selected item through the data port. */
  async readPio(length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = await this.bus.inb(FwCfgPort.DATA);
    return out;
  }

  /** True when key 0 reads "QEMU". */
  async present(): Promise<boolean> {
    await this.select(FwCfgKey.SIGNATURE);
    const sig = await this.readPio(FW_CFG_SIGNATURE.length);
    return String.fromCharCode(...sig) === FW_CFG_SIGNATURE;
  }

  /** True when the ID item advertises DMA. */
  async dmaSupported(): Promise<boolean> {
    await this.select(FwCfgKey.ID);
    const id = await this.readPio(4);
    return (id[0]! & FwCfgFeature.DMA) !== 0;
  }

  /**
   * Runs one DMA descriptor {control, length, address} and returns the
   * control word the device wrote back (0 on success).
   */
  async dma(control: number, length: number, address: number): Promise<number> {
    const d = new Uint8Array(FwCfgDmaDesc.SIZE);
    const v = new DataView(d.buffer);
    v.setUint32(FwCfgDmaDesc.CONTROL, control >>> 0);
    v.setUint32(FwCfgDmaDesc.LENGTH, length >>> 0);
    v.setUint32(FwCfgDmaDesc.ADDRESS, Math.floor(address / 2 ** 32) >>> 0);
    v.setUint32(FwCfgDmaDesc.ADDRESS + 4, address >>> 0);
    await this.bus.memWrite(this.descAddr, d);
    await this.bus.outl(FwCfgPort.DMA_HIGH, bswap32(Math.floor(this.descAddr / 2 ** 32)));
    await this.bus.outl(FwCfgPort.DMA_LOW, bswap32(this.descAddr >>> 0));
    const back = await this.bus.memRead(this.descAddr + FwCfgDmaDesc.CONTROL, 4);
    return new DataView(back.buffer, back.byteOffset).getUint32(0);
  }

  /** Reads `length` bytes of item `key` (from its start) by DMA through the bounce buffer. */
  async readItemDma(key: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    let control = ((key << FwCfgDmaCtl.SELECTOR_SHIFT) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.READ) >>> 0;
    do {
      const n = Math.min(this.chunk, length - done);
      const status = await this.dma(control, n, this.bufAddr);
      if (status & FwCfgDmaCtl.ERROR) throw new FwCfgDmaError(`fw_cfg DMA error reading key 0x${key.toString(16)}`);
      if (n > 0) out.set(await this.bus.memRead(this.bufAddr, n), done);
      done += n;
      control = FwCfgDmaCtl.READ;
    } while (done < length);
    return out;
  }

  /** The file directory (by DMA). */
  async directory(): Promise<FwCfgFileInfo[]> {
    const head = await this.readItemDma(FwCfgKey.FILE_DIR, 4);
    const count = new DataView(head.buffer).getUint32(0);
    const raw = await this.readItemDma(FwCfgKey.FILE_DIR, FwCfgDir.COUNT_SIZE + count * FwCfgDir.ENTRY_SIZE);
    const v = new DataView(raw.buffer);
    const files: FwCfgFileInfo[] = [];
    for (let i = 0; i < count; i++) {
      const at = FwCfgDir.COUNT_SIZE + i * FwCfgDir.ENTRY_SIZE;
      let name = '';
      for (let c = 0; c < FwCfgDir.NAME_LEN && raw[at + FwCfgDir.NAME + c] !== 0; c++) name += String.fromCharCode(raw[at + FwCfgDir.NAME + c]!);
      files.push({ name, size: v.getUint32(at + FwCfgDir.SIZE), select: v.getUint16(at + FwCfgDir.SELECT) });
    }
    return files;
  }

  /** Reads a whole file by name (undefined when absent). */
  async readFile(name: string, dir?: readonly FwCfgFileInfo[]): Promise<Uint8Array | undefined> {
    const f = (dir ?? (await this.directory())).find((x) => x.name === name);
    if (!f) return undefined;
    return this.readItemDma(f.select, f.size);
  }

  /** Writes a file by DMA WRITE from the bounce buffer; returns the control word written back. */
  async writeFileDma(select: number, bytes: Uint8Array): Promise<number> {
    await this.bus.memWrite(this.bufAddr, bytes);
    return this.dma(((select << FwCfgDmaCtl.SELECTOR_SHIFT) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.WRITE) >>> 0, bytes.length, this.bufAddr);
  }
}
