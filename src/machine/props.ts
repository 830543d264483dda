/**
 * QEMU option-string syntax for `-device` / `-machine`: splitting
 * `driver,k=v,k2=v2` (a doubled comma is a literal comma), the deprecated
 * short-form booleans (`foo` means foo=on, `nofoo` foo=off), property value
 * parsing (bool words, integers with base 0 like strtoull, sizes with
 * suffixes, OnOffAuto) with QEMU 7.2's error wording, and the
 * `-device TYPE,help` property lines (qom object_property_help layout).
 */
import type { PropDef, PropKind, PropValue } from './device-type.js';

/** One `key=value` of an option string, in order. */
export interface OptionPair {
  readonly key: string;
  readonly value: string;
  /** Written without `=` (short-form boolean). */
  readonly shortForm: boolean;
}

/** An option string split into its implied first value and the pairs. */
export interface SplitOptions {
  /** The first element when it has no `=` (the driver / machine type), else null. */
  readonly implied: string | null;
  readonly pairs: readonly OptionPair[];
  /** `help` or `?` appeared as an element. */
  readonly help: boolean;
  /** Warnings QEMU prints (short-form booleans). */
  readonly warnings: readonly string[];
}

/** Splits on single commas; `,,` stands for one literal comma. */
export function splitCommas(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === ',') {
      if (s[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

/**
 * Splits `implied,k=v,...` as QEMU's QemuOpts does with an implied first key.
 * `impliedKey` names it for messages (`driver`, `type`).
 */
export function splitOptions(s: string): SplitOptions {
  const parts = splitCommas(s);
  const pairs: OptionPair[] = [];
  const warnings: string[] = [];
  let implied: string | null = null;
  let help = false;
  parts.forEach((p, i) => {
    const eq = p.indexOf('=');
    if (i === 0 && eq < 0) {
      if (p === 'help' || p === '?') help = true;
      else implied = p;
      return;
    }
    if (eq >= 0) {
      pairs.push({ key: p.slice(0, eq), value: p.slice(eq + 1), shortForm: false });
      return;
    }
    if (p === 'help' || p === '?') {
      help = true;
      return;
    }
    if (p.startsWith('no') && p.length > 2) {
      warnings.push(`warning: short-form boolean option '${p}' deprecated\nPlease use ${p.slice(2)}=off instead`);
      pairs.push({ key: p.slice(2), value: 'off', shortForm: true });
    } else {
      warnings.push(`warning: short-form boolean option '${p}' deprecated\nPlease use ${p}=on instead`);
      pairs.push({ key: p, value: 'on', shortForm: true });
    }
  });
  return { implied, pairs, help, warnings };
}

/** The words QEMU accepts for booleans (qapi_bool_parse). */
const TRUE_WORDS = new Set(['on', 'yes', 'true', 'y']);
const FALSE_WORDS = new Set(['off', 'no', 'false', 'n']);

/** Parses a boolean word, or null. */
export function parseBool(s: string): boolean | null {
  if (TRUE_WORDS.has(s)) return true;
  if (FALSE_WORDS.has(s)) return false;
  return null;
}

const U64_MAX = (1n << 64n) - 1n;

/** An integer as strtoull/strtoll read it with base 0: sign, then hex, octal or decimal digits. */
const BASE0_RE = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/;

/** The value of BASE0_RE's digits group: `0x` hex, leading-`0` octal, else decimal. */
function base0Digits(digits: string): bigint {
  if (/^0[xX]/.test(digits)) return BigInt(digits);
  if (digits.length > 1 && digits[0] === '0') return BigInt('0o' + digits.slice(1));
  return BigInt(digits);
}

/**
 * strtoull with base 0 on the whole string (QEMU qemu_strtou64): optional
 * sign, `0x` hex, leading `0` octal, else decimal; a leading minus wraps
 * modulo 2^64.  Returns null for trailing garbage, an empty string or overflow.
 */
export function parseU64(s: string): bigint | null {
  const m = BASE0_RE.exec(s);
  if (!m) return null;
  const v = base0Digits(m[2]!);
  if (v > U64_MAX) return null;
  return m[1] === '-' ? BigInt.asUintN(64, -v) : v;
}

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const INT32_MIN = -(1n << 31n);
const INT32_MAX = (1n << 31n) - 1n;

/**
 * strtoll with base 0 on the whole string (QEMU qemu_strtoi64): like
 * parseU64 but signed; null for garbage or a value outside int64.
 */
export function parseI64(s: string): bigint | null {
  const m = BASE0_RE.exec(s);
  if (!m) return null;
  const v = m[1] === '-' ? -base0Digits(m[2]!) : base0Digits(m[2]!);
  return v < I64_MIN || v > I64_MAX ? null : v;
}

/** Size suffixes (powers of 1024), QEMU qemu_strtosz. */
const SIZE_SUFFIX: Readonly<Record<string, bigint>> = {
  b: 1n,
  B: 1n,
  k: 1n << 10n,
  K: 1n << 10n,
  m: 1n << 20n,
  M: 1n << 20n,
  g: 1n << 30n,
  G: 1n << 30n,
  t: 1n << 40n,
  T: 1n << 40n,
  p: 1n << 50n,
  P: 1n << 50n,
  e: 1n << 60n,
  E: 1n << 60n,
};

/** Parses a size (`4096`, `64K`, `1.5G`, `0x1000`), default unit bytes; null when invalid or >= 2^64. */
export function parseSizeValue(s: string): bigint | null {
  const hex = /^0[xX][0-9a-fA-F]+$/.exec(s);
  if (hex) return parseU64(s);
  const m = /^([0-9]+)(?:\.([0-9]+))?([bBkKmMgGtTpPeE]?)$/.exec(s);
  if (!m) return null;
  const unit = m[3] ? SIZE_SUFFIX[m[3]]! : 1n;
  const frac = m[2] ?? '';
  if (frac && unit === 1n) return null;
  const scale = 10n ** BigInt(frac.length);
  const v = (BigInt(m[1]! + frac) * unit) / scale;
  return v > U64_MAX ? null : v;
}

/** Bit widths of the unsigned integer kinds, and how QEMU names them in range errors. */
const UINT_KINDS: Readonly<Partial<Record<PropKind, { bits: bigint; cName: string }>>> = {
  uint8: { bits: 8n, cName: 'uint8_t' },
  uint16: { bits: 16n, cName: 'uint16_t' },
  uint32: { bits: 32n, cName: 'uint32_t' },
  uint64: { bits: 64n, cName: 'uint64_t' },
};

/**
 * Parses `raw` as a value of `def.kind` for property `name`.  Returns the
 * value or an error message worded as QEMU 7.2's.  Integers fit a number
 * except uint64/size values of 2^53 and above, which stay bigints.
 */
export function parsePropValue(name: string, def: PropDef, raw: string): { value: PropValue } | { error: string } {
  switch (def.kind) {
    case 'bool': {
      const b = parseBool(raw);
      return b === null ? { error: `Parameter '${name}' expects 'on' or 'off'` } : { value: b };
    }
    case 'str':
      return { value: raw };
    case 'OnOffAuto':
      return raw === 'on' || raw === 'off' || raw === 'auto'
        ? { value: raw }
        : { error: `Parameter '${name}' does not accept value '${raw}'` };
    case 'size': {
      const v = parseSizeValue(raw);
      return v === null ? { error: `Parameter '${name}' expects size` } : { value: narrow(v) };
    }
    case 'int32': {
      // qemu_strtoi64 with base 0, then the int32_t range check.
      const v = parseI64(raw);
      if (v === null) return { error: `Parameter '${name}' expects integer` };
      if (v < INT32_MIN || v > INT32_MAX) return { error: `Parameter '${name}' expects int32_t` };
      return { value: Number(v) };
    }
    default: {
      const k = UINT_KINDS[def.kind]!;
      const v = parseU64(raw);
      if (v === null) return { error: `Parameter '${name}' expects integer` };
      if (v >> k.bits !== 0n) return { error: `Parameter '${name}' expects ${k.cName}` };
      return { value: narrow(v) };
    }
  }
}

/** A bigint below 2^53 as a number, else unchanged. */
function narrow(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Column the ` - ` of a help line is padded to (qom object_property_help). */
const HELP_COLUMN = 24;

/** JSON-ish rendering of a default the way QEMU prints it (`false`, `39`, `"auto"`). */
function defaultJson(v: PropValue): string {
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/**
 * One `-device TYPE,help` line: `  name=<type>`, padded to column 24, then
 * ` - ` description and ` (default: X)` when there is either.
 */
export function propHelpLine(name: string, typeLabel: string, description: string | undefined, def: PropValue | undefined): string {
  let s = `  ${name}=<${typeLabel}>`;
  if (description !== undefined || def !== undefined) {
    if (s.length < HELP_COLUMN) s += ' '.repeat(HELP_COLUMN - s.length);
    s += ' - ';
  }
  if (description !== undefined) s += description;
  if (def !== undefined) s += ` (default: ${defaultJson(def)})`;
  return s;
}
