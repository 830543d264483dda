import { describe, expect, it } from 'vitest';
import { diffProbe, makeTestHost as makeHost, probeConfig } from '../../test/support/pci-host.js';

/**
 * QEMU 7.2 oracle (q35 -nodefaults, CF8/CFC): per dword that differs from the
 * default pattern, [offset, value at reset, read after writing 0, read after
 * writing 0xffffffff] (each write followed by restoring the old value).
 * Default: below 0x40 all three read 0; from 0x40 up 0, 0, 0xffffffff.
 */
const QEMU_Q35_CONFIG: Record<string, readonly (readonly [number, number, number, number])[]> = {
  '00:00.0': [
    [0x00, 0x29c08086, 0x29c08086, 0x29c08086],
    [0x04, 0x00000000, 0x00000000, 0x00000507],
    [0x08, 0x06000000, 0x06000000, 0x06000000],
    [0x0c, 0x00000000, 0x00000000, 0x000000ff],
    [0x2c, 0x11001af4, 0x11001af4, 0x11001af4],
    [0x3c, 0x00000000, 0x00000000, 0x000000ff],
    [0x50, 0x00000010, 0x00000000, 0xffff0010],
    [0x60, 0xb0000000, 0x00000000, 0xffffffff],
    [0x9c, 0x00380200, 0x00380200, 0xffbf3a01],
  ],
  '00:1f.0': [
    [0x00, 0x29188086, 0x29188086, 0x29188086],
    [0x04, 0x00000000, 0x00000000, 0x00000507],
    [0x08, 0x06010002, 0x06010002, 0x06010002],
    [0x0c, 0x00800000, 0x00800000, 0x008000ff],
    [0x2c, 0x11001af4, 0x11001af4, 0x11001af4],
    [0x3c, 0x00000000, 0x00000000, 0x000000ff],
    [0x40, 0x00000001, 0x00000000, 0x0000ff87],
    [0x60, 0x80808080, 0x00000000, 0xffffffff],
    [0x68, 0x80808080, 0x00000000, 0xffffffff],
  ],
  '00:1f.2': [
    [0x00, 0x29228086, 0x29228086, 0x29228086],
    [0x04, 0x00100000, 0x00100000, 0x00100507],
    [0x08, 0x01060102, 0x01060102, 0x01060102],
    [0x0c, 0x00800000, 0x00800000, 0x008000ff],
    [0x20, 0x00000001, 0x00000001, 0xffffffe1],
    [0x24, 0x00000000, 0x00000000, 0xfffff000],
    [0x2c, 0x11001af4, 0x11001af4, 0x11001af4],
    [0x34, 0x00000080, 0x00000080, 0x00000080],
    [0x3c, 0x00000100, 0x00000100, 0x000001ff],
    [0x80, 0x0080a805, 0x0080a805, 0x0081a805],
    [0x84, 0x00000000, 0x00000000, 0xfffffffc],
    [0x90, 0x00000040, 0x00000000, 0xffffffff],
    [0xa8, 0x00100012, 0x00100012, 0x00100012],
    [0xac, 0x00000048, 0x00000048, 0x00000048],
  ],
  '00:1f.3': [
    [0x00, 0x29308086, 0x29308086, 0x29308086],
    [0x04, 0x00000000, 0x00000000, 0x00000507],
    [0x08, 0x0c050002, 0x0c050002, 0x0c050002],
    [0x0c, 0x00800000, 0x00800000, 0x008000ff],
    [0x20, 0x00000001, 0x00000001, 0xffffffc1],
    [0x2c, 0x11001af4, 0x11001af4, 0x11001af4],
    [0x3c, 0x00000100, 0x00000100, 0x000001ff],
    [0x40, 0x00000000, 0x00000000, 0xfffffff7],
  ],
};

const DEVFNS: Record<string, number> = { '00:00.0': 0x00, '00:1f.0': 0xf8, '00:1f.2': 0xfa, '00:1f.3': 0xfb };

describe('q35 built-in functions match QEMU 7.2 config space and write masks', () => {
  for (const [name, devfn] of Object.entries(DEVFNS)) {
    it(name, () => {
      const { io } = makeHost();
      expect(diffProbe(probeConfig(io, 0, devfn), QEMU_Q35_CONFIG[name]!)).toEqual([]);
    });
  }

  it('absent functions read all-ones at every width', () => {
    const { io } = makeHost();
    io.write(0xcf8, 4, 0x8000_0800);
    expect(io.read(0xcfc, 4)).toBe(0xffffffff);
    expect(io.read(0xcfe, 2)).toBe(0xffff);
    expect(io.read(0xcff, 1)).toBe(0xff);
    io.write(0xcf8, 4, 0x8005_0000); // bus 5 does not exist
    expect(io.read(0xcfc, 4)).toBe(0xffffffff);
  });

  it('PCIEXBAR is disabled after reset and maps/unmaps the ECAM window', () => {
    const { host, io, mem } = makeHost();
    expect(host.ecamWindow()).toBeNull();
    expect(mem.read(0xb000_0000, 4)).toBe(0);
    io.write(0xcf8, 4, 0x8000_0060);
    io.write(0xcfc, 4, 0xb000_0001);
    expect(host.ecamWindow()).toEqual({ base: 0xb000_0000, length: 0x1000_0000 });
    expect(mem.read(0xb000_0000, 4)).toBe(0x29c08086);
    expect(mem.read(0xb000_0000 + (0xf8 << 12), 4)).toBe(0x29188086);
    // 64 MiB at 0xe0000000
    io.write(0xcfc, 4, 0xe000_0005);
    expect(host.ecamWindow()).toEqual({ base: 0xe000_0000, length: 0x0400_0000 });
    expect(mem.read(0xb000_0000, 4)).toBe(0);
    expect(mem.read(0xe000_0000 + (0xfa << 12), 2)).toBe(0x8086);
    io.write(0xcfc, 4, 0xe000_0004);
    expect(host.ecamWindow()).toBeNull();
    expect(mem.read(0xe000_0000, 4)).toBe(0);
  });

  it('reset undoes SMRAM lock and PCIEXBAR', () => {
    const { host, io, mem } = makeHost();
    io.write(0xcf8, 4, 0x8000_009c);
    io.write(0xcfc, 4, 0x0010_1000); // D_LCK
    io.write(0xcfc, 4, 0);
    expect(io.read(0xcfc, 4) >>> 8).toBe(0x3812); // locked: only D_CLS writable
    io.write(0xcf8, 4, 0x8000_0060);
    io.write(0xcfc, 4, 0xb000_0001);
    host.reset();
    expect(host.ecamWindow()).toBeNull();
    expect(mem.read(0xb000_0000, 4)).toBe(0);
    io.write(0xcf8, 4, 0x8000_009c);
    expect(io.read(0xcfc, 4)).toBe(0x0038_0200);
    io.write(0xcfc, 4, 0x0038_4a00);
    expect(io.read(0xcfc, 4)).toBe(0x0038_4a00);
  });
});
