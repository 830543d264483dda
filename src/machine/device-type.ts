/**
 * The device plugin contract: a device type is a name, a description, typed
 * properties (QEMU qdev properties: type, default, help) and a factory.  The
 * machine parses `-device TYPE,k=v,...` against `props`, then calls `create`
 * with a context of what a device may touch.  Third-party devices implement
 * this and call `registerDeviceType` (registry.ts).
 */
import type { AddressSpace } from '../memory/address-space.js';
import type { ContainerRegion } from '../memory/region.js';
import type { VirtualClock } from '../core/clock.js';
import type { MsiTarget } from '../core/irq.js';

/** Property kinds, printed by `-device TYPE,help` as QEMU prints them. */
export type PropKind = 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int32' | 'size' | 'str' | 'OnOffAuto';

/** Values properties take after parsing. */
export type PropValue = boolean | number | bigint | string;

/** One property of a device type. */
export interface PropDef {
  readonly kind: PropKind;
  /** Default value (OnOffAuto: 'on' | 'off' | 'auto'). */
  readonly default?: PropValue;
  readonly help?: string;
}

/** Parsed property values, by name. */
export type PropValues = Readonly<Record<string, PropValue>>;

/**
 * A property name kept for old command lines after QEMU renamed or removed
 * it: not listed by `-device TYPE,help`, and every use prints one warning
 * line (`-device ARG: warning: ...`) before the device is created.
 */
export interface DeprecatedProp {
  /** How its value parses. */
  readonly def: PropDef;
  /** The warning (without the `warning: ` prefix) for a use with `value`. */
  warning(value: PropValue): string;
  /**
   * The current property and value it stands for (a renamed property).
   * Without it the value stays under the old name for the device's factory
   * to interpret (a property QEMU removed).
   */
  replacement?(value: PropValue): readonly [name: string, value: PropValue];
}

/** Trace sink: `-trace PATTERN` prints events whose name matches. */
export interface Tracer {
  enabled(event: string): boolean;
  trace(event: string, fields: Readonly<Record<string, number | string | bigint | boolean>>): void;
}

/** What the machine hands a device factory. */
export interface DeviceContext {
  /** The CPU-visible memory map (map MMIO here). */
  readonly systemMemory: ContainerRegion;
  /** The CPU-visible port I/O space. */
  readonly ioSpace: ContainerRegion;
  /** Address space over systemMemory (for an IOMMU's table walks). */
  readonly memory: AddressSpace;
  readonly clock: VirtualClock;
  /** The APIC bus (MSI delivery without remapping). */
  readonly msi: MsiTarget;
  readonly tracer: Tracer;
  /** The QOM-like id given with `id=`, if any. */
  readonly id?: string;
  /** `-machine kernel-irqchip=` (intel-iommu resolves intremap/eim from it); default 'off'. */
  readonly kernelIrqchip?: 'on' | 'off' | 'split';
}

/** A realized device instance. */
export interface Device {
  /** Type name (`edu`, `intel-iommu`, ...). */
  readonly typeName: string;
  /** Device reset: back to power-on state (machine reset calls it). */
  reset(): void;
}

/** Device categories in the order `-device help` prints them (QEMU DeviceCategory). */
export const DEVICE_CATEGORIES = ['Controller/Bridge/Hub', 'USB', 'Storage', 'Network', 'Input', 'Display', 'Sound', 'Misc', 'CPU', 'Watchdog', 'Uncategorized'] as const;

/** One device category. */
export type DeviceCategory = (typeof DEVICE_CATEGORIES)[number];

/** A device type definition. */
export interface DeviceType<D extends Device = Device> {
  readonly name: string;
  readonly description: string;
  /** 'pci' devices are plugged into a PCI bus by the machine; 'system' ones are not. */
  readonly bus: 'pci' | 'system';
  /** The `-device help` group (QEMU device categories); default 'Misc'. */
  readonly category?: DeviceCategory;
  /**
   * The QEMU release whose `-device TYPE,help` this type follows: its PCIDevice
   * properties, its boolean defaults (`false` in 7.2, `off` later) and, from
   * 11.1 on, the `on/off` description of boolean properties and unquoted
   * OnOffAuto defaults.  Default '7.2'; a type QEMU 7.2 does not have, or whose
   * differential oracle is 11.1 (intel-iommu), follows 11.1.
   */
  readonly qemuRelease?: '7.2' | '11.1';
  readonly props: Readonly<Record<string, PropDef>>;
  /** Old property names still accepted, each with its warning (not listed by help). */
  readonly deprecatedProps?: Readonly<Record<string, DeprecatedProp>>;
  /**
   * Creates the device.  Throws an Error with a QEMU-style message for a bad
   * configuration (e.g. "eim=on requires intremap=on"); the CLI prints it and
   * exits 1.
   */
  create(ctx: DeviceContext, props: PropValues): D;
}
