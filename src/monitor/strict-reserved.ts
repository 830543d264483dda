/**
 * The reserved fields the strict checks add to the unit's own (spec 9.4-9.6):
 * those of scalable-mode structure entries that the unit reads without
 * faulting, as QEMU 11.1 does.  Root entries, legacy context entries, the
 * fixed reserved bits of scalable-mode context entries and paging entries
 * are checked by the unit itself (faults 0x0A / 0x0B / 0x0C / 0x72) and are
 * not repeated here.
 *
 *   scalable-mode context entry (9.4)  fields that are reserved when a
 *        capability is absent: DTE (bit 2) without ECAP.DT, PRE (bit 4)
 *        without ECAP.PRS, RID_PASID (bits 83:64) without ECAP.RPS
 *   PASID directory entry (9.5)  bits 11:2, and 63:HAW of the table pointer
 *   PASID table entry (9.6)  bits 11:10 and 63:HAW (qword 0), 86:80
 *        (qword 1), 139:136 and 191:HAW (qword 2), 511:192 (qwords 3-7);
 *        SSADE (bit 9) without ECAP.SSADS, SRE (bit 128) without ECAP.SRS
 */

/** ECAP bits the conditional fields depend on (spec 11.4.3). */
const ECAP_DT = 1n << 2n;
const ECAP_PRS = 1n << 29n;
const ECAP_SRS = 1n << 31n;
const ECAP_SSADS = 1n << 45n;
const ECAP_RPS = 1n << 49n;

/** One reserved field found set. */
export interface ReservedHit {
  /** Field name (or bit range) as the spec names it. */
  readonly field: string;
  /** The qword it lies in. */
  readonly qword: number;
  /** The bits set, within that qword. */
  readonly bits: bigint;
}

/** What the checks need of the unit. */
export interface ReservedCaps {
  readonly ecap: bigint;
  /** Host address width in bits (aw-bits). */
  readonly haw: number;
}

const bits = (hi: number, lo: number): bigint => ((1n << BigInt(hi - lo + 1)) - 1n) << BigInt(lo);
/** Bits 63:HAW of an address qword. */
const aboveHaw = (haw: number): bigint => bits(63, haw);

function collect(raw: readonly bigint[], fields: readonly (readonly [string, number, bigint])[]): ReservedHit[] {
  const out: ReservedHit[] = [];
  for (const [field, qword, mask] of fields) {
    const set = (raw[qword] ?? 0n) & mask;
    if (set !== 0n) out.push({ field, qword, bits: set });
  }
  return out;
}

/** Reserved fields set in a scalable-mode context entry (four qwords) beyond the unit's own checks. */
export function smContextReserved(raw: readonly bigint[], caps: ReservedCaps): ReservedHit[] {
  const fields: [string, number, bigint][] = [];
  if ((caps.ecap & ECAP_DT) === 0n) fields.push(['DTE (no ECAP.DT)', 0, 1n << 2n]);
  if ((caps.ecap & ECAP_PRS) === 0n) fields.push(['PRE (no ECAP.PRS)', 0, 1n << 4n]);
  if ((caps.ecap & ECAP_RPS) === 0n) fields.push(['RID_PASID (no ECAP.RPS)', 1, bits(19, 0)]);
  return collect(raw, fields);
}

/** Reserved bits set in a PASID directory entry. */
export function pasidDirReserved(raw: readonly bigint[], caps: ReservedCaps): ReservedHit[] {
  return collect(raw, [
    ['bits 11:2', 0, bits(11, 2)],
    [`bits 63:${caps.haw} (above HAW)`, 0, aboveHaw(caps.haw)],
  ]);
}

/** Reserved bits set in a PASID table entry (eight qwords). */
export function pasidEntryReserved(raw: readonly bigint[], caps: ReservedCaps): ReservedHit[] {
  const fields: [string, number, bigint][] = [
    ['bits 11:10', 0, bits(11, 10)],
    [`bits 63:${caps.haw} (SSPTPTR above HAW)`, 0, aboveHaw(caps.haw)],
    ['bits 86:80', 1, bits(22, 16)],
    ['bits 139:136', 2, bits(11, 8)],
    [`bits 191:${128 + caps.haw} (FSPTPTR above HAW)`, 2, aboveHaw(caps.haw)],
  ];
  for (let q = 3; q < 8; q++) fields.push([`bits ${64 * q + 63}:${64 * q}`, q, bits(63, 0)]);
  if ((caps.ecap & ECAP_SSADS) === 0n) fields.push(['SSADE (no ECAP.SSADS)', 0, 1n << 9n]);
  if ((caps.ecap & ECAP_SRS) === 0n) fields.push(['SRE (no ECAP.SRS)', 2, 1n]);
  return collect(raw, fields);
}
