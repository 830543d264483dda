import { describe, expect, it } from 'vitest';
import { BiosLinker, LoaderZone, decodeLoader, LoaderEntry } from './linker.js';

/** The first command of QEMU 7.2's q35 etc/table-loader (ALLOCATE etc/acpi/rsdp, align 16, FSEG). */
const QEMU_ALLOC_RSDP = '01000000' + Buffer.from('etc/acpi/rsdp').toString('hex').padEnd(112, '0') + '10000000' + '02' + '00'.repeat(63);
/** QEMU's ADD_POINTER for the FADT's DSDT field (tables+0x2008, 4 bytes). */
const QEMU_PTR_DSDT =
  '02000000' + Buffer.from('etc/acpi/tables').toString('hex').padEnd(112, '0') + Buffer.from('etc/acpi/tables').toString('hex').padEnd(112, '0') + '08200000' + '04' + '00'.repeat(7);
/** QEMU's ADD_CHECKSUM of its DSDT (checksum byte 0x49, start 0x40, length 0x1fa0). */
const QEMU_CKSUM_DSDT = '03000000' + Buffer.from('etc/acpi/tables').toString('hex').padEnd(112, '0') + '49000000' + '40000000' + 'a01f0000' + '00'.repeat(56);

describe('BiosLinker', () => {
  const l = new BiosLinker();
  l.allocate('etc/acpi/tables', 64, LoaderZone.HIGH);
  l.addPointer('etc/acpi/tables', 0x2008, 4, 'etc/acpi/tables');
  l.addChecksum('etc/acpi/tables', 0x40, 0x1fa0, 0x49);
  l.allocate('etc/acpi/rsdp', 16, LoaderZone.FSEG);
  l.writePointer('etc/vmgenid_addr', 0, 8, 'etc/vmgenid_guid', 40);
  const blob = l.toBytes();
  const entry = (i: number): string => Buffer.from(blob.subarray(i * LoaderEntry.SIZE, (i + 1) * LoaderEntry.SIZE)).toString('hex');
  it('entries are byte-identical to QEMU 7.2 commands, allocations first (latest in front)', () => {
    expect(entry(0)).toBe(QEMU_ALLOC_RSDP);
    expect(entry(2)).toBe(QEMU_PTR_DSDT);
    expect(entry(3)).toBe(QEMU_CKSUM_DSDT);
    expect(blob.length).toBe(4096);
  });
  it('decodes back, skipping padding', () => {
    expect(decodeLoader(blob)).toEqual([
      { kind: 'allocate', file: 'etc/acpi/rsdp', align: 16, zone: 2 },
      { kind: 'allocate', file: 'etc/acpi/tables', align: 64, zone: 1 },
      { kind: 'add-pointer', dest: 'etc/acpi/tables', src: 'etc/acpi/tables', offset: 0x2008, size: 4 },
      { kind: 'add-checksum', file: 'etc/acpi/tables', offset: 0x49, start: 0x40, length: 0x1fa0 },
      { kind: 'write-pointer', dest: 'etc/vmgenid_addr', src: 'etc/vmgenid_guid', dstOffset: 0, srcOffset: 40, size: 8 },
    ]);
  });
  it('refuses bad names and alignments; decodes unknown commands without throwing', () => {
    expect(() => l.allocate('', 16, 1)).toThrow();
    expect(() => l.allocate('x'.repeat(56), 16, 1)).toThrow();
    expect(() => l.allocate('x', 3, 1)).toThrow();
    const junk = new Uint8Array(256);
    junk[0] = 7;
    expect(decodeLoader(junk)).toEqual([{ kind: 'unknown', command: 7 }]);
    expect(decodeLoader(new Uint8Array(100))).toEqual([]);
  });
});
