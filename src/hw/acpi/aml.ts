/**
 * A very small AML encoder (ACPI 6.5 chapter 20, "ACPI Machine Language
 * Specification"): enough for a minimal but valid DSDT: scopes, devices,
 * named integers/EISA IDs/strings and packages.
 */

/** AML opcodes used here (ACPI 6.5 section 20.3). */
export const AmlOp = {
  ZERO: 0x00,
  ONE: 0x01,
  NAME: 0x08,
  BYTE_PREFIX: 0x0a,
  WORD_PREFIX: 0x0b,
  DWORD_PREFIX: 0x0c,
  STRING_PREFIX: 0x0d,
  QWORD_PREFIX: 0x0e,
  SCOPE: 0x10,
  PACKAGE: 0x12,
  ROOT_CHAR: 0x5c,
  EXT_PREFIX: 0x5b,
  /** Follows EXT_PREFIX. */
  DEVICE: 0x82,
  ONES: 0xff,
} as const;

/** Encoded AML bytes. */
export type Aml = readonly number[];

/** PkgLength (20.2.4): 1 byte below 64, else a lead byte with the count of following bytes. */
export function pkgLength(contentLength: number): number[] {
  for (let extra = 0; extra <= 3; extra++) {
    const total = contentLength + 1 + extra;
    if (extra === 0 && total < 0x40) return [total];
    if (extra > 0 && total < 2 ** (4 + 8 * extra)) {
      const out = [(extra << 6) | (total & 0x0f)];
      for (let i = 0; i < extra; i++) out.push((total >>> (4 + 8 * i)) & 0xff);
      return out;
    }
  }
  throw new RangeError(`AML package of ${contentLength} bytes is too long`);
}

/** A NameString: optional root prefix and dot-separated 4-character segments (padded with '_'). */
export function nameString(path: string): number[] {
  const out: number[] = [];
  let p = path;
  if (p.startsWith('\\')) {
    out.push(AmlOp.ROOT_CHAR);
    p = p.slice(1);
  }
  const segs = p.split('.').filter((s) => s.length > 0);
  if (segs.length === 2) out.push(0x2e); // DualNamePrefix
  else if (segs.length > 2) out.push(0x2f, segs.length); // MultiNamePrefix
  for (const s of segs) {
    if (s.length > 4 || !/^[A-Z_][A-Z0-9_]*$/.test(s)) throw new Error(`AML: bad name segment "${s}"`);
    const padded = s.padEnd(4, '_');
    for (let i = 0; i < 4; i++) out.push(padded.charCodeAt(i));
  }
  if (segs.length === 0) out.push(AmlOp.ZERO); // NullName
  return out;
}

/** The shortest integer encoding (ZeroOp, OneOp, Byte/Word/DWord/QWord prefix). */
export function integer(v: number | bigint): number[] {
  const n = BigInt.asUintN(64, BigInt(v));
  if (n === 0n) return [AmlOp.ZERO];
  if (n === 1n) return [AmlOp.ONE];
  const bytes = (count: number): number[] => Array.from({ length: count }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));
  if (n <= 0xffn) return [AmlOp.BYTE_PREFIX, ...bytes(1)];
  if (n <= 0xffffn) return [AmlOp.WORD_PREFIX, ...bytes(2)];
  if (n <= 0xffff_ffffn) return [AmlOp.DWORD_PREFIX, ...bytes(4)];
  return [AmlOp.QWORD_PREFIX, ...bytes(8)];
}

/** EisaId("PNP0A08"): 3 compressed letters then 4 hex digits, as a DWord constant. */
export function eisaId(id: string): number[] {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new Error(`AML: bad EISA id "${id}"`);
  const c = (i: number): number => (id.charCodeAt(i) - 0x40) & 0x1f;
  const vendor = (c(0) << 10) | (c(1) << 5) | c(2);
  const product = parseInt(id.slice(3), 16);
  return [AmlOp.DWORD_PREFIX, vendor >> 8, vendor & 0xff, product >> 8, product & 0xff];
}

/** A string constant. */
export function string(s: string): number[] {
  return [AmlOp.STRING_PREFIX, ...Array.from(s, (ch) => ch.charCodeAt(0) & 0x7f), 0];
}

/** Name(path, value). */
export function name(path: string, value: Aml): number[] {
  return [AmlOp.NAME, ...nameString(path), ...value];
}

/** Scope(path) { body }. */
export function scope(path: string, body: Aml[]): number[] {
  const content = [...nameString(path), ...body.flat()];
  return [AmlOp.SCOPE, ...pkgLength(content.length), ...content];
}

/** Device(name) { body }. */
export function device(path: string, body: Aml[]): number[] {
  const content = [...nameString(path), ...body.flat()];
  return [AmlOp.EXT_PREFIX, AmlOp.DEVICE, ...pkgLength(content.length), ...content];
}

/** Package(n) { elements } with data elements. */
export function pkg(elements: Aml[]): number[] {
  const content = [elements.length, ...elements.flat()];
  return [AmlOp.PACKAGE, ...pkgLength(content.length), ...content];
}
