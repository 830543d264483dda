/**
 * QEMU's QObject model as QMP sees it, and its JSON writer: what a request
 * parses to and how a reply is spelled, byte for byte as QEMU 11.1 spells it.
 *
 * - QDict iterates in QEMU's hash-table order (tdb_hash of the key's modified
 *   UTF-8 bytes modulo 512 buckets, newest entry first within a bucket), so
 *   both the order of reply members and the member QEMU's request validator
 *   meets first are QEMU's.
 * - Numbers keep QNum's three kinds: int64, uint64 (both bigint) and double.
 * - The writer uses `": "` and `", "`, escapes every code point outside
 *   0x20..0x7E as `\uXXXX` (upper-case hex, surrogate pairs beyond the BMP),
 *   and prints doubles with C's `%.17g` (so `inf`, `-0`, `1e+17`).
 */

/** A QNum: int64 and uint64 as bigint, double as number. */
export type QNum = { readonly kind: 'int' | 'uint'; readonly value: bigint } | { readonly kind: 'double'; readonly value: number };

/** Any QObject QMP input can carry. */
export type QValue = null | boolean | string | QNum | QValue[] | QDict;

/** QEMU QDICT_BUCKET_MAX. */
const QDICT_BUCKETS = 512;

/** QEMU qdict.c tdb_hash() over the key's modified UTF-8 bytes, reduced to a bucket. */
export function qdictBucket(key: string): number {
  const bytes = modUtf8Encode(key);
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) value = (value + ((bytes[i]! << ((i * 5) % 24)) >>> 0)) >>> 0;
  return ((Math.imul(1103515243, value) + 12345) >>> 0) % QDICT_BUCKETS;
}

/** A QDict: lookups by key, iteration in QEMU's order. */
export class QDict {
  private readonly map = new Map<string, { value: QValue; bucket: number; seq: number }>();
  private order: string[] | null = null;
  private seq = 0;

  /** Adds or replaces a member. */
  put(key: string, value: QValue): this {
    const old = this.map.get(key);
    if (old) old.value = value;
    else {
      this.map.set(key, { value, bucket: qdictBucket(key), seq: this.seq++ });
      this.order = null;
    }
    return this;
  }

  /** The member's value, or undefined. */
  get(key: string): QValue | undefined {
    return this.map.get(key)?.value;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  get size(): number {
    return this.map.size;
  }

  /** Keys in QEMU's iteration order (qdict_first/qdict_next). */
  keys(): readonly string[] {
    if (!this.order) {
      const entries = [...this.map.entries()];
      entries.sort((a, b) => a[1].bucket - b[1].bucket || b[1].seq - a[1].seq);
      this.order = entries.map((e) => e[0]);
    }
    return this.order;
  }

  /** A QDict of `pairs`, inserted in the given order. */
  static of(pairs: readonly (readonly [string, QValue])[]): QDict {
    const d = new QDict();
    for (const [k, v] of pairs) d.put(k, v);
    return d;
  }
}

/** True for a QNum. */
export function isQNum(v: QValue): v is QNum {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof QDict);
}

/** QEMU's name of a value's type, for messages. */
export function qtypeOf(v: QValue): 'null' | 'bool' | 'string' | 'number' | 'list' | 'dict' {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'list';
  if (v instanceof QDict) return 'dict';
  return 'number';
}

// ---- modified UTF-8 (QEMU util/unicode.c) -------------------------------------

/** Whether QEMU accepts a code point (no surrogates, no noncharacters, at most U+10FFFF). */
export function isValidCodepoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return !(cp >= 0xd800 && cp <= 0xdfff);
}

/** Modified UTF-8 bytes of a string of valid code points (U+0000 as C0 80). */
export function modUtf8Encode(s: string): Uint8Array {
  const out: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp > 0 && cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Uint8Array.from(out);
}

/** Smallest code point of a 2..6-byte sequence (overlong check). */
const MIN_CP = [0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * QEMU mod_utf8_codepoint(): decodes one sequence at `at` of the
 * NUL-terminated `bytes[0, len)`; returns [code point or -1, next index].
 */
export function modUtf8Codepoint(bytes: Uint8Array, len: number, at: number): [number, number] {
  const byteAt = (i: number): number => (i < len ? bytes[i]! : 0);
  let p = at;
  const first = byteAt(p++);
  if (first < 0x80) return [first, p];
  if (first >= 0xfe || (first & 0x40) === 0) return [-1, p];
  let n = 0;
  let mask = 0x80;
  for (; first & mask; mask >>= 1) n++;
  let cp = first & (mask - 1);
  for (let i = 1; i < n; i++) {
    const b = byteAt(p);
    if ((b & 0xc0) !== 0x80) return [-1, p];
    p++;
    cp = cp * 64 + (b & 0x3f);
  }
  if (!isValidCodepoint(cp) || (cp < MIN_CP[n]! && !(cp === 0 && n === 2))) return [-1, p];
  return [cp, p];
}

/** How QEMU's writer reads a C string of bytes: stops at NUL, bad sequences become U+FFFD. */
export function decodeCString(bytes: Uint8Array, len: number): string {
  let out = '';
  for (let i = 0; i < len && bytes[i] !== 0; ) {
    const [cp, next] = modUtf8Codepoint(bytes, len, i);
    out += String.fromCodePoint(cp < 0 ? 0xfffd : cp);
    i = next;
  }
  return out;
}

// ---- the writer (qobject/json-writer.c) ---------------------------------------

const hex4 = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');

/** QEMU quoted_str(). */
export function quoteString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; break;
      case '\\': out += '\\\\'; break;
      case '\b': out += '\\b'; break;
      case '\f': out += '\\f'; break;
      case '\n': out += '\\n'; break;
      case '\r': out += '\\r'; break;
      case '\t': out += '\\t'; break;
      default:
        if (cp > 0xffff) out += `\\u${hex4(0xd800 + ((cp - 0x10000) >> 10))}\\u${hex4(0xdc00 + ((cp - 0x10000) & 0x3ff))}`;
        else if (cp < 0x20 || cp >= 0x7f) out += `\\u${hex4(cp)}`;
        else out += ch;
    }
  }
  return out + '"';
}

/** Significant digits of `%.17g`. */
const G_PRECISION = 17;

/** The exact decimal digits of a finite non-zero |v| and the power of ten of the first one. */
function exactDecimal(v: number): { digits: string; exp10: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(v));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = hi >>> 20;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e2 = biased === 0 ? -1074 : biased - 1075;
  if (biased !== 0) mant |= 1n << 52n;
  let digits: string;
  let fracDigits = 0;
  if (e2 >= 0) digits = (mant << BigInt(e2)).toString();
  else {
    digits = (mant * 5n ** BigInt(-e2)).toString();
    fracDigits = -e2;
  }
  const stripped = digits.replace(/^0+/, '');
  return { digits: stripped, exp10: stripped.length - fracDigits - 1 };
}

/** C's `%.17g` (glibc: exact value, round half to even). */
export function formatG17(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const sign = v < 0 ? '-' : '';
  let { digits, exp10 } = exactDecimal(v);
  if (digits.length > G_PRECISION) {
    const head = BigInt(digits.slice(0, G_PRECISION));
    const rest = digits.slice(G_PRECISION);
    const roundUp = rest[0]! > '5' || (rest[0] === '5' && (/[1-9]/.test(rest.slice(1)) || (head & 1n) === 1n));
    let rounded = (roundUp ? head + 1n : head).toString();
    if (rounded.length > G_PRECISION) {
      rounded = rounded.slice(0, G_PRECISION);
      exp10++;
    }
    digits = rounded;
  }
  digits = digits.replace(/0+$/, '');
  if (exp10 < -4 || exp10 >= G_PRECISION) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp10).toString().padStart(2, '0');
    return `${sign}${mant}e${exp10 < 0 ? '-' : '+'}${e}`;
  }
  if (exp10 < 0) return `${sign}0.${'0'.repeat(-exp10 - 1)}${digits}`;
  const int = digits.slice(0, exp10 + 1).padEnd(exp10 + 1, '0');
  const frac = digits.slice(exp10 + 1);
  return `${sign}${int}${frac ? `.${frac}` : ''}`;
}

/** QEMU qobject_to_json() (compact): one reply line without its line ending. */
export function toQmpJson(v: QValue): string {
  // An explicit stack: ids may nest up to the parser's 1024 levels.
  const parts: string[] = [];
  const work: (QValue | { raw: string })[] = [v];
  while (work.length) {
    const item = work.pop()!;
    if (item !== null && typeof item === 'object' && 'raw' in item) {
      parts.push(item.raw);
      continue;
    }
    const x = item as QValue;
    if (x === null) parts.push('null');
    else if (typeof x === 'boolean') parts.push(x ? 'true' : 'false');
    else if (typeof x === 'string') parts.push(quoteString(x));
    else if (Array.isArray(x)) {
      const seq: (QValue | { raw: string })[] = [{ raw: '[' }];
      x.forEach((e, i) => seq.push(...(i ? [{ raw: ', ' }] : []), e));
      seq.push({ raw: ']' });
      for (let i = seq.length - 1; i >= 0; i--) work.push(seq[i]!);
    } else if (x instanceof QDict) {
      const seq: (QValue | { raw: string })[] = [{ raw: '{' }];
      x.keys().forEach((k, i) => seq.push({ raw: `${i ? ', ' : ''}${quoteString(k)}: ` }, x.get(k)!));
      seq.push({ raw: '}' });
      for (let i = seq.length - 1; i >= 0; i--) work.push(seq[i]!);
    } else parts.push(x.kind === 'double' ? formatG17(x.value) : x.value.toString());
  }
  return parts.join('');
}
