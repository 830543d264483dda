/**
 * Differential tests of the human monitor's `info` views against QEMU 11.1
 * (`-accel qtest -qmp stdio`, `human-monitor-command`).  vtemu's side runs
 * in-process: createMachine (machine files through loadMachineFile) and
 * runHmp.  Configuration writes go through CF8/CFC on both sides (QEMU: the
 * HMP `o` command, vtemu: its port I/O space), so the views are compared
 * after the guest programmed BARs, bus numbers and bridge windows too.
 *
 *  - `info pci`: identical, line for line, for q35 alone, every shipped
 *    machine file, q35 + intel-iommu + edu, bridges + iommu-testdev, and
 *    the topology machine after programming.  Adjustments QEMU needs: the
 *    multi-DRHD file's second intel-iommu is dropped (QEMU refuses a second
 *    vIOMMU; it is no PCI function), and the SVA file runs without
 *    sva-testdev and x-smpwc (vtemu extensions), whose function block is
 *    taken out of vtemu's answer.
 *  - `info mtree`: every line vtemu prints for the memory and I/O address
 *    spaces and the bus-master spaces appears in QEMU's section of the same
 *    name, except the regions vtemu places differently (MTREE_DIFFERENCES).
 *  - `info qtree`: every line vtemu prints for a PCI function (properties,
 *    class/ids and BAR lines) appears in QEMU's block for that function
 *    (same type and id), except vtemu's own properties.
 *  - errors: unknown commands and sub-commands, bad flags, extraneous
 *    arguments: identical text.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { needQemu, qemuOracle } from '../harness/index.js';
import { createMachine, type Machine } from '../../src/machine/q35.js';
import { loadMachineFile } from '../../src/machine/machine-file.js';
import { runHmp } from '../../src/monitor/hmp.js';

const haveQemu = needQemu('11.1', 'HMP info views vs QEMU 11.1');
const MACHINES = join(import.meta.dirname, '../../machines');

/** A configuration write through CF8/CFC: bus, device, function, register, size, value. */
type ConfigWrite = readonly [bus: number, dev: number, fn: number, reg: number, size: 1 | 2 | 4, value: number];

const cf8 = (w: ConfigWrite): number => (0x8000_0000 | (w[0] << 16) | (w[1] << 11) | (w[2] << 8) | (w[3] & 0xfc)) >>> 0;
const SIZE_LETTER = { 1: 'b', 2: 'h', 4: 'w' } as const;

/** QEMU 11.1's answers to `commands` (HMP lines), after `writes`, with `args`. */
function qemuHmp(args: readonly string[], writes: readonly ConfigWrite[], commands: readonly string[]): string[] {
  const o = qemuOracle('11.1')!;
  const hmp = (line: string): string => JSON.stringify({ execute: 'human-monitor-command', arguments: { 'command-line': line } });
  const lines = ['{"execute":"qmp_capabilities"}'];
  for (const w of writes) {
    lines.push(hmp(`o /w 0xcf8 0x${cf8(w).toString(16)}`), hmp(`o /${SIZE_LETTER[w[4]]} 0x${(0xcfc + (w[3] & 3)).toString(16)} 0x${w[5].toString(16)}`));
  }
  for (const c of commands) lines.push(hmp(c));
  lines.push('{"execute":"quit"}');
  const r = spawnSync(o.command, [...o.prefix, '-display', 'none', '-nodefaults', '-accel', 'qtest', '-qmp', 'stdio', ...args], {
    input: lines.join('\n') + '\n',
    encoding: 'utf8',
    timeout: 30_000,
  });
  const replies = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{"return": "') || l.startsWith('{"return": ""'))
    .map((l) => (JSON.parse(l) as { return: string }).return);
  // The `o` commands answer "" too: keep the last replies, one per command.
  expect(replies.length, r.stderr).toBe(2 * writes.length + commands.length);
  return replies.slice(2 * writes.length);
}

const machines: Machine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.dispose();
});

/** vtemu's machine for `-machine`/`-m`/`-device` lists, after `writes`. */
function vtemuMachine(opts: { machine?: string; m?: string; devices?: readonly string[]; dmar?: unknown }, writes: readonly ConfigWrite[]): Machine {
  const m = createMachine({
    machine: [opts.machine ?? 'q35'],
    ...(opts.m ? { memory: opts.m } : {}),
    devices: opts.devices ?? [],
    ...(opts.dmar ? { dmar: opts.dmar as never } : {}),
    accel: 'qtest',
  });
  machines.push(m);
  for (const w of writes) {
    m.io.write(0xcf8, 4, cf8(w));
    m.io.write(0xcfc + (w[3] & 3), w[4], w[5]);
  }
  return m;
}

/** QEMU's command line for the same configuration. */
function qemuArgs(opts: { machine?: string; m?: string; devices?: readonly string[] }): string[] {
  return ['-machine', opts.machine ?? 'q35', ...(opts.m ? ['-m', opts.m] : []), ...(opts.devices ?? []).flatMap((d) => ['-device', d])];
}

/** Removes the `info pci` block of bus 0 device `slot` (a function QEMU does not have). */
function dropPciBlock(text: string, slot: number): string {
  const head = `  Bus  0, device ${String(slot).padStart(3)},`;
  const out: string[] = [];
  let skipping = false;
  for (const l of text.split('\r\n')) {
    if (l.startsWith('  Bus ')) skipping = l.startsWith(head);
    if (!skipping) out.push(l);
  }
  return out.join('\r\n');
}

/**
 * The topology machine file's functions programmed as firmware would:
 * bus numbers 1-2 under rp1 (00:02.0), 3-5 under rp2 (00:03.0), windows,
 * BARs, decoding, interrupt lines.
 */
const TOPOLOGY_WRITES: readonly ConfigWrite[] = [
  [0, 1, 0, 0x10, 4, 0xfeb0_0000], [0, 1, 0, 0x3c, 1, 10], [0, 1, 0, 0x04, 2, 0x0006],
  [0, 2, 0, 0x18, 4, 0x0002_0100], [0, 2, 0, 0x1c, 2, 0x1010], [0, 2, 0, 0x20, 4, 0xfe10_fe00],
  [0, 2, 0, 0x24, 4, 0xc010_c000], [0, 2, 0, 0x28, 4, 1], [0, 2, 0, 0x2c, 4, 1],
  [0, 2, 0, 0x10, 4, 0xfea0_0000], [0, 2, 0, 0x04, 2, 0x0007],
  [1, 0, 0, 0x18, 4, 0x0002_0201], [1, 0, 0, 0x20, 4, 0xfe10_fe00], [1, 0, 0, 0x10, 4, 0xfe1f_f000], [1, 0, 0, 0x04, 2, 0x0007],
  [2, 1, 0, 0x10, 4, 0xfe00_0000], [2, 1, 0, 0x3c, 1, 11], [2, 1, 0, 0x04, 2, 0x0006],
  [0, 3, 0, 0x18, 4, 0x0005_0300], [0, 3, 0, 0x1c, 2, 0x2020], [0, 3, 0, 0x20, 4, 0xfd00_fd00], [0, 3, 0, 0x04, 2, 0x0003],
  [3, 0, 0, 0x18, 4, 0x0005_0403], [3, 0, 0, 0x20, 4, 0xfd00_fd00], [3, 0, 0, 0x04, 2, 0x0002],
  [4, 0, 0, 0x18, 4, 0x0005_0504], [4, 0, 0, 0x20, 4, 0xfd00_fd00], [4, 0, 0, 0x04, 2, 0x0002],
  [5, 0, 0, 0x10, 4, 0xfd00_0000], [5, 0, 0, 0x04, 2, 0x0006],
  [0, 31, 2, 0x20, 4, 0xc040], [0, 31, 2, 0x24, 4, 0xfea0_1000], [0, 31, 2, 0x04, 2, 0x0003],
  [0, 31, 3, 0x20, 4, 0x0700], [0, 31, 3, 0x04, 2, 0x0001],
];

interface Case {
  readonly name: string;
  readonly vtemu: { machine?: string; m?: string; devices?: readonly string[]; dmar?: unknown };
  readonly qemu: { machine?: string; m?: string; devices?: readonly string[] };
  /** Bus-0 slots of functions QEMU does not have. */
  readonly vtemuOnlySlots?: readonly number[];
  readonly writes?: readonly ConfigWrite[];
}

/** The shipped machine files, with what QEMU 11.1 needs changed. */
function machineFileCases(): Case[] {
  const names = ['q35-multi-drhd', 'q35-rmrr', 'q35-sva', 'q35-topology', 'q35-vtd-sm', 'q35-vtd'];
  return names.map((name) => {
    const f = loadMachineFile(join(MACHINES, `${name}.json`));
    const vt = { machine: f.machine, ...(f.m ? { m: f.m } : {}), devices: f.devices, ...(f.dmar ? { dmar: f.dmar } : {}) };
    let seenIommu = false;
    const qemuDevices = f.devices
      .filter((d) => {
        if (!d.startsWith('intel-iommu')) return !d.startsWith('sva-testdev');
        const first = !seenIommu;
        seenIommu = true;
        return first;
      })
      .map((d) => d.replace(/,x-smpwc=on/, ''));
    const only = f.devices.filter((d) => d.startsWith('sva-testdev')).map((d) => parseInt(/addr=([0-9a-f]+)/.exec(d)![1]!, 16));
    return { name: `machine file ${name}`, vtemu: vt, qemu: { machine: f.machine, ...(f.m ? { m: f.m } : {}), devices: qemuDevices }, vtemuOnlySlots: only };
  });
}

const PLAIN: Case[] = [
  { name: 'q35 alone', vtemu: {}, qemu: {} },
  { name: 'q35 + intel-iommu + edu', vtemu: { devices: ['intel-iommu', 'edu'] }, qemu: { devices: ['intel-iommu', 'edu'] } },
  {
    name: 'bridges, root port at addr=5, iommu-testdev',
    vtemu: { devices: ['edu,id=e', 'iommu-testdev', 'pcie-root-port,chassis=1,addr=5', 'pci-bridge,chassis_nr=2', 'pcie-pci-bridge,id=pb'] },
    qemu: { devices: ['edu,id=e', 'iommu-testdev', 'pcie-root-port,chassis=1,addr=5', 'pci-bridge,chassis_nr=2', 'pcie-pci-bridge,id=pb'] },
  },
];

/** A root port at 00:01.0 given a primary bus number that is not its bus, and a prefetchable window above 2^53. */
const ODD_BRIDGE: Case = {
  name: 'root port: primary bus 7, prefetchable window at the top of the 64-bit space',
  vtemu: { devices: ['pcie-root-port,chassis=1'] },
  qemu: { devices: ['pcie-root-port,chassis=1'] },
  writes: [[0, 1, 0, 0x18, 4, 0x0003_0207], [0, 1, 0, 0x24, 4, 0xc010_c000], [0, 1, 0, 0x28, 4, 0xffff_ffff], [0, 1, 0, 0x2c, 4, 0xffff_ffff], [0, 1, 0, 0x1c, 2, 0xf0f0]],
};

describe.skipIf(!haveQemu)('info pci matches QEMU 11.1 line for line', () => {
  const topology = machineFileCases().find((c) => c.name.endsWith('q35-topology'))!;
  const cases: Case[] = [...PLAIN, ODD_BRIDGE, ...machineFileCases(), { ...topology, name: 'q35-topology after programming', writes: TOPOLOGY_WRITES }];
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const writes = c.writes ?? [];
    const [qemu] = qemuHmp(qemuArgs(c.qemu), writes, ['info pci']);
    let vt = runHmp(vtemuMachine(c.vtemu, writes), 'info pci');
    for (const slot of c.vtemuOnlySlots ?? []) vt = dropPciBlock(vt, slot);
    expect(vt.split('\r\n')).toEqual(qemu!.split('\r\n'));
    expect(vt).toContain('\r\n');
  });
});

/**
 * `info mtree` sections by header (address-space: / memory-region:), each
 * the lines of every section with that header (two functions of one type
 * have one header each; QEMU's order of them varies from run to run).
 */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let cur: string[] = [];
  for (const l of text.split('\r\n')) {
    if (l.startsWith('address-space: ') || l.startsWith('memory-region: ')) {
      cur = out.get(l) ?? [];
      out.set(l, cur);
    } else if (l !== '') cur.push(l);
  }
  return out;
}

/**
 * Regions vtemu maps differently from QEMU: the APIC-bus window (QEMU:
 * priority 4096, vtemu: -1, under everything), the option ROM (QEMU:
 * inside "pci"; vtemu: in system memory), fw_cfg's selector/data ports
 * (QEMU: 2 bytes at 0x510, vtemu: 4) and vtemu's bridge windows, whose
 * secondary-bus containers are named by bus (QEMU: "pci_bridge_pci").
 */
const MTREE_DIFFERENCES = /: (apic-msi|pc\.rom|fwcfg|alias pci_bridge_(io|mem|pref_mem) @.*)$/;

describe.skipIf(!haveQemu)('info mtree: the lines vtemu models are QEMU 11.1 lines', () => {
  const topology = machineFileCases().find((c) => c.name.endsWith('q35-topology'))!;
  it.each([
    ['q35 + edu, nothing programmed', { vtemu: { devices: ['edu'] }, qemu: { devices: ['edu'] } } as unknown as Case, [] as readonly ConfigWrite[]],
    ['topology after programming', topology, TOPOLOGY_WRITES],
  ])('%s', (_name, c, writes) => {
    const [qemu, qemuD] = qemuHmp(qemuArgs(c.qemu), writes, ['info mtree', 'info mtree -D']);
    const m = vtemuMachine(c.vtemu, writes);
    for (const [flags, q] of [['', qemu!], [' -D', qemuD!]] as const) {
      const theirs = sections(q);
      const ours = sections(runHmp(m, `info mtree${flags}`));
      let compared = 0;
      const missing: string[] = [];
      for (const [head, lines] of ours) {
        if (!head.startsWith('address-space: ')) continue;
        const q = theirs.get(head);
        expect(q, `${head} in QEMU's answer`).toBeDefined();
        for (const l of lines) {
          if (MTREE_DIFFERENCES.test(l)) continue;
          if (!q!.includes(l)) missing.push(`${head}${flags}: ${l}`);
          compared++;
        }
      }
      expect(missing).toEqual([]);
      expect(compared).toBeGreaterThan(10);
    }
  });
});

/** `info qtree` PCI device blocks by "TYPE, id ID" with their property/bus lines (indent removed). */
function qtreeBlocks(text: string): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  const lines = text.split('\r\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^( *)dev: (.*)$/.exec(lines[i]!);
    if (!m) continue;
    const body: string[] = [];
    const ind = m[1]!.length + 2;
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j]!;
      const lead = l.length - l.trimStart().length;
      if (lead !== ind || l.trimStart().startsWith('bus: ') || l.trimStart().startsWith('dev: ')) break;
      body.push(l.trimStart());
    }
    const list = out.get(m[2]!) ?? [];
    list.push(body);
    out.set(m[2]!, list);
  }
  return out;
}

/** vtemu-only device properties (qtree lines QEMU cannot have). */
const VTEMU_ONLY_PROP = /^(nfr|x-pi|x-cfi|x-iqer|x-devtlb-timeout-sid|x-devtlb-error-sid|x-fs5lp|x-nested|x-smpwc|x-sanitize|x-strict) = /;

describe.skipIf(!haveQemu)('info qtree: vtemu device blocks are QEMU 11.1 lines', () => {
  const topology = machineFileCases().find((c) => c.name.endsWith('q35-topology'))!;
  const vtd = machineFileCases().find((c) => c.name.endsWith('q35-vtd'))!;
  it.each([
    ['q35-vtd', vtd, [] as readonly ConfigWrite[]],
    ['topology after programming', topology, TOPOLOGY_WRITES],
  ])('%s', (_name, c, writes) => {
    const [qemu] = qemuHmp(qemuArgs(c.qemu), writes, ['info qtree']);
    const theirs = qtreeBlocks(qemu!);
    const ours = qtreeBlocks(runHmp(vtemuMachine(c.vtemu, writes), 'info qtree'));
    let compared = 0;
    for (const [dev, blocks] of ours) {
      const q = theirs.get(dev);
      expect(q, `dev: ${dev} in QEMU's tree`).toBeDefined();
      expect(q!.length).toBe(blocks.length);
      blocks.forEach((lines, k) => {
        // Same-named built-ins (none here besides distinct types) pair up in order.
        for (const l of lines) {
          if (VTEMU_ONLY_PROP.test(l)) continue;
          expect(q![k], `${dev}: ${l}`).toContain(l);
          compared++;
        }
      });
    }
    expect(compared).toBeGreaterThan(50);
  });
});

/**
 * QEMU prints address spaces and flat views in hash-table order, which
 * changes from run to run: the sections of an answer, sorted, with the
 * flat-view numbers masked.
 */
function unordered(text: string): string[] {
  return text
    .split('\r\n\r\n')
    .map((s) => s.replace(/^FlatView #\d+/, 'FlatView #N'))
    .sort();
}

describe.skipIf(!haveQemu)('command errors match QEMU 11.1', () => {
  const LINES = [
    'foo', '  foo', 'foo/x bar', 'INFO pci', 'info foo', 'info  foo  bar', 'info p', 'info -f', 'info pci x', '  info   pci  x',
    'info pci/x', 'info\tpci', 'info pci\t', 'info mtree x', 'info mtree -z', 'info mtree -ff', 'info mtree -f -f', 'info mtree -o -f',
    'info mtree -D -f', 'info mtree -', 'info mtree - f', 'info mtree --f', 'info qtree x', 'info qtree -x', 'info qtree -b -b',
    'info qtree -b -x', '', '   ',
  ];
  it('answers every bad line with QEMU text', () => {
    const qemu = qemuHmp(['-machine', 'q35'], [], LINES);
    const m = vtemuMachine({}, []);
    expect(LINES.map((l) => runHmp(m, l))).toEqual(qemu);
  });

  it('info mtree and info qtree under -machine none', () => {
    const lines = ['info mtree', 'info mtree -f', 'info qtree', 'info qtree -b', 'info pci'];
    const qemu = qemuHmp(['-machine', 'none'], [], lines);
    expect(lines.map((l) => unordered(runHmp(null, l)))).toEqual(qemu.map(unordered));
  });
});
