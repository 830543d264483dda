import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import { EduDevice } from '../hw/edu/edu.js';
import { QmpSession } from './qmp.js';
import { ghashOrder, gStrHash } from './qom-ghash.js';
import { checkArgs, argsFailed } from './qmp-args.js';
import { QDict } from './qmp-qobject.js';

/** A negotiated session on `machine`; ask() returns the one reply line to a command. */
function session(machine: Machine | null): (cmd: string) => string {
  let out = '';
  const s = new QmpSession({ machine, reset: () => machine?.reset(), quit: () => {} }, (t) => (out += t));
  s.feed('{"execute": "qmp_capabilities"}\n');
  return (cmd) => {
    out = '';
    s.feed(cmd + '\n');
    const lines = out.split('\r\n').filter((l) => l);
    expect(lines).toHaveLength(1);
    return lines[0]!;
  };
}

const q35 = (devices: string[] = []): Machine => createMachine({ machine: ['q35'], accel: 'qtest', devices });

describe('QMP machine commands', () => {
  it('query-version and query-status report QEMU 11.1.3 running', () => {
    const ask = session(null);
    expect(ask('{"execute": "query-version"}')).toBe('{"return": {"qemu": {"micro": 3, "minor": 1, "major": 11}, "package": "vtemu 0.1.0"}}');
    expect(ask('{"execute": "query-status", "id": 1}')).toBe('{"return": {"status": "running", "running": true}, "id": 1}');
  });

  it('checks arguments as the QAPI visitor: schema order first, then unexpected members', () => {
    const ask = session(null);
    const err = (d: string): string => `{"error": {"class": "GenericError", "desc": "${d}"}}`;
    expect(ask('{"execute": "qom-list-types", "arguments": {"abstract": "x", "implements": 1}}')).toBe(err("Invalid parameter type for 'implements', expected: string"));
    expect(ask('{"execute": "qom-list-types", "arguments": {"zzz": 1, "abstract": true}}')).toBe(err("Parameter 'zzz' is unexpected"));
    expect(ask('{"execute": "query-machines", "arguments": {"compat-props": 1}}')).toBe(err("Invalid parameter type for 'compat-props', expected: boolean"));
    expect(ask('{"execute": "qom-get", "arguments": {"path": "/"}}')).toBe(err("Parameter 'property' is missing"));
    expect(ask('{"execute": "qom-set", "arguments": {"path": "/", "property": "type"}}')).toBe(err("Parameter 'value' is missing"));
    expect(ask('{"execute": "human-monitor-command", "arguments": {"command-line": "x", "cpu-index": 1.0}}')).toBe(
      err("Invalid parameter type for 'cpu-index', expected: integer"),
    );
    expect(ask('{"execute": "device_add", "arguments": {"driver": "edu"}}')).toBe(
      '{"error": {"class": "CommandNotFound", "desc": "The command device_add has not been found"}}',
    );
  });

  it('checkArgs accepts int64 only and keeps values by name', () => {
    const schema = [{ name: 'n', type: 'int' as const }];
    const at = (value: bigint, kind: 'int' | 'uint'): ReturnType<typeof checkArgs> => checkArgs(QDict.of([['n', { kind, value }]]), schema);
    const okArgs = at(-5n, 'int');
    expect(argsFailed(okArgs)).toBe(false);
    expect((okArgs as ReadonlyMap<string, unknown>).get('n')).toBe(-5n);
    expect(argsFailed(at(1n << 63n, 'uint'))).toBe(true);
    expect(argsFailed(at((1n << 63n) - 1n, 'uint'))).toBe(false);
  });

  it('query-machines lists none and pc-q35-11.1 (alias q35), compat-props only when asked', () => {
    const ask = session(null);
    const r = JSON.parse(ask('{"execute": "query-machines"}')) as { return: Record<string, unknown>[] };
    expect(r.return.map((m) => m['name'])).toEqual(['none', 'pc-q35-11.1']);
    expect(r.return[1]).toMatchObject({ alias: 'q35', 'cpu-max': 4096, 'default-ram-id': 'pc.ram' });
    expect(r.return[1]!['is-default']).toBeUndefined();
    expect(r.return[0]!['compat-props']).toBeUndefined();
    const c = JSON.parse(ask('{"execute": "query-machines", "arguments": {"compat-props": true}}')) as { return: Record<string, unknown[]>[] };
    expect(c.return[0]!['compat-props']).toEqual([]);
    expect(c.return[1]!['compat-props']).toHaveLength(3);
  });

  it('qom-list-types filters by implements (ancestors and interfaces) and abstract', () => {
    const ask = session(null);
    const names = (args: string): string[] =>
      (JSON.parse(ask(`{"execute": "qom-list-types", "arguments": ${args}}`)) as { return: { name: string }[] }).return.map((t) => t.name);
    const pci = names('{"implements": "pci-device"}');
    expect(pci).toContain('edu');
    expect(pci).toContain('sva-testdev');
    expect(pci).not.toContain('pci-device'); // abstract
    expect(names('{"implements": "pci-device", "abstract": true}')).toContain('pci-device');
    expect(names('{"implements": "conventional-pci-device"}')).toContain('edu');
    expect(names('{"implements": "conventional-pci-device"}')).not.toContain('pcie-root-port');
    expect(names('{"implements": "no-such"}')).toEqual([]);
    expect(ask('{"execute": "qom-list-types", "arguments": {"implements": "edu"}}')).toBe('{"return": [{"name": "edu", "parent": "pci-device"}]}');
    expect(ask('{"execute": "qom-list-types", "arguments": {"implements": "object", "abstract": true}}')).toContain('{"abstract": true, "name": "object"}');
  });

  it('device-list-properties: registry properties in QEMU order, errors for unknown / abstract / non-device types', () => {
    const ask = session(null);
    const edu = JSON.parse(ask('{"execute": "device-list-properties", "arguments": {"typename": "edu"}}')) as { return: { name: string }[] };
    expect(edu.return.map((p) => p.name).slice(0, 2)).toEqual(['busnr', 'failover_pair_id']);
    expect(edu.return.at(-1)).toEqual({ name: 'dma_mask', type: 'uint64' });
    const iommu = JSON.parse(ask('{"execute": "device-list-properties", "arguments": {"typename": "intel-iommu"}}')) as { return: Record<string, unknown>[] };
    expect(iommu.return[0]).toEqual({ 'default-value': true, name: 'dma-translation', description: 'on/off', type: 'bool' });
    expect(iommu.return.find((p) => p['name'] === 'eim')).toEqual({ 'default-value': 'auto', name: 'eim', description: 'on/off/auto', type: 'OnOffAuto' });
    expect(iommu.return.find((p) => p['name'] === 'x-pi')?.['description']).toContain('beyond QEMU');
    expect(ask('{"execute": "device-list-properties", "arguments": {"typename": "nope"}}')).toBe(
      `{"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}}`,
    );
    for (const t of ['pci-device', 'container', 'PCIE', 'none-machine']) {
      expect(ask(`{"execute": "device-list-properties", "arguments": {"typename": "${t}"}}`)).toBe(
        `{"error": {"class": "GenericError", "desc": "Parameter 'typename' expects a non-abstract device type"}}`,
      );
    }
  });

  it('resolves QOM paths: absolute with empty components, partial, ambiguous', () => {
    const ask = session(q35(['edu,id=e1', 'pcie-root-port,id=rp,chassis=1', 'edu,bus=rp']));
    const get = (path: string, property: string): string => ask(JSON.stringify({ execute: 'qom-get', arguments: { path, property } }));
    expect(get('//machine/peripheral/e1/', 'type')).toBe('{"return": "edu"}');
    expect(get('e1', 'addr')).toBe(`{"return": ${1 << 3}}`); // slot 1: the first free one
    expect(get('/machine/peripheral-anon/device[0]', 'parent_bus')).toBe('{"return": "/machine/peripheral/rp/rp"}');
    expect(get('/machine/peripheral-anon/device[0]', 'hotpluggable')).toBe('{"return": true}');
    expect(get('mch', 'parent_bus')).toBe('{"return": "/machine/q35/pcie.0"}');
    expect(get('/machine/nope', 'type')).toBe(`{"error": {"class": "DeviceNotFound", "desc": "Device '/machine/nope' not found"}}`);
    expect(ask('{"execute": "qom-list", "arguments": {"path": ""}}')).toBe(`{"error": {"class": "GenericError", "desc": "Path '' is ambiguous"}}`);
    expect(get('', 'type')).toBe(`{"error": {"class": "DeviceNotFound", "desc": "Device '' not found"}}`);
    expect(get('e1', 'nope')).toBe(`{"error": {"class": "GenericError", "desc": "Property 'edu.nope' not found"}}`);
  });

  it('qom-set: dma_mask reaches the device; qdev properties refuse after realize; read-only ones are not writable', () => {
    const m = q35(['edu,id=e1', 'edu']);
    const ask = session(m);
    const set = (path: string, property: string, value: string): string => ask(`{"execute": "qom-set", "arguments": {"path": "${path}", "property": "${property}", "value": ${value}}}`);
    expect(set('e1', 'dma_mask', '-5')).toBe('{"return": {}}');
    expect((m.deviceById('e1') as EduDevice).dmaMask).toBe((1n << 64n) - 5n);
    expect(ask('{"execute": "qom-get", "arguments": {"path": "e1", "property": "dma_mask"}}')).toBe('{"return": 18446744073709551611}');
    expect(set('e1', 'dma_mask', '1.0')).toBe(`{"error": {"class": "GenericError", "desc": "Parameter 'dma_mask' expects uint64"}}`);
    expect(set('e1', 'addr', '"x"')).toBe(
      `{"error": {"class": "GenericError", "desc": "Attempt to set property 'addr' on device 'e1' (type 'edu') after it was realized"}}`,
    );
    expect(set('/machine/peripheral-anon/device[0]', 'romsize', '1')).toBe(
      `{"error": {"class": "GenericError", "desc": "Attempt to set property 'romsize' on anonymous device (type 'edu') after it was realized"}}`,
    );
    expect(set('e1', 'busnr', '1')).toBe(`{"error": {"class": "GenericError", "desc": "Property 'edu.busnr' is not writable"}}`);
    expect(set('e1', 'realized', '1')).toBe(`{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'realized', expected: boolean"}}`);
    expect(set('e1', 'realized', 'true')).toBe('{"return": {}}');
    expect(set('e1', 'realized', 'false')).toContain('cannot unrealize');
    expect(set('/machine', 'default-bus-bypass-iommu', 'true')).toBe('{"return": {}}');
    expect(ask('{"execute": "qom-get", "arguments": {"path": "/machine", "property": "default-bus-bypass-iommu"}}')).toBe('{"return": true}');
  });

  it('the -machine none tree has the machine containers and an unrealized sysbus only', () => {
    const ask = session(null);
    expect(ask('{"execute": "qom-list", "arguments": {"path": "/machine"}}')).toBe(
      '{"return": [{"name": "type", "type": "string"}, {"name": "peripheral-anon", "type": "child<container>"}, ' +
        '{"name": "peripheral", "type": "child<container>"}, {"name": "unattached", "type": "child<container>"}]}',
    );
    expect(ask('{"execute": "qom-get", "arguments": {"path": "/machine/unattached/sysbus", "property": "realized"}}')).toBe('{"return": false}');
  });

  it('human-monitor-command runs the HMP command line; cpu-index must name a CPU (an int, as C truncates it)', () => {
    const ask = session(q35());
    const hmp = (args: string): string => ask(`{"execute": "human-monitor-command", "arguments": {"command-line": "foo"${args}}}`);
    const reply = hmp('');
    expect(reply).toMatch(/^\{"return": ".*"\}$/);
    expect(hmp(', "cpu-index": 0')).toBe(reply);
    expect(hmp(', "cpu-index": 4294967296')).toBe(reply);
    const bad = `{"error": {"class": "GenericError", "desc": "Parameter 'cpu-index' expects a CPU number"}}`;
    expect(hmp(', "cpu-index": 1')).toBe(bad);
    expect(hmp(', "cpu-index": -1')).toBe(bad);
    expect(session(null)(`{"execute": "human-monitor-command", "arguments": {"command-line": "foo", "cpu-index": 0}}`)).toBe(bad);
  });
});

describe('GHashTable order (qom-list of containers)', () => {
  it('g_str_hash is djb2 and never below 2', () => {
    expect(gStrHash('')).toBe(5381);
    expect(gStrHash('a')).toBe((5381 * 33 + 97) >>> 0);
  });

  it('matches the order QEMU 11.1 lists /machine/peripheral children in', () => {
    // Measured: -device ids e1, rp1, pb, rp2, up are listed as up, rp1, pb, rp2, e1.
    expect(ghashOrder(['e1', 'rp1', 'pb', 'rp2', 'up']).reverse()).toEqual(['up', 'rp1', 'pb', 'rp2', 'e1']);
    // Measured: six anonymous devices are listed in index order.
    const anon = Array.from({ length: 6 }, (_, i) => `device[${i}]`);
    expect(ghashOrder(anon).reverse()).toEqual(anon);
  });

  it('keeps every key once across resizes', () => {
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const order = ghashOrder([...keys, 'k5']);
    expect(order).toHaveLength(100);
    expect(new Set(order)).toEqual(new Set(keys));
  });
});
