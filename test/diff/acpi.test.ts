/**
 * Differential test: QEMU's ACPI tables (read live through fw_cfg DMA over
 * qtest, linked by our firmware-style loader) and fw_cfg against ours.
 *
 * The DMAR must be byte-identical to QEMU 11.1's for each topology (11.1's
 * default aw-bits is 48: HAW 47).  Our side is buildDmar fed with the
 * topology spelled out; the test also enumerates QEMU's root bus through
 * CF8/CFC and checks that it is the topology we spelled.  fw_cfg's
 * directory and items are compared with 11.1 too.  Skips loudly without the
 * oracle; the recorded QEMU bytes in src/hw/acpi/dmar.test.ts keep the
 * builder honest offline.
 *
 * Two parts stay on QEMU 7.2 (their describe names say so), for changes of
 * the machine outside the VT-d oracle's scope: the other tables (11.1's ACPI
 * builder writes MADT revision 3 on every machine type, pc-q35-7.2
 * included; vtemu's tables are 7.2's, revision 1; every other table, the
 * loader script and the selectors are identical on 11.1) and fw_cfg port
 * accesses of every width (11.1's fw_cfg reads 0 from 2- and 4-byte
 * accesses of its data and selector ports, 7.2 and vtemu return data).
 */
import { describe, expect, it } from 'vitest';
import { FwCfgClient, addressSpaceBus } from '../../src/hw/fw-cfg/client.js';
import { createFwCfg } from '../../src/hw/fw-cfg/ports.js';
import { addQ35Items } from '../../src/hw/fw-cfg/q35-items.js';
import { AddressSpace } from '../../src/memory/address-space.js';
import { ContainerRegion, RamRegion } from '../../src/memory/region.js';
import { createRam } from '../../src/memory/ram-backend.js';
import { readAcpiTables } from '../../src/hw/acpi/reader.js';
import { buildDmar, q35DmarOptions, type RootBusDevice } from '../../src/hw/acpi/dmar.js';
import { parseDmar } from '../../src/hw/acpi/dmar-parse.js';
import { buildAcpi, indexBlob, installAcpi } from '../../src/hw/acpi/build.js';
import { decodeLoader, type LoaderCommand } from '../../src/hw/acpi/linker.js';
import { ACPI_TABLES_FILE } from '../../src/hw/acpi/tables.js';
import { needQemu, hex, QemuRunner, qtestBus, type QemuVersion, type QtestRunner } from '../harness/index.js';

const haveQemu = needQemu('11.1', 'test/diff/acpi.test.ts');
const haveQemu72 = needQemu('7.2', 'test/diff/acpi.test.ts (MADT and the fw_cfg ports: QEMU 7.2 only)');

/** QEMU (11.1 unless told) q35 with the harness's halt firmware under qtest, plus `args`. */
const startQemu = (args: readonly string[], version: QemuVersion = '11.1'): QemuRunner => QemuRunner.start(['-machine', 'q35', ...args], { version });

/** Sends `c`; returns the text after `OK` (throws on any other reply). */
async function cmd(q: QtestRunner, c: string): Promise<string> {
  const line = await q.command(c);
  if (!line.startsWith('OK')) throw new Error(`qtest: ${c} -> ${line}`);
  return line.slice(2).trim();
}

/** CF8/CFC config read of bus 0. */
async function cfg32(q: QtestRunner, devfn: number, reg: number): Promise<number> {
  await cmd(q, `outl 0xcf8 ${hex((0x8000_0000 | (devfn << 8) | reg) >>> 0)}`);
  return Number(await cmd(q, 'inl 0xcfc'));
}

async function cfgWrite32(q: QtestRunner, devfn: number, reg: number, v: number): Promise<void> {
  await cmd(q, `outl 0xcf8 ${hex((0x8000_0000 | (devfn << 8) | reg) >>> 0)}`);
  await cmd(q, `outl 0xcfc ${hex(v >>> 0)}`);
}

/** Root-bus devices (function 0 and, for multi-function devices, the others) with bridge flags. */
async function rootBus(q: QtestRunner): Promise<RootBusDevice[]> {
  const out: RootBusDevice[] = [];
  for (let devfn = 0; devfn < 256; devfn++) {
    const id = await cfg32(q, devfn, 0);
    if (id === 0xffff_ffff || id === 0) {
      if ((devfn & 7) === 0) devfn += 7;
      continue;
    }
    const headerType = ((await cfg32(q, devfn, 0x0c)) >>> 16) & 0xff;
    out.push({ devfn, bridge: (headerType & 0x7f) === 1 });
    if ((devfn & 7) === 0 && !(headerType & 0x80)) devfn += 7;
  }
  return out;
}

const BUILTINS: RootBusDevice[] = [0x00, 0xf8, 0xfa, 0xfb].map((devfn) => ({ devfn, bridge: false }));

interface Case {
  readonly name: string;
  readonly args: string[];
  readonly intremap: boolean;
  readonly deviceIotlb: boolean;
  readonly extra: RootBusDevice[];
}

const CASES: Case[] = [
  { name: 'default intel-iommu (aw-bits 48)', args: ['-device', 'intel-iommu'], intremap: true, deviceIotlb: false, extra: [] },
  { name: 'intremap=off', args: ['-device', 'intel-iommu,intremap=off'], intremap: false, deviceIotlb: false, extra: [] },
  { name: 'device-iotlb=on', args: ['-device', 'intel-iommu,device-iotlb=on'], intremap: true, deviceIotlb: true, extra: [] },
  {
    name: 'two edu devices',
    args: ['-device', 'intel-iommu', '-device', 'edu', '-device', 'edu'],
    intremap: true,
    deviceIotlb: false,
    extra: [{ devfn: 0x08, bridge: false }, { devfn: 0x10, bridge: false }],
  },
  {
    name: 'pcie-root-port with edu behind it',
    args: ['-device', 'intel-iommu', '-device', 'pcie-root-port,id=rp,chassis=1', '-device', 'edu,bus=rp'],
    intremap: true,
    deviceIotlb: false,
    extra: [{ devfn: 0x08, bridge: true }],
  },
  {
    name: 'pcie-pci-bridge with edu behind it',
    args: ['-device', 'intel-iommu', '-device', 'pcie-pci-bridge,id=br', '-device', 'edu,bus=br'],
    intremap: true,
    deviceIotlb: false,
    extra: [{ devfn: 0x08, bridge: true }],
  },
];

describe.skipIf(!haveQemu)('DMAR: ours vs live QEMU 11.1 (through fw_cfg DMA + table-loader)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const q = startQemu(['-machine', 'kernel-irqchip=split', ...c.args]);
      try {
        const bus = await rootBus(q);
        expect(bus).toEqual([...BUILTINS, ...c.extra].sort((a, b) => a.devfn - b.devfn));
        const r = await readAcpiTables(qtestBus(q));
        expect(r.errors).toEqual([]);
        const theirs = r.tables.find((t) => t.signature === 'DMAR');
        expect(theirs, 'QEMU lists a DMAR').toBeDefined();
        const ours = buildDmar(q35DmarOptions({ hostAddressWidth: 48, intremap: c.intremap, deviceIotlb: c.deviceIotlb, rootBus: bus }));
        expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(theirs!.bytes).toString('hex'));
        expect(parseDmar(theirs!.bytes).errors).toEqual([]);
      } finally {
        await q.close();
      }
    });
  }
});

/** Rewrites a loader command's blob offsets as (table signature, offset inside the table). */
function normalize(cmds: readonly LoaderCommand[], blob: Uint8Array): string[] {
  const index = indexBlob(blob);
  const where = (off: number): string => {
    const t = index.find((x) => off >= x.offset && off < x.offset + x.length);
    return t ? `${t.signature}+${off - t.offset}` : `@${off}`;
  };
  return cmds.map((c) => {
    switch (c.kind) {
      case 'allocate':
        return `allocate ${c.file} align ${c.align} zone ${c.zone}`;
      case 'add-pointer':
        return `pointer ${c.dest}:${c.dest === ACPI_TABLES_FILE ? where(c.offset) : c.offset} size ${c.size} -> ${c.src}`;
      case 'add-checksum':
        if (c.file !== ACPI_TABLES_FILE) return `checksum ${c.file}:${c.start} len ${c.length} at ${c.offset}`;
        // Our DSDT is minimal, so only its length may differ.
        return `checksum ${c.file}:${where(c.start)} len ${where(c.start).startsWith('DSDT') ? 'dsdt' : c.length} at ${where(c.offset)}`;
      default:
        return c.kind;
    }
  });
}

describe.skipIf(!haveQemu72)('the other tables and the loader script vs live QEMU 7.2 (QEMU 7.2 only: 11.1 writes MADT revision 3)', () => {
  it('same tables, same order, same bytes except the DSDT; same loader commands', async () => {
    const q = startQemu(['-machine', 'kernel-irqchip=split', '-device', 'intel-iommu'], '7.2');
    try {
      // Program PCIEXBAR (MCH 00:00.0 reg 0x60) at 0xB0000000, 256 buses, as SeaBIOS does, so QEMU lists an MCFG.
      await cfgWrite32(q, 0, 0x64, 0);
      await cfgWrite32(q, 0, 0x60, 0xb000_0001);
      const client = new FwCfgClient(qtestBus(q));
      const dirList = await client.directory();
      const theirsBlob = (await client.readFile(ACPI_TABLES_FILE, dirList))!;
      const theirsLoader = (await client.readFile('etc/table-loader', dirList))!;
      const ours = buildAcpi({
        pmBase: 0, // no firmware ran in QEMU: ICH9 PMBASE is still 0
        hpet: true,
        dmar: q35DmarOptions({ hostAddressWidth: 39, intremap: true, deviceIotlb: false, rootBus: BUILTINS }),
      });
      const theirIndex = indexBlob(theirsBlob);
      expect(ours.index.map((t) => t.signature)).toEqual(theirIndex.map((t) => t.signature));
      for (const t of theirIndex) {
        if (t.signature === 'DSDT' || t.signature === 'RSDT') continue; // our DSDT is minimal; RSDT entries are offsets that follow its size
        const mine = ours.index.find((x) => x.signature === t.signature)!;
        expect(Buffer.from(ours.tables.subarray(mine.offset, mine.offset + mine.length)).toString('hex'), t.signature).toBe(
          Buffer.from(theirsBlob.subarray(t.offset, t.offset + t.length)).toString('hex'),
        );
      }
      expect(normalize(decodeLoader(ours.loader), ours.tables)).toEqual(normalize(decodeLoader(theirsLoader), theirsBlob));
      expect(ours.loader.length).toBe(theirsLoader.length);
      expect(ours.tables.length).toBe(theirsBlob.length);
      // The files the firmware needs sit at QEMU's selectors.
      for (const name of ['etc/acpi/rsdp', 'etc/acpi/tables', 'etc/table-loader']) {
        expect(dirList.find((f) => f.name === name)!.select, name).toBe({ 'etc/acpi/rsdp': 0x22, 'etc/acpi/tables': 0x23, 'etc/table-loader': 0x2c }[name]);
      }
    } finally {
      await q.close();
    }
  });
});

/** Our fw_cfg on a bare q35-like memory map, with QEMU's q35 items (7.2's; 11.1 lists the same) and our ACPI files. */
function ourFwCfg() {
  const ram = 0x800_0000;
  const sys = new ContainerRegion('system', 2 ** 32);
  sys.add(new RamRegion('ram', ram, createRam(ram, 'ts')), 0);
  const ioRoot = new ContainerRegion('io', 0x10000);
  const mem = new AddressSpace('memory', sys);
  const io = new AddressSpace('io', ioRoot, { unassignedByte: 0xff });
  const fw = createFwCfg({ ioSpace: ioRoot, memory: mem });
  addQ35Items(fw, { ramBelow4g: ram });
  installAcpi(fw, buildAcpi({ dmar: q35DmarOptions({ hostAddressWidth: 39, intremap: true, deviceIotlb: false, rootBus: BUILTINS }) }));
  return { fw, io, mem, bus: addressSpaceBus(io, mem) };
}

const PORT_SCRIPT = [
  'inb 0x511', 'inb 0x510', 'inw 0x510', 'inl 0x510', 'inw 0x511', 'inl 0x511', 'inl 0x512', 'inb 0x511',
  'outw 0x510 0x1', 'inb 0x511', 'outl 0x510 0x0', 'inb 0x511', 'outb 0x510 0x0', 'inb 0x511', 'outw 0x511 0x0', 'inb 0x511',
  'outw 0x510 0x4000', 'inb 0x511', 'outw 0x510 0x8002', 'inb 0x511', 'inb 0x511', 'outw 0x510 0x8004', 'inb 0x511', 'inb 0x511',
  'outw 0x510 0x3fff', 'inb 0x511', 'outw 0x510 0x5', 'inb 0x511', 'inb 0x511', 'inb 0x511',
  'inb 0x514', 'inw 0x514', 'inl 0x514', 'inl 0x518', 'inw 0x51a', 'inl 0x515', 'inl 0x516', 'inb 0x51b', 'inl 0x51c',
  'outw 0x514 0x1', 'outb 0x518 0x1', 'outl 0x516 0x0', 'inl 0x514',
];

function runOurs(io: AddressSpace, cmd: string): string {
  const [op, p, v] = cmd.split(' ');
  const size = ({ b: 1, w: 2, l: 4 } as const)[op!.at(-1) as 'b' | 'w' | 'l'];
  if (op!.startsWith('in')) return `0x${io.read(Number(p), size).toString(16).padStart(4, '0')}`;
  io.write(Number(p), size, Number(v));
  return '';
}

describe.skipIf(!haveQemu72)('fw_cfg ports vs live QEMU 7.2 (QEMU 7.2 only: 11.1 reads 0 from multi-byte port accesses)', () => {
  it('port accesses of every width at 0x510-0x51F answer the same', async () => {
    const q = startQemu(['-device', 'intel-iommu'], '7.2');
    try {
      const ours = ourFwCfg();
      for (const c of PORT_SCRIPT) {
        const theirs = await cmd(q, c);
        expect(runOurs(ours.io, c), c).toBe(theirs);
      }
    } finally {
      await q.close();
    }
  });
});

describe.skipIf(!haveQemu)('fw_cfg directory and items vs live QEMU 11.1', () => {
  it('directory selectors and item contents by DMA', async () => {
    const q = startQemu(['-device', 'intel-iommu']);
    try {
      const theirs = new FwCfgClient(qtestBus(q));
      const ours = new FwCfgClient(ourFwCfg().bus);
      const [td, od] = [await theirs.directory(), await ours.directory()];
      // Every file we publish sits at QEMU's selector (we omit only genroms/kvmvapic.bin, QEMU's last entry).
      for (const f of od) expect(td.find((t) => t.name === f.name)?.select, f.name).toBe(f.select);
      expect(td.filter((t) => !od.some((o) => o.name === t.name)).map((t) => t.name)).toEqual(['genroms/kvmvapic.bin']);
      for (const key of [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x0e, 0x0f, 0x8000, 0x8001, 0x8002, 0x8003, 0x8004, 0x4005, 0x3000]) {
        expect(Buffer.from(await ours.readItemDma(key, 136)).toString('hex'), `key 0x${key.toString(16)}`).toBe(
          Buffer.from(await theirs.readItemDma(key, 136)).toString('hex'),
        );
      }
      for (const name of ['etc/e820', 'etc/boot-fail-wait', 'etc/system-states', 'etc/smi/supported-features', 'etc/smi/requested-features', 'etc/smi/features-ok', 'etc/acpi/rsdp']) {
        const o = await ours.readFile(name, od);
        const t = await theirs.readFile(name, td);
        if (name === 'etc/acpi/rsdp') {
          // The RSDT offset follows the DSDT size; the rest is identical.
          expect(Buffer.from(o!.subarray(0, 16)).toString('hex')).toBe(Buffer.from(t!.subarray(0, 16)).toString('hex'));
        } else {
          expect(Buffer.from(o!).toString('hex'), name).toBe(Buffer.from(t!).toString('hex'));
        }
      }
      // WRITE to a read-only file and SKIP past the end behave the same.
      for (const client of [theirs, ours]) {
        expect(await client.writeFileDma(0x25, Uint8Array.of(1, 2, 3)), 'write e820').toBe(1);
      }
    } finally {
      await q.close();
    }
  });
});
