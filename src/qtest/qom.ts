/**
 * The QOM composition tree of a vtemu machine as QEMU 11.1 names it, for
 * `qom-list`, `qom-get` and `qom-set`: `/machine` (pc-q35-11.1-machine or
 * none-machine), `/machine/q35` (q35-pcihost) with `ioapic`, `pcie.0` and
 * `mch`, `/machine/unattached/device[2|12|13]` (the ICH9 LPC, AHCI and SMBus
 * functions) and `sysbus`, `/machine/fw_cfg`, `-device`s under
 * `/machine/peripheral/ID` or `/machine/peripheral-anon/device[N]`, and a
 * bridge's secondary bus as its child (named after the bridge's id, else
 * `pcie.0` / `pci.0`).
 *
 * Only what vtemu models is there: no memory-region, irq or link children
 * besides `parent_bus`, and of each object the properties of its type that
 * vtemu has (qmp-device-props.ts), in QEMU's order.  Children of the
 * peripheral containers come in QEMU's hash-table order (qom-ghash.ts).
 * Paths resolve as QEMU's object_resolve_path(): absolute ones component by
 * component (empty components skipped), partial ones must match exactly one
 * place in the tree.
 */
import type { Machine, MachineDevice } from '../machine/q35.js';
import { PciBridge } from '../pci/bridge.js';
import { BridgeReg } from '../pci/config.js';
import { MchReg, PciexBar } from '../pci/ich9.js';
import type { PciDevice } from '../pci/device.js';
import { EduDevice } from '../hw/edu/edu.js';
import { IntelIommu } from '../hw/intel-iommu/device.js';
import { generic, ok, qnumToInt64, type Outcome } from './qmp-args.js';
import { devicePropInfos, propValueToQ, qint, type QdevPropInfo } from './qmp-device-props.js';
import { ghashOrder } from './qom-ghash.js';
import { isQNum, type QValue } from './qmp-qobject.js';

/** One property of a QOM object. */
export interface QomProp {
  readonly name: string;
  /** QOM type (`string`, `bool`, `uint64`, `child<edu>`, `link<bus>`, ...). */
  readonly type: string;
  /** For `child<>` properties: the child. */
  readonly child?: QomObject;
  /** Its value for qom-get. */
  get(): QValue;
  /** qom-set; absent: "is not writable". */
  set?(v: QValue): Outcome;
}

/** One object of the tree. */
export class QomObject {
  readonly props: QomProp[] = [];
  parent: QomObject | null = null;
  name = '';

  constructor(readonly typeName: string) {
    this.props.push({ name: 'type', type: 'string', get: () => typeName });
  }

  /** The canonical path (`/` for the root). */
  get path(): string {
    if (!this.parent) return '/';
    const up = this.parent.path;
    return `${up === '/' ? '' : up}/${this.name}`;
  }

  prop(name: string): QomProp | undefined {
    return this.props.find((p) => p.name === name);
  }

  /** Adds a child property and returns the child. */
  addChild(name: string, child: QomObject): QomObject {
    child.parent = this;
    child.name = name;
    this.props.push({ name, type: `child<${child.typeName}>`, child, get: () => child.path });
    return child;
  }

  /** The children, in property order. */
  children(): QomObject[] {
    return this.props.flatMap((p) => (p.child ? [p.child] : []));
  }
}

/** The qom-set error of a qdev property of a realized device. */
function afterRealize(name: string, id: string | undefined, typeName: string): Outcome {
  return generic(
    id !== undefined
      ? `Attempt to set property '${name}' on device '${id}' (type '${typeName}') after it was realized`
      : `Attempt to set property '${name}' on anonymous device (type '${typeName}') after it was realized`,
  );
}

/** How vtemu answers `realized=false` (QEMU would unrealize the device; vtemu cannot). */
export const UNREALIZE_REFUSED = 'vtemu cannot unrealize a device';

/** What a device object is built from. */
interface DeviceNode {
  readonly typeName: string;
  readonly id?: string;
  /** Path of the bus it sits on. */
  readonly busPath: () => string;
  readonly hotpluggable: boolean;
  /** The device's property values (absent: the listed default). */
  readonly value: (name: string) => QValue | undefined;
  /** Settable instance properties (not qdev ones). */
  readonly setters?: Readonly<Record<string, (v: QValue) => Outcome>>;
  /** Properties with no setter at all (besides the device ones). */
  readonly readOnly?: ReadonlySet<string>;
}

/** QEMU's read-only PCIDevice property. */
const PCI_READ_ONLY = new Set(['busnr']);

/** A device object: DeviceState's properties, then the type's (QEMU's order). */
function deviceObject(d: DeviceNode, infos: readonly QdevPropInfo[]): QomObject {
  const o = new QomObject(d.typeName);
  const realized = (v: QValue): Outcome => {
    if (typeof v !== 'boolean') return generic("Invalid parameter type for 'realized', expected: boolean");
    return v ? ok() : generic(UNREALIZE_REFUSED);
  };
  o.props.push(
    { name: 'parent_bus', type: 'link<bus>', get: () => d.busPath() },
    { name: 'realized', type: 'bool', get: () => true, set: realized },
    { name: 'hotplugged', type: 'bool', get: () => false },
    { name: 'hotpluggable', type: 'bool', get: () => d.hotpluggable },
  );
  for (const info of infos) {
    const setter = d.setters?.[info.name];
    const readOnly = PCI_READ_ONLY.has(info.name) || d.readOnly?.has(info.name);
    o.props.push({
      name: info.name,
      type: info.type,
      get: () => d.value(info.name) ?? info.defaultValue ?? zeroOf(info.type),
      ...(setter ? { set: setter } : readOnly ? {} : { set: () => afterRealize(info.name, d.id, d.typeName) }),
    });
  }
  return o;
}

/** What a property without value or default reads as (a zeroed field). */
function zeroOf(type: string): QValue {
  if (type === 'str' || type === 'string') return '';
  return type === 'bool' ? false : qint(0);
}

/** A bus object (BusState: type, realized; `QEMU never realizes the main system bus). */
function busObject(typeName: string, state: QomState, realized = true): QomObject {
  const o = new QomObject(typeName);
  const isRealized = (): boolean => realized || state.realizedBuses.has(o.path);
  const set = (v: QValue): Outcome => {
    if (typeof v !== 'boolean') return generic("Invalid parameter type for 'realized', expected: boolean");
    if (v) state.realizedBuses.add(o.path);
    else if (isRealized()) return generic(UNREALIZE_REFUSED);
    return ok();
  };
  o.props.push({ name: 'realized', type: 'bool', get: isRealized, set });
  return o;
}

/** A plain container. */
const container = (): QomObject => new QomObject('container');

/** The QOM type of a bridge's secondary bus. */
const busTypeOf = (typeName: string): 'PCIE' | 'PCI' => (typeName === 'pci-bridge' || typeName === 'pcie-pci-bridge' ? 'PCI' : 'PCIE');

const UINT64_MAX = (1n << 64n) - 1n;

/** qom-set of a uint64 instance property (object_property_add_uint64_ptr). */
function uint64Setter(name: string, apply: (v: bigint) => void): (v: QValue) => Outcome {
  return (v) => {
    const n = v !== null && isQNum(v) ? (v.kind === 'uint' ? v.value : qnumToInt64(v)) : null;
    if (n === null || n > UINT64_MAX) return generic(`Parameter '${name}' expects uint64`);
    apply(BigInt.asUintN(64, n));
    return ok();
  };
}

/** Builds the tree of `machine` (null: `-machine none`). */
export function buildQomTree(machine: Machine | null, state: QomState): QomObject {
  const root = container();
  const backend = container();
  const m = new QomObject(machine ? 'pc-q35-11.1-machine' : 'none-machine');
  root.addChild('backend', backend);
  root.addChild('machine', m);
  root.addChild('objects', container());
  root.addChild('chardevs', container());
  root.addChild('audiodevs', container());

  const unattached = container();
  const peripheral = container();
  const anon = container();
  if (!machine) {
    m.addChild('peripheral-anon', anon);
    m.addChild('peripheral', peripheral);
    m.addChild('unattached', unattached);
    unattached.addChild('sysbus', busObject('System', state, false));
    return root;
  }

  const bypass = (v: QValue): Outcome => {
    if (typeof v !== 'boolean') return generic("Invalid parameter type for 'default-bus-bypass-iommu', expected: boolean");
    state.defaultBusBypassIommu = v;
    return ok();
  };
  m.props.push({
    name: 'default-bus-bypass-iommu',
    type: 'bool',
    get: () => state.defaultBusBypassIommu ?? machine.props.defaultBusBypassIommu,
    set: bypass,
  });
  m.addChild('unattached', unattached);
  const sysbusPath = (): string => '/machine/unattached/sysbus';
  const rootBusPath = (): string => '/machine/q35/pcie.0';
  const builtin = (typeName: string, busPath: () => string, values: Readonly<Record<string, QValue>> = {}): QomObject =>
    deviceObject({ typeName, busPath, hotpluggable: false, value: (n) => values[n] }, devicePropInfos(typeName)!);

  m.addChild('fw_cfg', builtin('fw_cfg_io', sysbusPath));
  m.addChild('peripheral-anon', anon);
  m.addChild('peripheral', peripheral);
  const host = m.addChild(
    'q35',
    builtin('q35-pcihost', sysbusPath, {
      'below-4g-mem-size': qint(machine.ramBelow4g),
      'above-4g-mem-size': qint(machine.ramAbove4g),
      MCFG: qint(mcfgBase(machine)),
    }),
  );
  host.addChild('ioapic', builtin('ioapic', sysbusPath));
  host.addChild('pcie.0', busObject('PCIE', state));
  const h = machine.pci.host;
  host.addChild('mch', builtin('mch', rootBusPath, { addr: qint(h.mch.devfn) }));
  unattached.addChild('device[2]', builtin('ICH9-LPC', rootBusPath, { addr: qint(h.lpc.devfn), multifunction: true, 'smm-enabled': true }));
  unattached.addChild('device[12]', builtin('ich9-ahci', rootBusPath, { addr: qint(h.ahci.devfn), multifunction: true }));
  unattached.addChild('device[13]', builtin('ICH9-SMB', rootBusPath, { addr: qint(h.smbus.devfn), multifunction: true }));
  unattached.addChild('sysbus', busObject('System', state, false));

  addDevices(machine, peripheral, anon, state);
  return root;
}

/** The MCFG base QEMU reports: PCIEXBAR's base when enabled, else all-ones. */
function mcfgBase(machine: Machine): bigint {
  const cfg = machine.pci.host.mch.config;
  const bar = cfg.getLong(MchReg.PciexBar);
  if (!(bar & PciexBar.Enable)) return UINT64_MAX;
  const len = bar & PciexBar.LengthMask;
  const mask = PciexBar.AddrMask256M | (len === PciexBar.Length128M ? PciexBar.AddrBit128M : len === PciexBar.Length64M ? PciexBar.AddrBit128M | PciexBar.AddrBit64M : 0);
  return BigInt((bar & mask) >>> 0) | (BigInt(cfg.getLong(MchReg.PciexBar + 4) & 0xf) << 32n);
}

/** What qom-set may change that the machine does not hold (kept per session). */
export interface QomState {
  defaultBusBypassIommu?: boolean;
  /** Buses realized by qom-set (paths). */
  readonly realizedBuses: Set<string>;
}

/** Adds the `-device`s under peripheral / peripheral-anon. */
function addDevices(machine: Machine, peripheral: QomObject, anon: QomObject, state: QomState): void {
  const objects = new Map<MachineDevice, QomObject>();
  const named: [string, QomObject][] = [];
  const anonymous: [string, QomObject][] = [];
  for (const md of machine.devices) {
    const o = deviceNode(machine, md, objects, state);
    objects.set(md, o);
    if (md.spec.id !== undefined) named.push([md.spec.id, o]);
    else anonymous.push([`device[${anonymous.length}]`, o]);
  }
  for (const [list, parent] of [
    [named, peripheral],
    [anonymous, anon],
  ] as const) {
    const byName = new Map(list);
    for (const name of ghashOrder(list.map((e) => e[0])).reverse()) parent.addChild(name, byName.get(name)!);
  }
}

/** The object of one `-device`. */
function deviceNode(machine: Machine, md: MachineDevice, done: ReadonlyMap<MachineDevice, QomObject>, state: QomState): QomObject {
  const { spec, device } = md;
  const pci = spec.type.bus === 'pci';
  const owner = pci && spec.bus !== undefined && spec.bus !== 'pcie.0' ? machine.devices.find((d) => d.spec.id === spec.bus) : undefined;
  const ownerObj = owner ? done.get(owner) : undefined;
  const busPath = (): string =>
    !pci ? '/machine/unattached/sysbus' : ownerObj ? `${ownerObj.path}/${owner!.spec.id}` : '/machine/q35/pcie.0';
  const values = (name: string): QValue | undefined => {
    if (name === 'addr' && md.devfn !== undefined) return qint(md.devfn);
    if (name === 'multifunction') return spec.multifunction;
    if (name === 'busnr') return qint(device instanceof PciBridge ? (device as PciDevice).config.getByte(BridgeReg.SecondaryBus) : 0);
    if (device instanceof EduDevice && name === 'dma_mask') return qint(device.dmaMask);
    if (device instanceof IntelIommu && (name === 'intremap' || name === 'eim')) return (name === 'intremap' ? device.config.intremap : device.config.eim) ? 'on' : 'off';
    const v = spec.props[name];
    return v === undefined ? undefined : propValueToQ(v);
  };
  const setters: Record<string, (v: QValue) => Outcome> = {};
  if (device instanceof EduDevice) setters['dma_mask'] = uint64Setter('dma_mask', (v) => (device.dmaMask = v));
  const o = deviceObject(
    {
      typeName: spec.type.name,
      ...(spec.id !== undefined ? { id: spec.id } : {}),
      busPath,
      hotpluggable: pci && owner !== undefined,
      value: values,
      setters,
    },
    devicePropInfos(spec.type.name)!,
  );
  if (device instanceof PciBridge) o.addChild(spec.id ?? (busTypeOf(spec.type.name) === 'PCIE' ? 'pcie.0' : 'pci.0'), busObject(busTypeOf(spec.type.name), state));
  return o;
}

/** The result of resolving a path. */
export type Resolved = { readonly obj: QomObject } | { readonly error: Outcome };

/** object_resolve_path(): absolute or partial; DeviceNotFound / ambiguous errors as QEMU words them. */
export function resolvePath(root: QomObject, path: string): Resolved {
  const parts = path.split('/');
  const notFound: Resolved = { error: { errClass: 'DeviceNotFound', desc: `Device '${path}' not found` } };
  if (path.startsWith('/')) {
    const o = resolveAbs(root, parts.slice(1));
    return o ? { obj: o } : notFound;
  }
  let found: QomObject | null = null;
  let ambiguous = false;
  const walk = (o: QomObject): void => {
    if (ambiguous) return;
    const hit = resolveAbs(o, parts);
    if (hit) {
      if (found) ambiguous = true;
      found = hit;
    }
    for (const c of o.children()) walk(c);
  };
  walk(root);
  if (ambiguous) return { error: generic(`Path '${path}' is ambiguous`) };
  return found ? { obj: found } : notFound;
}

function resolveAbs(from: QomObject, parts: readonly string[]): QomObject | null {
  let o: QomObject | undefined = from;
  for (const p of parts) {
    if (p === '') continue;
    o = o.prop(p)?.child;
    if (!o) return null;
  }
  return o;
}
