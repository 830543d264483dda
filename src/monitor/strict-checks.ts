/**
 * Strict programming-model checks of one VT-d unit (`-device
 * intel-iommu,x-strict=on`): warnings, never faults, for what the VT-d spec
 * calls a programming error or undefined and the model (like hardware and
 * QEMU) tolerates silently.  The unit's behaviour does not change; the
 * checker only listens (register writes, translations, interrupts,
 * invalidations) and watches guest stores to the entries it saw in use.
 *
 * Rules (ids and spec sections in strict-rules.ts):
 *  - registers: TE set before any SRTP since reset; RTADDR (IRTA) holding a
 *    value no SRTP (SIRTP) latched while translation (remapping) is used or
 *    enabled; QIE set with IQT != IQH; IQA written while QI is on; a
 *    register-based context or IOTLB invalidation while QI is on; interrupt
 *    remapping used or enabled after SIRTP without a global IEC invalidation.
 *    The last one applies when the interrupt entry cache may hold something:
 *    an interrupt was remapped since reset or the last global IEC
 *    invalidation (kvm-unit-tests sets SIRTP and IRE on a fresh unit and
 *    never invalidates: nothing can be cached).  The SRTP-without-global-
 *    invalidations rule has no case here: the unit advertises CAP.ESRTPS
 *    (SRTP invalidates every cache itself);
 *  - entries (seen on the path of a request that was not an IOTLB hit):
 *    reserved fields of scalable-mode context, PASID directory and PASID
 *    entries the unit does not fault on (strict-reserved.ts); domain ID 0
 *    with CAP.CM=1; present context or PASID entries modified in place, or
 *    rewritten after a clear without the invalidation (strict-entries.ts).
 *
 * Each distinct cause warns once (rule and register value, or rule, entry
 * address and value), not per DMA.  Warnings go to `warnings`, the unit's
 * 'strict' event and the `vtd_strict_warning` trace event; `summary()` gives
 * the exit lines.  A reset is noticed when GSTS loses RTPS or IRTPS (which
 * only a reset clears).
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import type { InterruptRemapEvent, InvalidateEvent, RegisterWriteEvent, StrictWarning, TranslateEvent } from '../hw/intel-iommu/events.js';
import { Cap } from '../hw/intel-iommu/caps.js';
import { Gcmd, Gsts, Reg } from '../hw/intel-iommu/reg-layout.js';
import type { ChunkedRam } from '../memory/ram.js';
import { hex64, hexShort } from './inspect-common.js';
import { inspectPath } from './inspect-path.js';
import { didOf, EntryTracker, type EntryFinding } from './strict-entries.js';
import { pasidDirReserved, pasidEntryReserved, smContextReserved, type ReservedCaps, type ReservedHit } from './strict-reserved.js';
import { STRICT_RULES, type StrictRuleId } from './strict-rules.js';

/** Warnings kept (the count goes on beyond). */
const KEPT_WARNINGS = 10_000;
const STICKY = Gsts.RTPS | Gsts.IRTPS;
/** CCMD.ICC and IOTLB.IVT: bit 63 of the 64-bit register, bit 31 of its high dword. */
const INVALIDATE_BIT_64 = 1n << 63n;
const INVALIDATE_BIT_HI = 1n << 31n;
const REGISTER_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(Reg).map(([k, v]) => [v, k]));

type Subject = StrictWarning['what'];

const rawHex = (v: readonly bigint[]): string[] => v.map((q) => hex64(q));

/** The strict checker attached to one unit. */
export class StrictChecker {
  private readonly kept: StrictWarning[] = [];
  private count = 0;
  private readonly seen = new Set<string>();
  private readonly entries: EntryTracker;
  private readonly caps: ReservedCaps;
  /** GSTS after the last event handled. */
  private gsts: number;
  /** RTADDR / IRTA as the last SRTP / SIRTP latched them. */
  private latchedRtaddr: bigint;
  private latchedIrta: bigint;
  /** An interrupt was remapped since reset or the last global IEC invalidation. */
  private iecMayHold = false;
  /** SIRTP done while the IEC may hold entries, and no global IEC invalidation yet. */
  private iecPending = false;
  /** SIRTP operations seen (tells one SIRTP's missing IEC invalidation from the next). */
  private sirtps = 0;
  /** Request paths checked, with the RAM write count then: unchanged memory needs no second look. */
  private readonly checked = new Map<string, number>();
  private readonly rams: readonly ChunkedRam[];
  private paths = 0;
  private readonly listeners: {
    translate: (e: TranslateEvent) => void;
    invalidate: (e: InvalidateEvent) => void;
    interruptRemap: (e: InterruptRemapEvent) => void;
    registerWrite: (e: RegisterWriteEvent) => void;
  };

  constructor(
    readonly unit: IntelIommu,
    rams: readonly ChunkedRam[] = [],
  ) {
    this.rams = rams;
    this.entries = new EntryTracker(unit.memory, (f) => this.onEntryFinding(f));
    this.caps = { ecap: unit.extendedCapability, haw: unit.haw };
    this.gsts = unit.regs.get32(Reg.GSTS);
    this.latchedRtaddr = (this.gsts & Gsts.RTPS) !== 0 ? unit.regs.get64(Reg.RTADDR) : 0n;
    this.latchedIrta = (this.gsts & Gsts.IRTPS) !== 0 ? unit.regs.get64(Reg.IRTA) : 0n;
    this.listeners = {
      translate: (e) => this.onTranslate(e),
      invalidate: (e) => this.onInvalidate(e),
      interruptRemap: (e) => this.onInterrupt(e),
      registerWrite: (e) => this.onRegisterWrite(e),
    };
    const ev = unit.events;
    ev.on('translate', this.listeners.translate);
    ev.on('invalidate', this.listeners.invalidate);
    ev.on('interruptRemap', this.listeners.interruptRemap);
    ev.on('registerWrite', this.listeners.registerWrite);
  }

  /** Detaches from the unit and its RAM. */
  close(): void {
    const ev = this.unit.events;
    ev.off('translate', this.listeners.translate);
    ev.off('invalidate', this.listeners.invalidate);
    ev.off('interruptRemap', this.listeners.interruptRemap);
    ev.off('registerWrite', this.listeners.registerWrite);
    this.entries.close();
  }

  /** Warnings so far (the first KEPT_WARNINGS), guest stores up to now included. */
  get warnings(): StrictWarning[] {
    this.entries.settle();
    return this.kept;
  }

  /** Warnings made so far (beyond the kept ones too). */
  get total(): number {
    this.entries.settle();
    return this.count;
  }

  /** How much the checker saw: request paths checked, context / PASID entries tracked. */
  get coverage(): { readonly paths: number; readonly entries: number } {
    return { paths: this.paths, entries: this.entries.size };
  }

  /** The exit summary: a count line, then one line per warning kept. */
  summary(): string[] {
    const warnings = this.warnings;
    const lines = [`intel-iommu strict: ${this.count} warning${this.count === 1 ? '' : 's'}`];
    for (const w of warnings) lines.push(`  ${w.message}`);
    return lines;
  }

  private onRegisterWrite(e: RegisterWriteEvent): void {
    this.entries.settle();
    const u = this.unit;
    const now = u.regs.get32(Reg.GSTS);
    let prev = this.gsts;
    if ((prev & STICKY & ~now) !== 0) {
      this.onReset();
      prev = 0;
    }
    const qiOn = (now & Gsts.QIES) !== 0;
    switch (e.offset) {
      case Reg.GCMD:
        this.onGcmd(Number(e.value & 0xffff_ffffn), prev, now);
        break;
      case Reg.IQA:
      case Reg.IQA + 4:
        if (qiOn) this.warn('iqa-while-qi', this.reg(Reg.IQA), `IQA ${hex64(u.regs.get64(Reg.IQA))}`);
        break;
      case Reg.CCMD:
      case Reg.CCMD_HI:
      case Reg.IOTLB:
      case Reg.IOTLB_HI: {
        // The command goes with the high dword: bit 63 of a 64-bit write, bit 31 of a write to the high half.
        const hi = e.offset === Reg.CCMD_HI || e.offset === Reg.IOTLB_HI;
        const go = hi ? (e.value & INVALIDATE_BIT_HI) !== 0n : e.size === 8 && (e.value & INVALIDATE_BIT_64) !== 0n;
        const base = e.offset === Reg.CCMD || e.offset === Reg.CCMD_HI ? Reg.CCMD : Reg.IOTLB;
        if (go && qiOn) this.warn('register-invalidation-while-qi', this.reg(base), `${base === Reg.CCMD ? 'CCMD' : 'IOTLB'} ${hex64(e.value)}`);
        break;
      }
    }
    this.gsts = now;
  }

  private onGcmd(value: number, prev: number, now: number): void {
    const u = this.unit;
    const turnedOn = (bit: number): boolean => (prev & bit) === 0 && (now & bit) !== 0;
    if ((value & Gcmd.SRTP) !== 0) {
      this.latchedRtaddr = u.regs.get64(Reg.RTADDR);
      this.entries.rootTableSet();
      this.checked.clear();
    }
    if ((value & Gcmd.SIRTP) !== 0) {
      this.latchedIrta = u.regs.get64(Reg.IRTA);
      this.iecPending = this.iecMayHold;
      this.sirtps++;
    }
    if (turnedOn(Gsts.TES)) {
      if ((now & Gsts.RTPS) === 0) this.warn('te-before-srtp', this.reg(Reg.GCMD), 'TE');
      else this.checkRtaddr();
    }
    if (turnedOn(Gsts.QIES)) {
      const iqt = u.regs.get64(Reg.IQT);
      if (iqt !== 0n) this.warn('qie-tail-nonzero', this.reg(Reg.IQT), `IQT ${hex64(iqt)}`, `IQT ${hexShort(iqt)}, IQH 0x0 before enabling`);
    }
    if (turnedOn(Gsts.IRES)) this.checkIr('IRE set');
  }

  private onReset(): void {
    this.latchedRtaddr = 0n;
    this.latchedIrta = 0n;
    this.iecMayHold = false;
    this.iecPending = false;
    this.checked.clear();
  }

  /** RTADDR differs from what SRTP latched: translation runs on the old root table. */
  private checkRtaddr(): void {
    const now = this.unit.regs.get64(Reg.RTADDR);
    if (now !== this.latchedRtaddr) {
      this.warn('rtaddr-without-srtp', this.reg(Reg.RTADDR), `RTADDR ${hex64(now)}`, `RTADDR ${hexShort(now)}, latched ${hexShort(this.latchedRtaddr)}`);
    }
  }

  /** Interrupt remapping used (or enabled): IRTA latched, IEC invalidated after SIRTP. */
  private checkIr(how: string): void {
    const irta = this.unit.regs.get64(Reg.IRTA);
    if (irta !== this.latchedIrta) {
      this.warn('irta-without-sirtp', this.reg(Reg.IRTA), `IRTA ${hex64(irta)}`, `${how}: IRTA ${hexShort(irta)}, latched ${hexShort(this.latchedIrta)}`);
    }
    if (this.iecPending) {
      this.iecPending = false;
      this.warn('ire-without-iec', this.reg(Reg.GCMD), `SIRTP ${this.sirtps}`, how);
    }
  }

  private onInvalidate(e: InvalidateEvent): void {
    this.entries.invalidated(e, this.unit.scalable);
    if (e.cache === 'iec' && e.granularity === 'global') {
      this.iecPending = false;
      this.iecMayHold = false;
    }
  }

  private onInterrupt(e: InterruptRemapEvent): void {
    this.entries.settle();
    this.checkIr(`interrupt remapped (index ${e.index})`);
    this.iecMayHold = true;
  }

  private onTranslate(e: TranslateEvent): void {
    this.entries.settle();
    const u = this.unit;
    if (!u.dmarEnabled) return;
    this.checkRtaddr();
    if (e.cached || e.kind === 'translated') return;
    const pasid = e.pasid ?? null;
    const key = `${e.sid}:${pasid}`;
    let writes = 0;
    for (const r of this.rams) writes += r.writes;
    if (this.rams.length > 0 && this.checked.get(key) === writes) return;
    this.checked.set(key, writes);
    this.checkPath(e.sid, pasid);
  }

  /** The root-to-PASID-entry path of a request: reserved fields, DID 0 under CM, entries to track. */
  private checkPath(sid: number, pasid: number | null): void {
    const u = this.unit;
    const p = inspectPath(u, { sid, pasid, iova: null });
    this.paths++;
    const cm = (u.capability & Cap.CM) !== 0n;
    for (const v of p.entries) {
      if (!v.readable || (v.kind !== 'context' && v.kind !== 'pasid-dir' && v.kind !== 'pasid')) continue;
      const raw = v.raw.map((h) => BigInt(`0x${h}`));
      const gpa = Number(v.addr);
      const present = ((raw[0] ?? 0n) & 1n) !== 0n;
      if (!present) continue;
      const subject: Subject = { entry: v.kind === 'context' && u.scalable ? 'sm-context' : v.kind, gpa, raw: rawHex(raw) };
      if (v.kind === 'context' && u.scalable) this.reserved('reserved-sm-context', subject, smContextReserved(raw, this.caps));
      if (v.kind === 'pasid-dir') this.reserved('reserved-pasid-dir', subject, pasidDirReserved(raw, this.caps));
      if (v.kind === 'pasid') this.reserved('reserved-pasid-entry', subject, pasidEntryReserved(raw, this.caps));
      if (v.kind === 'pasid-dir') continue;
      const kind = v.kind as 'context' | 'pasid';
      const did = didOf(kind, raw);
      if (cm && did === 0) this.warn('did-zero-caching-mode', subject, `${gpa}:${subject.raw.join(':')}`, `DID 0 in the ${subject.entry} entry`);
      this.entries.track(kind, gpa, raw.length, sid, pasid ?? 0, did, raw);
    }
  }

  private reserved(rule: StrictRuleId, subject: Subject, hits: readonly ReservedHit[]): void {
    if (hits.length === 0 || !('entry' in subject)) return;
    const detail = hits.map((h) => `${h.field} = ${hexShort(h.bits)} in qword ${h.qword}`).join(', ');
    this.warn(rule, subject, `${subject.gpa}:${subject.raw.join(':')}`, detail);
  }

  private onEntryFinding(f: EntryFinding): void {
    const subject: Subject = { entry: f.kind === 'context' && this.unit.scalable ? 'sm-context' : f.kind, gpa: f.gpa, raw: rawHex(f.now) };
    this.warn(f.rule, subject, `${f.gpa}:${subject.raw.join(':')}`, `was ${rawHex(f.old).join(':')}`);
  }

  private reg(offset: number): Subject {
    return { register: REGISTER_NAMES[offset] ?? hexShort(offset), offset };
  }

  /** One warning per distinct cause: `cause` tells causes of the same rule apart. */
  private warn(rule: StrictRuleId, what: Subject, cause: string, detail = ''): void {
    const key = `${rule}|${cause}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const r = STRICT_RULES[rule];
    const where = 'register' in what
      ? `${what.register} (${hexShort(what.offset)})`
      : `${what.entry} entry at ${hex64(what.gpa)} (${what.raw.join(':')})`;
    const message = `strict: ${rule}: ${where}: ${r.text}${detail ? `; ${detail}` : ''} (VT-d spec ${r.section})`;
    const w: StrictWarning = { seq: ++this.count, rule, what, section: r.section, message };
    if (this.kept.length < KEPT_WARNINGS) this.kept.push(w);
    const tracer = this.unit.tracer;
    if (tracer.enabled('vtd_strict_warning')) {
      tracer.trace('vtd_strict_warning', { rule, section: r.section, ...('register' in what ? { reg: what.offset } : { entry: what.entry, gpa: what.gpa }) });
    }
    this.unit.events.emit('strict', w);
  }
}

const attached = new WeakMap<IntelIommu, StrictChecker>();

/** Attaches a strict checker to `unit` (once), watching `rams` for guest stores to the entries in use. */
export function attachStrict(unit: IntelIommu, rams: readonly ChunkedRam[]): StrictChecker {
  let s = attached.get(unit);
  if (!s) {
    s = new StrictChecker(unit, rams);
    attached.set(unit, s);
  }
  return s;
}

/** The strict checker attached to `unit`, if any. */
export function strictOf(unit: IntelIommu): StrictChecker | undefined {
  return attached.get(unit);
}
