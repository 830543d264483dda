/**
 * Machine snapshots (QEMU vmstate/migration in small): `saveMachineState`
 * captures a q35 machine — its configuration, the virtual clock, guest RAM
 * (sparse: only pages holding a non-zero byte) and one section per device —
 * and `restoreMachineState` loads such a state into a machine built from the
 * same configuration.  The format is documented in docs/snapshot-format.md;
 * snapshot-file.ts encodes it and builds a machine from one.
 *
 * Sections (each device's own saveState/loadState):
 *
 *   clock         virtual time and the timer arming counter; every pending
 *                 timer is saved by the device that owns it and re-armed by
 *                 that device on load (QEMU post_load)
 *   msi           the APIC bus
 *   ioapic        the IOAPIC
 *   fw_cfg        fw_cfg selector, offset, DMA address, writable files
 *   pci-host      CONFIG_ADDRESS, RST_CNT, PIRQ levels, INTx counts, ECAM
 *   pci:PATH      one per PCI function, PATH = slot.fn from the root bus,
 *                 through bridges (`1c.0/00.0`): config space and masks,
 *                 INTx level, the device's own fields (edu, iommu-testdev,
 *                 sva-testdev, MCH); MCH SMRAM/TSEG views and bridge
 *                 windows follow from the loaded config
 *   iommu:N       the N-th intel-iommu (creation order)
 *
 * Caches (IOTLB, context/PASID entries, interrupt entry cache, device ATCs)
 * are not saved: loading drops them and they refill from guest memory.
 */
import { SectionReader, SnapshotError, toB64, type SnapshotSection, type SnapshotValue } from '../core/snapshot-state.js';
import type { ClockState } from '../core/clock.js';
import type { DmaRequester } from '../memory/iommu.js';
import type { PciBus } from '../pci/bus.js';
import type { PciDevice } from '../pci/device.js';
import type { RequesterNames } from '../hw/intel-iommu/snapshot.js';
import type { Machine, MachineOptions } from './q35.js';

/** The `format` field of every state. */
export const SNAPSHOT_FORMAT = 'vtemu-snapshot';
/** The version this vtemu writes and the only one it reads. */
export const SNAPSHOT_VERSION = 1;
/** Granule of the sparse RAM image. */
const PAGE = 4096;

/**
 * The configuration a state records to rebuild its machine: the
 * MachineOptions that shape the machine (not host choices such as the
 * tracer or the RAM backend), with `-bios` as base64.
 */
export interface SnapshotConfig {
  readonly machine: readonly string[];
  readonly accel: string | null;
  readonly memory: string | number | null;
  readonly devices: readonly string[];
  readonly qtest: boolean;
  readonly uuid: string | null;
  readonly boot: readonly string[];
  readonly globals: readonly string[];
  readonly smp: string | null;
  readonly objects: readonly string[];
  readonly numa: readonly string[];
  readonly bios: string | null;
  readonly dmar: SnapshotValue;
}

/** One run of non-zero RAM: its RAM offset and bytes (base64). */
export type RamRun = readonly [offset: number, data: string];

/** A saved machine (the JSON document of docs/snapshot-format.md). */
export interface MachineState {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly version: number;
  readonly config: SnapshotConfig;
  readonly clock: ClockState;
  readonly ram: { readonly size: number; readonly runs: readonly RamRun[] };
  readonly sections: { readonly [name: string]: SnapshotSection };
}

/** The snapshot configuration of a machine built from `o`. */
export function snapshotConfig(o: MachineOptions): SnapshotConfig {
  return {
    machine: [...(o.machine ?? [])],
    accel: o.accel ?? null,
    memory: o.memory ?? null,
    devices: [...(o.devices ?? [])],
    qtest: o.qtest === true,
    uuid: o.uuid ?? null,
    boot: [...(o.boot ?? [])],
    globals: [...(o.globals ?? [])],
    smp: o.smp ?? null,
    objects: [...(o.objects ?? [])],
    numa: [...(o.numa ?? [])],
    bios: o.bios ? toB64(o.bios) : null,
    dmar: o.dmar ? (JSON.parse(JSON.stringify(o.dmar)) as SnapshotValue) : null,
  };
}

/** MachineOptions that rebuild the machine of `c` (host choices left to the caller). */
export function optionsFromConfig(c: SnapshotConfig): MachineOptions {
  return {
    machine: c.machine,
    ...(c.accel !== null ? { accel: c.accel } : {}),
    ...(c.memory !== null ? { memory: c.memory } : {}),
    devices: c.devices,
    qtest: c.qtest,
    ...(c.uuid !== null ? { uuid: c.uuid } : {}),
    boot: c.boot,
    globals: c.globals,
    ...(c.smp !== null ? { smp: c.smp } : {}),
    objects: c.objects,
    numa: c.numa,
    ...(c.bios !== null ? { bios: new Uint8Array(Buffer.from(c.bios, 'base64')) } : {}),
    ...(c.dmar !== null ? { dmar: c.dmar as MachineOptions['dmar'] } : {}),
  };
}

/** Every PCI function by its path (`slot.fn` per bus from the root), depth first. */
export function pciFunctions(m: Machine): Map<string, PciDevice> {
  const out = new Map<string, PciDevice>();
  const walk = (bus: PciBus, prefix: string): void => {
    for (const e of bus.devices()) {
      const path = `${prefix}${hex2(e.devfn >>> 3)}.${e.devfn & 7}`;
      out.set(path, e.device);
      const sec = (e.device as { secondaryBus?: PciBus }).secondaryBus;
      if (sec) walk(sec, `${path}/`);
    }
  };
  walk(m.pci.rootBus, '');
  return out;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Names requesters by the path of the first function that uses them. */
function requesterNames(m: Machine): RequesterNames {
  const fns = pciFunctions(m);
  const byKey = new Map<object, string>();
  for (const [path, dev] of fns) {
    const key = dev.requester().key;
    if (!byKey.has(key)) byKey.set(key, path);
  }
  return {
    nameOf: (req: DmaRequester) => byKey.get(req.key) ?? null,
    find: (name: string) => fns.get(name)?.requester() ?? null,
  };
}

/** System devices (`-device` on no bus) other than the IOMMUs cannot be saved. */
function checkSavable(m: Machine): void {
  for (const d of m.devices) {
    if (d.spec.type.bus === 'system' && d.spec.type.name !== 'intel-iommu') {
      throw new SnapshotError(`snapshot: device '${d.spec.type.name}' cannot be saved`);
    }
  }
}

/** Sparse RAM: runs of consecutive pages that hold a non-zero byte. */
function saveRam(m: Machine): RamRun[] {
  const runs: RamRun[] = [];
  let start = -1;
  let pages: Uint8Array[] = [];
  const flush = (): void => {
    if (start >= 0) runs.push([start, Buffer.concat(pages).toString('base64')]);
    start = -1;
    pages = [];
  };
  m.ram.forEachNonZeroPage((offset, page) => {
    if (start >= 0 && offset !== start + pages.length * PAGE) flush();
    if (start < 0) start = offset;
    pages.push(page.slice());
  });
  flush();
  return runs;
}

/** Captures `m` (see the file comment).  Throws SnapshotError for a device that cannot be saved. */
export function saveMachineState(m: Machine): MachineState {
  checkSavable(m);
  const sections: Record<string, SnapshotSection> = {};
  sections['msi'] = m.msiSink.saveState();
  sections['ioapic'] = m.ioapic.saveState();
  sections['fw_cfg'] = m.firmware.fwCfg.saveState();
  for (const [path, dev] of pciFunctions(m)) sections[`pci:${path}`] = { type: dev.typeName, state: dev.saveState() };
  sections['pci-host'] = m.pci.host.saveState();
  const names = requesterNames(m);
  m.iommus.forEach((u, i) => {
    sections[`iommu:${i}`] = u.saveState(names);
  });
  return {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    config: snapshotConfig(m.options),
    clock: m.clock.saveState(),
    ram: { size: m.ram.size, runs: saveRam(m) },
    sections,
  };
}

/** Refuses a state this vtemu cannot read (one clear error). */
export function checkStateHeader(state: unknown): asserts state is MachineState {
  const s = state as Partial<MachineState> | null;
  if (s === null || typeof s !== 'object' || s.format !== SNAPSHOT_FORMAT) throw new SnapshotError('snapshot: not a vtemu machine state');
  if (s.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(`snapshot: format version ${String(s.version)} is not supported (this vtemu reads version ${SNAPSHOT_VERSION})`);
  }
  if (typeof s.config !== 'object' || s.config === null || typeof s.sections !== 'object' || s.sections === null) {
    throw new SnapshotError('snapshot: the state has no configuration or no sections');
  }
}

function loadRam(m: Machine, r: SectionReader): void {
  const size = r.int('size');
  if (size !== m.ram.size) throw new SnapshotError(`snapshot: RAM is ${size} bytes, this machine has ${m.ram.size}`);
  const runs = r.array('runs').map((run, i) => {
    const row = SectionReader.of({ offset: Array.isArray(run) ? (run[0] ?? null) : null, data: Array.isArray(run) ? (run[1] ?? null) : null }, `ram.runs[${i}]`);
    const offset = row.int('offset', 0, size);
    const data = row.bytes('data');
    if (offset % PAGE !== 0 || data.length % PAGE !== 0 || offset + data.length > size) throw new SnapshotError(`snapshot: ram.runs[${i}]: not whole pages inside RAM`);
    return { offset, data };
  });
  const dirty: number[] = [];
  m.ram.forEachNonZeroPage((offset) => dirty.push(offset));
  for (const offset of dirty) m.ram.fill(offset, PAGE, 0);
  for (const { offset, data } of runs) m.ram.copyIn(offset, data);
}

/**
 * Loads `state` into `m`, which must have been built from the state's
 * configuration.  Throws SnapshotError (nothing loaded) for an unsupported
 * version, another configuration or a state that does not match the
 * machine's devices; a damaged section is refused as it is read.
 */
export function restoreMachineState(m: Machine, state: MachineState): void {
  checkStateHeader(state);
  checkSavable(m);
  const want = JSON.stringify(snapshotConfig(m.options));
  if (JSON.stringify(state.config) !== want) {
    throw new SnapshotError('snapshot: the state was saved from a machine with another configuration (-machine/-device/-m/... differ)');
  }
  const sections = state.sections;
  const fns = pciFunctions(m);
  const expected = ['msi', 'ioapic', 'fw_cfg', ...[...fns.keys()].map((p) => `pci:${p}`), 'pci-host', ...m.iommus.map((_, i) => `iommu:${i}`)];
  const names = Object.keys(sections);
  const missing = expected.filter((n) => !(n in sections));
  const extra = names.filter((n) => !expected.includes(n));
  if (missing.length || extra.length) {
    throw new SnapshotError(`snapshot: sections do not match this machine (missing: ${missing.join(', ') || 'none'}; unknown: ${extra.join(', ') || 'none'})`);
  }
  for (const [path, dev] of fns) {
    const t = SectionReader.of(sections[`pci:${path}`], `pci:${path}`).str('type');
    if (t !== dev.typeName) throw new SnapshotError(`snapshot: pci:${path} holds a ${t}, this machine has a ${dev.typeName}`);
  }
  const clock = SectionReader.of(state.clock as unknown as SnapshotValue, 'clock');
  const clockState: ClockState = { time: clock.big('time', 0n, (1n << 63n) - 1n).toString(), seq: clock.int('seq') };

  loadRam(m, SectionReader.of(state.ram as unknown as SnapshotValue, 'ram'));
  m.clock.loadState(clockState);
  m.msiSink.loadState(SectionReader.of(sections['msi'], 'msi'));
  m.ioapic.loadState(SectionReader.of(sections['ioapic'], 'ioapic'));
  m.firmware.fwCfg.loadState(SectionReader.of(sections['fw_cfg'], 'fw_cfg'));
  for (const [path, dev] of fns) dev.loadState(SectionReader.of(sections[`pci:${path}`], `pci:${path}`).sub('state'));
  m.pci.host.loadState(SectionReader.of(sections['pci-host'], 'pci-host'));
  const reqNames = requesterNames(m);
  m.iommus.forEach((u, i) => u.loadState(SectionReader.of(sections[`iommu:${i}`], `iommu:${i}`), reqNames));
}
