/**
 * Test support for the PCI subsystem: a stand-alone q35 host over fresh
 * memory/I/O spaces and the config-space probe used to compare against QEMU
 * (read every dword; then per dword write 0, read, write all-ones, read,
 * restore).  Used by the unit tests and usable by differential tests.
 */
import { AddressSpace } from '../../src/memory/address-space.js';
import { ContainerRegion, MmioRegion, type MmioOps } from '../../src/memory/region.js';
import { PciDevice, type PciDeviceInit } from '../../src/pci/device.js';
import type { IrqLine } from '../../src/core/irq.js';
import { createQ35PciHost, type Q35PciHost } from '../../src/pci/host.js';

/** A host bridge with its CPU-side spaces. */
export interface TestPciHost {
  readonly host: Q35PciHost;
  readonly system: ContainerRegion;
  readonly ioRoot: ContainerRegion;
  readonly io: AddressSpace;
  readonly mem: AddressSpace;
}

/** Builds a q35 host over empty 2^64 memory and 64 KiB I/O spaces. */
export function makeTestHost(ioapicLine?: (gsi: number) => IrqLine, bridgeMasterGating = false): TestPciHost {
  const system = new ContainerRegion('system', 2 ** 64);
  const ioRoot = new ContainerRegion('io', 0x10000);
  const mem = new AddressSpace('memory', system);
  const io = new AddressSpace('io', ioRoot, { unassignedByte: 0xff });
  const host = createQ35PciHost({ systemMemory: system, ioSpace: ioRoot, memory: mem, ioapicLine, bridgeMasterGating });
  return { host, system, ioRoot, io, mem };
}

/** CONFIG_ADDRESS for (bus, devfn, reg) with the enable bit. */
export function cf8(bus: number, devfn: number, reg: number): number {
  return (0x8000_0000 | (bus << 16) | (devfn << 8) | (reg & 0xfc)) >>> 0;
}

/** A dword config read through CF8/CFC. */
export function cfgRead(io: AddressSpace, bus: number, devfn: number, reg: number, size: 1 | 2 | 4 = 4): number {
  io.write(0xcf8, 4, cf8(bus, devfn, reg));
  return io.read(0xcfc + (reg & 3), size);
}

/** A config write through CF8/CFC. */
export function cfgWrite(io: AddressSpace, bus: number, devfn: number, reg: number, value: number, size: 1 | 2 | 4 = 4): void {
  io.write(0xcf8, 4, cf8(bus, devfn, reg));
  io.write(0xcfc + (reg & 3), size, value);
}

/** The QEMU probe: rows of [offset, value, after writing 0, after writing ones]. */
export function probeConfig(io: AddressSpace, bus: number, devfn: number): [number, number, number, number][] {
  const values: number[] = [];
  for (let r = 0; r < 256; r += 4) values.push(cfgRead(io, bus, devfn, r));
  const rows: [number, number, number, number][] = [];
  for (let r = 0; r < 256; r += 4) {
    const old = cfgRead(io, bus, devfn, r);
    cfgWrite(io, bus, devfn, r, 0);
    const z = cfgRead(io, bus, devfn, r);
    cfgWrite(io, bus, devfn, r, 0xffffffff);
    const o = cfgRead(io, bus, devfn, r);
    cfgWrite(io, bus, devfn, r, old);
    rows.push([r, values[r / 4]!, z, o]);
  }
  return rows;
}

/**
 * Compares probe rows with oracle rows that list only dwords differing from
 * the default pattern (below 0x40: 0/0/0; from 0x40: 0/0/ffffffff).
 * Returns mismatch descriptions (empty when equal).
 */
export function diffProbe(
  rows: readonly (readonly [number, number, number, number])[],
  oracle: readonly (readonly [number, number, number, number])[],
): string[] {
  const expected = new Map(oracle.map((r) => [r[0], r]));
  const hex = (v: number): string => v.toString(16).padStart(8, '0');
  const out: string[] = [];
  for (const row of rows) {
    const off = row[0];
    const want = expected.get(off) ?? [off, 0, 0, off >= 0x40 ? 0xffffffff : 0];
    if (row[1] !== want[1] || row[2] !== want[2] || row[3] !== want[3]) {
      out.push(`0x${off.toString(16)}: got ${hex(row[1])} ${hex(row[2])} ${hex(row[3])} want ${hex(want[1])} ${hex(want[2])} ${hex(want[3])}`);
    }
  }
  return out;
}

/** Registers of the test endpoint read 0x12340000 | offset and record writes. */
const ENDPOINT_OPS = (log: [number, number][]): MmioOps => ({
  read: (off) => (0x1234_0000 | off) >>> 0,
  write: (off, _size, value) => {
    log.push([off, value]);
  },
});

/**
 * A minimal endpoint for tests: BAR0 4 KiB mem32, BAR2 16-byte I/O,
 * BAR4 64 KiB mem64 prefetchable, INTA, MSI (4 vectors, 64-bit, maskable)
 * at 0x50; counts device resets.
 */
export class TestEndpoint extends PciDevice {
  /** Writes seen by the BARs: [offset, value]. */
  readonly writes: [number, number][] = [];
  /** Number of deviceReset calls. */
  resets = 0;

  constructor(init: Partial<PciDeviceInit> = {}) {
    super({
      typeName: 'test-endpoint',
      vendorId: 0x1234,
      deviceId: 0x5678,
      revision: 1,
      classCode: 0x00ff00,
      interruptPin: 1,
      express: true,
      ...init,
    });
    this.registerBar(0, new MmioRegion('test-bar0', 0x1000, ENDPOINT_OPS(this.writes)), 'mem32');
    this.registerBar(2, new MmioRegion('test-bar2', 0x10, ENDPOINT_OPS(this.writes)), 'io');
    this.registerBar(4, new MmioRegion('test-bar4', 0x10000, ENDPOINT_OPS(this.writes)), 'mem64', true);
    this.initMsi(0x50, 4, true, true);
  }

  protected override deviceReset(): void {
    this.resets++;
  }
}
