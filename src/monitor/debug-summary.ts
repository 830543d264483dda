/**
 * What the driver-debugging aids found, for the end of a run: the
 * sanitizer's summary (x-sanitize=on) and the strict checks' summary
 * (x-strict=on) of every unit that has them, each first line prefixed with
 * the unit's id when it has one.  The CLI prints it to
 * stderr at exit; nothing when no unit has an aid attached.
 */
import type { UnitRef } from './inspect.js';
import { sanitizerOf } from './sanitizer.js';
import { strictOf } from './strict-checks.js';

/** The exit summary lines of `units` (empty: no aid attached). */
export function debugSummary(units: readonly Pick<UnitRef, 'unit' | 'id'>[]): string[] {
  const out: string[] = [];
  for (const { unit, id } of units) {
    for (const aid of [sanitizerOf(unit), strictOf(unit)]) {
      if (!aid) continue;
      out.push(...aid.summary().map((l, i) => (i === 0 && id ? `${id}: ${l}` : l)));
    }
  }
  return out;
}
