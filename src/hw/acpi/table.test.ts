import { describe, expect, it } from 'vitest';
import { AcpiHeader, ByteWriter, beginTable, byteSum, checksumFor, finishTable, readU16, readU32, readU64, tableSignature } from './table.js';

describe('ByteWriter', () => {
  it('writes little-endian values and grows', () => {
    const w = new ByteWriter();
    expect(w.u8(0x1ff)).toBe(0);
    expect(w.u16(0x1234)).toBe(1);
    expect(w.u32(0xdeadbeef)).toBe(3);
    expect(w.u64(0x1_0000_0002n)).toBe(7);
    expect(w.u64(2 ** 40 + 5)).toBe(15);
    w.zeros(300);
    w.ascii('AB', 4);
    expect(w.length).toBe(23 + 300 + 4);
    const b = w.toBytes();
    expect([...b.subarray(0, 15)]).toEqual([0xff, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde, 2, 0, 0, 0, 1, 0, 0, 0]);
    expect(readU64(b, 15)).toBe(2n ** 40n + 5n);
    expect([...b.subarray(-4)]).toEqual([0x41, 0x42, 0x20, 0x20]);
    w.put(1, 0xabcd, 2);
    expect(readU16(w.toBytes(), 1)).toBe(0xabcd);
  });
  it('out-of-range reads return 0', () => {
    const b = new Uint8Array(3);
    expect(readU32(b, 0)).toBe(0);
    expect(readU16(b, 2)).toBe(0);
    expect(readU16(b, -1)).toBe(0);
  });
});

describe('table header and checksum', () => {
  it('writes the QEMU identity and a checksum that sums to zero', () => {
    const w = new ByteWriter();
    beginTable(w, 'TEST', 7);
    w.u32(0x12345678);
    const t = finishTable(w);
    expect(t.length).toBe(AcpiHeader.SIZE + 4);
    expect(tableSignature(t)).toBe('TEST');
    expect(readU32(t, AcpiHeader.LENGTH)).toBe(40);
    expect(t[AcpiHeader.REVISION]).toBe(7);
    expect(String.fromCharCode(...t.subarray(AcpiHeader.OEM_ID, AcpiHeader.OEM_ID + 6))).toBe('BOCHS ');
    expect(String.fromCharCode(...t.subarray(AcpiHeader.OEM_TABLE_ID, AcpiHeader.OEM_TABLE_ID + 8))).toBe('BXPC    ');
    expect(String.fromCharCode(...t.subarray(AcpiHeader.CREATOR_ID, AcpiHeader.CREATOR_ID + 4))).toBe('BXPC');
    expect(readU32(t, AcpiHeader.OEM_REVISION)).toBe(1);
    expect(byteSum(t)).toBe(0);
    const c = t.slice();
    c[AcpiHeader.CHECKSUM] = 0;
    expect(checksumFor(c)).toBe(t[AcpiHeader.CHECKSUM]);
  });
  it('honours identity overrides', () => {
    const w = new ByteWriter();
    beginTable(w, 'XXXX', 1, { oemId: 'VTEMU', oemTableId: 'Q35', creatorId: 'VTEM', oemRevision: 9, creatorRevision: 2 });
    const t = finishTable(w);
    expect(String.fromCharCode(...t.subarray(10, 16))).toBe('VTEMU ');
    expect(readU32(t, AcpiHeader.CREATOR_REVISION)).toBe(2);
  });
});
