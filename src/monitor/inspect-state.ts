/**
 * The inspector's views of a VT-d unit's state (everything but the
 * translation path, inspect-path.ts):
 *
 *   caches   the IOTLB (key: source ID, PASID, page; value: DID, PGTT,
 *            output, permissions, FPD), the context cache (per requester
 *            address space: the cached entry), the PASID cache (the model
 *            keeps none: PASID entries are re-read on every IOTLB miss, as
 *            QEMU 11.1 does) and the interrupt entry cache (index: IRTE)
 *   queue    IQA as the guest reads it, the latched base and size, QS, DW,
 *            head and tail, the pending descriptors between them decoded by
 *            the unit's own decoder (descriptors.ts), IQE / ITE / ICE, IQER
 *   faults   FSTS decoded, FECTL, and every fault recording register with
 *            F set: source ID, PASID, address (or IR index), access type and
 *            the reason by name
 *   ir       IRTA as written and as latched, IRES, and every present IRTE of
 *            the table decoded (remapped or posted format, reserved bits by
 *            the unit's rule, whether it is cached), with the posted-
 *            interrupt descriptor of each posted-format entry
 *
 * Everything is read; nothing here changes the unit or guest memory.
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { Ecap, MAMV } from '../hw/intel-iommu/caps.js';
import { decodeDescriptor, DescType, type InvDescriptor } from '../hw/intel-iommu/descriptors.js';
import { frcdOffset } from '../hw/intel-iommu/faults.js';
import { decodeIrte, irteDestination, irteHasReservedBits, newIrte } from '../hw/intel-iommu/irte.js';
import { Pid } from '../hw/intel-iommu/posted-interrupts.js';
import { EventCtl, Frcd, Fsts, Iqa, Irta, Reg } from '../hw/intel-iommu/reg-layout.js';
import { NO_PASID } from '../memory/iommu.js';
import { sourceId } from '../hw/intel-iommu/translator.js';
import { bdf, faultReasonName, hex64, hexShort, joinHalves, readOnlyMemory, readQwords } from './inspect-common.js';
import { legacyContextFields, permText, pgttName, smContextFields } from './inspect-entries.js';
import { Iqei } from '../hw/intel-iommu/queue-errors.js';

/** One IOTLB entry. */
export interface IotlbEntryView {
  readonly sid: number;
  readonly requester: string;
  readonly pasid: number | null;
  readonly did: number;
  readonly pgtt: string;
  readonly iova: string;
  readonly size: number;
  readonly output: string;
  readonly perm: string;
  readonly fpd: boolean;
}

/** One cached context entry. */
export interface ContextCacheView {
  readonly requester: string;
  readonly sid: number;
  readonly mode: 'legacy' | 'scalable';
  readonly raw: readonly string[];
  readonly fields: Readonly<Record<string, boolean | number | string>>;
}

/** A decoded IRTE. */
export interface IrteView {
  readonly index: number;
  readonly raw: readonly string[];
  readonly present: boolean;
  readonly format: 'remapped' | 'posted';
  readonly fields: Readonly<Record<string, boolean | number | string>>;
  readonly reserved: boolean;
  readonly cached: boolean;
  /** The posted-interrupt descriptor (posted format), or null. */
  readonly pid: PidView | null;
}

/** A posted-interrupt descriptor. */
export interface PidView {
  readonly addr: string;
  readonly readable: boolean;
  /** Vectors whose PIR bit is set. */
  readonly pir: readonly number[];
  readonly ON: boolean;
  readonly SN: boolean;
  readonly NV: number;
  readonly NDST: string;
}

/** The caches. */
export interface CachesView {
  readonly iotlb: readonly IotlbEntryView[];
  readonly contextCache: readonly ContextCacheView[];
  readonly pasidCache: string;
  readonly iec: readonly IrteView[];
}

/** One descriptor of the invalidation queue. */
export interface DescriptorView {
  readonly index: number;
  readonly addr: string;
  readonly raw: readonly string[];
  readonly type: number;
  readonly name: string;
  /** Decoded fields, or null when the unit would refuse it. */
  readonly fields: Readonly<Record<string, boolean | number | string>> | null;
  /** Why the unit refuses it ('' when accepted). */
  readonly error: string;
}

/** The invalidation queue. */
export interface QueueView {
  readonly enabled: boolean;
  readonly iqa: string;
  readonly base: string;
  readonly qs: number;
  readonly dw: boolean;
  readonly wide: boolean;
  readonly size: number;
  readonly iqh: string;
  readonly iqt: string;
  readonly head: number;
  readonly tail: number;
  readonly lastType: string;
  /** Error bits of FSTS that belong to the queue, by name. */
  readonly errors: readonly string[];
  /** IQER.IQEI by name (x-iqer), or null. */
  readonly iqei: string | null;
  readonly pending: readonly DescriptorView[];
  readonly note: string;
}

/** One fault record. */
export interface FaultRecordView {
  readonly index: number;
  readonly sid: number;
  readonly requester: string;
  readonly pasid: number | null;
  readonly addr: string | null;
  readonly irIndex: number | null;
  readonly type: 'read' | 'write';
  readonly reason: number;
  readonly name: string;
}

/** FSTS, FECTL and the fault records. */
export interface FaultsView {
  readonly fsts: string;
  readonly bits: readonly string[];
  readonly fri: number;
  readonly fectl: { readonly IM: boolean; readonly IP: boolean };
  readonly nfr: number;
  readonly records: readonly FaultRecordView[];
}

/** The interrupt-remapping table. */
export interface IrView {
  readonly enabled: boolean;
  readonly irta: string;
  readonly base: string;
  readonly entries: number;
  readonly eime: boolean;
  readonly posted: boolean;
  readonly table: readonly IrteView[];
  readonly note: string;
}

/** Names of FSTS bits, high to low. */
export const FSTS_NAMES: readonly (readonly [string, number])[] = [
  ['PRO', Fsts.PRO], ['ITE', Fsts.ITE], ['ICE', Fsts.ICE], ['IQE', Fsts.IQE], ['APF', Fsts.APF], ['AFO', Fsts.AFO], ['PPF', Fsts.PPF], ['PFO', Fsts.PFO],
];

const DESC_NAMES = new Map<number, string>(Object.entries(DescType).map(([n, t]) => [t, n]));
const IQEI_NAMES = new Map<number, string>(Object.entries(Iqei).map(([n, v]) => [v, n]));
const DLM_NAMES = ['fixed', 'lowest-priority', 'SMI', 'reserved(3)', 'NMI', 'INIT', 'reserved(6)', 'ExtINT'];
const SVT_NAMES = ['none', 'requester-id', 'bus-range', 'reserved'];

const namesOf = (v: number, names: readonly (readonly [string, number])[]): string[] => names.filter(([, b]) => (v & b) !== 0).map(([n]) => n);
const dwordsHex = (w: readonly number[]): string[] => {
  const out: string[] = [];
  for (let i = 0; i < w.length; i += 2) out.push(joinHalves(w[i]!, w[i + 1]!).toString(16).padStart(16, '0'));
  return out;
};

/** The name of a descriptor type (`Iotlb`, `Wait`...), or `type N`. */
export function descriptorName(type: number): string {
  return DESC_NAMES.get(type) ?? `type ${type}`;
}

/** A descriptor's fields (everything but its type), addresses in hex. */
function descriptorFields(d: InvDescriptor): Record<string, boolean | number | string> {
  const out: Record<string, boolean | number | string> = {};
  for (const [k, v] of Object.entries(d)) {
    if (k === 'type') continue;
    out[k] = k === 'addr' || k === 'statusAddr' || k === 'statusData' ? hexShort(v as number) : k === 'sid' || k === 'rid' ? bdf(v as number) : (v as boolean | number | string);
  }
  return out;
}

/** The caches of `u`. */
export function inspectCaches(u: IntelIommu): CachesView {
  const iotlb = [...u.iotlb.entries()]
    .map((e) => ({
      sid: e.sid,
      requester: bdf(e.sid),
      pasid: e.pasid === NO_PASID ? null : e.pasid,
      did: e.did,
      pgtt: e.pgtt === 0 ? 'legacy' : pgttName(e.pgtt),
      iova: hex64(e.iova),
      size: e.size,
      output: hex64(e.translated),
      perm: permText(e.perm),
      fpd: e.fpd,
    }))
    .sort((a, b) => a.sid - b.sid || (a.pasid ?? -1) - (b.pasid ?? -1) || (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  const contextCache: ContextCacheView[] = [];
  const seen = new Set<number>();
  for (const t of u.translators()) {
    const cc = t.cachedContext();
    const sid = sourceId(t.requester);
    if (!cc || seen.has(sid)) continue;
    seen.add(sid);
    const qs = cc.scalable ? [cc.sm.val0, cc.sm.val1, cc.sm.val2, cc.sm.val3] : [cc.legacy.lo, cc.legacy.hi];
    const fields = cc.scalable ? smContextFields(qs, u.walkRules.hawHiMask).fields : legacyContextFields(qs, u.walkRules.hawHiMask).fields;
    contextCache.push({
      requester: bdf(sid), sid, mode: cc.scalable ? 'scalable' : 'legacy',
      raw: qs.map((q) => joinHalves(q.lo, q.hi).toString(16).padStart(16, '0')), fields,
    });
  }
  contextCache.sort((a, b) => a.sid - b.sid);
  const iec = u.remapper.cachedIrtes().map((c) => irteView(u, c.index, c.words, true, false));
  return { iotlb, contextCache, pasidCache: 'none: PASID entries are re-read on every IOTLB miss (as QEMU 11.1)', iec };
}

/** The invalidation queue of `u`. */
export function inspectQueue(u: IntelIommu): QueueView {
  const q = u.queue;
  const regs = u.regs;
  const iqaLo = q.iqaLow();
  const wide = q.wide;
  const size = q.sizeEntries;
  const fsts = regs.get32(Reg.FSTS);
  const errors = namesOf(fsts, FSTS_NAMES.filter(([n]) => n === 'IQE' || n === 'ITE' || n === 'ICE'));
  const iqei = u.config.raw['x-iqer'] === true && (fsts & Fsts.IQE) !== 0 ? (IQEI_NAMES.get(regs.get32(Reg.IQER) & 0xf) ?? 'unknown') : null;
  const pending: DescriptorView[] = [];
  let note = '';
  if (size === 0) note = 'queue never enabled: no latched base or size';
  else if (q.tailIndex >= size) note = `tail ${q.tailIndex} beyond the queue (${size} entries)`;
  else {
    const mem = readOnlyMemory(u.memory);
    const bytes = wide ? 32 : 16;
    const opts = { mamv: Number(MAMV), wide, pds: (u.extendedCapability & Ecap.PDS) !== 0n };
    for (let i = q.headIndex, n = 0; i !== q.tailIndex && n < size; i = (i + 1) % size, n++) {
      const at = q.base + i * bytes;
      const qw = readQwords(mem, at, bytes / 8);
      if (!qw) {
        pending.push({ index: i, addr: hex64(at), raw: [], type: 0, name: 'unreadable', fields: null, error: 'fetch error (not RAM)' });
        continue;
      }
      const upper = wide && (qw[2]!.lo | qw[2]!.hi | qw[3]!.lo | qw[3]!.hi) !== 0;
      const r = decodeDescriptor(qw[0]!.lo, qw[0]!.hi, qw[1]!.lo, qw[1]!.hi, opts, upper);
      const type = r.ok ? r.desc.type : r.type;
      pending.push({
        index: i,
        addr: hex64(at),
        raw: qw.map((x) => joinHalves(x.lo, x.hi).toString(16).padStart(16, '0')),
        type,
        name: descriptorName(type),
        fields: r.ok ? descriptorFields(r.desc) : null,
        error: r.ok ? '' : r.error,
      });
    }
  }
  return {
    enabled: q.enabled,
    iqa: hex64(joinHalves(iqaLo, q.iqaHigh())),
    base: hex64(q.base),
    qs: iqaLo & Iqa.QS_MASK,
    dw: (iqaLo & Iqa.DW) !== 0,
    wide,
    size,
    iqh: hex64(regs.get64(Reg.IQH)),
    iqt: hex64(regs.get64(Reg.IQT)),
    head: q.headIndex,
    tail: q.tailIndex,
    lastType: q.lastDescriptorType === 0 ? 'none' : descriptorName(q.lastDescriptorType),
    errors,
    iqei,
    pending,
    note,
  };
}

/** FSTS, FECTL and the pending fault records of `u`. */
export function inspectFaults(u: IntelIommu): FaultsView {
  const regs = u.regs;
  const fsts = regs.get32(Reg.FSTS);
  const fectl = regs.get32(Reg.FECTL);
  const records: FaultRecordView[] = [];
  for (let i = 0; i < u.config.nfr; i++) {
    const off = frcdOffset(i);
    const lo = regs.get32(off);
    const hi = regs.get32(off + 4);
    const w2 = regs.get32(off + 8);
    const w3 = regs.get32(off + 12);
    if ((w3 & Frcd.F) === 0) continue;
    const reason = w3 & Frcd.FR_MASK;
    const ir = reason >= 0x20 && reason <= 0x26;
    const sid = w2 & Frcd.SID_MASK;
    records.push({
      index: i,
      sid,
      requester: bdf(sid),
      pasid: (w2 & Frcd.PP) !== 0 ? (w3 >>> Frcd.PV_SHIFT) & Frcd.PV_MASK : null,
      addr: ir ? null : hex64(joinHalves(lo, hi)),
      irIndex: ir ? hi >>> Frcd.FI_SHIFT : null,
      type: (w3 & Frcd.T) !== 0 ? 'read' : 'write',
      reason,
      name: faultReasonName(reason),
    });
  }
  return {
    fsts: hexShort(fsts),
    bits: namesOf(fsts, FSTS_NAMES),
    fri: (fsts & Fsts.FRI_MASK) >>> Fsts.FRI_SHIFT,
    fectl: { IM: (fectl & EventCtl.IM) !== 0, IP: (fectl & EventCtl.IP) !== 0 },
    nfr: u.config.nfr,
    records,
  };
}

/** One IRTE decoded from its four dwords. */
function irteView(u: IntelIommu, index: number, w: readonly number[], cached: boolean, withPid: boolean): IrteView {
  const e = decodeIrte(w[0]!, w[1]!, w[2]!, w[3]!, newIrte());
  const eime = u.remapper.table.eime;
  const common = { FPD: e.fpd, vector: hexShort(e.vector), SID: bdf(e.sid), SQ: e.sq, SVT: `${e.svt} (${SVT_NAMES[e.svt]})` };
  const fields = e.posted
    ? { ...common, URG: e.urgent, PDA: hexShort(e.pidAddr) }
    : {
        ...common,
        DM: e.destLogical ? 'logical' : 'physical',
        RH: e.redirHint,
        TM: e.levelTriggered ? 'level' : 'edge',
        DLM: `${e.deliveryMode} (${DLM_NAMES[e.deliveryMode]})`,
        DST: hexShort(e.dst),
        dest: irteDestination(e, eime),
      };
  return {
    index,
    raw: dwordsHex(w),
    present: e.present,
    format: e.posted ? 'posted' : 'remapped',
    fields,
    reserved: irteHasReservedBits(w[0]!, w[1]!, w[2]!, w[3]!, u.posted !== null),
    cached,
    pid: withPid && e.posted ? pidView(u, e.pidAddr) : null,
  };
}

/** The posted-interrupt descriptor at `addr`. */
function pidView(u: IntelIommu, addr: number): PidView {
  const q = readQwords(readOnlyMemory(u.memory), addr, Pid.SIZE / 8);
  if (!q) return { addr: hex64(addr), readable: false, pir: [], ON: false, SN: false, NV: 0, NDST: '0x0' };
  const pir: number[] = [];
  for (let v = 0; v < 256; v++) {
    const word = q[v >>> 6]!;
    const half = (v & 63) < 32 ? word.lo : word.hi;
    if (((half >>> (v & 31)) & 1) !== 0) pir.push(v);
  }
  const ctl = q[Pid.CONTROL / 8]!.lo;
  return { addr: hex64(addr), readable: true, pir, ON: (ctl & Pid.ON) !== 0, SN: (ctl & Pid.SN) !== 0, NV: (ctl >>> 16) & 0xff, NDST: hexShort(q[Pid.NDST / 8 | 0]!.hi >>> 0) };
}

/** The interrupt-remapping table of `u`: every present entry, with what the IEC holds. */
export function inspectIr(u: IntelIommu): IrView {
  const regs = u.regs;
  const t = u.remapper.table;
  const cached = new Set(u.remapper.cachedIrtes().map((c) => c.index));
  const table: IrteView[] = [];
  let note = t.entries === 0 ? 'no table latched (SIRTP never set)' : '';
  if (t.entries > 0) {
    const raw = readQwords(readOnlyMemory(u.memory), t.base, t.entries * 2);
    if (!raw) note = 'table unreadable (not RAM)';
    else {
      for (let i = 0; i < t.entries; i++) {
        const lo = raw[2 * i]!;
        const hi = raw[2 * i + 1]!;
        if ((lo.lo & 1) === 0) continue;
        table.push(irteView(u, i, [lo.lo, lo.hi, hi.lo, hi.hi], cached.has(i), true));
      }
    }
  }
  const irtaLo = regs.get32(Reg.IRTA);
  return {
    enabled: u.remapper.enabled,
    irta: hex64(joinHalves(irtaLo, regs.get32(Reg.IRTA + 4))),
    base: hex64(t.base),
    entries: t.entries,
    eime: t.eime,
    posted: u.posted !== null,
    table,
    note: note === '' && (irtaLo & Irta.EIME) !== 0 && !t.eime ? 'IRTA.EIME set but the unit has eim=off: xAPIC destinations' : note,
  };
}
