/**
 * The VT-d inspector's API: `inspectIommu(machine or unit, options)` gives
 * a typed, JSON-ready record of every Intel VT-d unit (plain objects,
 * numbers, strings, booleans and null only; 64-bit values and addresses as
 * hex strings), made of the views the options ask for:
 *
 *   summary  registers (VER, CAP, ECAP, GSTS, FSTS, RTADDR, IQ registers)
 *            and each requester address space's state     (always)
 *   path     one request's translation path (inspect-path.ts)
 *   caches, queue, faults, ir                          (inspect-state.ts)
 *
 * `formatInspection` (inspect-text.ts) turns it into the text that
 * `info iommu` prints.  Inspecting never changes the unit or guest memory.
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { Fsts, Gsts, Reg, Rtaddr } from '../hw/intel-iommu/reg-layout.js';
import { sourceId } from '../hw/intel-iommu/translator.js';
import type { Machine } from '../machine/q35.js';
import { NO_PASID } from '../memory/iommu.js';
import { bdf, hex64 } from './inspect-common.js';
import { inspectPath, type PathInspection, type PathQuery } from './inspect-path.js';
import { FSTS_NAMES, inspectCaches, inspectFaults, inspectIr, inspectQueue, type CachesView, type FaultsView, type IrView, type QueueView } from './inspect-state.js';

/** The views besides the summary. */
export type InspectView = 'caches' | 'queue' | 'faults' | 'ir';

/** Every view, in the order they are printed. */
export const ALL_VIEWS: readonly InspectView[] = ['caches', 'queue', 'faults', 'ir'];

/** What to inspect. */
export interface InspectOptions {
  /** Views to add to the summary (default none). */
  readonly views?: readonly InspectView[];
  /** A request whose translation path to show. */
  readonly path?: PathQuery;
}

/** GSTS bits by name, high to low. */
export const GSTS_NAMES: readonly (readonly [string, number])[] = [
  ['TES', Gsts.TES], ['RTPS', Gsts.RTPS], ['FLS', Gsts.FLS], ['AFLS', Gsts.AFLS], ['WBFS', Gsts.WBFS],
  ['QIES', Gsts.QIES], ['IRES', Gsts.IRES], ['IRTPS', Gsts.IRTPS], ['CFIS', Gsts.CFIS],
];

/** The summary of a unit. */
export interface SummaryView {
  readonly ver: number;
  readonly cap: string;
  readonly ecap: string;
  readonly gsts: number;
  readonly gstsBits: readonly string[];
  readonly fsts: number;
  readonly fstsBits: readonly string[];
  readonly fri: number;
  readonly rtaddr: string;
  /** The mode RTADDR.SMT asks for (takes effect at the next SRTP). */
  readonly rtaddrMode: 'legacy' | 'scalable';
  readonly iqh: string;
  readonly iqt: string;
  readonly iqa: string;
  readonly addressSpaces: readonly { readonly requester: string; readonly pasid: number | null; readonly state: 'untranslated' | 'pass-through' | 'translated' }[];
}

/** One unit. */
export interface UnitInspection {
  readonly id: string;
  /** Where its register window is mapped (null: not mapped). */
  readonly base: string | null;
  readonly mode: 'legacy' | 'scalable';
  readonly translation: boolean;
  readonly summary: SummaryView;
  readonly path?: PathInspection;
  readonly caches?: CachesView;
  readonly queue?: QueueView;
  readonly faults?: FaultsView;
  readonly ir?: IrView;
}

/** Everything inspected. */
export interface IommuInspection {
  readonly units: readonly UnitInspection[];
}

/** A unit with its id and window base, as a machine holds it. */
export interface UnitRef {
  readonly unit: IntelIommu;
  readonly id: string;
  readonly base: number | null;
}

/** The intel-iommu units of `m`, with their ids and where their windows are mapped. */
export function machineUnits(m: Machine | null): UnitRef[] {
  if (!m) return [];
  return m.devices
    .filter((d) => d.spec.type.name === 'intel-iommu')
    .map((d) => {
      const unit = d.device as IntelIommu;
      const at = m.systemMemory.subregions().find((s) => s.region === unit.region);
      return { unit, id: d.spec.id ?? '', base: at ? at.offset : null };
    });
}

const names = (v: number, table: readonly (readonly [string, number])[]): string[] => table.filter(([, b]) => (v & b) !== 0).map(([n]) => n);

function summary(u: IntelIommu): SummaryView {
  const r = u.regs;
  const gsts = r.get32(Reg.GSTS);
  const fsts = r.get32(Reg.FSTS);
  const rtaddr = r.get64(Reg.RTADDR);
  return {
    ver: r.get32(Reg.VER),
    cap: hex64(u.capability),
    ecap: hex64(u.extendedCapability),
    gsts,
    gstsBits: names(gsts, GSTS_NAMES),
    fsts,
    fstsBits: names(fsts, FSTS_NAMES),
    fri: (fsts & Fsts.FRI_MASK) >>> Fsts.FRI_SHIFT,
    rtaddr: hex64(rtaddr),
    rtaddrMode: (rtaddr & BigInt(Rtaddr.SMT)) !== 0n ? 'scalable' : 'legacy',
    iqh: hex64(r.get64(Reg.IQH)),
    iqt: hex64(r.get64(Reg.IQT)),
    iqa: hex64(r.get64(Reg.IQA)),
    addressSpaces: u.translators().map((t) => {
      const sid = sourceId(t.requester);
      const state = !u.dmarEnabled ? 'untranslated' : t.pasid === NO_PASID && u.passThrough.isPassThrough(sid) ? 'pass-through' : 'translated';
      return { requester: bdf(sid), pasid: t.pasid === NO_PASID ? null : t.pasid, state };
    }),
  };
}

/** Inspects one unit. */
export function inspectUnit(ref: UnitRef, options: InspectOptions = {}): UnitInspection {
  const u = ref.unit;
  const views = new Set(options.views ?? []);
  return {
    id: ref.id,
    base: ref.base === null ? null : hex64(ref.base),
    mode: u.scalable ? 'scalable' : 'legacy',
    translation: u.dmarEnabled,
    summary: summary(u),
    ...(options.path ? { path: inspectPath(u, options.path) } : {}),
    ...(views.has('caches') ? { caches: inspectCaches(u) } : {}),
    ...(views.has('queue') ? { queue: inspectQueue(u) } : {}),
    ...(views.has('faults') ? { faults: inspectFaults(u) } : {}),
    ...(views.has('ir') ? { ir: inspectIr(u) } : {}),
  };
}

/**
 * Inspects every unit of a machine (null: `-machine none`, no unit), or one
 * unit given alone (id '' and no window base unless given as a UnitRef).
 */
export function inspectIommu(target: Machine | IntelIommu | UnitRef | null, options: InspectOptions = {}): IommuInspection {
  let refs: UnitRef[];
  if (target === null) refs = [];
  else if ('unit' in target) refs = [target];
  else if ('typeName' in target && target.typeName === 'intel-iommu') refs = [{ unit: target, id: '', base: null }];
  else refs = machineUnits(target as Machine);
  return { units: refs.map((r) => inspectUnit(r, options)) };
}
