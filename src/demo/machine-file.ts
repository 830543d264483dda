/**
 * Machine definition files (machines/*.json) as the demo and the guest
 * tests read them, and their translation to QEMU arguments for the
 * differential runs.  The schema is shared with the machine loader
 * (src/machine): {description, machine, m, devices[], dmar?}.
 */
import { readFileSync } from 'node:fs';

/** An RMRR the machine adds to its DMAR (addresses as hex strings or numbers). */
export interface MachineRmrr {
  readonly base: string | number;
  readonly limit: string | number;
  /** Device ids (`id=`) the RMRR names. */
  readonly devices: readonly string[];
}

/** One DRHD when a machine has several remapping units. */
export interface MachineDrhd {
  /** The intel-iommu device id. */
  readonly iommu: string;
  readonly base: string | number;
  /** Device / port ids in its scope (ports: the sub-hierarchy). */
  readonly devices?: readonly string[];
  readonly includePciAll?: boolean;
}

/** A machine definition. */
export interface MachineDefinition {
  readonly description?: string;
  /** `-machine` value, e.g. "q35,kernel-irqchip=split". */
  readonly machine: string;
  /** `-m` value. */
  readonly m?: string;
  /** `-device` values, in order. */
  readonly devices: readonly string[];
  /** DMAR extras beyond what QEMU builds. */
  readonly dmar?: { readonly rmrr?: readonly MachineRmrr[]; readonly units?: readonly MachineDrhd[] };
}

/** Reads and checks a definition file (throws with the file name on a bad file). */
export function loadMachineFile(path: string): MachineDefinition {
  let def: unknown;
  try {
    def = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const d = def as MachineDefinition;
  if (typeof d !== 'object' || d === null || typeof d.machine !== 'string' || !Array.isArray(d.devices)) {
    throw new Error(`${path}: expected {machine: string, devices: string[]}`);
  }
  return d;
}

/** True when QEMU can build the same machine (no DMAR extras). */
export function qemuCompatible(def: MachineDefinition): boolean {
  return !def.dmar?.rmrr?.length && !def.dmar?.units?.length && def.devices.filter((d) => d.startsWith('intel-iommu')).length <= 1;
}

/** QEMU command-line arguments for a definition (without -qtest/-bios/-display). */
export function qemuArgs(def: MachineDefinition): string[] {
  if (!qemuCompatible(def)) throw new Error('this machine uses DMAR extras QEMU cannot express');
  return ['-machine', def.machine, ...(def.m ? ['-m', def.m] : []), ...def.devices.flatMap((d) => ['-device', d])];
}
