/**
 * `x-vtemu-query-sanitizer` and `x-vtemu-query-strict` (vtemu only): the
 * invalidation sanitizer's reports (src/monitor/sanitizer.ts) and the strict
 * checks' warnings (src/monitor/strict-checks.ts) of every VT-d unit, as QMP
 * JSON.  No arguments.
 *
 *   -> {"execute": "x-vtemu-query-sanitizer"}
 *   <- {"return": {"units": [{"id": "", "enabled": true, "total": 1,
 *                             "reports": [{"seq": 1, "device": "00:01.0", "cache": "iotlb", ...}]}]}}
 *
 *   -> {"execute": "x-vtemu-query-strict"}
 *   <- {"return": {"units": [{"id": "", "enabled": true, "total": 0, "warnings": []}]}}
 *
 * A unit without the property is listed with `enabled: false` and nothing else.
 */
import type { Machine } from '../machine/q35.js';
import { machineUnits, type UnitRef } from '../monitor/inspect.js';
import { sanitizerOf } from '../monitor/sanitizer.js';
import { strictOf } from '../monitor/strict-checks.js';
import { argsFailed, checkArgs, ok } from './qmp-args.js';
import type { Command } from './qmp-commands.js';
import { toQValue } from './qmp-inspect.js';

/** A no-argument query listing, per unit, what one aid (null: not attached) found. */
function aidQuery(machine: Machine | null, of: (unit: UnitRef['unit']) => { total: number; found: readonly unknown[] } | null, key: string): Command {
  return {
    allowOob: false,
    run(args) {
      const a = checkArgs(args, []);
      if (argsFailed(a)) return a;
      const units = machineUnits(machine).map(({ unit, id }) => {
        const aid = of(unit);
        return { id, enabled: aid !== null, total: aid?.total ?? 0, [key]: aid ? [...aid.found] : [] };
      });
      return ok(toQValue({ units }));
    },
  };
}

/** The sanitizer's and the strict checks' QMP commands on `machine` (null: `-machine none`, no unit). */
export function sanitizerCommands(machine: Machine | null): [string, Command][] {
  return [
    ['x-vtemu-query-sanitizer', aidQuery(machine, (u) => {
      const s = sanitizerOf(u);
      return s ? { total: s.total, found: s.reports } : null;
    }, 'reports')],
    ['x-vtemu-query-strict', aidQuery(machine, (u) => {
      const s = strictOf(u);
      return s ? { total: s.total, found: s.warnings } : null;
    }, 'warnings')],
  ];
}
