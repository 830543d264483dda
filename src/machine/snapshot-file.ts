/**
 * Snapshots as files: the machine state as one JSON document (UTF-8, see
 * docs/snapshot-format.md), the `file:PATH` URIs QEMU's `migrate` and
 * `-incoming` take, and building a fresh machine from a state (the
 * configuration it records, then the state loaded into it).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { SnapshotError } from '../core/snapshot-state.js';
import { createMachine, type Machine, type MachineOptions } from './q35.js';
import { checkStateHeader, optionsFromConfig, type MachineState } from './snapshot.js';

/** The state as the bytes of a snapshot file. */
export function encodeState(state: MachineState): string {
  return JSON.stringify(state);
}

/** A snapshot file's text as a state; throws SnapshotError for anything else or another version. */
export function decodeState(text: string): MachineState {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SnapshotError('snapshot: not a vtemu machine state (not JSON)');
  }
  checkStateHeader(v);
  return v;
}

/** The path of a `file:PATH` migration URI; throws SnapshotError with QEMU's message for another protocol. */
export function fileUriPath(uri: string): string {
  if (!uri.startsWith('file:') || uri.length === 'file:'.length) throw new SnapshotError(`unknown migration protocol: ${uri}`);
  return uri.slice('file:'.length);
}

/** Writes `m`'s state to `path`. */
export function saveStateFile(m: Machine, path: string): void {
  const text = encodeState(m.saveState());
  writeFileSync(path, text);
}

/** Reads a state file; throws SnapshotError naming the file when it cannot be read. */
export function readStateFile(path: string): MachineState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new SnapshotError(`snapshot: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return decodeState(text);
}

/** Host choices for a machine rebuilt from a state (not part of the state). */
export type RestoreHost = Pick<MachineOptions, 'tracer' | 'warn' | 'ramBackend' | 'deviceTypes'>;

/** A fresh machine built from the state's configuration, with the state loaded (QEMU `-incoming`). */
export function machineFromState(state: MachineState, host: RestoreHost = {}): Machine {
  checkStateHeader(state);
  const m = createMachine({ ...optionsFromConfig(state.config), ...host });
  try {
    m.restoreState(state);
  } catch (e) {
    m.dispose();
    throw e;
  }
  return m;
}
