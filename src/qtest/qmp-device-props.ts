/**
 * The properties of vtemu's device types as QEMU 11.1 describes them to QMP
 * (`device-list-properties`, `qom-list`): name, QOM type, description and
 * default, in the order QEMU lists them (measured with QEMU 11.1).
 *
 * Registry types take their properties from the registry (registry.ts,
 * device-type.ts PropDef) and from QEMU 11.1's PCIDevice set
 * (pci-common-props.ts); the tables here only add QEMU's order.  A property
 * QEMU has and vtemu's type does not accept is not listed (e.g. pci-bridge's
 * `shpc`); one only vtemu has (intel-iommu `x-pi`, `nfr`, ...) comes after
 * QEMU's, described by its help text.  The q35 built-ins (not creatable with
 * `-device`) list QEMU's qdev properties as facts.
 */
import '../machine/builtins.js';
import type { PropDef, PropValue } from '../machine/device-type.js';
import { pciCommonProps } from '../machine/pci-common-props.js';
import { getDeviceType } from '../machine/registry.js';
import { QDict, type QValue } from './qmp-qobject.js';

/** One property as device-list-properties reports it. */
export interface QdevPropInfo {
  readonly name: string;
  /** QOM type name (`uint64`, `bool`, `OnOffAuto`, `str`, `busnr`, ...). */
  readonly type: string;
  readonly description?: string;
  readonly defaultValue?: QValue;
}

/** QEMU 11.1's order of the PCIDevice properties (pci_props, as device-list-properties lists them). */
export const PCI_PROP_ORDER = [
  'busnr',
  'failover_pair_id',
  'x-pcie-ext-tag',
  'addr',
  'romsize',
  'x-pcie-lnksta-dllla',
  'rombar',
  'x-max-bounce-buffer-size',
  'x-pcie-ari-nextfn-1',
  'x-pcie-err-unc-mask',
  'sriov-pf',
  'acpi-index',
  'multifunction',
  'romfile',
] as const;

const ROOT_PORT = ['x-pci-express-writeable-slt-bug', 'port', 'aer_log_max', 'x-do-not-expose-native-hotplug-cap', 'hotplug', 'slot', 'chassis', 'power_controller_present'];

/** QEMU 11.1's order of each registry type's own properties (after the PCIDevice ones). */
const OWN_ORDER: Readonly<Record<string, readonly string[]>> = {
  edu: ['dma_mask'],
  'intel-iommu': [
    'dma-translation', 'device-iotlb', 'intremap', 'stale-tm', 'scalable-mode', 'caching-mode', 'aw-bits',
    'eim', 'version', 'fs1gp', 'fsts', 'pasid-bits', 'snoop-control', 'svm',
  ],
  'iommu-testdev': [],
  'pcie-root-port': [...ROOT_PORT, 'x-width', 'mem-reserve', 'bus-reserve', 'x-speed', 'pref64-reserve', 'io-reserve', 'pref32-reserve'],
  'pcie-pci-bridge': ['x-pci-express-writeable-slt-bug', 'msi'],
  'pci-bridge': ['x-pci-express-writeable-slt-bug', 'chassis_nr', 'bus-reserve', 'mem-reserve', 'pref64-reserve', 'io-reserve', 'msi', 'pref32-reserve', 'shpc'],
  'x3130-upstream': ['x-pci-express-writeable-slt-bug', 'port', 'aer_log_max'],
  'xio3130-downstream': ROOT_PORT,
};

const bool = (name: string, v: boolean): QdevPropInfo => ({ name, type: 'bool', description: 'on/off', defaultValue: v });
const int = (name: string, type: string, v: number | bigint): QdevPropInfo => ({ name, type, defaultValue: qint(v) });

/** The q35 built-ins: QEMU 11.1's qdev properties with defaults, in its order; `pci` ones start with PCIDevice's. */
const BUILTIN_PROPS: Readonly<Record<string, { readonly pci: boolean; readonly own: readonly QdevPropInfo[] }>> = {
  mch: { pci: true, own: [bool('smbase-smram', true), int('extended-tseg-mbytes', 'uint16', 64)] },
  'ICH9-LPC': {
    pci: true,
    own: [
      bool('x-smi-broadcast', true), bool('noreboot', false), bool('smm-enabled', false), bool('x-smi-periodic-timer', true),
      bool('x-smi-swsmi-timer', true), bool('smm-compat', false), bool('x-smi-cpu-hotplug', true), bool('x-smi-cpu-hotunplug', true),
    ],
  },
  'ich9-ahci': { pci: true, own: [] },
  'ICH9-SMB': { pci: true, own: [] },
  'q35-pcihost': {
    pci: false,
    own: [
      bool('bypass-iommu', false), bool('x-config-reg-migration-enabled', true), int('pci-hole64-size', 'size', 34359738368),
      bool('smm-ranges', true), int('below-4g-mem-size', 'size', 0), bool('x-pci-hole64-fix', true),
      int('MCFG', 'uint64', 2952790016), int('above-4g-mem-size', 'size', 0),
    ],
  },
  ioapic: { pci: false, own: [int('version', 'uint8', 32)] },
  fw_cfg_io: { pci: false, own: [bool('acpi-mr-restore', true), int('x-file-slots', 'uint16', 32), bool('dma_enabled', true)] },
};

/** An integer as a QNum (uint64 above int64's range). */
export function qint(v: number | bigint): QValue {
  const b = BigInt(v);
  return { kind: b > (1n << 63n) - 1n ? 'uint' : 'int', value: b };
}

/** A property value as QMP prints it. */
export function propValueToQ(v: PropValue): QValue {
  return typeof v === 'number' || typeof v === 'bigint' ? qint(v) : v;
}

/** A registry property as QEMU describes one of its kind. */
function fromPropDef(name: string, def: PropDef): QdevPropInfo {
  const description = def.help ?? (def.kind === 'bool' ? 'on/off' : def.kind === 'OnOffAuto' ? 'on/off/auto' : undefined);
  return {
    name,
    type: def.kind,
    ...(description !== undefined ? { description } : {}),
    ...(def.default !== undefined ? { defaultValue: propValueToQ(def.default) } : {}),
  };
}

/** A common PCI default as printed by help (`on`, `-1`, `4096`) as a value. */
function commonDefault(text: string | undefined): QValue | undefined {
  if (text === undefined) return undefined;
  if (text === 'on' || text === 'off') return text === 'on';
  return qint(BigInt(text));
}

/** QEMU 11.1's PCIDevice properties, in its order. */
export function pciPropInfos(): QdevPropInfo[] {
  const common = pciCommonProps('11.1');
  return PCI_PROP_ORDER.map((name) => {
    const p = common[name]!;
    const d = commonDefault(p.defaultText);
    return {
      name,
      type: p.typeLabel,
      ...(p.description ? { description: p.description } : {}),
      ...(d !== undefined ? { defaultValue: d } : {}),
    };
  });
}

/** Whether `typeName` is a device type vtemu can describe (registry or q35 built-in). */
export function isVtemuDeviceType(typeName: string): boolean {
  return getDeviceType(typeName) !== undefined || Object.prototype.hasOwnProperty.call(BUILTIN_PROPS, typeName);
}

/** Whether the type is a PCI device. */
export function isPciDeviceType(typeName: string): boolean {
  const t = getDeviceType(typeName);
  return t ? t.bus === 'pci' : BUILTIN_PROPS[typeName]?.pci === true;
}

/** The properties device-list-properties gives for a vtemu device type, in QEMU's order (undefined: not one). */
export function devicePropInfos(typeName: string): QdevPropInfo[] | undefined {
  const builtin = Object.prototype.hasOwnProperty.call(BUILTIN_PROPS, typeName) ? BUILTIN_PROPS[typeName]! : undefined;
  if (builtin) return [...(builtin.pci ? pciPropInfos() : []), ...builtin.own];
  const type = getDeviceType(typeName);
  if (!type) return undefined;
  const own = Object.entries(type.props);
  const order = OWN_ORDER[typeName] ?? [];
  const has = (n: string): boolean => Object.prototype.hasOwnProperty.call(type.props, n);
  const listed = order.filter(has).map((n) => fromPropDef(n, type.props[n]!));
  const extra = own.filter(([n]) => !order.includes(n)).map(([n, d]) => fromPropDef(n, d));
  return [...(type.bus === 'pci' ? pciPropInfos() : []), ...listed, ...extra];
}

/** One device-list-properties entry as QEMU builds it (ObjectPropertyInfo). */
export function propInfoDict(p: QdevPropInfo): QDict {
  const d = QDict.of([
    ['name', p.name],
    ['type', p.type],
  ]);
  if (p.description !== undefined) d.put('description', p.description);
  if (p.defaultValue !== undefined) d.put('default-value', p.defaultValue);
  return d;
}
