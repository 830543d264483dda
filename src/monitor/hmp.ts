/**
 * The human monitor commands QMP's `human-monitor-command` runs: `info pci`,
 * `info mtree [-f][-d][-o][-D]`, `info qtree [-b]` and vtemu's own
 * `info iommu`.  A line is read as QEMU 11.1 reads it (hmp-parse.ts), and
 * every other command, sub-command or argument mistake answers with QEMU's
 * text for it.  The answer's lines end in CRLF, as QMP returns them.
 */
import type { Machine } from '../machine/q35.js';
import type { PciDevice } from '../pci/device.js';
import type { Region } from '../memory/region.js';
import { parseHmpLine, type HmpInfoSpec } from './hmp-parse.js';
import { infoPci } from './info-pci.js';
import { formatFlatViews, formatMtree, RegionDescriber, type MtreeNode, type MtreeSpace } from './info-mtree.js';
import { formatQtree, machineQtree } from './info-qtree.js';
import { infoIommu, INFO_IOMMU_FLAGS, INFO_IOMMU_HELP, INFO_IOMMU_PARAMS } from './info-iommu.js';
import { machineUnits } from './inspect.js';

/** One `info` sub-command: its flags (QEMU's declaration order) and its `info` help line. */
interface InfoCommand extends HmpInfoSpec {
  readonly params: string;
  readonly help: string;
  run(machine: Machine | null, flags: ReadonlySet<string>, args: string): string;
}

const INFO: ReadonlyMap<string, InfoCommand> = new Map<string, InfoCommand>([
  ['iommu', { flags: INFO_IOMMU_FLAGS, args: true, params: INFO_IOMMU_PARAMS, help: INFO_IOMMU_HELP, run: (m, f, a) => infoIommu(machineUnits(m), f, a) }],
  [
    'mtree',
    {
      flags: ['f', 'd', 'o', 'D'],
      params: '[-f][-d][-o][-D]',
      help: 'show memory tree (-f: dump flat view for address spaces;-d: dump dispatch tree, valid with -f only);-o: dump region owners/parents;-D: dump disabled regions',
      run: (m, f) => mtreeText(m, f),
    },
  ],
  ['pci', { flags: [], params: '', help: 'show PCI info', run: (m) => (m ? infoPci(m.pci.rootBus, pciIdOf(m)) : '') }],
  ['qtree', { flags: ['b'], params: '[-b]', help: 'show device tree (-b: brief, omit properties)', run: (m, f) => qtreeText(m, f.has('b')) }],
]);

/** What `info` alone prints: a help line per sub-command, QEMU's format. */
const INFO_HELP = [...INFO].map(([name, c]) => `info ${name} ${c.params} -- ${c.help}\n`).join('');

const crlf = (text: string): string => text.replace(/\n/g, '\r\n');

/** Runs one HMP command line on `machine` (null: `-machine none`); returns its output text. */
export function runHmp(machine: Machine | null, commandLine: string): string {
  const p = parseHmpLine(commandLine, INFO, INFO_HELP);
  if (p.kind === 'text') return crlf(p.text);
  return crlf(INFO.get(p.name)!.run(machine, p.flags, p.args ?? ''));
}

/** id= of a PCI function ('' for the built-ins and devices without one). */
function pciIdOf(m: Machine): (d: PciDevice) => string {
  const ids = new Map<unknown, string>();
  for (const d of m.devices) ids.set(d.device, d.spec.id ?? '');
  return (d) => ids.get(d) ?? '';
}

/** QEMU's types for regions vtemu builds differently: its ROMs are ROM regions, its PCI memory an I/O region. */
function regionTypes(m: Machine): (r: Region) => string | undefined {
  const rom = new Set(['pc.rom', 'pc.bios', 'isa-bios']);
  return (r) => (r === m.pci.rootBus.memory ? 'i/o' : r.kind === 'mmio' && rom.has(r.name) ? 'rom' : undefined);
}

const FULL = 1n << 64n;

/**
 * A PCI function's bus-master address space as QEMU shows it: the
 * "bus master container" with the "bus master" alias, enabled while the
 * function's bus-master bit is set, onto system memory or, behind an
 * IOMMU, onto the IOMMU's space for its requester ID (vtd-SS.F; vtemu
 * prints that space's name only, not its contents).
 */
function busMasterSpace(d: PciDevice, system: MtreeNode, iommu: boolean): MtreeSpace {
  // Named after the requester the IOMMU sees (a bridge's alias for functions behind a PCIe-to-PCI bridge).
  const rid = d.requester().devfn;
  const target: MtreeNode = iommu
    ? { name: `vtd-${(rid >>> 3).toString(16).padStart(2, '0')}.${rid & 7}`, size: FULL, type: 'container', enabled: true, children: [], addr: 0n, priority: 0 }
    : system;
  const alias: MtreeNode = { name: 'bus master', size: FULL, type: 'container', enabled: d.busMasterEnabled(), alias: { target, offset: 0n }, children: [], addr: 0n, priority: 0 };
  const root: MtreeNode = { name: 'bus master container', size: FULL, type: 'container', enabled: true, children: [{ node: alias, offset: 0n, priority: 0 }], addr: 0n, priority: 0 };
  return { name: d.typeName, root, flat: [] };
}

/** `info mtree`: system memory, port I/O, then each PCI function's bus-master space. */
function mtreeText(m: Machine | null, flags: ReadonlySet<string>): string {
  if (!m) return noMachineMtree(flags);
  const describe = new RegionDescriber([m.systemMemory, m.ioSpace], regionTypes(m));
  const system = describe.node(m.systemMemory);
  const spaces: MtreeSpace[] = [
    { name: 'memory', root: system, flat: describe.flat(m.memory.flatView()) },
    { name: 'I/O', root: describe.node(m.ioSpace), flat: describe.flat(m.io.flatView()) },
    ...m.pci.host.allFunctions().map((f) => busMasterSpace(f.device, system, m.iommus.length > 0 && !m.props.defaultBusBypassIommu)),
  ];
  return flags.has('f') ? formatFlatViews(spaces) : formatMtree(spaces, flags.has('D'));
}

/**
 * `-machine none`: QEMU still has its empty port I/O space (an I/O region,
 * so its flat view is itself) and an empty system memory.
 */
function noMachineMtree(flags: ReadonlySet<string>): string {
  const node = (name: string, size: bigint): MtreeNode => ({ name, size, type: 'container', enabled: true, children: [], addr: 0n, priority: 0 });
  const io = node('io', 0x1_0000n);
  const spaces: MtreeSpace[] = [
    { name: 'I/O', root: io, flat: [{ start: 0n, last: 0xffffn, node: io, offset: 0n, priority: 0 }] },
    { name: 'memory', root: node('system', FULL), flat: [] },
  ];
  return flags.has('f') ? formatFlatViews(spaces) : formatMtree(spaces, flags.has('D'));
}

function qtreeText(m: Machine | null, brief: boolean): string {
  if (!m) return 'bus: main-system-bus\n  type System\n';
  return formatQtree(machineQtree(m), brief);
}
