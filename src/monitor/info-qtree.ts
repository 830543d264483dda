/**
 * `info qtree` in QEMU's format (qdev-monitor.c qbus_print/qdev_print):
 *
 *     bus: NAME
 *       type TYPE
 *       dev: TYPE, id "ID"
 *         gpio lines, PROP = VALUE, bus-specific lines (PCI: class/addr/ids,
 *         then one line per BAR), none of them with -b
 *         bus: CHILD ...
 *
 * two blanks of indent per level, the devices on a bus newest first.  The
 * printer works on a plain QtreeBus; `machineQtree` describes vtemu's
 * machine: the system bus with the -device sysbus devices, the IOAPIC, the
 * q35 host bridge with pcie.0 and everything below it, and fw_cfg.  QEMU's
 * other built-ins (ISA devices, HPET, PS/2, SMBus EEPROMs, IDE buses) are
 * not modelled and not printed.
 */
import type { Machine } from '../machine/q35.js';
import type { PropDef, PropValue } from '../machine/device-type.js';
import type { PciBus } from '../pci/bus.js';
import { BAR_UNMAPPED, type PciDevice } from '../pci/device.js';
import { PciReg } from '../pci/config.js';
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { formatPropValue, intValue, sizeToStr } from './qdev-format.js';
import { hex } from './info-pci.js';
import { qtreeClass } from './pci-class.js';

/** A device in the tree. */
export interface QtreeDevice {
  readonly type: string;
  readonly id: string;
  /** Lines before the properties (gpio-in/gpio-out). */
  readonly preLines?: readonly string[];
  /** `NAME = VALUE` pairs, printed unless brief. */
  readonly props: readonly (readonly [string, string])[];
  /** Lines the bus type adds (always printed). */
  readonly busLines: readonly string[];
  readonly buses: readonly QtreeBus[];
}

/** A bus in the tree. */
export interface QtreeBus {
  readonly name: string;
  readonly type: string;
  /** Newest first. */
  readonly devices: readonly QtreeDevice[];
}

function printBus(bus: QtreeBus, level: number, brief: boolean, out: string[]): void {
  const ind = '  '.repeat(level);
  out.push(`${ind}bus: ${bus.name}`, `${ind}  type ${bus.type}`);
  for (const d of bus.devices) {
    out.push(`${ind}  dev: ${d.type}, id "${d.id}"`);
    if (!brief) {
      for (const l of d.preLines ?? []) out.push(`${ind}    ${l}`);
      for (const [k, v] of d.props) out.push(`${ind}    ${k} = ${v}`);
      for (const l of d.busLines) out.push(`${ind}    ${l}`);
    }
    for (const b of d.buses) printBus(b, level + 2, brief, out);
  }
}

/** The text of `info qtree` for `root` (`-b`: brief, no properties).  Lines end in '\n'. */
export function formatQtree(root: QtreeBus, brief = false): string {
  const out: string[] = [];
  printBus(root, 0, brief, out);
  return out.map((l) => l + '\n').join('');
}

/**
 * The properties QEMU 11.1 prints for the types vtemu shares with it, in
 * its order, and the vtemu properties it has no qdev counterpart for.
 * Properties of a type that are in neither list (vtemu extensions) follow
 * QEMU's, in vtemu's order.
 */
const QEMU_PROP_ORDER: Readonly<Record<string, { readonly order: readonly string[]; readonly hidden?: readonly string[] }>> = {
  'intel-iommu': {
    order: ['version', 'eim', 'aw-bits', 'caching-mode', 'scalable-mode', 'fsts', 'snoop-control', 'pasid-bits', 'svm', 'stale-tm', 'fs1gp', 'intremap', 'device-iotlb', 'dma-translation'],
  },
  // QEMU's edu has dma_mask as a plain QOM property, not a qdev one.
  edu: { order: [], hidden: ['dma_mask'] },
  'pcie-root-port': { order: ['chassis', 'slot', 'port'] },
  'xio3130-downstream': { order: ['chassis', 'slot', 'port'] },
  'x3130-upstream': { order: ['port'] },
};

/** QEMU 11.1's PCIDevice properties as `info qtree` prints them, after the type's own (defaults: vtemu ignores them). */
function pciCommonLines(d: PciDevice, multifunction: boolean): [string, string][] {
  return [
    ['addr', `${hex(d.devfn >>> 3, 2)}.${d.devfn & 7}`],
    ['romfile', '""'],
    ['romsize', intValue(0xffff_ffff)],
    ['rombar', intValue(-1)],
    ['multifunction', String(multifunction)],
    ['x-pcie-lnksta-dllla', 'true'],
    ['failover_pair_id', '""'],
    ['acpi-index', intValue(0)],
    ['x-pcie-err-unc-mask', 'true'],
    ['x-pcie-ari-nextfn-1', 'false'],
    ['x-max-bounce-buffer-size', `4096 (${sizeToStr(4096n)})`],
    ['sriov-pf', '""'],
    ['x-pcie-ext-tag', 'true'],
    ['busnr', intValue(d.bus.busNumber())],
  ];
}

/** The PCI bus lines (QEMU pcibus_dev_print): class, address, IDs, then each BAR at its current address. */
export function pciBusLines(d: PciDevice): string[] {
  const c = d.config;
  const id = (off: number): string => hex(c.getWord(off), 4);
  const out = [
    `class ${qtreeClass(c.getWord(PciReg.ClassDevice))}, addr ${hex(d.bus.busNumber(), 2)}:${hex(d.devfn >>> 3, 2)}.${d.devfn & 7}, ` +
      `pci id ${id(PciReg.VendorId)}:${id(PciReg.DeviceId)} (sub ${id(PciReg.SubsystemVendorId)}:${id(PciReg.SubsystemId)})`,
  ];
  const U64 = 1n << 64n;
  for (const bar of d.bars) {
    if (!bar) continue;
    const addr = bar.addr === BAR_UNMAPPED ? U64 - 1n : BigInt(bar.addr);
    const last = (addr + BigInt(bar.region.size) - 1n) % U64;
    out.push(`bar ${bar.index}: ${bar.type === 'io' ? 'i/o' : 'mem'} at 0x${addr.toString(16)} [0x${last.toString(16)}]`);
  }
  return out;
}

/** A device's own properties: QEMU's order for types it has, resolved values for intel-iommu. */
function typeProps(typeName: string, defs: Readonly<Record<string, PropDef>>, values: Readonly<Record<string, PropValue>>, device: unknown): [string, string][] {
  const known = QEMU_PROP_ORDER[typeName];
  const names = [...(known?.order ?? []), ...Object.keys(defs).filter((k) => !known?.order.includes(k) && !known?.hidden?.includes(k))];
  const out: [string, string][] = [];
  for (const k of names) {
    const def = defs[k];
    if (!def) continue;
    let v = values[k] ?? def.default;
    if (typeName === 'intel-iommu' && (k === 'eim' || k === 'intremap')) v = (device as IntelIommu).config[k] ? 'on' : 'off';
    if (v === undefined) continue;
    out.push([k, formatPropValue(def.kind, v)]);
  }
  return out;
}

/** Describes vtemu's machine as a qdev tree. */
export function machineQtree(m: Machine): QtreeBus {
  const host = m.pci.host;
  const builtins: PciDevice[] = [host.mch, host.lpc, host.ahci, host.smbus];
  const byDevice = new Map<unknown, Machine['devices'][number]>();
  for (const d of m.devices) byDevice.set(d.device, d);
  const plugOrder = new Map<unknown, number>();
  [...builtins, ...m.devices.map((d) => d.device)].forEach((d, i) => plugOrder.set(d, i));

  const pciBus = (bus: PciBus): QtreeBus => {
    const devs = bus
      .devices()
      .map((e) => e.device)
      .sort((a, b) => (plugOrder.get(b) ?? 0) - (plugOrder.get(a) ?? 0));
    return { name: bus.name, type: bus.isExpress ? 'PCIE' : 'PCI', devices: devs.map(pciDevice) };
  };
  const pciDevice = (d: PciDevice): QtreeDevice => {
    const md = byDevice.get(d);
    const own = md ? typeProps(md.spec.type.name, md.spec.type.props, md.spec.props, d) : [];
    const multifunction = md ? md.spec.multifunction : d !== host.mch;
    const sec = (d as { secondaryBus?: PciBus }).secondaryBus;
    return {
      type: d.typeName,
      id: md?.spec.id ?? '',
      props: [...own, ...pciCommonLines(d, multifunction)],
      busLines: pciBusLines(d),
      buses: d.isBridge && sec ? [pciBus(sec)] : [],
    };
  };

  const system: QtreeDevice[] = m.devices
    .filter((d) => d.spec.type.bus === 'system')
    .reverse()
    .map((d) => ({ type: d.spec.type.name, id: d.spec.id ?? '', props: typeProps(d.spec.type.name, d.spec.type.props, d.spec.props, d.device), busLines: [], buses: [] }));
  system.push({
    type: 'ioapic',
    id: '',
    preLines: ['gpio-in "" 24'],
    props: [['version', intValue(m.ioapic.version)]],
    busLines: [`mmio ${hex(0xfec0_0000, 16)}/${hex(m.ioapic.region.size, 16)}`],
    buses: [],
  });
  system.push({
    type: 'q35-pcihost',
    id: '',
    props: [
      ['below-4g-mem-size', `${m.ramBelow4g} (${sizeToStr(BigInt(m.ramBelow4g))})`],
      ['above-4g-mem-size', `${m.ramAbove4g} (${sizeToStr(BigInt(m.ramAbove4g))})`],
    ],
    busLines: [],
    buses: [pciBus(host.rootBus)],
  });
  system.push({ type: 'fw_cfg_io', id: '', props: [['dma_enabled', String(m.firmware.fwCfg.dmaEnabled)]], busLines: [], buses: [] });
  return { name: 'main-system-bus', type: 'System', devices: system };
}
