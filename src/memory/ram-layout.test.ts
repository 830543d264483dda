/**
 * q35 RAM layout and `-m` parsing, pure: no process is spawned, so the
 * mutation run over src/memory runs this file.  The comparisons with QEMU
 * 7.2 itself live in ram-layout-host.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace } from './address-space.js';
import { createTsRam } from './ram-ts.js';
import { DEFAULT_RAM_SIZE, MemSizeError, Q35Ram, parseMemSize, parseSize, q35RamLayout } from './ram-layout.js';
import { ContainerRegion } from './region.js';

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;

describe('q35RamLayout', () => {
  it.each([
    [128 * MiB, 128 * MiB, 0],
    [0xb000_0000 - 4096, 0xb000_0000 - 4096, 0],
    [0xb000_0000, 0x8000_0000, 0x3000_0000],
    [4 * GiB, 2 * GiB, 2 * GiB],
    [64 * GiB, 2 * GiB, 62 * GiB],
  ])('%d bytes -> %d below 4G, %d above', (size, below, above) => {
    const ram = createTsRam(size);
    const l = q35RamLayout(ram);
    expect(l.below4g).toBe(below);
    expect(l.above4g).toBe(above);
    expect(l.block.size).toBe(size);
    expect(l.block.name).toBe('pc.ram');
    expect(l.regions.map((r) => [r.region.name, r.at, r.region.size, r.region.offset])).toEqual(
      above ? [['ram-below-4g', 0, below, 0], ['ram-above-4g', Q35Ram.ABOVE_4G_BASE, above, below]] : [['ram-below-4g', 0, below, 0]],
    );
  });

  it('maps RAM so that 4 GiB reaches the byte after the below-4G part', () => {
    const ram = createTsRam(3 * GiB);
    const l = q35RamLayout(ram);
    const root = new ContainerRegion('system', 2 ** 40);
    for (const { region, at } of l.regions) root.add(region, at);
    const as = new AddressSpace('memory', root);
    ram.writeU32(l.below4g, 0x1234_5678);
    ram.writeU32(l.below4g - 4, 0x9abc_def0);
    expect(as.read(Q35Ram.ABOVE_4G_BASE, 4)).toBe(0x1234_5678);
    expect(as.read(l.below4g - 4, 4)).toBe(0x9abc_def0);
    expect(as.read(l.below4g, 4)).toBe(0); // the hole below 4 GiB
    expect(as.isRam(Q35Ram.ABOVE_4G_BASE, l.above4g)).toBe(true);
    expect(as.isRam(Q35Ram.ABOVE_4G_BASE, l.above4g + 1)).toBe(false);
  });
});

describe('parseSize (qemu_strtosz)', () => {
  it.each([
    ['0', 'B', 0n],
    ['4096', 'B', 4096n],
    ['1k', 'B', 1024n],
    ['1K', 'B', 1024n],
    ['1.5G', 'B', 3n * 2n ** 29n],
    ['1.M', 'B', 2n ** 20n],
    ['0.3k', 'B', 307n],
    ['1.5E', 'B', 3n * 2n ** 59n],
    ['0x1f', 'B', 31n],
    [' +5M', 'B', 5n * 2n ** 20n],
    ['010', 'M', 10n * 2n ** 20n],
    ['16383P', 'B', 16383n * 2n ** 50n],
    ['\v5', 'B', 5n],
    ['\t\n\f\r 7', 'B', 7n],
    ['0X1F', 'B', 31n],
    ['1.25k', 'B', 1280n],
    ['0.7k', 'B', 717n], // the fraction rounds to nearest
    ['1.', 'B', 1n],
    ['18446744073709551615', 'B', 2n ** 64n - 1n],
    ['16', 'K', 16n * 1024n],
    // A fraction that rounds to 1 as a double (QEMU 11.1: max-ram-below-4g=0.99999999999999999999k is 1024).
    ['0.99999999999999999999k', 'B', 1024n],
  ])('%s (default %s) = %d', (text, def, want) => {
    expect(parseSize(text, def)).toBe(want);
  });

  it.each(['', 'foo', '-5', ' -5', '5 M', '5MB', '1e3', '1.5e3', '1.e3', '1.5E+3', '.5G', '1.5', '1.5b', '0x', '1x', '5M ', 'x5', 'V5', '0x1.5k'])(
    '%j is invalid',
    (text) => {
      expect(parseSize(text)).toBe('invalid');
    },
  );

  it.each(['16E', '18446744073709551616', '99999999999999999999k', '0x10000000000000000'])('%s is out of range', (text) => {
    expect(parseSize(text)).toBe('range');
  });

  it('reports a suffix on a hex number', () => {
    let told = 0;
    expect(parseSize('0x10M', 'B', () => told++)).toBe(16n * 2n ** 20n);
    expect(told).toBe(1);
    expect(parseSize('10M', 'B', () => told++)).toBe(10n * 2n ** 20n);
    expect(told).toBe(1);
  });

  it('throws on a default suffix that is not one (a host bug)', () => {
    expect(() => parseSize('5', 'Q')).toThrow('parseSize: bad default suffix Q');
    expect(parseSize('5k', 'Q')).toBe(5120n);
  });
});

describe('parseMemSize (-m)', () => {
  it.each([
    ['64G', 64 * GiB],
    ['512M', 512 * MiB],
    ['2048', 2 * GiB],
    ['1T', 1024 * GiB],
    ['1.5G', 1.5 * GiB],
    ['0', DEFAULT_RAM_SIZE],
    ['', DEFAULT_RAM_SIZE],
    ['3k', 8 * KiB],
    ['4097k', 4097 * KiB + 7 * KiB],
    ['1.0001M', 1056768],
    ['size=1G', GiB],
    ['1G,slots=2,maxmem=4G', GiB],
    ['1G,size=2G', 2 * GiB],
    ['0x10', 16 * MiB],
    ['0x1f', 8 * KiB], // ends in a letter: bytes, rounded up
    ['1.', 8 * KiB],
    ['16k', 16 * KiB],
    ['1G,slots=16', GiB],
    ['1G,slots= +0x1F', GiB],
    ['1G,slots=0', GiB],
    ['slots=2', DEFAULT_RAM_SIZE],
    ['maxmem=8G', DEFAULT_RAM_SIZE],
  ])('-m %j = %d bytes', (arg, want) => {
    expect(parseMemSize(arg)).toBe(want);
  });

  it('warns like QEMU about a hex size given in MiB', () => {
    const warnings: string[] = [];
    expect(parseMemSize('0x10', (w) => warnings.push(w))).toBe(16 * MiB);
    expect(warnings).toEqual(['Using a multiplier suffix on hex numbers is deprecated: 0x10M']);
  });

  it('rejects with QEMU messages', () => {
    expect(() => parseMemSize('foo')).toThrow(MemSizeError);
    expect(() => parseMemSize('foo')).toThrow(
      "-m foo: Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.",
    );
    expect(() => parseMemSize('16E')).toThrow("-m 16E: Value '16E' is out of range for parameter 'size'");
    expect(() => parseMemSize('abc=1')).toThrow("-m abc=1: Invalid parameter 'abc'");
    expect(() => parseMemSize('1G,slots=x')).toThrow("Parameter 'slots' expects a number");
    expect(() => parseMemSize('8E')).toThrow('ram size too large');
    expect(() => parseMemSize('1G,2G')).toThrow("-m 1G,2G: Invalid parameter '2G'");
    expect(() => parseMemSize('1G,maxmem=foo')).toThrow("-m 1G,maxmem=foo: Parameter 'maxmem' expects a non-negative number");
    expect(() => parseMemSize('1G,maxmem=16E')).toThrow("-m 1G,maxmem=16E: Value '16E' is out of range for parameter 'maxmem'");
    expect(() => parseMemSize('size=16E')).toThrow("-m size=16E: Value '16E' is out of range for parameter 'size'");
    expect(() => parseMemSize('17592186044416')).toThrow("-m 17592186044416: Value '17592186044416M' is out of range for parameter 'size'");
    expect(() => parseMemSize('1G,=5')).toThrow("-m 1G,=5: Invalid parameter ''");
  });

  it.each(['slots', 'slots=x5', 'slots=5x', 'slots=0x', 'slots=-1', 'slots=1.5'])('rejects -m 1G,%s', (s) => {
    expect(() => parseMemSize(`1G,${s}`)).toThrow(`-m 1G,${s}: Parameter 'slots' expects a number`);
  });

  it('errors are MemSizeErrors by name', () => {
    let err: unknown;
    try {
      parseMemSize('foo');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MemSizeError);
    expect((err as Error).name).toBe('MemSizeError');
  });

});

