/**
 * The machine's side of PCI: the host bridge with its root bus (`pcie.0`),
 * plugging `-device`s (addr=, bus= by id, multifunction=), the IOMMU hook-up,
 * the root-bus listing the DMAR builder needs, and the MCH's properties and
 * SMRAM/TSEG views (src/pci/mch-smram.ts).  The host (src/pci/host.ts)
 * routes INTx through the ICH9 PIRQs to IOAPIC inputs 16-23.
 */
import type { AddressSpace } from '../memory/address-space.js';
import type { ContainerRegion, Region } from '../memory/region.js';
import type { DmaIommu } from '../memory/iommu.js';
import { NO_IRQ, type IrqLine } from '../core/irq.js';
import type { PciBus } from '../pci/bus.js';
import { createQ35PciHost, type Q35PciHost } from '../pci/host.js';
import { PciDevice } from '../pci/device.js';
import type { MchProps } from '../pci/ich9.js';
import { SmramViews } from '../pci/mch-smram.js';
import type { Device } from './device-type.js';
import { ConfigError, type DeviceSpec } from './registry.js';

/** What the PCI wiring needs from the machine. */
export interface PciMachineSide {
  readonly memory: AddressSpace;
  readonly systemMemory: ContainerRegion;
  readonly ioSpace: ContainerRegion;
  readonly ioapic: { readonly pins: readonly IrqLine[] };
  /** Guest RAM from guest-physical 0 (the MCH mirrors its SMRAM window from it). */
  readonly ramBlock: Region;
  /** RAM below 4 GiB in bytes (TSEG sits at its top). */
  readonly ramBelow4g: number;
}

/** The machine's PCI: plug, IOMMU, reset, enumeration. */
export interface MachinePci {
  /** The q35 host bridge (MCH, ICH9 functions, CF8/CFC, ECAM). */
  readonly host: Q35PciHost;
  readonly rootBus: PciBus;
  /** Plugs a created device per its spec; returns its devfn.  Throws ConfigError. */
  plug(device: Device, spec: DeviceSpec, existing: readonly { spec: DeviceSpec; device: Device }[]): number;
  /** pci_setup_iommu on the root bus (null: none). */
  setIommu(iommu: DmaIommu | null): void;
  /** Resets every PCI function. */
  reset(): void;
  /** Root-bus functions in devfn order, with bridge flag (DMAR scopes). */
  rootDevices(): { devfn: number; bridge: boolean; device: PciDevice }[];
}

/**
 * Creates the machine's PCI host and returns the wiring around it: the MCH
 * gets its properties (`-global mch.*`) and its SMRAM views in the CPU's
 * memory map.  Throws ConfigError for an MCH property QEMU refuses.
 */
export function createPciHost(m: PciMachineSide, mch: MchProps = {}): MachinePci {
  const host = createQ35PciHost({
    systemMemory: m.systemMemory,
    ioSpace: m.ioSpace,
    memory: m.memory,
    ioapicLine: (gsi) => m.ioapic.pins[gsi] ?? NO_IRQ,
  });
  const root = host.rootBus;
  try {
    host.mch.configure(mch);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  host.mch.connectSmram(new SmramViews({ systemMemory: m.systemMemory, pciMemory: root.memory, ram: m.ramBlock, ramBelow4g: m.ramBelow4g }));
  return {
    host,
    rootBus: root,
    plug(device, spec, existing) {
      if (!(device instanceof PciDevice)) throw new ConfigError(`${spec.type.name} is not a PCI device`);
      let bus = root;
      if (spec.bus !== undefined && spec.bus !== 'pcie.0') {
        const owner = existing.find((d) => d.spec.id === spec.bus)?.device as { secondaryBus?: PciBus } | undefined;
        if (!owner?.secondaryBus) throw new ConfigError(`Bus '${spec.bus}' not found`);
        bus = owner.secondaryBus;
      }
      return bus.plug(device, {
        multifunction: spec.multifunction,
        ...(spec.devfn !== undefined ? { devfn: spec.devfn } : {}),
        ...(spec.id !== undefined ? { id: spec.id } : {}),
      });
    },
    setIommu(iommu) {
      host.setIommu(iommu);
    },
    reset() {
      host.reset();
    },
    rootDevices() {
      return root.devices().map((e) => ({ devfn: e.devfn, bridge: e.isBridge, device: e.device }));
    },
  };
}
