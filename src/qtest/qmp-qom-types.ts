/**
 * The QOM types vtemu models, as QEMU 11.1's `qom-list-types` reports them
 * (measured with `-machine none` and `-machine q35`, `abstract: true`): each
 * type's parent, whether it is abstract, and the names besides its ancestors
 * that `implements` matches (QEMU object_class_dynamic_cast(): the
 * interfaces it implements, plus the few odd matches QEMU gives).  Listed in
 * the order QEMU lists them (its type-table order), so a vtemu listing is
 * QEMU's listing filtered to these names.  The types are the device types of
 * the registry, the q35 built-ins vtemu models, the machine types `q35`
 * (pc-q35-11.1) and `none`, the buses and containers of the QOM tree, and
 * every ancestor and interface of those; `sva-testdev` (vtemu's own) comes last.
 */

/** One QOM type. */
export interface QomTypeInfo {
  readonly name: string;
  readonly parent?: string;
  readonly abstract: boolean;
  /** Names `implements` matches besides the type and its ancestors. */
  readonly implements: readonly string[];
}

const t = (name: string, parent: string | undefined, abstract: boolean, implements_: readonly string[] = []): QomTypeInfo =>
  parent === undefined ? { name, abstract, implements: implements_ } : { name, parent, abstract, implements: implements_ };

/** QEMU 11.1's types vtemu has, in QEMU's listing order, then vtemu's own. */
export const QOM_TYPES: readonly QomTypeInfo[] = [
  t('pcie-pci-bridge', 'base-pci-bridge', false, ['resettable', 'pci-express-device', 'vmstate-if', 'acpi-dev-aml-interface', 'hotplug-handler']),
  t('pci-bridge', 'base-pci-bridge', false, ['resettable', 'vmstate-if', 'acpi-dev-aml-interface', 'hotplug-handler', 'conventional-pci-device']),
  t('intctrl', 'interface', true),
  t('ioapic-common', 'sys-bus-device', true, ['intctrl', 'resettable', 'vmstate-if']),
  t('iommu-testdev', 'pci-device', false, ['resettable', 'vmstate-if', 'conventional-pci-device']),
  t('ICH9-SMB', 'pci-device', false, ['resettable', 'vmstate-if', 'acpi-dev-aml-interface', 'conventional-pci-device']),
  t('x3130-upstream', 'pcie-port', false, ['resettable', 'pci-express-device', 'vmstate-if', 'acpi-dev-aml-interface']),
  t('PCIE', 'PCI', false, ['resettable', 'fw_cfg-data-generator', 'bus']),
  t('pc-q35-11.1-machine', 'generic-pc-machine', false, ['hotplug-handler', 'nmi', 'x86-machine']),
  t('sys-bus-device', 'device', true, ['resettable', 'vmstate-if']),
  t('resettable', 'interface', true),
  t('pci-express-device', 'interface', true),
  t('xio3130-downstream', 'pcie-slot', false, ['resettable', 'pci-express-device', 'vmstate-if', 'acpi-dev-aml-interface', 'hotplug-handler']),
  t('PCI', 'bus', false, ['resettable', 'fw_cfg-data-generator', 'bus']),
  t('pci-device', 'device', true, ['resettable', 'vmstate-if']),
  t('pcie-port', 'base-pci-bridge', true, ['resettable', 'vmstate-if', 'acpi-dev-aml-interface']),
  t('mch', 'pci-device', false, ['resettable', 'vmstate-if', 'conventional-pci-device']),
  t('target-info-aarch64-machine', 'interface', true),
  t('fw_cfg-data-generator', 'interface', true),
  t('machine', 'object', true),
  t('pci-host-bridge', 'sys-bus-device', true, ['resettable', 'vmstate-if']),
  t('device', 'object', true, ['resettable', 'vmstate-if']),
  t('System', 'bus', false, ['resettable', 'interface', 'bus']),
  t('container', 'object', false),
  t('acpi-device-interface', 'interface', true),
  t('interface', undefined, true),
  t('pcie-root-port-base', 'pcie-slot', true, ['resettable', 'pci-express-device', 'vmstate-if', 'acpi-dev-aml-interface', 'hotplug-handler']),
  t('vmstate-if', 'interface', true),
  t('dynamic-sysbus-device', 'sys-bus-device', true, ['resettable', 'vmstate-if']),
  t('pcie-host-bridge', 'pci-host-bridge', true, ['resettable', 'vmstate-if']),
  t('edu', 'pci-device', false, ['resettable', 'vmstate-if', 'conventional-pci-device']),
  t('acpi-dev-aml-interface', 'interface', true),
  t('target-info-riscv32-machine', 'interface', true),
  t('bus', 'object', true, ['resettable', 'interface']),
  t('intel-iommu', 'x86-iommu', false, ['resettable', 'vmstate-if']),
  t('fw_cfg_io', 'fw_cfg', false, ['resettable', 'vmstate-if']),
  t('none-machine', 'machine', false, ['target-info-aarch64-machine', 'target-info-riscv32-machine', 'target-info-arm-machine', 'target-info-riscv64-machine']),
  t('generic-pc-machine', 'x86-machine', true, ['hotplug-handler', 'nmi', 'x86-machine']),
  t('ioapic', 'ioapic-common', false, ['intctrl', 'resettable', 'vmstate-if']),
  t('target-info-arm-machine', 'interface', true),
  t('hotplug-handler', 'interface', true),
  t('x86-iommu', 'dynamic-sysbus-device', true, ['resettable', 'vmstate-if']),
  t('nmi', 'interface', true),
  t('pcie-slot', 'pcie-port', true, ['resettable', 'vmstate-if', 'acpi-dev-aml-interface', 'hotplug-handler']),
  t('object', undefined, true),
  t('ich9-ahci', 'pci-device', false, ['resettable', 'vmstate-if', 'conventional-pci-device']),
  t('x86-machine', 'machine', true, ['interface', 'nmi']),
  t('pcie-root-port', 'pcie-root-port-base', false, ['resettable', 'pci-express-device', 'vmstate-if', 'acpi-dev-aml-interface', 'hotplug-handler']),
  t('conventional-pci-device', 'interface', true),
  t('target-info-riscv64-machine', 'interface', true),
  t('q35-pcihost', 'pcie-host-bridge', false, ['resettable', 'vmstate-if']),
  t('fw_cfg', 'sys-bus-device', true, ['resettable', 'vmstate-if']),
  t('ICH9-LPC', 'pci-device', false, ['resettable', 'acpi-device-interface', 'vmstate-if', 'acpi-dev-aml-interface', 'hotplug-handler', 'conventional-pci-device']),
  t('base-pci-bridge', 'pci-device', true, ['resettable', 'vmstate-if', 'acpi-dev-aml-interface']),
  // vtemu only: the SVA test device (PASID, ATS, PRI), a PCI Express endpoint.
  t('sva-testdev', 'pci-device', false, ['resettable', 'pci-express-device', 'vmstate-if']),
];
