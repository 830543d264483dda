/**
 * The qdev properties every PCI device has (QEMU PCIDevice, hw/pci/pci.c
 * pci_props), as `-device TYPE,help` lists them and `-device` accepts them,
 * for the two QEMU releases vtemu follows.  A device type that exists in
 * QEMU 7.2 lists 7.2's set; one that only exists in a later QEMU (e.g.
 * iommu-testdev, QEMU 11.1) lists that release's set (DeviceType.qemuRelease).
 * The values are accepted and ignored, except `addr` and `multifunction`.
 */
import type { PropDef } from './device-type.js';

/** One common PCI property: how it is listed and how a value is parsed. */
export interface CommonProp {
  /** The `<type>` of its help line. */
  readonly typeLabel: string;
  readonly description?: string;
  /** The default as the help line prints it (`false` in 7.2, `off` in 11.1). */
  readonly defaultText?: string;
  /** How its value is parsed (`addr` has its own parser). */
  readonly def: PropDef;
  /** Given at all, the device is refused with this message (`%s` is the type name). */
  readonly refuse?: string;
  /** Refused only once every property parsed (QEMU refuses it at realize). */
  readonly refuseAtRealize?: boolean;
}

/** The QEMU releases whose PCIDevice properties a device type can list. */
export type PciPropsRelease = '7.2' | '11.1';

const ADDR_HELP = 'Slot and optional function number, example: 06.0 or 06';

/** QEMU 7.2's PCIDevice properties. */
const PCI_COMMON_PROPS_7_2: Readonly<Record<string, CommonProp>> = {
  'acpi-index': { typeLabel: 'uint32', description: '', defaultText: '0', def: { kind: 'uint32' } },
  addr: { typeLabel: 'int32', description: ADDR_HELP, defaultText: '-1', def: { kind: 'str' } },
  failover_pair_id: { typeLabel: 'str', def: { kind: 'str' } },
  multifunction: { typeLabel: 'bool', description: 'on/off', defaultText: 'false', def: { kind: 'bool' } },
  rombar: { typeLabel: 'uint32', description: '', defaultText: '1', def: { kind: 'uint32' } },
  romfile: { typeLabel: 'str', def: { kind: 'str' } },
  romsize: { typeLabel: 'uint32', description: '', defaultText: '4294967295', def: { kind: 'uint32' } },
  'x-pcie-extcap-init': { typeLabel: 'bool', description: 'on/off', defaultText: 'true', def: { kind: 'bool' } },
  'x-pcie-lnksta-dllla': { typeLabel: 'bool', description: 'on/off', defaultText: 'true', def: { kind: 'bool' } },
};

/** QEMU 11.1's PCIDevice properties (checked against `qemu-system-x86_64 -device iommu-testdev,help`). */
const PCI_COMMON_PROPS_11_1: Readonly<Record<string, CommonProp>> = {
  'acpi-index': { typeLabel: 'uint32', description: '', defaultText: '0', def: { kind: 'uint32' } },
  addr: { typeLabel: 'str', description: ADDR_HELP, defaultText: '-1', def: { kind: 'str' } },
  // A read-only property (the bus number of a bridge's secondary bus).
  busnr: { typeLabel: 'busnr', def: { kind: 'str' }, refuse: "Property '%s.busnr' is not writable" },
  failover_pair_id: { typeLabel: 'str', def: { kind: 'str' } },
  multifunction: { typeLabel: 'bool', description: 'on/off', defaultText: 'off', def: { kind: 'bool' } },
  rombar: { typeLabel: 'int32', description: '', defaultText: '-1', def: { kind: 'int32' } },
  romfile: { typeLabel: 'str', def: { kind: 'str' } },
  romsize: { typeLabel: 'uint32', description: '', defaultText: '4294967295', def: { kind: 'uint32' } },
  'sriov-pf': { typeLabel: 'str', def: { kind: 'str' }, refuse: 'user cannot create SR-IOV VF with this device type', refuseAtRealize: true },
  'x-max-bounce-buffer-size': {
    typeLabel: 'size',
    description: 'Maximum buffer size allocated for bounce buffers used for mapped access to indirect DMA memory',
    defaultText: '4096',
    def: { kind: 'size' },
  },
  'x-pcie-ari-nextfn-1': { typeLabel: 'bool', description: 'on/off', defaultText: 'off', def: { kind: 'bool' } },
  'x-pcie-err-unc-mask': { typeLabel: 'bool', description: 'on/off', defaultText: 'on', def: { kind: 'bool' } },
  'x-pcie-ext-tag': { typeLabel: 'bool', description: 'on/off', defaultText: 'on', def: { kind: 'bool' } },
  'x-pcie-lnksta-dllla': { typeLabel: 'bool', description: 'on/off', defaultText: 'on', def: { kind: 'bool' } },
};

/** The common PCI properties of `release` (default 7.2). */
export function pciCommonProps(release: PciPropsRelease = '7.2'): Readonly<Record<string, CommonProp>> {
  return release === '11.1' ? PCI_COMMON_PROPS_11_1 : PCI_COMMON_PROPS_7_2;
}

/** How `release` prints a boolean default (`false`/`true` in 7.2, `off`/`on` from QEMU 8 on). */
export function boolDefaultText(release: PciPropsRelease, v: boolean): string {
  if (release === '7.2') return String(v);
  return v ? 'on' : 'off';
}
