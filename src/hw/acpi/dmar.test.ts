import { describe, expect, it } from 'vitest';
import { buildDmar, q35DmarOptions, Q35_IOMMU_BASE, type DmarOptions, type DeviceScope } from './dmar.js';
import { parseDmar } from './dmar-parse.js';
import { AcpiHeader, byteSum } from './table.js';
import { iaslDisassemble } from '../../../test/support/iasl.js';
import { needIasl } from '../../../test/harness/oracle.js';
import { Rng } from '../../../test/support/prng.js';

/**
 * DMARs read from QEMU 7.2 (`-machine q35 -device intel-iommu ...`) through
 * fw_cfg, checksum byte still 0 (the firmware's table loader fills it in).
 * test/diff/acpi.test.ts compares against a live QEMU when one is installed.
 */
const QEMU_72 = {
  default:
    '444d4152680000000100424f43485320425850432020202001000000425850430100000026010000000000000000000000003800000000000000d9fe000000000308000000ff000001080000000000000108000000001f000108000000001f020108000000001f03',
  intremapOff:
    '444d4152680000000100424f43485320425850432020202001000000425850430100000026000000000000000000000000003800000000000000d9fe000000000308000000ff000001080000000000000108000000001f000108000000001f020108000000001f03',
  deviceIotlb:
    '444d4152700000000100424f43485320425850432020202001000000425850430100000026010000000000000000000000003800000000000000d9fe000000000308000000ff000001080000000000000108000000001f000108000000001f020108000000001f030200080001000000',
  twoEdu:
    '444d4152780000000100424f43485320425850432020202001000000425850430100000026010000000000000000000000004800000000000000d9fe000000000308000000ff00000108000000000000010800000000010001080000000002000108000000001f000108000000001f020108000000001f03',
  rootPort:
    '444d4152700000000100424f43485320425850432020202001000000425850430100000026010000000000000000000000004000000000000000d9fe000000000308000000ff0000010800000000000002080000000001000108000000001f000108000000001f020108000000001f03',
  aw48:
    '444d4152680000000100424f4348532042585043202020200100000042585043010000002f010000000000000000000000003800000000000000d9fe000000000308000000ff000001080000000000000108000000001f000108000000001f020108000000001f03',
} as const;

/** q35 built-ins: MCH 00:00.0, LPC 00:1f.0, AHCI 00:1f.2, SMBus 00:1f.3. */
const BUILTINS = [0x00, 0xf8, 0xfa, 0xfb].map((devfn) => ({ devfn, bridge: false }));

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function withoutChecksum(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[AcpiHeader.CHECKSUM] = 0;
  return c;
}

function q35(extra: { devfn: number; bridge: boolean }[], o: Partial<{ awBits: number; intremap: boolean; deviceIotlb: boolean }> = {}): Uint8Array {
  return buildDmar(
    q35DmarOptions({ hostAddressWidth: o.awBits ?? 39, intremap: o.intremap ?? true, deviceIotlb: o.deviceIotlb ?? false, rootBus: [...BUILTINS, ...extra] }),
  );
}

const ep = (dev: number, fn = 0, bus = 0): DeviceScope => ({ type: 'endpoint', enumId: 0, startBus: bus, path: [{ dev, fn }] });

/** A DMAR with every structure type and every scope type. */
const EVERYTHING: DmarOptions = {
  hostAddressWidth: 48,
  intremap: true,
  x2apicOptOut: true,
  deviceIotlb: true,
  units: [
    { base: 0xfed91000, segment: 0, includePciAll: false, scopes: [ep(2), { type: 'bridge', enumId: 0, startBus: 0, path: [{ dev: 1, fn: 0 }] }] },
    {
      base: Q35_IOMMU_BASE,
      segment: 0,
      includePciAll: true,
      scopes: [
        { type: 'ioapic', enumId: 0, startBus: 0xff, path: [{ dev: 0, fn: 0 }] },
        { type: 'hpet', enumId: 0, startBus: 0, path: [{ dev: 0x1f, fn: 0 }] },
        { type: 'acpi-namespace', enumId: 1, startBus: 0, path: [{ dev: 0x15, fn: 0 }] },
      ],
    },
  ],
  rmrr: [{ segment: 0, base: 0xe8000, limit: 0xe8fff, scopes: [{ type: 'endpoint', enumId: 0, startBus: 0, path: [{ dev: 1, fn: 0 }, { dev: 0, fn: 0 }] }] }],
  atsr: [{ segment: 0, allPorts: false, scopes: [{ type: 'bridge', enumId: 0, startBus: 0, path: [{ dev: 1, fn: 0 }] }] }],
  rhsa: [{ base: Q35_IOMMU_BASE, proximityDomain: 3 }],
  andd: [{ deviceNumber: 1, name: '\\_SB.PCI0.SDMA' }],
  satc: [{ segment: 0, atcRequired: true, scopes: [ep(3)] }],
};

describe('buildDmar matches QEMU 7.2 build_dmar_q35', () => {
  it('default intel-iommu: 104 bytes, HAW 38, INTR_REMAP, scopes IOAPIC + built-ins', () => {
    const b = q35([]);
    expect(b.length).toBe(104);
    expect(hex(withoutChecksum(b))).toBe(QEMU_72.default);
    expect(byteSum(b)).toBe(0);
  });
  it('intremap=off clears flags bit 0', () => expect(hex(withoutChecksum(q35([], { intremap: false })))).toBe(QEMU_72.intremapOff));
  it('device-iotlb=on appends an ALL_PORTS ATSR', () => expect(hex(withoutChecksum(q35([], { deviceIotlb: true })))).toBe(QEMU_72.deviceIotlb));
  it('two edu devices at 00:01.0 and 00:02.0', () =>
    expect(hex(withoutChecksum(q35([{ devfn: 0x08, bridge: false }, { devfn: 0x10, bridge: false }])))).toBe(QEMU_72.twoEdu));
  it('a root port is a bridge scope; devices behind it are not listed', () =>
    expect(hex(withoutChecksum(q35([{ devfn: 0x08, bridge: true }])))).toBe(QEMU_72.rootPort));
  it('aw-bits=48 gives HAW 47', () => expect(hex(withoutChecksum(q35([], { awBits: 48 })))).toBe(QEMU_72.aw48));
  it('sorts root-bus devices by devfn', () =>
    expect(hex(q35([{ devfn: 0x10, bridge: false }, { devfn: 0x08, bridge: false }]))).toBe(hex(q35([{ devfn: 0x08, bridge: false }, { devfn: 0x10, bridge: false }]))));
});

describe('buildDmar structure layout', () => {
  const b = buildDmar(EVERYTHING);
  const r = parseDmar(b);
  it('checksums and length', () => {
    expect(byteSum(b)).toBe(0);
    expect(new DataView(b.buffer, b.byteOffset).getUint32(AcpiHeader.LENGTH, true)).toBe(b.length);
  });
  it('parses back without errors to the same data', () => {
    expect(r.errors).toEqual([]);
    const t = r.table!;
    expect(t.hostAddressWidth).toBe(48);
    expect(t.intremap && t.x2apicOptOut && !t.dmaCtrlOptIn).toBe(true);
    expect(t.units.map((u) => ({ ...u, flags: undefined, size: undefined }))).toEqual(
      EVERYTHING.units.map((u) => ({ ...u, flags: undefined, size: undefined })),
    );
    expect(t.rmrr).toEqual(EVERYTHING.rmrr);
    expect(t.atsr).toEqual([{ segment: 0, allPorts: true, scopes: [] }, ...EVERYTHING.atsr!]);
    expect(t.rhsa).toEqual(EVERYTHING.rhsa);
    expect(t.andd).toEqual(EVERYTHING.andd);
    expect(t.satc).toEqual(EVERYTHING.satc);
  });
  it('structures come in type order with the spec lengths', () => {
    const types: number[] = [];
    const lengths: number[] = [];
    for (let at = 48; at < b.length; ) {
      types.push(b[at]! | (b[at + 1]! << 8));
      const len = b[at + 2]! | (b[at + 3]! << 8);
      lengths.push(len);
      at += len;
    }
    expect(types).toEqual([0, 0, 1, 2, 2, 3, 4, 5]);
    // DRHD 16+8+8; DRHD 16+3*8; RMRR 24+10; ATSR 8; ATSR 8+8; RHSA 20; ANDD 8+15; SATC 8+8
    expect(lengths).toEqual([32, 40, 34, 8, 16, 20, 23, 16]);
  });
  it('refuses configuration mistakes', () => {
    const bad = { ...EVERYTHING, units: [...EVERYTHING.units].reverse() };
    expect(() => buildDmar(bad)).toThrow(/INCLUDE_PCI_ALL/);
    expect(() => buildDmar({ ...EVERYTHING, units: [{ base: 0, segment: 0, includePciAll: false, scopes: [{ type: 'endpoint', enumId: 0, startBus: 0, path: [] }] }] })).toThrow(/path/);
    expect(() => buildDmar({ ...EVERYTHING, units: [{ base: 0, segment: 0, includePciAll: false, scopes: [ep(32)] }] })).toThrow(/device/);
    expect(() => buildDmar({ ...EVERYTHING, hostAddressWidth: 0 })).toThrow();
    expect(() => buildDmar({ ...EVERYTHING, rmrr: [{ segment: 0, base: 0x2000, limit: 0x1fff, scopes: [] }] })).toThrow(/RMRR/);
  });
});

describe('parseDmar on bad input', () => {
  const good = buildDmar(EVERYTHING);
  it('reports a bad checksum, signature and truncation', () => {
    const c = good.slice();
    c[0] = 0x58;
    const r = parseDmar(c);
    expect(r.errors.some((e) => /signature/.test(e))).toBe(true);
    expect(r.errors.some((e) => /checksum/.test(e))).toBe(true);
    expect(parseDmar(good.subarray(0, 20)).table).toBeNull();
    const t = parseDmar(good.subarray(0, good.length - 3));
    expect(t.errors.some((e) => /exceeds/.test(e))).toBe(true);
  });
  it('reports structure and scope length problems', () => {
    const c = good.slice();
    c[48 + 2] = 2; // first DRHD length 2
    expect(parseDmar(c).errors.some((e) => /bad length 2/.test(e))).toBe(true);
    const d = good.slice();
    d[64 + 1] = 0x40; // first scope of first DRHD claims 64 bytes
    expect(parseDmar(d).errors.some((e) => /device scope/.test(e))).toBe(true);
  });
  it('reports types out of order and INCLUDE_PCI_ALL not last', () => {
    const c = good.slice();
    c[48 + 4] |= 1; // first DRHD gets INCLUDE_PCI_ALL too
    expect(parseDmar(c).errors.some((e) => /INCLUDE_PCI_ALL/.test(e))).toBe(true);
  });
  it('never throws on random bytes (seed 12345)', () => {
    const r = new Rng(12345);
    const rnd = (): number => r.int(256);
    for (let n = 0; n < 2000; n++) {
      const len = rnd() % 200;
      const bytes = n % 2 ? good.slice(0, Math.min(len + 48, good.length)) : new Uint8Array(len);
      for (let i = 0; i < bytes.length; i++) if (n % 2 === 0 || rnd() < 8) bytes[i] = rnd();
      if (n % 3 === 0 && bytes.length > 8) bytes.set([0x44, 0x4d, 0x41, 0x52, bytes.length, 0, 0, 0]);
      expect(() => parseDmar(bytes)).not.toThrow();
    }
  });
});

describe.skipIf(!needIasl('iasl -d of our DMARs'))('iasl -d accepts our DMARs', () => {
  it('the QEMU-compatible ones', () => {
    for (const [name, b] of [['def', q35([])], ['iotlb', q35([], { deviceIotlb: true })], ['rp', q35([{ devfn: 8, bridge: true }])]] as const) {
      expect(iaslDisassemble(name, b).problems).toEqual([]);
    }
  });
  it('one with every structure and scope type', () => {
    const r = iaslDisassemble('all', buildDmar(EVERYTHING));
    expect(r.dsl).toContain('Reserved Memory Region');
    expect(r.dsl).toContain('ACPI Namespace Device Declaration');
    expect(r.dsl).toContain('\\_SB.PCI0.SDMA');
    // iasl before 20210105 does not know SATC (type 5); tolerate exactly that complaint.
    const problems = r.problems.filter((p) => !/Unknown (DMAR )?subtable type( 0x5|\]|$)|0005 \[Unknown Subtable Type\]/i.test(p));
    expect(problems).toEqual([]);
  });
  it('catches a broken table (the check can fail)', () => {
    const c = buildDmar(EVERYTHING);
    c[9] ^= 0xff;
    expect(iaslDisassemble('bad', c).problems.length).toBeGreaterThan(0);
  });
});

describe('parseDmar on QEMU 7.2 tables', () => {
  it('decodes the recorded tables (checksum byte still 0 there)', () => {
    const r = parseDmar(Uint8Array.from(Buffer.from(QEMU_72.deviceIotlb, 'hex')));
    expect(r.errors).toEqual(['checksum does not sum to zero']);
    const t = r.table!;
    expect([t.revision, t.hostAddressWidth, t.intremap, t.oemId, t.oemTableId, t.creatorId]).toEqual([1, 39, true, 'BOCHS ', 'BXPC    ', 'BXPC']);
    expect(t.units).toHaveLength(1);
    expect(t.units[0]!.base).toBe(0xfed90000);
    expect(t.units[0]!.includePciAll).toBe(false);
    expect(t.units[0]!.scopes.map((s) => [s.type, s.startBus, s.path[0]!.dev, s.path[0]!.fn])).toEqual([
      ['ioapic', 0xff, 0, 0],
      ['endpoint', 0, 0, 0],
      ['endpoint', 0, 0x1f, 0],
      ['endpoint', 0, 0x1f, 2],
      ['endpoint', 0, 0x1f, 3],
    ]);
    expect(t.atsr).toEqual([{ segment: 0, allPorts: true, scopes: [] }]);
    const rp = parseDmar(Uint8Array.from(Buffer.from(QEMU_72.rootPort, 'hex'))).table!;
    expect(rp.units[0]!.scopes[2]).toEqual({ type: 'bridge', enumId: 0, startBus: 0, path: [{ dev: 1, fn: 0 }] });
  });
});
