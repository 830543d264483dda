/**
 * QMP commands for machine snapshots (src/machine/snapshot.ts):
 *
 *   migrate {"uri": "file:PATH"}         QEMU's command and URI: writes the
 *                                        machine state to PATH.  Unlike QEMU
 *                                        it completes before its reply and
 *                                        the machine keeps running (QEMU
 *                                        stops it: STOP, "postmigrate").
 *   query-migrate                        {} before any migrate, then
 *                                        {"status": "completed"} (QEMU adds
 *                                        statistics vtemu does not keep).
 *   x-vtemu-load-state {"uri": "file:PATH"}
 *                                        vtemu's: loads a state saved from a
 *                                        machine of the same configuration
 *                                        into the running one (QEMU loads
 *                                        only at start, `-incoming`, which
 *                                        vtemu's command line also takes).
 *
 * Other URIs get QEMU's "unknown migration protocol"; a state of another
 * version or configuration is refused with the snapshot's one-line error.
 */
import type { Machine } from '../machine/q35.js';
import { fileUriPath, readStateFile, saveStateFile } from '../machine/snapshot-file.js';
import { argsFailed, checkArgs, generic, ok, type ArgSpec, type Outcome } from './qmp-args.js';
import type { Command } from './qmp-commands.js';
import { QDict } from './qmp-qobject.js';

const MIGRATE_ARGS: readonly ArgSpec[] = [
  { name: 'uri', type: 'str', optional: true },
  { name: 'channels', type: 'any', optional: true },
  { name: 'detach', type: 'bool', optional: true },
  { name: 'resume', type: 'bool', optional: true },
];

const LOAD_ARGS: readonly ArgSpec[] = [{ name: 'uri', type: 'str' }];

/** The snapshot commands of a session on `machine` (null: `-machine none`, nothing to save). */
export function snapshotCommands(machine: Machine | null): [string, Command][] {
  let completed = false;
  const run = (f: () => void): Outcome => {
    try {
      f();
      return ok();
    } catch (e) {
      return generic((e as Error).message);
    }
  };
  const noMachine = (): Outcome => generic('vtemu: -machine none has no state to save or load');
  return [
    [
      'migrate',
      {
        allowOob: false,
        run(args) {
          const a = checkArgs(args, MIGRATE_ARGS);
          if (argsFailed(a)) return a;
          const uri = a.get('uri') as string | undefined;
          if (uri === undefined) return generic(a.has('channels') ? "vtemu: migrate takes a 'uri' only" : "need either 'uri' or 'channels' argument");
          if (!machine) return noMachine();
          const out = run(() => saveStateFile(machine, fileUriPath(uri)));
          if ('ret' in out) completed = true;
          return out;
        },
      },
    ],
    [
      'query-migrate',
      {
        allowOob: false,
        run(args) {
          const a = checkArgs(args, []);
          if (argsFailed(a)) return a;
          return ok(completed ? QDict.of([['status', 'completed']]) : new QDict());
        },
      },
    ],
    [
      'x-vtemu-load-state',
      {
        allowOob: false,
        run(args) {
          const a = checkArgs(args, LOAD_ARGS);
          if (argsFailed(a)) return a;
          if (!machine) return noMachine();
          return run(() => machine.restoreState(readStateFile(fileUriPath(a.get('uri') as string))));
        },
      },
    ],
  ];
}
