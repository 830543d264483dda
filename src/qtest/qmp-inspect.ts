/**
 * `x-vtemu-query-iommu` (vtemu only): the VT-d inspector's record
 * (src/monitor/inspect.ts) as QMP JSON.  Arguments, all optional:
 *
 *   views      "all" (default), "none", or a comma list of caches, queue, faults, ir
 *   requester  "BB:DD.F": add the translation path of a request from it
 *   pasid      its PASID (none: a request without one)
 *   iova       its input address (none: stop after the context / PASID entry)
 *   write      inspect a write (default a read)
 *
 *   -> {"execute": "x-vtemu-query-iommu", "arguments": {"requester": "00:03.0", "iova": 4096}}
 *   <- {"return": {"units": [{"id": "vtd0", "base": "0x00000000fed90000", "mode": "legacy", ...,
 *                             "path": {"entries": [...], "result": {"kind": "translated", ...}}}]}}
 *
 * Every number in the record is an integer (64-bit values are hex strings),
 * so it maps onto QMP's JSON as it is.  Bad arguments are GenericError.
 */
import type { Machine } from '../machine/q35.js';
import { parseBdf } from '../monitor/inspect-common.js';
import { ALL_VIEWS, inspectIommu, type InspectOptions, type InspectView } from '../monitor/inspect.js';
import { argsFailed, checkArgs, generic, ok, type ArgSpec } from './qmp-args.js';
import type { Command } from './qmp-commands.js';
import { QDict, type QValue } from './qmp-qobject.js';

const ARGS: readonly ArgSpec[] = [
  { name: 'views', type: 'str', optional: true },
  { name: 'requester', type: 'str', optional: true },
  { name: 'pasid', type: 'int', optional: true },
  { name: 'iova', type: 'int', optional: true },
  { name: 'write', type: 'bool', optional: true },
];

/** A JSON-ready value (the inspector's record) as QObjects. */
export function toQValue(v: unknown): QValue {
  if (typeof v === 'number') return { kind: 'int', value: BigInt(v) };
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
  if (Array.isArray(v)) return v.map(toQValue);
  return QDict.of(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).map(([k, x]) => [k, toQValue(x)]));
}

/** The views named by the `views` argument, or an error text. */
function parseViews(text: string | undefined): InspectView[] | string {
  if (text === undefined || text === 'all') return [...ALL_VIEWS];
  if (text === 'none') return [];
  const out: InspectView[] = [];
  for (const w of text.split(',')) {
    if (!(ALL_VIEWS as readonly string[]).includes(w)) return `Parameter 'views' has an unknown view '${w}'`;
    out.push(w as InspectView);
  }
  return out;
}

/** The inspector's QMP command on `machine` (null: `-machine none`, no unit). */
export function inspectCommands(machine: Machine | null): [string, Command][] {
  return [
    [
      'x-vtemu-query-iommu',
      {
        allowOob: false,
        run(args) {
          const a = checkArgs(args, ARGS);
          if (argsFailed(a)) return a;
          const views = parseViews(a.get('views') as string | undefined);
          if (typeof views === 'string') return generic(views);
          const opts: { views: InspectView[]; path?: InspectOptions['path'] } = { views };
          const requester = a.get('requester') as string | undefined;
          const pasid = a.get('pasid') as bigint | undefined;
          const iova = a.get('iova') as bigint | undefined;
          if (requester === undefined) {
            if (pasid !== undefined || iova !== undefined || a.has('write')) return generic("Parameter 'requester' is missing");
          } else {
            const sid = parseBdf(requester);
            if (sid === null) return generic(`Parameter 'requester' expects bus:dev.fn, not '${requester}'`);
            if (pasid !== undefined && (pasid < 0n || pasid > 0xfffffn)) return generic("Parameter 'pasid' expects a value in 0..0xfffff");
            if (iova !== undefined && (iova < 0n || iova > BigInt(Number.MAX_SAFE_INTEGER))) return generic("Parameter 'iova' expects a value in 0..2^53-1");
            opts.path = { sid, pasid: pasid === undefined ? null : Number(pasid), iova: iova === undefined ? null : Number(iova), write: a.get('write') === true };
          }
          return ok(toQValue(inspectIommu(machine, opts)));
        },
      },
    ],
  ];
}
