/**
 * QEMU's `-machine none`: no devices, no CPU, RAM only when `-m` asks for it
 * (mapped at 0 as "ram").  libqtest starts it to probe the binary
 * (query-machines, qom-list-types) over QMP.  QEMU 11.1 crashes when qtest
 * touches memory on this machine (no CPU gives the address space); vtemu
 * answers from the empty maps instead (reads 0, I/O reads all-ones as q35's
 * unassigned ports do).
 */
import { VirtualClock } from '../core/clock.js';
import { AddressSpace } from '../memory/address-space.js';
import { ContainerRegion, RamRegion } from '../memory/region.js';
import { createRam, type RamBackendName } from '../memory/ram-backend.js';
import { Q35Map } from './q35.js';

/** The machine type name QEMU gives it. */
export const NONE_MACHINE = 'none';

/** The empty machine. */
export class NoneMachine {
  readonly type = NONE_MACHINE;
  readonly systemMemory = new ContainerRegion('system', Q35Map.MEMORY_SIZE);
  readonly ioSpace = new ContainerRegion('io', Q35Map.IO_SIZE);
  readonly memory: AddressSpace;
  readonly io: AddressSpace;
  readonly clock = new VirtualClock('qtest');

  /** `ramBytes`: `-m` in bytes (0: no RAM, QEMU's default for this machine). */
  constructor(ramBytes = 0, ramBackend?: RamBackendName) {
    if (ramBytes > 0) this.systemMemory.add(new RamRegion('ram', ramBytes, createRam(ramBytes, ramBackend)), 0);
    this.memory = new AddressSpace('memory', this.systemMemory);
    this.io = new AddressSpace('I/O', this.ioSpace, { unassignedByte: Q35Map.IO_UNASSIGNED_BYTE });
  }

  /** system_reset: nothing to reset. */
  reset(): void {}

  dispose(): void {
    this.clock.dispose();
  }
}
