/**
 * fw_cfg's x86 I/O ports (QEMU fw_cfg_io): selector 0x510 (16-bit write),
 * data 0x511 (8-bit read), DMA address 0x514 (high 32 bits) / 0x518 (low
 * 32 bits, starts the transfer), both big-endian; reading 0x514-0x51B
 * returns the signature "QEMU CFG" in memory order.
 *
 * QEMU port quirks reproduced (verified against QEMU 7.2 with qtest):
 * - the "comb" region answers byte reads of the data stream at both 0x510
 *   and 0x511 (`inb 0x510` reads data); 16- and 32-bit reads at 0x510 read
 *   0 and consume nothing; byte writes are ignored; only a 16-bit write at
 *   0x510 selects (`outl 0x510` does nothing).
 * - QEMU does not clamp an I/O access to its region's size, so a 32-bit
 *   access at 0x510 reaches the 2-byte region whole and is refused.  Our bus
 *   clamps, so the window spans 0x510-0x513 and its upper two ports answer
 *   like unassigned ports (reads all-ones, writes dropped).
 * - DMA register writes other than 32-bit at 0x514/0x518 are refused.
 */
import { MmioRegion, type MmioOps } from '../../memory/region.js';
import type { DeviceContext } from '../../machine/device-type.js';
import { FW_CFG_DMA_SIGNATURE, FwCfg, type FwCfgOptions } from './fw-cfg.js';

/** Port numbers (QEMU FW_CFG_IO_BASE and friends). */
export const FwCfgPort = {
  /** Selector (write 16 bits); the comb window starts here. */
  CTL: 0x510,
  /** Data (read 8 bits). */
  DATA: 0x511,
  /** DMA address, high 32 bits, big-endian. */
  DMA_HIGH: 0x514,
  /** DMA address, low 32 bits, big-endian; the write starts the transfer. */
  DMA_LOW: 0x518,
} as const;

/** Offsets and sizes inside the two windows. */
const Comb = {
  SIZE: 4,
  /** Byte offset of the selector/data pair; 2..3 act as unassigned ports. */
  SELECTOR: 0,
  DATA: 1,
} as const;
const Dma = {
  SIZE: 8,
  HIGH: 0,
  LOW: 4,
} as const;

const UNASSIGNED_BYTE = 0xff;
const SELECT_WIDTH = 2;
const DMA_REG_WIDTH = 4;

const SIGNATURE_BYTES = Uint8Array.from(FW_CFG_DMA_SIGNATURE, (c) => c.charCodeAt(0));

/** Byte-swaps a 32-bit value (the DMA address registers are big-endian; the bus is little-endian). */
export function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** The 0x510-0x513 window's handlers. */
function combOps(fw: FwCfg): MmioOps {
  return {
    read(offset, size) {
      if (offset === Comb.SELECTOR) return size === 1 ? fw.readData(1) : 0;
      // 0x511: one data byte, then unassigned ports; 0x512/0x513: unassigned.
      let value = offset === Comb.DATA ? fw.readData(1) : UNASSIGNED_BYTE;
      for (let i = 1; i < size; i++) value += UNASSIGNED_BYTE * 2 ** (8 * i);
      return value >>> 0;
    },
    write(offset, size, value) {
      if (offset === Comb.SELECTOR && size === SELECT_WIDTH) fw.select(value & 0xffff);
    },
  };
}

/** The 0x514-0x51B DMA window's handlers. */
function dmaOps(fw: FwCfg): MmioOps {
  return {
    read(offset, size) {
      let value = 0;
      for (let i = size - 1; i >= 0; i--) value = value * 256 + (SIGNATURE_BYTES[offset + i] ?? 0);
      return value >>> 0;
    },
    write(offset, size, value) {
      if (size !== DMA_REG_WIDTH) return;
      if (offset === Dma.HIGH) fw.dmaWriteHigh(bswap32(value));
      else if (offset === Dma.LOW) fw.dmaWriteLow(bswap32(value));
    },
  };
}

/** Creates the port windows of a FwCfg (not mapped). */
export function fwCfgRegions(fw: FwCfg): { comb: MmioRegion; dma: MmioRegion | null } {
  const comb = new MmioRegion('fwcfg', Comb.SIZE, combOps(fw), { valid: { min: 1, max: 4, unaligned: true } });
  const dma = fw.dmaEnabled ? new MmioRegion('fwcfg.dma', Dma.SIZE, dmaOps(fw), { valid: { min: 1, max: 4, unaligned: true } }) : null;
  return { comb, dma };
}

/**
 * Creates fw_cfg for a machine and maps its ports into `ctx.ioSpace`; DMA
 * goes through `ctx.memory`.  The caller adds items and files.
 */
export function createFwCfg(ctx: Pick<DeviceContext, 'ioSpace' | 'memory'>, opts: Omit<FwCfgOptions, 'memory'> = {}): FwCfg {
  const fw = new FwCfg({ ...opts, memory: ctx.memory });
  const { comb, dma } = fwCfgRegions(fw);
  ctx.ioSpace.add(comb, FwCfgPort.CTL);
  if (dma) ctx.ioSpace.add(dma, FwCfgPort.DMA_HIGH);
  return fw;
}
