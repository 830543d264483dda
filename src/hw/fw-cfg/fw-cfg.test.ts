import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../memory/address-space.js';
import { ContainerRegion, RamRegion } from '../../memory/region.js';
import { createRam } from '../../memory/ram-backend.js';
import { createFwCfg } from './ports.js';
import { FwCfgDmaCtl, FwCfgKey, type FwCfg } from './fw-cfg.js';
import { addQ35Items } from './q35-items.js';
import { FwCfgClient, addressSpaceBus } from './client.js';
import { u32Stream } from '../../../test/support/prng.js';

const RAM_SIZE = 0x200_0000;

function machine(): { fw: FwCfg; io: AddressSpace; mem: AddressSpace; client: FwCfgClient } {
  const sys = new ContainerRegion('system', 2 ** 32);
  sys.add(new RamRegion('ram', RAM_SIZE, createRam(RAM_SIZE, 'ts')), 0);
  const ioRoot = new ContainerRegion('io', 0x10000);
  const mem = new AddressSpace('memory', sys);
  const io = new AddressSpace('io', ioRoot, { unassignedByte: 0xff });
  const fw = createFwCfg({ ioSpace: ioRoot, memory: mem });
  return { fw, io, mem, client: new FwCfgClient(addressSpaceBus(io, mem)) };
}

/** Runs qtest-style port commands; returns the values of the `in` commands. */
function transcript(io: AddressSpace, cmds: string[]): string[] {
  const out: string[] = [];
  for (const c of cmds) {
    const [op, p, v] = c.split(' ');
    const port = Number(p);
    const size = ({ b: 1, w: 2, l: 4 } as const)[op!.at(-1) as 'b' | 'w' | 'l'];
    if (op!.startsWith('in')) out.push(`${c} 0x${io.read(port, size).toString(16).padStart(4, '0')}`);
    else io.write(port, size, Number(v));
  }
  return out;
}

describe('fw_cfg ports behave like QEMU 7.2', () => {
  it('selector/data quirks (transcript recorded from QEMU 7.2 qtest)', () => {
    const { io } = machine();
    const got = transcript(io, [
      'outw 0x510 0x0', 'inw 0x510', 'inb 0x511', 'inb 0x510', 'inl 0x510', 'inb 0x511',
      'outw 0x510 0x1', 'inb 0x511',
      'outw 0x510 0x0', 'outl 0x510 0x1', 'inb 0x511',
      'outw 0x510 0x0', 'outb 0x510 0x1', 'inb 0x511',
      'outw 0x510 0x0', 'outb 0x511 0x1', 'inb 0x511',
      'outw 0x510 0x0', 'outw 0x511 0x1', 'inb 0x511',
      'outw 0x510 0x4001', 'inb 0x511', 'outw 0x510 0x3f', 'inb 0x511', 'outw 0x510 0x40', 'inb 0x511',
    ]);
    expect(got).toEqual([
      'inw 0x510 0x0000', 'inb 0x511 0x0051', 'inb 0x510 0x0045', 'inl 0x510 0x0000', 'inb 0x511 0x004d',
      'inb 0x511 0x0003', 'inb 0x511 0x0051', 'inb 0x511 0x0051', 'inb 0x511 0x0051', 'inb 0x511 0x0051',
      'inb 0x511 0x0003', 'inb 0x511 0x0000', 'inb 0x511 0x0000',
    ]);
  });
  it('DMA window reads the "QEMU CFG" signature at any width; neighbours', () => {
    const { io } = machine();
    io.write(0x510, 2, 0x19);
    for (let i = 0; i < 4096; i++) io.read(0x511, 1); // run past the end of the directory
    expect(
      transcript(io, ['inw 0x511', 'inl 0x511', 'inb 0x514', 'inw 0x514', 'inl 0x514', 'inl 0x518', 'inb 0x518', 'inl 0x515', 'inl 0x516', 'inb 0x517', 'inb 0x519', 'inl 0x51c', 'inl 0x512']),
    ).toEqual([
      'inw 0x511 0xff00', 'inl 0x511 0x51ffff00', 'inb 0x514 0x0051', 'inw 0x514 0x4551', 'inl 0x514 0x554d4551',
      'inl 0x518 0x47464320', 'inb 0x518 0x0020', 'inl 0x515 0x20554d45', 'inl 0x516 0x4320554d', 'inb 0x517 0x0055',
      'inb 0x519 0x0043', 'inl 0x51c 0xffffffff', 'inl 0x512 0x4551ffff',
    ]);
  });
  it('arch-local items and the ID item', () => {
    const { io, fw } = machine();
    addQ35Items(fw, { ramBelow4g: 0x800_0000 });
    expect(transcript(io, ['outw 0x510 0x8002', 'inb 0x511', 'outw 0x510 0x1', 'inb 0x511'])).toEqual(['inb 0x511 0x0001', 'inb 0x511 0x0003']);
  });
});

describe('fw_cfg directory', () => {
  it('is sorted with selectors from 0x20, matching QEMU 7.2 q35 for the ACPI files', async () => {
    const { fw, client } = machine();
    addQ35Items(fw, { ramBelow4g: 0x800_0000 });
    fw.addFile('etc/table-loader', new Uint8Array(4096));
    fw.addFile('etc/acpi/tables', new Uint8Array(0x2_0000));
    fw.addFile('etc/acpi/rsdp', new Uint8Array(20));
    const dir = await client.directory();
    const want: [string, number, number][] = [
      ['bios-geometry', 0x20, 0], ['bootorder', 0x21, 0], ['etc/acpi/rsdp', 0x22, 20], ['etc/acpi/tables', 0x23, 131072],
      ['etc/boot-fail-wait', 0x24, 4], ['etc/e820', 0x25, 40], ['etc/smbios/smbios-anchor', 0x26, 31],
      ['etc/smi/features-ok', 0x28, 1], ['etc/smi/requested-features', 0x29, 8], ['etc/smi/supported-features', 0x2a, 8],
      ['etc/system-states', 0x2b, 6], ['etc/table-loader', 0x2c, 4096], ['etc/tpm/log', 0x2d, 0],
    ];
    for (const [name, select, size] of want) expect(dir.find((f) => f.name === name)).toEqual({ name, select, size });
    expect(dir.map((f) => f.name)).toEqual([...dir.map((f) => f.name)].sort());
    // bytes of QEMU 7.2's etc/e820 with 128 MiB
    const qemuE820 = '00000000fd000000' + '0000000003000000' + '02000000' + '0000000000000000' + '0000000800000000' + '01000000';
    expect(Buffer.from((await client.readFile('etc/e820', dir))!).toString('hex')).toBe(qemuE820);
  });
  it('refuses duplicate and over-long names, and running out of slots', () => {
    const { fw } = machine();
    fw.addFile('a', new Uint8Array(1));
    expect(() => fw.addFile('a', new Uint8Array(1))).toThrow(/duplicate/);
    expect(() => fw.addFile('x'.repeat(56), new Uint8Array(1))).toThrow();
    for (let i = 0; i < 31; i++) fw.addFile(`f${i}`, new Uint8Array(0));
    expect(() => fw.addFile('one-too-many', new Uint8Array(0))).toThrow(/slot/);
  });
});

describe('fw_cfg DMA', () => {
  it('reads, skips and selects; control returns to 0', async () => {
    const { fw, client, mem } = machine();
    fw.addFile('blob', Uint8Array.from({ length: 300 }, (_, i) => i & 0xff));
    const sel = fw.fileSelector('blob');
    expect(await client.dma(((sel << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.SKIP) >>> 0, 10, 0)).toBe(0);
    expect(await client.dma(FwCfgDmaCtl.READ, 4, 0x2000)).toBe(0);
    const b = new Uint8Array(4);
    mem.readBytes(0x2000, b);
    expect([...b]).toEqual([10, 11, 12, 13]);
    // reading past the end zero-fills
    mem.fill(0x3000, 16, 0xaa);
    expect(await client.dma(FwCfgDmaCtl.SKIP, 284, 0)).toBe(0);
    expect(await client.dma(FwCfgDmaCtl.READ, 16, 0x3000)).toBe(0);
    const z = new Uint8Array(16);
    mem.readBytes(0x3000, z);
    expect([...z]).toEqual([298 & 0xff, 299 & 0xff, ...new Array(14).fill(0)]);
    // select only: no transfer
    expect(await client.dma(((FwCfgKey.SIGNATURE << 16) | FwCfgDmaCtl.SELECT) >>> 0, 100, 0x4000)).toBe(0);
    expect(fw.selector).toBe(FwCfgKey.SIGNATURE);
  });
  it('write is refused on read-only items and works on writable ones', async () => {
    const { fw, client } = machine();
    fw.addFile('ro', new Uint8Array(8));
    let seen: [number, number] | null = null;
    fw.addFile('rw', new Uint8Array(8), { writable: true, onWrite: (o, l) => (seen = [o, l]) });
    expect(await client.writeFileDma(fw.fileSelector('ro'), Uint8Array.of(1, 2))).toBe(FwCfgDmaCtl.ERROR);
    expect(fw.file('ro')![0]).toBe(0);
    expect(await client.writeFileDma(fw.fileSelector('rw'), Uint8Array.of(1, 2))).toBe(0);
    expect([...fw.file('rw')!.subarray(0, 3)]).toEqual([1, 2, 0]);
    expect(seen).toEqual([0, 2]);
    // a write running past the end fails
    expect(await client.writeFileDma(fw.fileSelector('rw'), new Uint8Array(9))).toBe(FwCfgDmaCtl.ERROR);
  });
  it('a read into unassigned memory reports ERROR; the 0x514 write alone does not start a transfer', async () => {
    const { client, io, mem } = machine();
    expect(await client.dma(((FwCfgKey.SIGNATURE << 16) | FwCfgDmaCtl.SELECT | FwCfgDmaCtl.READ) >>> 0, 4, 0x8000_0000)).toBe(FwCfgDmaCtl.ERROR);
    const d = Buffer.from('0000000a000000040000000000002000', 'hex');
    mem.writeBytes(0x7000, d);
    io.write(0x514, 4, 0);
    expect(mem.read(0x7000, 4)).toBe(0x0a000000);
    io.write(0x518, 2, 0x0070); // 16-bit write refused
    expect(mem.read(0x7000, 4)).toBe(0x0a000000);
    io.write(0x518, 4, 0x00700000); // be32 0x7000
    expect(mem.read(0x7000, 4)).toBe(0);
    expect(mem.read(0x2000, 4)).toBe(0x554d4551);
  });
  it('reads the whole directory through the client', async () => {
    const { fw, client } = machine();
    addQ35Items(fw, { ramBelow4g: 0x800_0000, cpus: 2 });
    expect(await client.present()).toBe(true);
    expect(await client.dmaSupported()).toBe(true);
    const nb = await client.readItemDma(FwCfgKey.NB_CPUS, 2);
    expect([...nb]).toEqual([2, 0]);
    expect((await client.directory()).length).toBe(fw.fileNames().length);
  });
});

describe('fw_cfg guest input never throws', () => {
  it('random port accesses and random DMA descriptors (seed 99)', () => {
    const { fw, io, mem } = machine();
    addQ35Items(fw, { ramBelow4g: RAM_SIZE });
    fw.addFile('rw', new Uint8Array(16), { writable: true });
    const rnd = u32Stream(99);
    const sizes = [1, 2, 4] as const;
    for (let n = 0; n < 3000; n++) {
      const port = 0x50e + (rnd() % 16);
      const size = sizes[rnd() % 3]!;
      if (rnd() & 1) expect(() => io.read(port, size)).not.toThrow();
      else {
        // Random descriptors: some in RAM, some pointing anywhere in the 64-bit space.
        const desc = new Uint8Array(16);
        for (let i = 0; i < 16; i++) desc[i] = rnd() >>> 24;
        desc[4] = 0; // keep lengths below 16 MiB so the test stays fast
        const at = (rnd() % (RAM_SIZE - 16)) & ~15;
        mem.writeBytes(at, desc);
        const hi = rnd() % 4 === 0 ? rnd() : 0;
        expect(() => {
          io.write(0x514, 4, hi);
          io.write(0x518, 4, ((at & 0xff) << 24) | ((at & 0xff00) << 8) | ((at >>> 8) & 0xff00) | (at >>> 24));
          io.write(port, size, rnd());
        }).not.toThrow();
      }
    }
  });
});
