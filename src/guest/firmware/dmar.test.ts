import { describe, expect, it } from 'vitest';
import { DmarType, ScopeType, formatDmar, parseDmar, type Andd, type Atsr, type Drhd, type Rhsa, type Rmrr, type Satc } from './dmar.js';

/** Little builder for DMAR bytes (independent of the parser). */
function dmar(structs: number[][], haw = 38, flags = 1): Uint8Array {
  const body = structs.flat();
  const b = new Uint8Array(48 + body.length);
  b.set([...'DMAR'].map((c) => c.charCodeAt(0)), 0);
  new DataView(b.buffer).setUint32(4, b.length, true);
  b[36] = haw;
  b[37] = flags;
  b.set(body, 48);
  return b;
}
const u16 = (v: number): number[] => [v & 0xff, v >> 8];
const u32 = (v: number): number[] => [...u16(v & 0xffff), ...u16(v >>> 16)];
const u64 = (v: number): number[] => [...u32(v >>> 0), ...u32(Math.floor(v / 2 ** 32))];
const scope = (type: number, bus: number, path: number[][]): number[] => [type, 6 + 2 * path.length, 0, 0, 0, bus, ...path.flat()];
function struct(type: number, fixed: number[], tail: number[] = []): number[] {
  const len = 4 + fixed.length + tail.length;
  return [...u16(type), ...u16(len), ...fixed, ...tail];
}

describe('parseDmar', () => {
  const table = dmar([
    struct(0, [0, 0, ...u16(0), ...u64(0xfed90000)], [...scope(3, 0xff, [[0, 0]]), ...scope(1, 0, [[1, 0]]), ...scope(2, 0, [[2, 0]])]),
    struct(0, [1, 0, ...u16(0), ...u64(0xfed91000)]),
    struct(1, [0, 0, ...u16(0), ...u64(0x7800000), ...u64(0x780ffff)], scope(1, 0, [[2, 0], [1, 0]])),
    struct(2, [1, 0, ...u16(0)]),
    struct(3, [...u32(0), ...u64(0xfed90000), ...u32(7)]),
    struct(4, [0, 0, 0, 5], [...'\\_SB.ACPI'].map((c) => c.charCodeAt(0)).concat([0])),
    struct(5, [1, 0, ...u16(0)], scope(1, 0, [[3, 0]])),
    struct(9, [0, 0, 0, 0]),
  ]);
  const d = parseDmar(table);

  it('reads the header', () => {
    expect(d.hostAddressWidth).toBe(39);
    expect(d.flags).toBe(1);
    expect(d.problems).toEqual([]);
  });

  it('decodes every structure type', () => {
    expect(d.structures.map((s) => s.type)).toEqual([0, 0, 1, 2, 3, 4, 5, 9]);
    const drhd = d.structures[0] as Drhd;
    expect(drhd.base).toBe(0xfed90000);
    expect(drhd.scopes.map((s) => [s.type, s.startBus, s.path])).toEqual([
      [ScopeType.IoApic, 0xff, [[0, 0]]], [ScopeType.PciEndpoint, 0, [[1, 0]]], [ScopeType.PciSubHierarchy, 0, [[2, 0]]],
    ]);
    expect((d.structures[1] as Drhd).flags).toBe(1);
    const rmrr = d.structures[2] as Rmrr;
    expect([rmrr.base, rmrr.limit, rmrr.scopes[0]!.path]).toEqual([0x7800000, 0x780ffff, [[2, 0], [1, 0]]]);
    expect((d.structures[3] as Atsr).flags).toBe(1);
    expect((d.structures[4] as Rhsa).proximity).toBe(7);
    expect((d.structures[5] as Andd)).toMatchObject({ deviceNumber: 5, name: '\\_SB.ACPI' });
    expect((d.structures[6] as Satc).scopes).toHaveLength(1);
    expect(d.structures[7]!.type).toBe(9);
  });

  it('formats a short dump', () => {
    const text = formatDmar(d).join('\n');
    expect(text).toContain('Host Address Width 39 bits, flags 0x01 (INTR_REMAP)');
    expect(text).toContain('DRHD base 0xFED91000 segment 0 flags 0x01 (INCLUDE_PCI_ALL)');
    expect(text).toContain('RMRR 0x07800000-0x0780FFFF');
    expect(text).toContain('scope IOAPIC enum 0 bus 0xFF path 0x00,0x00');
  });

  it('reports malformed input instead of throwing', () => {
    expect(parseDmar(new Uint8Array(10)).problems).toEqual(['not a DMAR table']);
    const bad = dmar([[...u16(0), ...u16(200), 0, 0, 0, 0]]);
    expect(parseDmar(bad).problems[0]).toMatch(/bad structure length 200/);
    const badScope = dmar([struct(DmarType.Drhd, [0, 0, ...u16(0), ...u64(0xfed90000)], [1, 40, 0, 0, 0, 0])]);
    expect(parseDmar(badScope).problems[0]).toMatch(/bad device scope length 40/);
  });
});
