/**
 * The QMP commands vtemu answers besides the session ones (qmp.ts keeps
 * qmp_capabilities, system_reset and quit): query-version, query-status,
 * query-machines, qom-list-types, device-list-properties, qom-list, qom-get,
 * qom-set and human-monitor-command, each with its QAPI argument schema and
 * QEMU 11.1's replies and errors.  Any other command, QEMU's or not, is
 * CommandNotFound (qmp.ts).
 */
import type { Machine } from '../machine/q35.js';
import { runHmp } from '../monitor/hmp.js';
import { argsFailed, checkArgs, ErrorClass, generic, ok, type ArgSpec, type Args, type Outcome } from './qmp-args.js';
import { deviceListProperties, qomListTypes, queryMachines } from './qmp-introspection.js';
import { QDict, type QValue } from './qmp-qobject.js';
import { buildQomTree, QomObject, resolvePath, type QomState } from './qom.js';
import { inspectCommands } from './qmp-inspect.js';
import { sanitizerCommands } from './qmp-sanitizer.js';
import { qint } from './qmp-device-props.js';
import { snapshotCommands } from './qmp-snapshot.js';

/** QEMU's version vtemu reports (the release its QMP follows). */
export const QEMU_VERSION = { major: 11, minor: 1, micro: 3 } as const;

/** vtemu's `package` string in the greeting and query-version. */
export const VTEMU_PACKAGE = 'vtemu 0.1.0';

/** VersionInfo as the greeting and query-version give it. */
export function versionInfo(): QDict {
  return QDict.of([
    [
      'qemu',
      QDict.of([
        ['major', qint(QEMU_VERSION.major)],
        ['minor', qint(QEMU_VERSION.minor)],
        ['micro', qint(QEMU_VERSION.micro)],
      ]),
    ],
    ['package', VTEMU_PACKAGE],
  ]);
}

/** One command: whether it may run out-of-band, and its marshaller (arguments already an object). */
export interface Command {
  readonly allowOob: boolean;
  run(args: QDict): Outcome;
}

/** A command whose arguments are checked against `schema` first. */
function command(schema: readonly ArgSpec[], body: (a: Args) => Outcome): Command {
  return {
    allowOob: false,
    run(args) {
      const a = checkArgs(args, schema);
      return argsFailed(a) ? a : body(a);
    },
  };
}

/** The CPUs a machine has (vtemu's q35 has one; `none` has none). */
function cpuCount(machine: Machine | null): number {
  return machine ? 1 : 0;
}

/** The commands of one session on `machine` (null: `-machine none`). */
export function machineCommands(machine: Machine | null): Map<string, Command> {
  const state: QomState = { realizedBuses: new Set() };
  const tree = (): QomObject => buildQomTree(machine, state);
  // qom-list reports an ambiguous partial path as such; qom-get and qom-set as not found (QEMU 11.1).
  const find = (path: string, ambiguousIsNotFound = true): QomObject | Outcome => {
    const r = resolvePath(tree(), path);
    if ('obj' in r) return r.obj;
    return ambiguousIsNotFound ? { errClass: ErrorClass.DeviceNotFound, desc: `Device '${path}' not found` } : r.error;
  };
  const notFound = (o: QomObject, name: string): Outcome => generic(`Property '${o.typeName}.${name}' not found`);
  const str = (name: string): ArgSpec => ({ name, type: 'str' });

  return new Map<string, Command>([
    // Snapshots: migrate / query-migrate / x-vtemu-load-state (qmp-snapshot.ts).
    ...snapshotCommands(machine),
    // The VT-d inspector: x-vtemu-query-iommu (qmp-inspect.ts).
    ...inspectCommands(machine),
    // The invalidation sanitizer's reports: x-vtemu-query-sanitizer (qmp-sanitizer.ts).
    ...sanitizerCommands(machine),
    ['query-version', command([], () => ok(versionInfo()))],
    ['query-status', command([], () => ok(QDict.of([['status', 'running'], ['running', true]])))],
    ['query-machines', command([{ name: 'compat-props', type: 'bool', optional: true }], (a) => queryMachines(a.get('compat-props') === true))],
    [
      'qom-list-types',
      command(
        [
          { name: 'implements', type: 'str', optional: true },
          { name: 'abstract', type: 'bool', optional: true },
        ],
        (a) => qomListTypes(a.get('implements') as string | undefined, a.get('abstract') === true),
      ),
    ],
    ['device-list-properties', command([str('typename')], (a) => deviceListProperties(a.get('typename') as string))],
    [
      'qom-list',
      command([str('path')], (a) => {
        const o = find(a.get('path') as string, false);
        if (!(o instanceof QomObject)) return o;
        return ok(o.props.map((p) => QDict.of([['name', p.name], ['type', p.type]])));
      }),
    ],
    [
      'qom-get',
      command([str('path'), str('property')], (a) => {
        const o = find(a.get('path') as string);
        if (!(o instanceof QomObject)) return o;
        const p = o.prop(a.get('property') as string);
        return p ? ok(p.get()) : notFound(o, a.get('property') as string);
      }),
    ],
    [
      'qom-set',
      command([str('path'), str('property'), { name: 'value', type: 'any' }], (a) => {
        const o = find(a.get('path') as string);
        if (!(o instanceof QomObject)) return o;
        const name = a.get('property') as string;
        const p = o.prop(name);
        if (!p) return notFound(o, name);
        if (!p.set) return generic(`Property '${o.typeName}.${name}' is not writable`);
        return p.set(a.get('value') as QValue);
      }),
    ],
    [
      'human-monitor-command',
      command([str('command-line'), { name: 'cpu-index', type: 'int', optional: true }], (a) => {
        const cpu = a.get('cpu-index') as bigint | undefined;
        // QEMU passes the index on as a C int.
        if (cpu !== undefined) {
          const index = Number(BigInt.asIntN(32, cpu));
          if (index < 0 || index >= cpuCount(machine)) return generic("Parameter 'cpu-index' expects a CPU number");
        }
        return ok(runHmp(machine, a.get('command-line') as string));
      }),
    ],
  ]);
}
