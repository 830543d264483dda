/**
 * `info iommu` (vtemu only; QEMU has no such command): the VT-d inspector
 * (inspect.ts) as text.  Without options, per unit its register window,
 * mode, the main registers (VT-d 4.1 §11.4) with the status bits decoded,
 * and the requesters that have an address space with what their DMA gets
 * now (translated, passed through, untranslated):
 *
 *     intel-iommu "vtd0" at 0x00000000fed90000: legacy mode, translation off
 *       VER 0x00000010 (1.0)  CAP 0x...  ECAP 0x...
 *       GSTS 0x00000000 []  FSTS 0x00000000 [] FRI 0
 *       RTADDR 0x0000000000000000
 *       IQ head 0x... tail 0x... addr 0x...
 *       address spaces: 00:01.0 translated, 00:1f.2 translated pasid 5
 *
 * Options (in any order; each adds its view after the summary):
 *
 *     info iommu -c                 caches: IOTLB, context cache, PASID cache, IEC
 *     info iommu -q                 invalidation queue with the pending descriptors
 *     info iommu -f                 fault status and fault recording registers
 *     info iommu -i                 interrupt-remapping table (and posted descriptors)
 *     info iommu -a                 all four
 *     info iommu -t BB:DD.F [IOVA] [w]         translation path of a request without PASID
 *     info iommu -t BB:DD.F PASID IOVA [w]     ... with a PASID
 *
 * Numbers are hex with 0x or decimal; `w` inspects a write (default a read).
 * Without an IOVA the path stops after the context / PASID entry.  A bad
 * argument answers with one line saying what is wrong, never an exception.
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { parseBdf } from './inspect-common.js';
import { ALL_VIEWS, inspectIommu, type InspectOptions, type InspectView, type UnitRef } from './inspect.js';
import type { PathQuery } from './inspect-path.js';
import { formatInspection, summaryLines } from './inspect-text.js';

export { bitNames } from './inspect-text.js';

/** The flags `info iommu` takes, in the order the monitor matches them. */
export const INFO_IOMMU_FLAGS: readonly string[] = ['a', 'c', 'q', 'f', 'i', 't'];

/** Its parameter text in `info` help. */
export const INFO_IOMMU_PARAMS = '[-a][-c][-q][-f][-i][-t bus:dev.fn [pasid] [iova] [w]]';

/** Its help text. */
export const INFO_IOMMU_HELP =
  'show Intel VT-d units, registers and address spaces (vtemu; -a: all views, -c: caches, -q: invalidation queue, -f: fault records, -i: interrupt remapping table, -t: translation path of a request)';

const FLAG_VIEWS: readonly (readonly [string, InspectView])[] = [['c', 'caches'], ['q', 'queue'], ['f', 'faults'], ['i', 'ir']];
const PASID_MAX = 0xf_ffff;

/** A number in hex (0x) or decimal, below 2^64 and exact as a number; null otherwise. */
function parseNumber(text: string): number | null {
  if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text)) return null;
  const v = BigInt(text);
  return v < 2n ** 64n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : null;
}

/** The options of `info iommu` from its flags and the words after them, or the error line. */
export function parseInfoIommuArgs(given: ReadonlySet<string>, args: string): InspectOptions | { error: string } {
  // The monitor matches flags in declaration order only; later ones, in any order, arrive with the words.
  const flags = new Set(given);
  const words: string[] = [];
  for (const w of args.split(/\s+/).filter((x) => x !== '')) {
    if (!w.startsWith('-')) words.push(w);
    else if (w.length === 2 && INFO_IOMMU_FLAGS.includes(w[1]!)) flags.add(w[1]!);
    else return { error: `info iommu: unsupported option ${w}` };
  }
  const views = flags.has('a') ? [...ALL_VIEWS] : FLAG_VIEWS.filter(([f]) => flags.has(f)).map(([, v]) => v);
  if (!flags.has('t')) return words.length ? { error: `info iommu: unexpected '${words[0]}' (a request needs -t)` } : { views };
  const write = words[words.length - 1] === 'w';
  if (write) words.pop();
  if (words.length === 0) return { error: 'info iommu: -t needs a requester bus:dev.fn' };
  if (words.length > 3) return { error: `info iommu: unexpected '${words[3]}'` };
  const sid = parseBdf(words[0]!);
  if (sid === null) return { error: `info iommu: '${words[0]}' is not a requester bus:dev.fn` };
  const nums = words.slice(1).map((w) => ({ w, v: parseNumber(w) }));
  const bad = nums.find((n) => n.v === null);
  if (bad) return { error: `info iommu: '${bad.w}' is not a number` };
  const pasid = nums.length === 2 ? nums[0]!.v! : null;
  if (pasid !== null && pasid > PASID_MAX) return { error: `info iommu: PASID ${pasid} above 0xfffff` };
  const iova = nums.length > 0 ? nums[nums.length - 1]!.v! : null;
  const path: PathQuery = { sid, pasid, iova, write };
  return { views, path };
}

/** One unit's summary lines (the view without options). */
export function iommuUnitLines(u: IntelIommu, id: string, base: number | null): string[] {
  return summaryLines(inspectIommu({ unit: u, id, base }).units[0]!);
}

/** The text of `info iommu [flags] [args]` for `units`.  Lines end in '\n'. */
export function infoIommu(units: readonly UnitRef[], flags: ReadonlySet<string> = new Set(), args = ''): string {
  const opts = parseInfoIommuArgs(flags, args);
  if ('error' in opts) return `${opts.error}\n`;
  if (units.length === 0) return 'No IOMMU\n';
  return formatInspection({ units: units.flatMap((r) => inspectIommu(r, opts).units) });
}
