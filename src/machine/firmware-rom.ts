/**
 * Read-only memory of a PC: the `-bios` image at the top of the 32-bit
 * address space and its last 128 KiB (at most) mirrored below 1 MiB
 * ("isa-bios"), and the 128 KiB option-ROM area "pc.rom" at 0xC0000 that
 * reads zeros.  Writes are dropped, as QEMU's ROM regions do (observed on
 * QEMU 7.2 q35 with a 64 KiB image: 0xFFFF0 and 0xFFFFFFF0 read the reset
 * vector and ignore writes; 0xC0000-0xDFFFF read 0 and ignore writes).
 */
import { readFileSync } from 'node:fs';
import { MmioRegion, type ContainerRegion, type MmioOps } from '../memory/region.js';
import { ConfigError } from './registry.js';

/** Fixed addresses (QEMU hw/i386/pc.c, pc_sysfw.c). */
export const PcRom = {
  /** The BIOS image ends at 4 GiB. */
  TOP: 0x1_0000_0000,
  /** The ISA BIOS mirror ends at 1 MiB. */
  ISA_TOP: 0x10_0000,
  /** At most this much of the image is mirrored below 1 MiB. */
  ISA_MAX: 128 * 1024,
  /** Option-ROM area "pc.rom". */
  OPTION_ROM_BASE: 0xc_0000,
  OPTION_ROM_SIZE: 0x2_0000,
  /** BIOS images are a whole number of 64 KiB blocks. */
  IMAGE_ALIGN: 0x1_0000,
  /** Over RAM. */
  PRIORITY: 1,
} as const;

/** A ROM region over `bytes` (any size, any alignment; writes ignored). */
export function romRegion(name: string, bytes: Uint8Array): MmioRegion {
  const ops: MmioOps = {
    read(offset: number, size: 1 | 2 | 4): number {
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + (bytes[offset + i] ?? 0);
      return v;
    },
    write(): void {},
  };
  return new MmioRegion(name, bytes.length, ops, { valid: { min: 1, max: 8, unaligned: true }, impl: { min: 1, max: 4 } });
}

/** Reads a `-bios` file; ConfigError with QEMU's message when unusable. */
export function loadBiosImage(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch {
    throw new ConfigError(`could not load PC BIOS '${path}'`);
  }
  if (bytes.length === 0 || bytes.length % PcRom.IMAGE_ALIGN !== 0) throw new ConfigError(`could not load PC BIOS '${path}'`);
  return bytes;
}

/** Maps pc.rom, and the BIOS image with its ISA mirror when there is one. */
export function mapFirmwareRom(systemMemory: ContainerRegion, bios: Uint8Array | null): void {
  systemMemory.add(romRegion('pc.rom', new Uint8Array(PcRom.OPTION_ROM_SIZE)), PcRom.OPTION_ROM_BASE, PcRom.PRIORITY);
  if (!bios) return;
  systemMemory.add(romRegion('pc.bios', bios), PcRom.TOP - bios.length, PcRom.PRIORITY);
  const isa = bios.subarray(bios.length - Math.min(bios.length, PcRom.ISA_MAX));
  systemMemory.add(romRegion('isa-bios', isa), PcRom.ISA_TOP - isa.length, PcRom.PRIORITY);
}
