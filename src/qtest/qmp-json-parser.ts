/**
 * The push parser of QMP input, modelled on QEMU 11.1's qobject/json-parser.c:
 * tokens go in one at a time, the value under construction lives on an
 * explicit stack (so no input depth can overflow the JavaScript stack), and
 * the first error ends the message with QEMU's wording and the token's
 * position (`LINE:COLUMN: JSON parse error, ...`).
 *
 * Strings are decoded as QEMU decodes them: escapes including `\'` and
 * surrogate pairs, raw bytes as modified UTF-8, and any surrogate,
 * noncharacter or malformed sequence refused.
 */
import { Tok } from './qmp-json-lexer.js';
import { decodeCString, isValidCodepoint, modUtf8Codepoint, QDict, type QValue } from './qmp-qobject.js';

/** The result of one token: a complete value, an error, or nothing yet. */
export type ParseStep = { readonly value: QValue } | { readonly error: string } | null;

/** What a stack frame waits for (QEMU JSONParserState). */
const enum Want {
  AfterLCurly,
  AfterLSquare,
  BeforeKey,
  EndOfKey,
  BeforeValue,
  EndOfValue,
}

interface Frame {
  readonly container: QDict | QValue[];
  state: Want;
  /** The key whose value is being parsed (objects only). */
  key: string | null;
}

/** vsnprintf() into QEMU parse_error()'s 1024-byte buffer keeps 1023 bytes. */
const MESSAGE_MAX = 1023;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;
/** Decimal digits beyond which an integer cannot fit 64 bits (skips BigInt on huge tokens). */
const MAX_INT_DIGITS = 21;

const BACKSLASH = 0x5c;
const U = 0x75;
const SIMPLE_ESCAPES: Readonly<Record<number, string>> = {
  0x22: '"', 0x27: "'", 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t',
};

/** Bytes below this length are decoded by hand (cheaper than a Buffer view). */
const SHORT_TEXT = 16;

function ascii(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= SHORT_TEXT) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
    return s;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

/** QEMU cvt4hex() at `at` (reads past the token as NUL); -1 unless four hex digits. */
function hex4At(bytes: Uint8Array, len: number, at: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = at + i < len ? bytes[at + i]! : 0;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) return -1;
    cp = cp * 16 + d;
  }
  return cp;
}

/** The push parser (one message at a time; reset between messages). */
export class JsonPushParser {
  private readonly stack: Frame[] = [];
  /** Position of the token being parsed (for error messages). */
  private line = 0;
  private column = 0;

  /** Drops any partial value. */
  reset(): void {
    this.stack.length = 0;
  }

  /** Feeds one token; returns a complete value, the first error, or null. */
  feed(type: number, bytes: Uint8Array, len: number, line: number, column: number): ParseStep {
    this.line = line;
    this.column = column;
    const fail = this.fail;
    if (type === Tok.Error) {
      const quoted = new Uint8Array(Math.min(len, MESSAGE_MAX) + 8);
      const head = Buffer.from("stray '");
      quoted.set(head);
      let n = head.length;
      for (let i = 0; i < len && bytes[i] !== 0 && n < quoted.length - 1; i++) quoted[n++] = bytes[i]!;
      quoted[n++] = 0x27;
      return fail(decodeCString(quoted, Math.min(n, MESSAGE_MAX)));
    }
    const top = this.stack.length ? this.stack[this.stack.length - 1]! : null;
    let state = top ? top.state : Want.BeforeValue;
    let value: QValue;
    if (state === Want.AfterLCurly) {
      if (type === Tok.RCurly) return this.complete(this.stack.pop()!.container, fail);
      state = top!.state = Want.BeforeKey;
    }
    if (state === Want.AfterLSquare) {
      if (type === Tok.RSquare) return this.complete(this.stack.pop()!.container, fail);
      state = top!.state = Want.BeforeValue;
    }
    switch (state) {
      case Want.BeforeKey: {
        if (type !== Tok.String) return fail('expecting key');
        const key = this.parseString(bytes, len, fail);
        if (typeof key !== 'string') return key;
        top!.key = key;
        top!.state = Want.EndOfKey;
        return null;
      }
      case Want.EndOfKey:
        if (type !== Tok.Colon) return fail("expecting ':'");
        top!.state = Want.BeforeValue;
        return null;
      case Want.EndOfValue: {
        const isList = Array.isArray(top!.container);
        const close = isList ? Tok.RSquare : Tok.RCurly;
        if (type === Tok.Comma) {
          top!.state = isList ? Want.BeforeValue : Want.BeforeKey;
          return null;
        }
        if (type !== close) return fail(isList ? "expected ',' or ']'" : "expected ',' or '}'");
        return this.complete(this.stack.pop()!.container, fail);
      }
      default:
        break;
    }
    switch (type) {
      case Tok.LCurly:
        this.stack.push({ container: new QDict(), state: Want.AfterLCurly, key: null });
        return null;
      case Tok.LSquare:
        this.stack.push({ container: [], state: Want.AfterLSquare, key: null });
        return null;
      case Tok.String: {
        const s = this.parseString(bytes, len, fail);
        if (typeof s !== 'string') return s;
        value = s;
        break;
      }
      case Tok.Integer:
      case Tok.Float:
        value = parseNumber(type, ascii(bytes, 0, len));
        break;
      case Tok.Keyword: {
        const word = ascii(bytes, 0, Math.min(len, MESSAGE_MAX));
        if (len === 4 && word === 'true') value = true;
        else if (len === 5 && word === 'false') value = false;
        else if (len === 4 && word === 'null') value = null;
        else return fail(`invalid keyword '${word}'`.slice(0, MESSAGE_MAX));
        break;
      }
      default:
        return fail('expecting value');
    }
    return this.complete(value, fail);
  }

  /** QEMU parse_error(): the message prefixed with the token's position. */
  private readonly fail = (message: string): ParseStep => ({ error: `${this.line}:${this.column}: JSON parse error, ${message}` });

  /** A value is done: the message's, or a member of the container below it. */
  private complete(value: QValue, fail: (m: string) => ParseStep): ParseStep {
    const parent = this.stack.length ? this.stack[this.stack.length - 1]! : null;
    if (!parent) return { value };
    if (parent.container instanceof QDict) {
      const key = parent.key!;
      if (parent.container.has(key)) return fail('duplicate key');
      parent.container.put(key, value);
      parent.key = null;
    } else parent.container.push(value);
    parent.state = Want.EndOfValue;
    return null;
  }

  /** QEMU parse_string(): the token's text, or its error. */
  private parseString(bytes: Uint8Array, len: number, fail: (m: string) => ParseStep): string | ParseStep {
    const quote = bytes[0]!;
    const parts: string[] = [];
    let i = 1;
    while (i < len && bytes[i] !== quote) {
      const c = bytes[i]!;
      if (c === BACKSLASH) {
        const beg = i;
        const e = bytes[i + 1]!;
        i += 2;
        const simple = SIMPLE_ESCAPES[e];
        if (simple !== undefined) {
          parts.push(simple);
          continue;
        }
        if (e !== U) return fail('invalid escape sequence in string');
        let cp = hex4At(bytes, len, i);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff && bytes[i] === BACKSLASH && bytes[i + 1] === U && i + 1 < len) {
          const trailing = hex4At(bytes, len, i + 2);
          if (trailing >= 0xdc00 && trailing <= 0xdfff) {
            cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff);
            i += 6;
          } else cp = -1;
        }
        if (!isValidCodepoint(cp)) {
          const shown = decodeCString(bytes.subarray(beg), Math.min(i, len) - beg);
          return fail(`${shown} is not a valid Unicode character`);
        }
        parts.push(String.fromCodePoint(cp));
        continue;
      }
      if (c >= 0x20 && c < 0x7f) {
        let j = i + 1;
        while (j < len && bytes[j]! >= 0x20 && bytes[j]! < 0x7f && bytes[j] !== BACKSLASH && bytes[j] !== quote) j++;
        parts.push(ascii(bytes, i, j));
        i = j;
        continue;
      }
      const [cp, next] = modUtf8Codepoint(bytes, len, i);
      if (cp < 0) return fail('invalid UTF-8 sequence in string');
      parts.push(String.fromCodePoint(cp));
      i = next;
    }
    return parts.join('');
  }
}

/** QEMU parse_literal() for numbers: int64, else uint64 (non-negative), else double. */
function parseNumber(type: number, text: string): QValue {
  if (type === Tok.Integer && text.length <= MAX_INT_DIGITS) {
    const v = BigInt(text);
    if (v >= INT64_MIN && v <= INT64_MAX) return { kind: 'int', value: v };
    if (v >= 0n && v <= UINT64_MAX && text[0] !== '-') return { kind: 'uint', value: v };
  }
  return { kind: 'double', value: Number(text) };
}
