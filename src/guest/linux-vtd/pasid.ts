/**
 * Scalable-mode structures as Linux programs them (VT-d spec 3.x 9.4-9.6;
 * Linux intel/pasid.c facts):
 *  - root entry: lower half -> context table of devfn 0-127, upper half ->
 *    devfn 128-255, each `table | P`;
 *  - context entry (256 bits, 128 per table, index devfn & 0x7F): PASID
 *    directory | PDTS | P, FPD clear, RID_PASID 0, and DTE / PASIDE / PRE
 *    when the driver decided at probe to use the device's ATS / PASID /
 *    PRI (sva-support.ts); written once per requester ID when the device is
 *    probed, whatever its domain;
 *  - one PASID directory page per device (512 entries: PDTS 2, PASIDs below
 *    32768) and PASID tables created as PASIDs are used;
 *  - the RID_PASID (0) entry of the device's table holds its domain:
 *    first stage (PGTT 1), second stage (PGTT 2) or pass-through (PGTT 4,
 *    DID 1), programmed with everything but P first, then P;
 *  - teardown: clear P, PASID-cache invalidation, then the IOTLB the entry
 *    used (PASID-based for first stage and pass-through, domain-selective
 *    for second stage), then the whole entry is cleared.
 */
import type { Domain, DeviceHandle } from './domain.js';
import type { DeviceSvaSupport } from './sva-support.js';
import type { VtdUnit } from './unit.js';

/** Scalable-mode context entry, qword 0 (qword 1: RID_PASID 19:0; qwords 2-3 zero). */
export const SmCtx = { P: 1n, FPD: 2n, DTE: 1n << 2n, PASIDE: 1n << 3n, PRE: 1n << 4n, PDTS_SHIFT: 9n, RID_PASID_MASK: 0xf_ffffn } as const;
/** PASID directory entry. */
export const PasidDir = { P: 1n, FPD: 2n } as const;
/** PASID table entry: qword 0, 1 and 2 fields. */
export const PasidEntry = {
  P: 1n, FPD: 2n, AW_SHIFT: 2n, PGTT_SHIFT: 6n, PGTT_MASK: 7n,
  DID_MASK: 0xffffn, PWSNP: 1n << 23n, PGSNP: 1n << 24n,
  SRE: 1n, FLPM_SHIFT: 2n,
} as const;
/** PASID-granular translation types. */
export const Pgtt = { FIRST_STAGE: 1, SECOND_STAGE: 2, NESTED: 3, PASS_THROUGH: 4 } as const;
/** The PASID requests without a PASID are translated with (context RID_PASID). */
export const RID_PASID = 0;

/** Sizes and counts (bytes / entries). */
const ROOT_ENTRY_SIZE = 16;
const SM_CONTEXT_SIZE = 32;
const DEVFN_HALF = 0x80;
const DIR_ENTRY_SIZE = 8;
const PASID_ENTRY_SIZE = 64;
const PASID_ENTRY_QWORDS = 8;
const QWORD = 8;
/** PASIDs per PASID table (index bits 5:0) and directory entries in one page. */
const PASID_TABLE_SHIFT = 6;
const PASID_TABLE_MASK = (1 << PASID_TABLE_SHIFT) - 1;
const DIR_ENTRIES = 512;
/** PDTS: a directory of 2^(PDTS+7) entries; one page holds 512 = 2^9. */
const PDTS_ONE_PAGE = 2n;
const DEVFN_MASK = 0xff;
const BUS_SHIFT = 8;

/** What the driver programmed at one PASID (Linux reads it back from the entry). */
interface ProgrammedPasid { readonly did: number; readonly pgtt: number }

/** One device's PASID directory and tables. */
export class PasidTable {
  /** Guest-physical address of the directory. */
  dir = 0;
  /** directory index -> PASID table address */
  private readonly tables = new Map<number, number>();
  private readonly programmed = new Map<number, ProgrammedPasid>();

  constructor(private readonly unit: VtdUnit) {}

  /** Allocates the (zeroed) directory page. */
  async init(): Promise<this> {
    this.dir = await this.unit.alloc.page();
    return this;
  }

  /** Address of PASID `pasid`'s entry; its table is created (directory entry `table | P`) on first use. */
  async entry(pasid: number): Promise<number> {
    const di = pasid >> PASID_TABLE_SHIFT;
    if (di >= DIR_ENTRIES) throw new Error(`PASID ${pasid} beyond the directory`);
    let t = this.tables.get(di);
    if (t === undefined) {
      t = await this.unit.alloc.page();
      this.tables.set(di, t);
      await this.unit.p.write64(this.dir + di * DIR_ENTRY_SIZE, BigInt(t) | PasidDir.P);
    }
    return t + (pasid & PASID_TABLE_MASK) * PASID_ENTRY_SIZE;
  }

  /** DID and PGTT programmed at `pasid`, if present. */
  at(pasid: number): ProgrammedPasid | undefined {
    return this.programmed.get(pasid);
  }

  /** Records what `pasid` holds (undefined: not present). */
  record(pasid: number, what: ProgrammedPasid | undefined): void {
    if (what) this.programmed.set(pasid, what);
    else this.programmed.delete(pasid);
  }
}

/** Scalable-mode context tables per unit: key bus * 2 + half -> table. */
const smContextTables = new WeakMap<VtdUnit, Map<number, number>>();
/** Requester IDs whose context entry is present, per unit. */
const smPresent = new WeakMap<VtdUnit, Set<number>>();

/** Address of the scalable-mode context entry of `sid`, creating its context table (and root half) when missing. */
async function smContextEntry(unit: VtdUnit, sid: number): Promise<number> {
  let tables = smContextTables.get(unit);
  if (!tables) { tables = new Map(); smContextTables.set(unit, tables); }
  const key = contextTableKey(sid);
  let t = tables.get(key);
  if (t === undefined) {
    t = await unit.alloc.page();
    tables.set(key, t);
    await unit.p.write64(unit.rootTable + (sid >> BUS_SHIFT) * ROOT_ENTRY_SIZE + (key % 2) * QWORD, BigInt(t) | SmCtx.P);
    await unit.flushWriteBuffer();
  }
  return t + ((sid & DEVFN_MASK) % DEVFN_HALF) * SM_CONTEXT_SIZE;
}

/** bus * 2 + half (the root entry's lower half holds devfn 0-127, the upper 128-255). */
function contextTableKey(sid: number): number {
  return (sid >> BUS_SHIFT) * 2 + ((sid & DEVFN_MASK) >= DEVFN_HALF ? 1 : 0);
}

/** Address of the scalable-mode context entry `setupSmContext` wrote for `sid`, if any. */
export function smContextAddress(unit: VtdUnit, sid: number): number | undefined {
  if (!smPresent.get(unit)?.has(sid)) return undefined;
  const t = smContextTables.get(unit)?.get(contextTableKey(sid));
  return t === undefined ? undefined : t + ((sid & DEVFN_MASK) % DEVFN_HALF) * SM_CONTEXT_SIZE;
}

/** Context-entry bits for what the driver uses of the device (Linux context_entry_set_pasid_table). */
export function smContextSvaBits(support: DeviceSvaSupport | undefined): bigint {
  if (!support) return 0n;
  return (support.ats ? SmCtx.DTE : 0n) | (support.pasid ? SmCtx.PASIDE : 0n) | (support.pri ? SmCtx.PRE : 0n);
}

/** ", DTE PASIDE PRE" (nothing when no bit is set). */
function svaBitNames(bits: bigint): string {
  const names = ([[SmCtx.DTE, 'DTE'], [SmCtx.PASIDE, 'PASIDE'], [SmCtx.PRE, 'PRE']] as const).filter(([b]) => bits & b).map(([, n]) => n);
  return names.length ? `, ${names.join(' ')}` : '';
}

/**
 * Points every requester ID of `dev` at its PASID directory (Linux
 * intel_pasid_setup_sm_context at probe), with DTE / PASIDE / PRE from
 * `dev.svaSupport` (each alias gets the same bits, as Linux sets them from
 * the device's info).  An ID whose entry is already present (an alias
 * another device set up) is left alone.  With caching mode, the
 * not-present entry may be cached under DID 0: context-cache
 * device-selective and IOTLB domain-selective invalidation for DID 0.
 */
export async function setupSmContext(unit: VtdUnit, dev: DeviceHandle): Promise<PasidTable> {
  const table = dev.pasidTable ?? await new PasidTable(unit).init();
  dev.pasidTable = table;
  let present = smPresent.get(unit);
  if (!present) { present = new Set(); smPresent.set(unit, present); }
  const sva = smContextSvaBits(dev.svaSupport);
  for (const sid of dev.sids) {
    if (present.has(sid)) continue;
    const ctx = await smContextEntry(unit, sid);
    for (let q = 3; q >= 1; q--) await unit.p.write64(ctx + q * QWORD, 0n); // RID_PASID 0, rest reserved
    const lo = BigInt(table.dir) | (PDTS_ONE_PAGE << SmCtx.PDTS_SHIFT) | sva | SmCtx.P;
    await unit.p.write64(ctx, lo);
    present.add(sid);
    unit.log.push(`  ${dev.name} SID 0x${sid.toString(16)}: scalable context -> PASID directory 0x${table.dir.toString(16)} (PDTS 2, RID_PASID 0${svaBitNames(sva)})`);
    if (unit.cachingMode) {
      await unit.flushContext('attach-context', { kind: 'device', did: 0, sid, fm: 0 });
      await unit.flushIotlb('attach-iotlb', { kind: 'domain', did: 0 });
    }
  }
  return table;
}

/** The qwords of a PASID entry holding `domain` on `unit`. */
export function pasidEntryFor(unit: VtdUnit, domain: Domain): { qwords: bigint[]; did: number; pgtt: number } {
  const q = new Array<bigint>(PASID_ENTRY_QWORDS).fill(0n);
  const did = domain.did(unit);
  const agaw = BigInt(unit.levels - 2);
  const pwsnp = unit.ecapf('SMPWC') ? PasidEntry.PWSNP : 0n;
  let pgtt: number;
  if (domain.passThrough(unit)) {
    pgtt = Pgtt.PASS_THROUGH;
    q[0] = agaw << PasidEntry.AW_SHIFT;
  } else if (domain.firstStage) {
    pgtt = Pgtt.FIRST_STAGE;
    q[0] = agaw << PasidEntry.AW_SHIFT;
    q[2] = BigInt(domain.pageTable!.root); // FLPM 0: 4-level; SRE clear: DMA is a user access
  } else {
    pgtt = Pgtt.SECOND_STAGE;
    const pt = domain.pageTable!;
    q[0] = BigInt(pt.root) | (BigInt(pt.levels - 2) << PasidEntry.AW_SHIFT);
  }
  q[0] |= (BigInt(pgtt) << PasidEntry.PGTT_SHIFT) | PasidEntry.P; // FPD clear: faults are reported
  q[1] = BigInt(did) | pwsnp;
  return { qwords: q, did, pgtt };
}

/**
 * Programs RID_PASID of `dev` for `domain` (intel_pasid_setup_first_level /
 * _second_level / _pass_through): the entry without P, then P; with caching
 * mode a PASID-selective PASID-cache and PASID-based IOTLB invalidation,
 * otherwise a write-buffer flush.
 */
export async function setPasidEntry(unit: VtdUnit, dev: DeviceHandle, domain: Domain): Promise<void> {
  const table = dev.pasidTable ?? await setupSmContext(unit, dev);
  if (!domain.passThrough(unit)) await domain.ensurePageTable(unit);
  const at = await table.entry(RID_PASID);
  const { qwords, did, pgtt } = pasidEntryFor(unit, domain);
  for (let i = PASID_ENTRY_QWORDS - 1; i >= 1; i--) await unit.p.write64(at + i * QWORD, qwords[i]!);
  await unit.p.write64(at, qwords[0]!);
  table.record(RID_PASID, { did, pgtt });
  unit.log.push(`  ${dev.name} PASID ${RID_PASID}: ${pgttName(pgtt)} DID ${did} (entry 0x${at.toString(16)}: 0x${qwords[0]!.toString(16)} 0x${qwords[1]!.toString(16)}` +
    `${qwords[2] ? ` 0x${qwords[2].toString(16)}` : ''})`);
  if (unit.cachingMode) {
    await unit.flushPasidCache('attach-pasid-cache', { kind: 'pasid', did, pasid: RID_PASID });
    await unit.flushPasidIotlb('attach-iotlb', { kind: 'pasid', did, pasid: RID_PASID });
  } else {
    await unit.flushWriteBuffer();
  }
}

/**
 * Tears RID_PASID of `dev` down (intel_pasid_tear_down_entry): P cleared,
 * PASID-selective PASID-cache invalidation, the IOTLB invalidation matching
 * the old PGTT, then the entry cleared.  (A device-TLB flush would follow
 * for ATS devices; none are in use.)
 */
export async function tearDownPasidEntry(unit: VtdUnit, dev: DeviceHandle): Promise<void> {
  const table = dev.pasidTable;
  const old = table?.at(RID_PASID);
  if (!table || !old) return;
  const at = await table.entry(RID_PASID);
  const q0 = await unit.p.read64(at);
  await unit.p.write64(at, q0 & ~PasidEntry.P);
  await unit.flushPasidCache('detach-pasid-cache', { kind: 'pasid', did: old.did, pasid: RID_PASID });
  if (old.pgtt === Pgtt.SECOND_STAGE) await unit.flushIotlb('detach-iotlb', { kind: 'domain', did: old.did });
  else await unit.flushPasidIotlb('detach-iotlb', { kind: 'pasid', did: old.did, pasid: RID_PASID });
  for (let i = 0; i < PASID_ENTRY_QWORDS; i++) await unit.p.write64(at + i * QWORD, 0n);
  table.record(RID_PASID, undefined);
  unit.log.push(`  ${dev.name} PASID ${RID_PASID}: torn down (was ${pgttName(old.pgtt)} DID ${old.did})`);
}

/** "first-stage" / "second-stage" / "pass-through". */
export function pgttName(pgtt: number): string {
  return pgtt === Pgtt.FIRST_STAGE ? 'first-stage' : pgtt === Pgtt.SECOND_STAGE ? 'second-stage' : pgtt === Pgtt.PASS_THROUGH ? 'pass-through' : `PGTT ${pgtt}`;
}
