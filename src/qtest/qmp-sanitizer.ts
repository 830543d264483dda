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
import { machineUnits } from '../monitor/inspect.js';
import { sanitizerOf } from '../monitor/sanitizer.js';
import { strictOf } from '../monitor/strict-checks.js';
import { argsFailed, checkArgs, ok } from './qmp-args.js';
import type { Command } from './qmp-commands.js';
import { toQValue } from './qmp-inspect.js';

/** The sanitizer's QMP command on `machine` (null: `-machine none`, no unit). */
export function sanitizerCommands(machine: Machine | null): [string, Command][] {
  return [
    [
      'x-vtemu-query-sanitizer',
      {
        allowOob: false,
        run(args) {
          const a = checkArgs(args, []);
          if (argsFailed(a)) return a;
          const units = machineUnits(machine).map(({ unit, id }) => {
            const s = sanitizerOf(unit);
            return { id, enabled: s !== undefined, total: s?.total ?? 0, reports: s ? [...s.reports] : [] };
          });
          return ok(toQValue({ units }));
        },
      },
    ],
    [
      'x-vtemu-query-strict',
      {
        allowOob: false,
        run(args) {
          const a = checkArgs(args, []);
          if (argsFailed(a)) return a;
          const units = machineUnits(machine).map(({ unit, id }) => {
            const s = strictOf(unit);
            return { id, enabled: s !== undefined, total: s?.total ?? 0, warnings: s ? [...s.warnings] : [] };
          });
          return ok(toQValue({ units }));
        },
      },
    ],
  ];
}
