/**
 * Differential test of vtemu's QMP commands against QEMU 11.1 (`-accel
 * qtest -qmp stdio`, `-machine q35` with devices and `-machine none`): the
 * same conversation goes to QEMU and to an in-process QmpSession on a
 * machine built by createMachine from the same arguments, and replies must
 * be identical after masking the version `package` and event timestamps.
 *
 * - Exact: query-version, query-status, argument errors of every command
 *   (missing, wrong type, unexpected), CommandNotFound, device-list-properties
 *   errors, human-monitor-command's cpu-index checks, path errors (absolute,
 *   partial, ambiguous), and a qom-get and a qom-set of every property of
 *   every object vtemu's tree has (found by walking vtemu's own qom-list),
 *   plus the property-not-found / not-writable / after-realize / type errors.
 * - Subset: query-machines, qom-list-types, device-list-properties and
 *   qom-list list more in QEMU (machines, types and properties vtemu does
 *   not model, memory-region and irq children); there vtemu's reply must be
 *   QEMU's reply filtered to the names vtemu has, element for element and in
 *   QEMU's order, with nothing else except the vtemu-only entries listed in
 *   vtemuOnly (sva-testdev; intel-iommu's properties beyond QEMU).
 *
 * Known differences (not compared): QEMU unrealizes a device on qom-set
 * realized=false, vtemu refuses (qom.ts UNREALIZE_REFUSED); QEMU property
 * values vtemu accepts and ignores on -device (romfile=, rombar=, ...) read
 * back as their defaults in vtemu.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { needQemu, qemuOracle } from '../harness/index.js';
import { createMachine } from '../../src/machine/q35.js';
import { getDeviceType } from '../../src/machine/registry.js';
import { QmpSession } from '../../src/qtest/qmp.js';

const haveQemu = needQemu('11.1', 'QMP command differential tests');

/** Masks what may differ: the `package` string and event timestamps. */
function normalize(line: string): string {
  return line
    .replace(/"package": "[^"]*"/g, '"package": P')
    .replace(/"timestamp": \{"seconds": \d+, "microseconds": \d+\}/, '"timestamp": T');
}

const CAPS = '{"execute": "qmp_capabilities"}';

/** A configuration: `-machine` value and `-device` arguments. */
interface Config {
  readonly machine: 'q35' | 'none';
  readonly devices: readonly string[];
}

/** QEMU 11.1's reply lines to `cmds` (after the greeting and the capabilities reply). */
function qemuReplies(cfg: Config, cmds: readonly string[]): Promise<string[]> {
  const o = qemuOracle('11.1')!;
  const args = [...o.prefix, '-machine', cfg.machine, '-accel', 'qtest', '-display', 'none', '-nodefaults', '-qmp', 'stdio'];
  for (const d of cfg.devices) args.push('-device', d);
  return new Promise((resolve, reject) => {
    const p = spawn(o.command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdin.on('error', () => {});
    p.on('error', reject);
    p.on('exit', () => {
      const lines = Buffer.concat(out).toString('utf8').split('\r\n').filter((l) => l !== '');
      if (lines.length < cmds.length + 2) reject(new Error(`qemu: ${err}`));
      else resolve(lines.slice(2, 2 + cmds.length).map(normalize));
    });
    p.stdin.write([CAPS, ...cmds, '{"execute": "quit"}', ''].join('\n'));
  });
}

/** A vtemu session on the same configuration. */
function vtemuSession(cfg: Config): (cmd: string) => string {
  const machine = cfg.machine === 'none' ? null : createMachine({ machine: ['q35'], accel: 'qtest', devices: cfg.devices });
  let out = '';
  const s = new QmpSession({ machine, reset: () => machine?.reset(), quit: () => {} }, (t) => (out += t));
  s.feed(CAPS + '\n');
  out = '';
  return (cmd) => {
    s.feed(cmd + '\n');
    const lines = out.split('\r\n').filter((l) => l !== '');
    out = '';
    expect(lines, cmd).toHaveLength(1);
    return normalize(lines[0]!);
  };
}

const exec = (name: string, args?: object): string => JSON.stringify(args ? { execute: name, arguments: args } : { execute: name });

/** Commands whose replies must be identical on any machine. */
const COMMON: readonly string[] = [
  exec('query-version'),
  exec('query-status'),
  exec('query-version', { a: 1 }),
  exec('query-status', { x: null }),
  exec('query-machines', { 'compat-props': 1 }),
  exec('query-machines', { 'compat-props': null, zz: 1 }),
  exec('qom-list-types', { implements: 1 }),
  exec('qom-list-types', { abstract: 'x', implements: 1 }),
  exec('qom-list-types', { zzz: 1, abstract: true }),
  exec('qom-list-types', { implements: 'edu' }),
  exec('qom-list-types', { implements: 'edu', abstract: false }),
  exec('qom-list-types', { implements: 'no-such-type', abstract: true }),
  exec('qom-list-types', { implements: 'pc-q35-11.1-machine', abstract: true }),
  exec('device-list-properties'),
  exec('device-list-properties', { typename: 1 }),
  exec('device-list-properties', { typename: 'nope' }),
  exec('device-list-properties', { typename: 'edu', x: 1 }),
  ...['pci-device', 'device', 'container', 'pc-q35-11.1-machine', 'none-machine', 'PCIE', 'System', 'x86-iommu', 'pcie-root-port-base', 'interface'].map((t) =>
    exec('device-list-properties', { typename: t }),
  ),
  exec('device-list-properties', { typename: 'iommu-testdev' }),
  exec('device-list-properties', { typename: 'mch' }),
  exec('device-list-properties', { typename: 'ioapic' }),
  exec('device-list-properties', { typename: 'fw_cfg_io' }),
  exec('device-list-properties', { typename: 'ICH9-SMB' }),
  exec('qom-list'),
  exec('qom-list', { path: 1 }),
  exec('qom-list', { path: '/nope' }),
  exec('qom-list', { path: 'nope' }),
  exec('qom-list', { path: '' }),
  exec('qom-list', { path: '/machine/peripheral' }),
  exec('qom-list', { path: '/machine/peripheral-anon' }),
  exec('qom-list', { path: '/machine/unattached/sysbus/x' }),
  exec('qom-get', { path: '/machine' }),
  exec('qom-get', { path: '/machine', property: 'nope' }),
  exec('qom-get', { path: '/', property: 'type' }),
  exec('qom-get', { path: '//machine/', property: 'type' }),
  exec('qom-get', { path: 'machine', property: 'type' }),
  exec('qom-get', { path: '/machine/nope', property: 'type' }),
  exec('qom-get', { property: 'type', path: 2 }),
  exec('qom-set', { path: '/machine', property: 'type' }),
  exec('qom-set', { path: '/machine', property: 'type', value: 'x' }),
  exec('qom-set', { path: '/machine', property: 'nope', value: 1 }),
  exec('qom-set', { path: '/machine', property: 'type', value: 1, extra: 2 }),
  exec('human-monitor-command'),
  exec('human-monitor-command', { 'command-line': 1 }),
  exec('human-monitor-command', { 'command-line': 'x', 'cpu-index': 1.5 }),
  exec('human-monitor-command', { 'command-line': 'x', 'cpu-index': '0' }),
  exec('human-monitor-command', { 'command-line': 'x', 'cpu-index': -1 }),
  exec('human-monitor-command', { 'command-line': 'x', 'cpu-index': 1 }),
  '{"execute": "human-monitor-command", "arguments": {"command-line": "x", "cpu-index": 9223372036854775808}}',
  exec('human-monitor-command', { 'command-line': 'x', y: 1 }),
  exec('no-such-command'),
  exec('no-such-command', { a: 1 }),
];

/** Commands only meaningful on q35 with DEVICES. */
const Q35_EXTRA: readonly string[] = [
  exec('qom-get', { path: 'mch', property: 'addr' }),
  exec('qom-get', { path: 'pcie.0', property: 'type' }),
  exec('qom-get', { path: '/machine/q35/pcie.0', property: 'parent_bus' }),
  exec('qom-set', { path: '/machine/peripheral/e1', property: 'dma_mask', value: 255 }),
  exec('qom-get', { path: '/machine/peripheral/e1', property: 'dma_mask' }),
  exec('qom-set', { path: '/machine/peripheral/e1', property: 'dma_mask', value: -5 }),
  exec('qom-get', { path: '/machine/peripheral/e1', property: 'dma_mask' }),
  '{"execute": "qom-set", "arguments": {"path": "/machine/peripheral/e1", "property": "dma_mask", "value": 18446744073709551615}}',
  '{"execute": "qom-set", "arguments": {"path": "/machine/peripheral/e1", "property": "dma_mask", "value": 18446744073709551616}}',
  exec('qom-get', { path: '/machine/peripheral/e1', property: 'dma_mask' }),
  ...['"x"', 'true', 'null', '[1]', '{}', '1.5', '1.0', '-9223372036854775809'].map(
    (value) => `{"execute": "qom-set", "arguments": {"path": "/machine/peripheral/e1", "property": "dma_mask", "value": ${value}}}`,
  ),
  exec('qom-set', { path: '/machine/peripheral/e1', property: 'addr', value: 1 }),
  exec('qom-set', { path: '/machine/peripheral/e1', property: 'romsize', value: 'x' }),
  exec('qom-set', { path: '/machine/peripheral-anon/device[0]', property: 'aw-bits', value: 39 }),
  exec('qom-set', { path: '/machine/peripheral/e1', property: 'realized', value: 1 }),
  exec('qom-set', { path: '/machine/peripheral/e1', property: 'realized', value: true }),
  exec('qom-set', { path: '/machine/peripheral/e1', property: 'busnr', value: 1 }),
  exec('qom-set', { path: '/machine/q35/mch', property: 'extended-tseg-mbytes', value: 1 }),
  exec('qom-set', { path: '/machine', property: 'default-bus-bypass-iommu', value: 1 }),
  exec('qom-set', { path: '/machine', property: 'default-bus-bypass-iommu', value: true }),
  exec('qom-get', { path: '/machine', property: 'default-bus-bypass-iommu' }),
  exec('human-monitor-command', { 'command-line': '', 'cpu-index': 0 }),
  exec('human-monitor-command', { 'command-line': '', 'cpu-index': 4294967296 }),
  exec('human-monitor-command', { 'command-line': '', 'cpu-index': -4294967296 }),
];

/** The q35 configuration: every device type QEMU and vtemu share, named and anonymous, on bridges. */
const DEVICES: readonly string[] = [
  'edu,id=e1',
  'intel-iommu',
  'pcie-root-port,id=rp1,chassis=1,slot=1',
  'edu,bus=rp1',
  'pcie-root-port,chassis=2,slot=2',
  'pci-bridge,id=pb,chassis_nr=3',
  'edu,bus=pb,addr=3',
  'pcie-root-port,id=rp2,chassis=4,slot=4',
  'x3130-upstream,id=up,bus=rp2',
  'xio3130-downstream,id=dn,bus=up,chassis=5,slot=5',
  'iommu-testdev,bus=dn',
  'pcie-pci-bridge,id=ppb',
  'edu,id=e2,bus=ppb,addr=1',
  'iommu-testdev,id=it,addr=0x10.0,multifunction=on',
  'edu,addr=0x10.3',
];

/** intel-iommu's properties beyond QEMU (not compared). */
const IOMMU_EXTRAS = new Set(
  Object.entries(getDeviceType('intel-iommu')!.props)
    .filter(([, d]) => d.help?.includes('(beyond QEMU)'))
    .map(([n]) => n),
);

/** vtemu-only entries the subset comparison allows: the sva-testdev type, intel-iommu's extra properties. */
const vtemuOnly = (name: string): boolean => name === 'sva-testdev' || IOMMU_EXTRAS.has(name);

/** Every object path of vtemu's tree (walking its own qom-list), with its property names. */
function walkTree(ask: (cmd: string) => string): [string, string[]][] {
  const out: [string, string[]][] = [];
  const visit = (path: string): void => {
    const r = JSON.parse(ask(exec('qom-list', { path }))) as { return: { name: string; type: string }[] };
    out.push([path, r.return.map((p) => p.name)]);
    for (const p of r.return) if (p.type.startsWith('child<')) visit(`${path === '/' ? '' : path}/${p.name}`);
  };
  visit('/');
  return out;
}

/** QEMU's list reply filtered to `keep`, as JSON values. */
function filtered<T>(line: string, keep: (e: T) => boolean): T[] {
  return (JSON.parse(line) as { return: T[] }).return.filter(keep);
}

/** The JSON text of a reply's `return` value (0 for an error). */
function returnText(line: string): string {
  return line.startsWith('{"return": ') ? line.slice('{"return": '.length, -1) : '0';
}

async function exactAndSubset(cfg: Config, extra: readonly string[]): Promise<void> {
  const ask = vtemuSession(cfg);
  const head = [...COMMON, ...extra];
  const mineHead = head.map(ask);
  const tree = walkTree(ask);
  // A qom-get, then a qom-set with the value just read, of every property vtemu has.
  const targets = tree.flatMap(([path, names]) => names.filter((n) => !IOMMU_EXTRAS.has(n)).map((property) => ({ path, property })));
  const gets = targets.map((t) => exec('qom-get', t));
  const mineGets = gets.map(ask);
  const sets = targets.map(
    (t, i) => `{"execute": "qom-set", "arguments": {"path": ${JSON.stringify(t.path)}, "property": ${JSON.stringify(t.property)}, "value": ${returnText(mineGets[i]!)}}}`,
  );
  const mineSets = sets.map(ask);
  const subset = [
    exec('query-machines'),
    exec('query-machines', { 'compat-props': true }),
    exec('qom-list-types'),
    exec('qom-list-types', { abstract: true }),
    exec('qom-list-types', { implements: 'pci-device' }),
    exec('qom-list-types', { implements: 'interface', abstract: true }),
    exec('qom-list-types', { implements: 'pci-express-device', abstract: true }),
    exec('qom-list-types', { implements: 'hotplug-handler', abstract: true }),
    ...['edu', 'intel-iommu', 'pcie-root-port', 'pcie-pci-bridge', 'pci-bridge', 'x3130-upstream', 'xio3130-downstream', 'ICH9-LPC', 'ich9-ahci', 'q35-pcihost'].map((t) =>
      exec('device-list-properties', { typename: t }),
    ),
    ...tree.map(([path]) => exec('qom-list', { path })),
  ];
  const mineSubset = subset.map(ask);
  const exact = [...head, ...gets, ...sets];
  const mine = [...mineHead, ...mineGets, ...mineSets];
  expect(gets.length).toBeGreaterThan(cfg.machine === 'none' ? 5 : 100);
  const theirs = await qemuReplies(cfg, [...exact, ...subset]);
  for (let i = 0; i < exact.length; i++) expect(mine[i], exact[i]).toBe(theirs[i]);
  for (let j = 0; j < subset.length; j++) {
    const cmd = subset[j]!;
    const m = JSON.parse(mineSubset[j]!) as { return: { name: string }[] };
    expect(m.return.length, cmd).toBeGreaterThan(0);
    const names = new Set(m.return.map((e) => e.name));
    const q = filtered<{ name: string }>(theirs[exact.length + j]!, (e) => names.has(e.name));
    const own = m.return.filter((e) => !vtemuOnly(e.name));
    expect(own, cmd).toEqual(q);
  }
}

describe.runIf(haveQemu)('QMP commands: vtemu vs QEMU 11.1', () => {
  it('q35 with edu, intel-iommu, bridges, ports, switch and iommu-testdev', async () => {
    await exactAndSubset({ machine: 'q35', devices: DEVICES }, Q35_EXTRA);
  }, 120_000);

  it('q35 with no devices', async () => {
    await exactAndSubset({ machine: 'q35', devices: [] }, []);
  }, 120_000);

  it('-machine none', async () => {
    await exactAndSubset({ machine: 'none', devices: [] }, []);
  }, 120_000);

  it('the greeting carries QEMU 11.1.3', async () => {
    let out = '';
    new QmpSession({ machine: null, reset: () => {}, quit: () => {} }, (t) => (out += t)).greet();
    const o = qemuOracle('11.1')!;
    const theirs = await new Promise<string>((resolve) => {
      const p = spawn(o.command, [...o.prefix, '-machine', 'none', '-accel', 'qtest', '-display', 'none', '-nodefaults', '-qmp', 'stdio']);
      let s = '';
      p.stdout.on('data', (d: Buffer) => (s += d.toString()));
      p.on('exit', () => resolve(s.split('\r\n')[0]!));
      p.stdin.end('{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n');
    });
    expect(normalize(out.split('\r\n')[0]!)).toBe(normalize(theirs));
    expect(out).toContain('"package": "vtemu 0.1.0"');
  }, 30_000);
});
