/**
 * The q35 machine: guest RAM in q35's layout, the CPU's memory and I/O
 * spaces, the virtual clock, the PCI host (MCH, ICH9 functions), the IOAPIC
 * at 0xFEC00000 and the MSI sink (APIC bus) at 0xFEE00000, fw_cfg with the
 * ACPI tables, and the `-device`s in command-line order.  Like QEMU with
 * `-nodefaults`, nothing beyond the q35 built-ins exists unless asked for.
 */
import { EventEmitter } from 'node:events';
import type TypedEmitterModule from 'typed-emitter';
import { VirtualClock } from '../core/clock.js';
import { AddressSpace } from '../memory/address-space.js';
import { ContainerRegion } from '../memory/region.js';
import { createRam, type RamBackendName } from '../memory/ram-backend.js';
import type { ChunkedRam } from '../memory/ram.js';
import { attachSanitizer } from '../monitor/sanitizer.js';
import { attachStrict } from '../monitor/strict-checks.js';
import { DEFAULT_RAM_SIZE, parseMemSize, q35RamLayout } from '../memory/ram-layout.js';
import { Ioapic, IOAPIC_BASE } from '../hw/intc/ioapic.js';
import { MsiAddr, MsiSink, type MsiDelivery } from '../hw/intc/msi-sink.js';
import { createQ35Firmware, type Q35Firmware } from '../hw/acpi/install.js';
import type { AcpiConfig } from '../hw/acpi/build.js';
import type { Device, DeviceContext, DeviceType, Tracer } from './device-type.js';
import { ConfigError, parseDeviceArg, type DeviceSpec } from './registry.js';
import { applyMachineArg, resolveMachineArgs, type MachineArgs, type MachineProps } from './machine-options.js';
import { NULL_TRACER } from './tracer.js';
import { createPciHost, type MachinePci } from './pci-wiring.js';
import { buildMachineDmar, num, pciById, type DmarExtras, type DrhdExtra } from './dmar-wiring.js';
import { RoutedIommu, type RoutedUnit } from './iommu-routing.js';
import { mapFirmwareRom } from './firmware-rom.js';
import { applyGlobals, Globals, mchGlobals } from './globals.js';
import { resolveSmp, type SmpTopology } from './smp.js';
import { parseObjects, resolveNuma, type NumaConfig } from './numa.js';
import { parseUuid, resolveBoot } from '../hw/fw-cfg/boot-options.js';
import { ExtTseg } from '../pci/ich9.js';
import type { Region } from '../memory/region.js';
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { restoreMachineState, saveMachineState, type MachineState } from './snapshot.js';
import './builtins.js';

/** How to build a machine (what the CLI collects from its arguments). */
export interface MachineOptions {
  /** `-machine` arguments, in order (later keys win). */
  readonly machine?: readonly string[];
  /** `-accel` (qtest makes the clock move only on clock_step). */
  readonly accel?: string;
  /** `-m` argument (QEMU syntax), or a size in bytes. */
  readonly memory?: string | number;
  /** `-device` arguments, in order. */
  readonly devices?: readonly string[];
  /** A qtest front door is attached (QEMU then uses the qtest accelerator). */
  readonly qtest?: boolean;
  readonly tracer?: Tracer;
  /** Guest-RAM backend (default: native when built, else TypeScript). */
  readonly ramBackend?: RamBackendName;
  /** `-bios` image (a multiple of 64 KiB), mapped as ROM below 4 GiB and mirrored below 1 MiB. */
  readonly bios?: Uint8Array;
  /** DMAR contents beyond QEMU's (RMRRs, several DRHDs) from a machine file. */
  readonly dmar?: DmarExtras;
  /** Receives warnings (`vtemu: ...` lines without the prefix). */
  readonly warn?: (line: string) => void;
  /** `-uuid` argument as given. */
  readonly uuid?: string;
  /** `-boot` arguments as given, in order. */
  readonly boot?: readonly string[];
  /** `-global DRIVER.PROP=VALUE` arguments as given, in order. */
  readonly globals?: readonly string[];
  /** `-smp` argument as given. */
  readonly smp?: string;
  /** `-object` arguments as given (memory backends for NUMA nodes). */
  readonly objects?: readonly string[];
  /** `-numa` arguments as given, in order. */
  readonly numa?: readonly string[];
  /**
   * Device types for this machine only, found before the registered ones
   * (registerDeviceType makes a type known to every machine in the process).
   */
  readonly deviceTypes?: readonly DeviceType[];
}

/** One device created from `-device`. */
export interface MachineDevice {
  readonly spec: DeviceSpec;
  readonly device: Device;
  /** devfn on its bus (PCI devices). */
  readonly devfn?: number;
}

/** typed-emitter's emitter type (the package is a CommonJS namespace under nodenext). */
type TypedEmitter<E extends TypedEmitterModule.EventMap> = TypedEmitterModule.default<E>;

/** Machine events (typed-emitter over Node's EventEmitter). */
export type MachineEvents = {
  /** An interrupt reached the APIC bus (after any remapping). */
  interrupt: (irq: MsiDelivery) => void;
  /** system_reset finished. */
  reset: () => void;
  /** A `-device` was created and plugged. */
  device: (d: MachineDevice) => void;
};

/** Sizes and priorities of the machine's address spaces (QEMU pc_memory_init / pc_pci_as_mapping_init). */
export const Q35Map = {
  /** System memory spans the 64-bit physical address space. */
  MEMORY_SIZE: 2 ** 64,
  /** Port I/O space: 64 KiB. */
  IO_SIZE: 0x1_0000,
  /** Unassigned ports read all-ones. */
  IO_UNASSIGNED_BYTE: 0xff,
  /** The APIC-bus window sits under everything else (the PCI container shares -1). */
  MSI_WINDOW_PRIORITY: -1,
} as const;

/** A built q35 machine. */
export class Machine {
  /** The root of the CPU's memory map. */
  readonly systemMemory = new ContainerRegion('system', Q35Map.MEMORY_SIZE);
  /** The root of the CPU's port I/O space. */
  readonly ioSpace = new ContainerRegion('io', Q35Map.IO_SIZE);
  /** The CPU's view of memory (qtest read/write go here). */
  readonly memory: AddressSpace;
  /** The CPU's view of port I/O (unassigned ports read all-ones). */
  readonly io: AddressSpace;
  /** QEMU_CLOCK_VIRTUAL: qtest mode under `-accel qtest` or a qtest front door, else real time. */
  readonly clock: VirtualClock;
  /** Guest RAM ("pc.ram"). */
  readonly ram: ChunkedRam;
  /** RAM mapped below 4 GiB, in bytes. */
  readonly ramBelow4g: number;
  /** RAM mapped at 4 GiB and up, in bytes. */
  readonly ramAbove4g: number;
  /** The RAM block ("pc.ram") the RAM aliases show. */
  readonly ramBlock: Region;
  /** The CPU topology of `-smp`. */
  readonly smp: SmpTopology;
  /** The NUMA nodes of `-numa` (null: none). */
  readonly numa: NumaConfig | null;
  /** The `-global`s (device creation applies them). */
  private readonly globals: Globals;
  /** The APIC bus: every interrupt message ends here. */
  readonly msiSink = new MsiSink();
  /** The IOAPIC at 0xFEC00000 (PCI INTx on inputs 16-23). */
  readonly ioapic: Ioapic;
  /** fw_cfg with the ACPI tables. */
  readonly firmware: Q35Firmware;
  /** The PCI host and its wiring. */
  readonly pci: MachinePci;
  /** `-machine` properties. */
  readonly props: MachineProps;
  readonly tracer: Tracer;
  /** 'interrupt', 'reset', 'device'. */
  readonly events = new EventEmitter() as TypedEmitter<MachineEvents>;
  /** The `-device`s, in creation order. */
  readonly devices: MachineDevice[] = [];
  /** The VT-d units (first one is the DMAR's first DRHD). */
  readonly iommus: IntelIommu[] = [];
  /** The unit that receives IOAPIC messages (the INCLUDE_PCI_ALL one with several units). */
  private ioapicUnit: IntelIommu | null = null;
  /** Several DRHD units were asked for (machine file): allow several intel-iommu. */
  private readonly multiUnit: boolean;
  /** The options the machine was built with (a snapshot records them to rebuild it). */
  readonly options: MachineOptions;

  /** MachineOptions.deviceTypes by name. */
  private readonly localTypes: ReadonlyMap<string, DeviceType>;

  /** @internal use createMachine. */
  constructor(options: MachineOptions) {
    this.options = options;
    this.localTypes = new Map((options.deviceTypes ?? []).map((t) => [t.name, t]));
    this.globals = Globals.parse(options.globals ?? [], options.warn);
    const uuid = options.uuid !== undefined ? parseUuid(options.uuid) : undefined;
    const margs: MachineArgs = {};
    for (const m of options.machine ?? []) applyMachineArg(m, margs);
    if (options.accel !== undefined) applyMachineArg(`accel=${options.accel}`, margs);
    this.props = resolveMachineArgs(margs);
    const boot = resolveBoot(options.boot ?? [], options.warn);
    this.smp = resolveSmp(options.smp, machineLimits(margs.type), options.warn);
    const backends = parseObjects(options.objects ?? []);
    this.tracer = options.tracer ?? NULL_TRACER;
    this.clock = new VirtualClock(this.props.accel === 'qtest' || options.qtest ? 'qtest' : 'real');

    const size = typeof options.memory === 'number' ? options.memory : options.memory !== undefined ? memSize(options.memory, options.warn) : DEFAULT_RAM_SIZE;
    this.ram = createRam(size, options.ramBackend);
    const layout = q35RamLayout(this.ram);
    this.ramBelow4g = layout.below4g;
    this.ramAbove4g = layout.above4g;
    this.ramBlock = layout.block;
    this.numa = resolveNuma(options.numa ?? [], backends, this.smp, size);
    for (const r of layout.regions) this.systemMemory.add(r.region, r.at);
    mapFirmwareRom(this.systemMemory, options.bios ?? null);
    this.memory = new AddressSpace('memory', this.systemMemory, { tracer: this.tracer });
    this.io = new AddressSpace('I/O', this.ioSpace, { unassignedByte: Q35Map.IO_UNASSIGNED_BYTE });

    this.msiSink.events.on('interrupt', (irq) => this.events.emit('interrupt', irq));
    this.systemMemory.add(this.msiSink.region, MsiAddr.Base, Q35Map.MSI_WINDOW_PRIORITY);
    this.ioapic = new Ioapic({
      deliver: (address, data, origin) => {
        const iommu = this.ioapicUnit ?? this.iommus[0];
        if (iommu) iommu.interruptFromIoapic(address, data);
        else this.msiSink.deliverMsi(address, data, origin);
      },
      clock: this.clock,
      tracer: this.tracer,
    });
    this.systemMemory.add(this.ioapic.region, IOAPIC_BASE);
    this.firmware = createQ35Firmware(this.context(), {
      ramBelow4g: this.ramBelow4g,
      ramSize: size,
      smp: this.smp,
      numa: this.numa,
      boot,
      ...(uuid !== undefined ? { uuid } : {}),
    });
    this.pci = createPciHost(this, { extendedTsegMbytes: defaultExtTseg(margs.type), ...mchGlobals(this.globals) });

    this.multiUnit = (options.dmar?.units?.length ?? 0) > 1;
    for (const arg of options.devices ?? []) this.addDevice(arg, options.warn);
    if (options.dmar?.units?.length) this.routeUnits(options.dmar.units);
    this.refreshAcpi(options.dmar);
    for (const w of this.globals.unusedWarnings()) options.warn?.(w);
  }

  /** What device factories get. */
  context(id?: string): DeviceContext & { readonly kernelIrqchip: 'on' | 'off' | 'split' } {
    return {
      systemMemory: this.systemMemory,
      ioSpace: this.ioSpace,
      memory: this.memory,
      clock: this.clock,
      msi: this.msiSink,
      tracer: this.tracer,
      kernelIrqchip: this.props.kernelIrqchip ?? 'off',
      ...(id !== undefined ? { id } : {}),
    };
  }

  /** Parses, creates and plugs one `-device`; throws ConfigError. */
  private addDevice(arg: string, warn?: (line: string) => void): void {
    const parsed = parseDeviceArg(arg, this.localTypes);
    if (parsed.kind === 'help') throw new ConfigError('help is not a device', `-device ${arg}`);
    for (const w of parsed.spec.warnings) warn?.(w);
    const where = `-device ${arg}`;
    const spec = applyGlobals(parsed.spec, this.globals);
    if (spec.id !== undefined && this.devices.some((d) => d.spec.id === spec.id)) {
      throw new ConfigError(`Duplicate ID '${spec.id}' for device`, where);
    }
    if (spec.type.name === 'intel-iommu' && this.iommus.length > 0 && !this.multiUnit) {
      throw new ConfigError('QEMU does not support multiple vIOMMUs for x86 yet.', where);
    }
    let device: Device;
    let devfn: number | undefined;
    try {
      device = spec.type.create(this.context(spec.id), spec.props);
      if (spec.type.bus === 'pci') devfn = this.pci.plug(device, spec, this.devices);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(e.message, e.context ?? where);
      throw new ConfigError((e as Error).message, where);
    }
    if (spec.type.name === 'intel-iommu') {
      const iommu = device as IntelIommu;
      this.iommus.push(iommu);
      if (iommu.config.raw['x-sanitize'] === true || iommu.config.raw['x-sanitize'] === 'on') attachSanitizer(iommu, [this.ram]);
      if (iommu.config.raw['x-strict'] === true || iommu.config.raw['x-strict'] === 'on') attachStrict(iommu, [this.ram]);
      if (!this.props.defaultBusBypassIommu) this.pci.setIommu(iommu);
    }
    const md: MachineDevice = { spec, device, ...(devfn !== undefined ? { devfn } : {}) };
    this.devices.push(md);
    this.events.emit('device', md);
  }

  /** Several units: move each window to its base and route requesters by DRHD scope. */
  private routeUnits(units: readonly DrhdExtra[]): void {
    const routed: RoutedUnit[] = units.map((u) => {
      const d = this.devices.find((x) => x.spec.id === u.iommu);
      if (!d || d.spec.type.name !== 'intel-iommu') throw new ConfigError(`machine file: DRHD iommu '${u.iommu}' is not an intel-iommu id`);
      const iommu = d.device as IntelIommu;
      this.systemMemory.move(iommu.region, num(u.base, 'DRHD base'));
      return { iommu, includePciAll: u.includePciAll === true, scope: (u.devices ?? []).map((id) => pciById(this, id, 'DRHD')) };
    });
    this.ioapicUnit = (routed.find((u) => u.includePciAll) ?? routed[0])!.iommu as IntelIommu;
    if (!this.props.defaultBusBypassIommu) {
      this.pci.setIommu(new RoutedIommu(routed, (addr, data) => this.msiSink.deliverMsi(addr, data, { kind: 'msi' })));
    }
  }

  /** Rebuilds the ACPI tables from the current topology (DMAR scopes). */
  refreshAcpi(extras?: DmarExtras): void {
    const cfg: AcpiConfig = { dmar: buildMachineDmar(this, extras) };
    this.firmware.update(cfg);
  }

  /** The device created with `id=`. */
  deviceById(id: string): Device | undefined {
    return this.devices.find((d) => d.spec.id === id)?.device;
  }

  /** system_reset: every device back to its power-on state. */
  reset(): void {
    this.pci.reset();
    for (const d of this.devices) if (d.spec.type.bus !== 'pci') d.device.reset();
    this.ioapic.reset();
    this.firmware.fwCfg.reset();
    this.events.emit('reset');
  }

  /** Captures the machine: configuration, clock, sparse RAM, every device (snapshot.ts, docs/snapshot-format.md). */
  saveState(): MachineState {
    return saveMachineState(this);
  }

  /**
   * Loads a state saved from a machine of the same configuration; caches
   * are dropped and refill, as after QEMU's post_load.  Throws SnapshotError.
   */
  restoreState(state: MachineState): void {
    restoreMachineState(this, state);
  }

  /** Stops timers (host scheduling) so the process can exit. */
  dispose(): void {
    this.clock.dispose();
  }
}

/** The machine type QEMU 11.1's `q35` is an alias of, and vtemu's historical one. */
const PC_Q35_11_1 = 'pc-q35-11.1';
const PC_Q35_7_2 = 'pc-q35-7.2';
/** Max CPUs of those machine types (QEMU MachineClass.max_cpus). */
const MAX_CPUS_11_1 = 4096;
const MAX_CPUS_7_2 = 288;
/** QEMU 11.1's pc-q35-11.1 default for mch.extended-tseg-mbytes (older machine types: 16). */
const EXT_TSEG_MBYTES_11_1 = 64;

/** The name and CPU limit `-smp` errors name for `-machine TYPE`. */
function machineLimits(type: string | undefined): { name: string; maxCpus: number } {
  return type === PC_Q35_7_2 ? { name: PC_Q35_7_2, maxCpus: MAX_CPUS_7_2 } : { name: PC_Q35_11_1, maxCpus: MAX_CPUS_11_1 };
}

/**
 * The MCH's extended TSEG size before `-global`: QEMU 11.1's 64 MiB for
 * `q35` (its alias of pc-q35-11.1) and `pc-q35-11.1`; 16 MiB for
 * `pc-q35-7.2`, as that machine type has it.
 */
function defaultExtTseg(type: string | undefined): number {
  return type === PC_Q35_7_2 ? ExtTseg.Mbytes : EXT_TSEG_MBYTES_11_1;
}

function memSize(arg: string, warn?: (line: string) => void): number {
  try {
    return parseMemSize(arg, warn);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

/** Builds a q35 machine; throws ConfigError (QEMU wording) for a bad configuration. */
export function createMachine(options: MachineOptions = {}): Machine {
  return new Machine(options);
}
