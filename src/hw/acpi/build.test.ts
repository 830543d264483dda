import { describe, expect, it } from 'vitest';
import { buildAcpi, indexBlob, type AcpiConfig } from './build.js';
import { decodeLoader, LoaderZone } from './linker.js';
import { collectTables, runTableLoader } from './loader-run.js';
import { q35DmarOptions } from './dmar.js';
import { AcpiHeader, byteSum } from './table.js';
import { ACPI_RSDP_FILE, ACPI_TABLES_FILE, FadtOff } from './tables.js';
import { iaslDisassemble } from '../../../test/support/iasl.js';
import { needIasl } from '../../../test/harness/oracle.js';
import { Rng } from '../../../test/support/prng.js';

/**
 * Tables read from QEMU 7.2 `-machine q35 -device intel-iommu` (no firmware
 * ran, so PMBASE is 0 and there is no MCFG), checksum bytes still 0.
 */
const QEMU_72 = {
  FACS: '46414353400000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
  FACP: '46414350f40000000300424f434853204258504320202020010000004258504301000000000000004000000001000900b20000000203000000000000000000000400000000000000000000000800000020000000000000000402000410000000ff0fff0f000000000000000032020000a584000001080000f90c0000000000000f00000000000000000000004000000000000000012000000000000000000000000000000000000000000000011000000400000000000000000000000000000000000000000000000000000000000000012000000800000000000000018000002000000000000000000000000000000000000000',
  APIC: '41504943780000000100424f4348532042585043202020200100000042585043010000000000e0fe010000000008000001000000010c00000000c0fe00000000020a0000020000000000020a0005050000000d00020a0009090000000d00020a000a0a0000000d00020a000b0b0000000d000406ff000001',
  HPET: '48504554380000000100424f43485320425850432020202001000000425850430100000001a28680000000000000d0fe0000000000000000',
  WAET: '57414554280000000100424f43485320425850432020202001000000425850430100000002000000',
  /** RSDP: RSDT at blob offset 0x2214 in QEMU's blob. */
  RSDP_PREFIX: '525344205054522000424f4348532000',
};

const ROOT_BUS = [0x00, 0xf8, 0xfa, 0xfb].map((devfn) => ({ devfn, bridge: false }));
const QEMU_LIKE: AcpiConfig = {
  pmBase: 0,
  hpet: true,
  mcfg: null,
  dmar: q35DmarOptions({ hostAddressWidth: 39, intremap: true, deviceIotlb: false, rootBus: ROOT_BUS }),
};

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function link(cfg: AcpiConfig) {
  const build = buildAcpi(cfg);
  const files = new Map([
    [ACPI_TABLES_FILE, build.tables],
    [ACPI_RSDP_FILE, build.rsdp],
  ]);
  const run = runTableLoader(build.loader, (n) => files.get(n));
  return { build, run, set: collectTables(run) };
}

describe('buildAcpi layout', () => {
  it('orders tables like QEMU 7.2 q35 and pads the blobs', () => {
    const b = buildAcpi(QEMU_LIKE);
    expect(b.index.map((t) => t.signature)).toEqual(['FACS', 'DSDT', 'FACP', 'APIC', 'HPET', 'DMAR', 'WAET', 'RSDT']);
    expect(b.tables.length).toBe(0x20000);
    expect(b.loader.length).toBe(4096);
    expect(b.rsdp.length).toBe(20);
    const d = buildAcpi({});
    expect(d.index.map((t) => t.signature)).toEqual(['FACS', 'DSDT', 'FACP', 'APIC', 'MCFG', 'WAET', 'RSDT']);
  });
  it('fixed tables equal QEMU 7.2 bytes (checksums left to the loader)', () => {
    const b = buildAcpi(QEMU_LIKE);
    for (const sig of ['FACS', 'FACP', 'APIC', 'HPET', 'WAET'] as const) {
      const t = b.index.find((x) => x.signature === sig)!;
      expect(hex(b.tables.subarray(t.offset, t.offset + t.length)), sig).toBe(QEMU_72[sig]);
    }
    expect(hex(b.rsdp.subarray(0, 16))).toBe(QEMU_72.RSDP_PREFIX);
    const rsdt = b.index.find((x) => x.signature === 'RSDT')!;
    expect(new DataView(b.rsdp.buffer).getUint32(16, true)).toBe(rsdt.offset);
  });
  it('loader: allocations first (RSDP in FSEG, tables HIGH), one checksum per table, FADT and RSDT pointers', () => {
    const b = buildAcpi(QEMU_LIKE);
    const cmds = decodeLoader(b.loader);
    expect(cmds[0]).toEqual({ kind: 'allocate', file: ACPI_RSDP_FILE, align: 16, zone: LoaderZone.FSEG });
    expect(cmds[1]).toEqual({ kind: 'allocate', file: ACPI_TABLES_FILE, align: 64, zone: LoaderZone.HIGH });
    const fadt = b.index.find((x) => x.signature === 'FACP')!.offset;
    const ptrs = cmds.filter((c) => c.kind === 'add-pointer').map((c) => (c.kind === 'add-pointer' ? [c.dest, c.offset, c.size] : []));
    expect(ptrs.slice(0, 3)).toEqual([
      [ACPI_TABLES_FILE, fadt + FadtOff.FIRMWARE_CTRL, 4],
      [ACPI_TABLES_FILE, fadt + FadtOff.DSDT, 4],
      [ACPI_TABLES_FILE, fadt + FadtOff.X_DSDT, 8],
    ]);
    expect(ptrs.at(-1)).toEqual([ACPI_RSDP_FILE, 16, 4]);
    const sums = cmds.filter((c) => c.kind === 'add-checksum');
    expect(sums.length).toBe(b.index.length - 1 + 1); // every table but FACS, plus the RSDP
  });
});

describe('linking like a firmware', () => {
  for (const [label, cfg] of [
    ['QEMU-like', QEMU_LIKE],
    ['default (MCFG, no DMAR)', {}],
    ['RSDP 2.0 + XSDT, 2 CPUs, DMAR with device-iotlb', { rsdpRevision: 2, cpus: 2, dmar: q35DmarOptions({ hostAddressWidth: 48, intremap: false, deviceIotlb: true, rootBus: ROOT_BUS }) }],
  ] as [string, AcpiConfig][]) {
    it(`${label}: every table is found from the RSDP with a valid checksum`, () => {
      const { run, set, build } = link(cfg);
      expect(run.errors).toEqual([]);
      expect(set.errors).toEqual([]);
      const sigs = set.tables.map((t) => t.signature);
      const listed = build.index.map((t) => t.signature).filter((s) => s !== 'RSDT' && s !== 'XSDT');
      expect([...sigs].sort()).toEqual([...listed].sort());
      for (const t of set.tables) if (t.signature !== 'FACS') expect(byteSum(t.bytes), t.signature).toBe(0);
      expect(byteSum(set.rsdp, 0, 20)).toBe(0);
      if (cfg.rsdpRevision === 2) {
        expect(set.root!.signature).toBe('XSDT');
        expect(byteSum(set.rsdp, 0, 36)).toBe(0);
      }
      const rsdpAddr = run.files.get(ACPI_RSDP_FILE)!.addr;
      expect(rsdpAddr).toBeGreaterThanOrEqual(0xe0000);
      expect(rsdpAddr % 16).toBe(0);
      const fadt = set.tables.find((t) => t.signature === 'FACP')!;
      const facs = set.tables.find((t) => t.signature === 'FACS')!;
      const dsdt = set.tables.find((t) => t.signature === 'DSDT')!;
      const dv = new DataView(fadt.bytes.buffer, fadt.bytes.byteOffset);
      expect(dv.getUint32(FadtOff.FIRMWARE_CTRL, true)).toBe(facs.address);
      expect(dv.getUint32(FadtOff.DSDT, true)).toBe(dsdt.address);
      expect(Number(dv.getBigUint64(FadtOff.X_DSDT, true))).toBe(dsdt.address);
      expect(facs.address % 64).toBe(0);
    });
  }
  it('reports broken loader input instead of throwing', () => {
    const b = buildAcpi({});
    const bad = b.loader.slice();
    bad[0x80 * 2] = 9; // third command becomes unknown
    const run = runTableLoader(bad, () => undefined);
    expect(run.errors.length).toBeGreaterThan(0);
    expect(collectTables(run).errors).toEqual(['no RSDP file allocated']);
    const r = new Rng(7);
    for (let n = 0; n < 300; n++) {
      const blob = b.loader.slice(0, 1024);
      for (let i = 0; i < 40; i++) blob[r.int(1024)] = r.int(256);
      const files = new Map([[ACPI_TABLES_FILE, b.tables], [ACPI_RSDP_FILE, b.rsdp]]);
      expect(() => collectTables(runTableLoader(blob, (x) => files.get(x)))).not.toThrow();
    }
  });
  it('indexBlob stops at the end of the tables', () => {
    const b = buildAcpi({});
    expect(indexBlob(b.tables).at(-1)!.signature).toBe('RSDT');
  });
});

describe.skipIf(!needIasl('iasl -d of every table we build'))('iasl -d accepts every table we build', () => {
  for (const [label, cfg] of [
    // QEMU's own FADT before the firmware programs PMBASE (0) fails iasl's FADT check, so use SeaBIOS's 0x600.
    ['QEMU-like with PMBASE 0x600', { ...QEMU_LIKE, pmBase: 0x600 }],
    ['XSDT, MCFG, HPET, DMAR+ATSR', { rsdpRevision: 2, hpet: true, dmar: q35DmarOptions({ hostAddressWidth: 48, intremap: true, deviceIotlb: true, rootBus: ROOT_BUS }) }],
  ] as [string, AcpiConfig][]) {
    it(label, () => {
      const { set } = link(cfg);
      const all = [...set.tables, set.root!];
      expect(all.length).toBeGreaterThan(5);
      for (const t of all) {
        const r = iaslDisassemble(t.signature.toLowerCase(), t.bytes);
        expect(r.problems, t.signature).toEqual([]);
      }
      const dsdt = iaslDisassemble('dsdt', set.tables.find((t) => t.signature === 'DSDT')!.bytes).dsl;
      expect(dsdt).toMatch(/Device \(PCI0\)/);
      expect(dsdt).toMatch(/EisaId \("PNP0A08"\)/);
      expect(dsdt).toMatch(/Name \(\\_S5, Package \(0x04\)/);
    });
  }
  it('a table with a wrong length field is flagged', () => {
    const { set } = link({});
    const madt = set.tables.find((t) => t.signature === 'APIC')!.bytes.slice();
    madt[AcpiHeader.LENGTH] -= 3;
    expect(iaslDisassemble('apic', madt).problems.length).toBeGreaterThan(0);
  });
});
