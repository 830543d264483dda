import { describe, expect, it } from 'vitest';
import { AmlOp, device, eisaId, integer, name, nameString, pkg, pkgLength, scope, string } from './aml.js';

describe('AML encoding (ACPI 6.5 chapter 20)', () => {
  it('PkgLength uses one byte below 64 and a lead byte with the count above', () => {
    expect(pkgLength(0)).toEqual([1]);
    expect(pkgLength(62)).toEqual([63]);
    expect(pkgLength(63)).toEqual([0x41, 0x04]); // 65 = 0x41: nibble 1, then 0x04
    expect(pkgLength(0xffd)).toEqual([0x4f, 0xff]); // 0xfff
    expect(pkgLength(0xffe)).toEqual([0x81, 0x00, 0x01]); // 0x1001
    expect(() => pkgLength(2 ** 28)).toThrow();
  });
  it('integers use the shortest form', () => {
    expect(integer(0)).toEqual([AmlOp.ZERO]);
    expect(integer(1)).toEqual([AmlOp.ONE]);
    expect(integer(2)).toEqual([AmlOp.BYTE_PREFIX, 2]);
    expect(integer(0x1234)).toEqual([AmlOp.WORD_PREFIX, 0x34, 0x12]);
    expect(integer(0xfec00000)).toEqual([AmlOp.DWORD_PREFIX, 0, 0, 0xc0, 0xfe]);
    expect(integer(2n ** 40n)).toEqual([AmlOp.QWORD_PREFIX, 0, 0, 0, 0, 0, 1, 0, 0]);
  });
  it('EISA ids compress like iasl (PNP0A08 = 0x080AD041)', () => {
    expect(eisaId('PNP0A08')).toEqual([AmlOp.DWORD_PREFIX, 0x41, 0xd0, 0x0a, 0x08]);
    expect(eisaId('PNP0A03')).toEqual([AmlOp.DWORD_PREFIX, 0x41, 0xd0, 0x0a, 0x03]);
    expect(() => eisaId('pnp0a03')).toThrow();
  });
  it('name strings: root, padding, dual and multi segments', () => {
    expect(nameString('\\_SB')).toEqual([0x5c, 0x5f, 0x53, 0x42, 0x5f]);
    expect(nameString('\\_SB.PCI0')).toEqual([0x5c, 0x2e, ...'_SB_PCI0'.split('').map((c) => c.charCodeAt(0))]);
    expect(nameString('A.B.C').slice(0, 2)).toEqual([0x2f, 3]);
    expect(() => nameString('TOOLONG')).toThrow();
  });
  it('scopes, devices, names, packages and strings nest with correct lengths', () => {
    const d = device('DEV0', [name('_UID', integer(0))]);
    expect(d.slice(0, 3)).toEqual([AmlOp.EXT_PREFIX, AmlOp.DEVICE, d.length - 2]);
    const s = scope('\\_SB', [d]);
    expect(s[0]).toBe(AmlOp.SCOPE);
    expect(s[1]).toBe(s.length - 1);
    expect(pkg([integer(0), integer(5)])).toEqual([AmlOp.PACKAGE, 5, 2, 0, AmlOp.BYTE_PREFIX, 5]);
    expect(string('Hi')).toEqual([AmlOp.STRING_PREFIX, 0x48, 0x69, 0]);
  });
});
