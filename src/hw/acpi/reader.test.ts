import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../memory/address-space.js';
import { ContainerRegion, RamRegion } from '../../memory/region.js';
import { createRam } from '../../memory/ram-backend.js';
import { createFwCfg } from '../fw-cfg/ports.js';
import { addressSpaceBus } from '../fw-cfg/client.js';
import { addQ35Items } from '../fw-cfg/q35-items.js';
import { buildAcpi, installAcpi } from './build.js';
import { q35DmarOptions } from './dmar.js';
import { parseDmar } from './dmar-parse.js';
import { readAcpiTables } from './reader.js';
import { createQ35Firmware } from './install.js';
import { byteSum } from './table.js';

const RAM = 0x800_0000;

function machine() {
  const sys = new ContainerRegion('system', 2 ** 32);
  sys.add(new RamRegion('ram', RAM, createRam(RAM, 'ts')), 0);
  const ioRoot = new ContainerRegion('io', 0x10000);
  const mem = new AddressSpace('memory', sys);
  const io = new AddressSpace('io', ioRoot, { unassignedByte: 0xff });
  const fw = createFwCfg({ ioSpace: ioRoot, memory: mem });
  addQ35Items(fw, { ramBelow4g: RAM });
  return { fw, mem, bus: addressSpaceBus(io, mem) };
}

describe('reading ACPI through fw_cfg DMA like a firmware', () => {
  it('finds every table, installs them in guest memory, and the DMAR parses back', async () => {
    const { fw, mem, bus } = machine();
    const dmar = q35DmarOptions({ hostAddressWidth: 39, intremap: true, deviceIotlb: false, rootBus: [{ devfn: 0, bridge: false }, { devfn: 8, bridge: false }] });
    installAcpi(fw, buildAcpi({ dmar }));
    expect(fw.fileSelector('etc/acpi/tables')).toBe(0x23);
    expect(fw.fileSelector('etc/table-loader')).toBe(0x2c);
    const r = await readAcpiTables(bus, { install: true, highTop: RAM });
    expect(r.errors).toEqual([]);
    expect(r.tables.map((t) => t.signature)).toEqual(['FACP', 'FACS', 'DSDT', 'APIC', 'MCFG', 'DMAR', 'WAET']);
    // the RSDP really is in guest memory, in the F-segment, and points at the RSDT in guest memory
    const rsdpAddr = r.run.files.get('etc/acpi/rsdp')!.addr;
    const rsdp = new Uint8Array(20);
    mem.readBytes(rsdpAddr, rsdp);
    expect(String.fromCharCode(...rsdp.subarray(0, 8))).toBe('RSD PTR ');
    expect(byteSum(rsdp)).toBe(0);
    const rsdtAddr = new DataView(rsdp.buffer).getUint32(16, true);
    expect(rsdtAddr).toBe(r.root!.address);
    const dmarTable = r.tables.find((t) => t.signature === 'DMAR')!;
    const inRam = new Uint8Array(dmarTable.bytes.length);
    mem.readBytes(dmarTable.address, inRam);
    expect(inRam).toEqual(dmarTable.bytes);
    const parsed = parseDmar(inRam);
    expect(parsed.errors).toEqual([]);
    expect(parsed.table!.units[0]!.scopes.map((s) => s.path[0]!.dev)).toEqual([0, 0, 1]);
  });
  it('reports a machine without ACPI files', async () => {
    const { bus } = machine();
    const r = await readAcpiTables(bus);
    expect(r.errors).toContain('no etc/table-loader file');
    expect(r.tables).toEqual([]);
  });
});

describe('createQ35Firmware', () => {
  it('publishes tables and refreshes them in place', async () => {
    const sys = new ContainerRegion('system', 2 ** 32);
    sys.add(new RamRegion('ram', RAM, createRam(RAM, 'ts')), 0);
    const ioRoot = new ContainerRegion('io', 0x10000);
    const mem = new AddressSpace('memory', sys);
    const io = new AddressSpace('io', ioRoot, { unassignedByte: 0xff });
    const fwm = createQ35Firmware({ ioSpace: ioRoot, memory: mem }, { ramBelow4g: RAM });
    const bus = addressSpaceBus(io, mem);
    expect((await readAcpiTables(bus)).tables.some((t) => t.signature === 'DMAR')).toBe(false);
    fwm.update({ dmar: q35DmarOptions({ hostAddressWidth: 39, intremap: false, deviceIotlb: false, rootBus: [{ devfn: 0, bridge: false }] }) });
    const r = await readAcpiTables(bus);
    expect(r.errors).toEqual([]);
    expect(parseDmar(r.tables.find((t) => t.signature === 'DMAR')!.bytes).table!.intremap).toBe(false);
    expect(r.directory.find((f) => f.name === 'etc/acpi/tables')!.select).toBe(0x23);
  });
});
