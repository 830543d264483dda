/**
 * The public view of a q35 machine, and the functions that make one.
 *
 * The model's machine (src/machine/q35.ts) holds its PCI host, firmware,
 * IOAPIC and VT-d units with all their internals; a package user gets this
 * interface, which the model's class satisfies as it is (`createMachine`
 * returns one, so the compiler checks it here).  Internal code and the
 * repository's own tests keep using the class from src/machine/q35.ts.
 */
import { createMachine as buildMachine, Machine as ModelMachine, type MachineDevice, type MachineEvents, type MachineOptions } from '../machine/q35.js';
import { machineFromState as rebuildMachine, saveStateFile as saveModelState, type RestoreHost } from '../machine/snapshot-file.js';
import type { MachineState } from '../machine/snapshot.js';
import type { Device } from '../machine/device-type.js';
import type { AddressSpace } from '../memory/address-space.js';
import type { ContainerRegion } from '../memory/region.js';
import type { VirtualClock } from '../core/clock.js';
import type { MsiSinkEvents } from '../hw/intc/msi-sink.js';
import type { TypedEmitter } from './emitter.js';
import type { VtdUnit } from './vtd-unit.js';

/** Guest RAM ("pc.ram"), addressed by offset into the RAM block (not guest-physical). */
export interface GuestRam {
  /** Size in bytes. */
  readonly size: number;
  /** The backend in use: `native` (the addon) or `ts` (pure TypeScript); see RamBackendName. */
  readonly backend: string;
  /** Copies `dst.length` bytes at `offset` into `dst`. */
  copyOut(offset: number, dst: Uint8Array): void;
  /** Copies `src` to `offset`. */
  copyIn(offset: number, src: Uint8Array): void;
  /** Sets `length` bytes at `offset` to `value`. */
  fill(offset: number, length: number, value: number): void;
  /** True when the bytes at `offset` equal `bytes`. */
  compare(offset: number, bytes: Uint8Array): boolean;
}

/** The APIC bus (0xFEE00000): every interrupt message ends here. */
export interface ApicBus {
  /** `interrupt`: a message reached the bus (after any remapping). */
  readonly events: TypedEmitter<MsiSinkEvents>;
}

/** A built q35 machine, as a package user sees it. */
export interface Machine {
  /** The CPU's view of memory (what qtest `readl` / `writel` reach). */
  readonly memory: AddressSpace;
  /** The CPU's view of port I/O (unassigned ports read all-ones). */
  readonly io: AddressSpace;
  /** The root of the CPU's memory map (map extra regions here). */
  readonly systemMemory: ContainerRegion;
  /** The root of the CPU's port I/O space. */
  readonly ioSpace: ContainerRegion;
  /** QEMU_CLOCK_VIRTUAL: moves only on `step` / `set` under `accel: 'qtest'`. */
  readonly clock: VirtualClock;
  /** Guest RAM. */
  readonly ram: GuestRam;
  /** RAM mapped below 4 GiB, in bytes. */
  readonly ramBelow4g: number;
  /** RAM mapped at 4 GiB and up, in bytes. */
  readonly ramAbove4g: number;
  /** The APIC bus. */
  readonly msiSink: ApicBus;
  /** `interrupt`, `reset`, `device`. */
  readonly events: TypedEmitter<MachineEvents>;
  /** The `-device`s, in creation order. */
  readonly devices: readonly MachineDevice[];
  /** The VT-d units (the first is the DMAR's first DRHD). */
  readonly iommus: readonly VtdUnit[];
  /** The options the machine was built with. */
  readonly options: MachineOptions;
  /** The device created with `id=`. */
  deviceById(id: string): Device | undefined;
  /** system_reset: every device back to its power-on state. */
  reset(): void;
  /** Captures the machine (docs/snapshot-format.md). */
  saveState(): MachineState;
  /** Loads a state saved from a machine of the same configuration; throws SnapshotError. */
  restoreState(state: MachineState): void;
  /** Stops timers (host scheduling) so the process can exit. */
  dispose(): void;
}

/** Builds a q35 machine; throws ConfigError (QEMU's wording) for a bad configuration. */
export function createMachine(options: MachineOptions = {}): Machine {
  return buildMachine(options);
}

/** A fresh machine built from the state's configuration, with the state loaded (QEMU `-incoming`); throws SnapshotError. */
export function machineFromState(state: MachineState, host: RestoreHost = {}): Machine {
  return rebuildMachine(state, host);
}

/** Writes `machine`'s state to the file `path` (the format of encodeState). */
export function saveStateFile(machine: Machine, path: string): void {
  saveModelState(modelOf(machine), path);
}

/**
 * The model object behind a public view.  Throws a TypeError for an object
 * that only looks like a machine (a host mistake, never guest input).
 */
export function modelOf(machine: Machine): ModelMachine {
  if (!(machine instanceof ModelMachine)) throw new TypeError('vtemu: not a machine made by createMachine or machineFromState');
  return machine;
}
