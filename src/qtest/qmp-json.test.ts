import { describe, expect, it } from 'vitest';
import { LIMIT_ERRORS, MAX_NESTING, MAX_TOKEN_COUNT, MAX_TOKEN_SIZE, QmpJsonReader } from './qmp-json.js';
import { formatG17, QDict, qdictBucket, toQmpJson, type QValue } from './qmp-qobject.js';

/** Everything a reader emits for `chunks`: values as QMP JSON, errors as `E:` lines. */
function read(...chunks: (string | Uint8Array)[]): string[] {
  const out: string[] = [];
  const r = new QmpJsonReader({ value: (v) => out.push(toQmpJson(v)), error: (d) => out.push(`E:${d}`) });
  for (const c of chunks) r.feed(c);
  return out;
}

describe('QmpJsonReader', () => {
  it('frames messages by braces, not lines, and needs lookahead for a trailing number', () => {
    expect(read('{"a":\n1}{"b": [2,\n3]} 4 ', '5')).toEqual(['{"a": 1}', '{"b": [2, 3]}', '4']);
    expect(read('{"a"', ': "x', 'y"}')).toEqual(['{"a": "xy"}']);
  });

  it('reports parse errors with QEMU wording and token positions', () => {
    expect(read('{"a" 1}\n[1 2]\n{"a":1]\n')).toEqual([
      "E:1:6: JSON parse error, expecting ':'",
      "E:2:4: JSON parse error, expected ',' or ']'",
      // QEMU quirk: a token right after a number carries the next column.
      "E:3:8: JSON parse error, expected ',' or '}'",
    ]);
    expect(read('{1:2}', '{"a":1,"a":2}', 'xyz ')).toEqual([
      'E:1:2: JSON parse error, expecting key',
      'E:1:17: JSON parse error, duplicate key',
      "E:1:19: JSON parse error, invalid keyword 'xyz'",
    ]);
  });

  it('swallows tokens after an error until the counts balance; a stray byte starts afresh', () => {
    // The ']' takes a count below zero: recovery ends there, so {"b":1} is read and the last '}' is stray.
    expect(read('{"a": x] {"b":1}} 2 ')).toEqual(["E:1:7: JSON parse error, invalid keyword 'x'", '{"b": 1}', 'E:1:17: JSON parse error, expecting value', '2']);
    expect(read('{"a": [1} {"b": 1}] 3 ')).toEqual(["E:1:10: JSON parse error, expected ',' or ']'", '3']);
    expect(read('{"a": x @ } 4 ')).toEqual(["E:1:7: JSON parse error, invalid keyword 'x'", 'E:1:12: JSON parse error, expecting value', '4']);
    expect(read('\xff')).toEqual(["E:1:1: JSON parse error, stray '\uFFFD'"]);
  });

  it('never throws on hostile bytes: NUL, invalid UTF-8, lone surrogates, CR', () => {
    const bytes = Uint8Array.from([0x00, 0x22, 0xc3, 0x22, 0x0d, 0x22, 0xed, 0xa0, 0x80, 0x22, 0xfe, 0x0a]);
    expect(read(bytes)).toEqual([
      // After the stray NUL, recovery skips `"\xC3"` up to the CR.
      "E:1:1: JSON parse error, stray ''",
      'E:1:6: JSON parse error, invalid UTF-8 sequence in string',
      "E:1:11: JSON parse error, stray '\uFFFD'",
    ]);
    // A JavaScript string with a lone surrogate is sent as its UTF-8 encoding (U+FFFD).
    expect(read('"\uD800" ')).toEqual(['"\\uFFFD"']);
    expect(read('"\\uD800" "\\u0000" ')).toEqual(['E:1:1: JSON parse error, \\uD800 is not a valid Unicode character', '"\\u0000"']);
  });

  it(`accepts ${MAX_NESTING} levels and refuses one more, without recursion`, () => {
    expect(read('['.repeat(MAX_NESTING) + ']'.repeat(MAX_NESTING))).toEqual(['['.repeat(MAX_NESTING) + ']'.repeat(MAX_NESTING)]);
    expect(read('['.repeat(MAX_NESTING + 1) + ']'.repeat(MAX_NESTING + 1) + '7 ')).toEqual([`E:${LIMIT_ERRORS.nesting}`, '7']);
    const deep = 1_000_000;
    expect(read('['.repeat(deep) + ']'.repeat(deep) + '{}')).toEqual([`E:${LIMIT_ERRORS.nesting}`, '{}']);
  });

  it(`refuses a message of more than ${MAX_TOKEN_COUNT} tokens`, () => {
    const n = MAX_TOKEN_COUNT / 2; // '[' + n x '1,' + '1]' = 2n + 3 tokens
    expect(read('[' + '1,'.repeat(n) + '1]{"ok": 1}')).toEqual([`E:${LIMIT_ERRORS.count}`, '{"ok": 1}']);
    const fits = '[' + '1,'.repeat(n - 2) + '1]'; // 2n - 1 tokens
    expect(read(fits)).toHaveLength(1);
  });

  it(`cuts a token longer than ${MAX_TOKEN_SIZE} bytes and recovers`, () => {
    const big = new Uint8Array(MAX_TOKEN_SIZE + 1).fill(0x61);
    big[0] = 0x22;
    const out = read('\n', big, '"\n{"ok": 1}\n');
    expect(out[0]).toBe(`E:${LIMIT_ERRORS.size}`);
    expect(out.at(-1)).toBe('{"ok": 1}');
    expect(out).toHaveLength(3);
  });
});

describe('QObject writer', () => {
  it("orders QDict members as QEMU's hash table does", () => {
    const greeting = QDict.of([['QMP', QDict.of([['version', QDict.of([['qemu', QDict.of([['major', i(7)], ['minor', i(2)], ['micro', i(0)]])], ['package', 'p']])], ['capabilities', ['oob']]])]]);
    expect(toQmpJson(greeting)).toBe('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "p"}, "capabilities": ["oob"]}}');
    expect(toQmpJson(QDict.of([['id', i(1)], ['return', new QDict()]]))).toBe('{"return": {}, "id": 1}');
    expect(qdictBucket('execute')).toBeLessThan(512);
  });

  it('prints doubles as %.17g and strings with upper-case \\u escapes', () => {
    const cases: [number, string][] = [
      [1, '1'], [-0, '-0'], [0.1, '0.10000000000000001'], [1e-5, '1.0000000000000001e-05'], [1e17, '1e+17'], [1e16, '10000000000000000'],
      [Infinity, 'inf'], [-Infinity, '-inf'], [5e-324, '4.9406564584124654e-324'], [1000000000000000.25, '1000000000000000.2'], [0.0001, '0.0001'],
    ];
    for (const [v, s] of cases) expect(formatG17(v), String(v)).toBe(s);
    expect(toQmpJson('\u00e9\u{1F600}\u0000\u007f"\\/')).toBe('"\\u00E9\\uD83D\\uDE00\\u0000\\u007F\\"\\\\/"');
  });
});

function i(n: number): QValue {
  return { kind: 'int', value: BigInt(n) };
}
