import { describe, expect, it } from 'vitest';
import { parseBool, parsePropValue, parseSizeValue, parseU64, propHelpLine, splitCommas, splitOptions } from './props.js';

describe('option splitting', () => {
  it('doubled commas are literal', () => {
    expect(splitCommas('edu,,x,a=1')).toEqual(['edu,x', 'a=1']);
    expect(splitCommas('a,b,,')).toEqual(['a', 'b,']);
  });
  it('implied driver, pairs, short-form booleans with warnings, help', () => {
    const s = splitOptions('edu,id=e0,foo,nobar,help');
    expect(s.implied).toBe('edu');
    expect(s.help).toBe(true);
    expect(s.pairs).toEqual([
      { key: 'id', value: 'e0', shortForm: false },
      { key: 'foo', value: 'on', shortForm: true },
      { key: 'bar', value: 'off', shortForm: true },
    ]);
    expect(s.warnings[0]).toBe("warning: short-form boolean option 'foo' deprecated\nPlease use foo=on instead");
    expect(s.warnings[1]).toContain('bar=off');
    expect(splitOptions('?').help).toBe(true);
    expect(splitOptions('driver=edu').implied).toBeNull();
  });
});

describe('values', () => {
  it('booleans', () => {
    for (const t of ['on', 'yes', 'true', 'y']) expect(parseBool(t)).toBe(true);
    for (const f of ['off', 'no', 'false', 'n']) expect(parseBool(f)).toBe(false);
    expect(parseBool('maybe')).toBeNull();
  });
  it('integers with base 0 like strtoull', () => {
    expect(parseU64('0x10')).toBe(16n);
    expect(parseU64('010')).toBe(8n);
    expect(parseU64('10')).toBe(10n);
    expect(parseU64('-1')).toBe((1n << 64n) - 1n);
    expect(parseU64('18446744073709551615')).toBe((1n << 64n) - 1n);
    expect(parseU64('18446744073709551616')).toBeNull();
    expect(parseU64('0x1g')).toBeNull();
    expect(parseU64('')).toBeNull();
    expect(parseU64('08')).toBeNull();
  });
  it('sizes', () => {
    expect(parseSizeValue('4096')).toBe(4096n);
    expect(parseSizeValue('64K')).toBe(65536n);
    expect(parseSizeValue('1.5G')).toBe(3n << 29n);
    expect(parseSizeValue('0x1000')).toBe(4096n);
    expect(parseSizeValue('1x')).toBeNull();
    expect(parseSizeValue('1.5')).toBeNull();
    expect(parseSizeValue('16E')).toBeNull();
  });
  it('QEMU 7.2 error wording per kind', () => {
    expect(parsePropValue('multifunction', { kind: 'bool' }, 'maybe')).toEqual({ error: "Parameter 'multifunction' expects 'on' or 'off'" });
    expect(parsePropValue('dma_mask', { kind: 'uint64' }, 'abc')).toEqual({ error: "Parameter 'dma_mask' expects integer" });
    expect(parsePropValue('aw-bits', { kind: 'uint8' }, '300')).toEqual({ error: "Parameter 'aw-bits' expects uint8_t" });
    expect(parsePropValue('slot', { kind: 'uint16' }, '70000')).toEqual({ error: "Parameter 'slot' expects uint16_t" });
    expect(parsePropValue('x', { kind: 'uint32' }, '0x100000000')).toEqual({ error: "Parameter 'x' expects uint32_t" });
    expect(parsePropValue('eim', { kind: 'OnOffAuto' }, 'x')).toEqual({ error: "Parameter 'eim' does not accept value 'x'" });
    expect(parsePropValue('io-reserve', { kind: 'size' }, 'abc')).toEqual({ error: "Parameter 'io-reserve' expects size" });
    expect(parsePropValue('aw-bits', { kind: 'uint8' }, '0x30')).toEqual({ value: 48 });
    expect(parsePropValue('m', { kind: 'uint64' }, '0xffffffffffffffff')).toEqual({ value: (1n << 64n) - 1n });
    expect(parsePropValue('eim', { kind: 'OnOffAuto' }, 'auto')).toEqual({ value: 'auto' });
    expect(parsePropValue('s', { kind: 'str' }, 'a b')).toEqual({ value: 'a b' });
  });
});

describe('help lines', () => {
  it('pads to column 24 and prints defaults as JSON', () => {
    expect(propHelpLine('aw-bits', 'uint8', undefined, 39)).toBe('  aw-bits=<uint8>        -  (default: 39)');
    expect(propHelpLine('eim', 'OnOffAuto', 'on/off/auto', 'auto')).toBe('  eim=<OnOffAuto>        - on/off/auto (default: "auto")');
    expect(propHelpLine('dma_mask', 'uint64', undefined, undefined)).toBe('  dma_mask=<uint64>');
    expect(propHelpLine('x-pcie-extcap-init', 'bool', 'on/off', true)).toBe('  x-pcie-extcap-init=<bool> - on/off (default: true)');
  });
});
