/**
 * The public views (src/api/) through their own interface: the functions and
 * servers accept what createMachine / machineFromState made and refuse, with a
 * TypeError, objects that only look like a machine or a unit; the views reach
 * the same model objects (what the qtest and QMP sessions see is the machine's
 * state); and the strict types keep the model's internals out of reach.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMachine, machineFromState, modelOf, saveStateFile, type Machine } from './machine.js';
import { QmpSession, QtestServer } from './servers.js';
import { inspectIommu, machineUnits } from './inspect.js';
import { readStateFile } from '../machine/snapshot-file.js';
import { Machine as ModelMachine } from '../machine/q35.js';
import type { VtdUnit, VtdUnitRef } from './vtd-unit.js';

const VTD_BASE = 0xfed9_0000;
/** CAP.CM (VT-d 3.4 §11.4.2): set by caching-mode=on. */
const CAP_CM = 1n << 7n;

function machine(): Machine {
  return createMachine({ accel: 'qtest', memory: '128M', devices: ['intel-iommu,caching-mode=on,id=vtd0', 'edu'] });
}

/** A plain object with the view's shape and nothing behind it. */
function lookalike(m: Machine): Machine {
  return { ...m } as Machine;
}

describe('createMachine / modelOf', () => {
  it('returns the model machine behind the view, and its units behind VtdUnit', () => {
    const m = machine();
    expect(m).toBeInstanceOf(ModelMachine);
    expect(modelOf(m)).toBe(m);
    const unit: VtdUnit = m.iommus[0]!;
    expect(unit.typeName).toBe('intel-iommu');
    expect(unit.config.cachingMode).toBe(true);
    expect(unit.capability & CAP_CM).toBe(CAP_CM);
    expect(m.memory.read64(VTD_BASE + 8)).toBe(unit.capability);
    expect(unit.dmarEnabled).toBe(false);
    m.dispose();
  });

  it('refuses an object that only looks like a machine', () => {
    const m = machine();
    expect(() => modelOf(lookalike(m))).toThrow(TypeError);
    expect(() => new QtestServer(lookalike(m), () => {})).toThrow(/not a machine made by createMachine/);
    expect(() => new QmpSession({ machine: lookalike(m), reset() {}, quit() {} }, () => {})).toThrow(TypeError);
    expect(() => inspectIommu(lookalike(m))).toThrow(TypeError);
    expect(() => machineUnits(lookalike(m))).toThrow(TypeError);
    m.dispose();
  });

  it('rejects the internals at compile time (tsc --noEmit checks these lines)', () => {
    const m = machine();
    const unit = m.iommus[0]!;
    // @ts-expect-error the IOTLB is not part of VtdUnit
    expect(unit.iotlb).toBeDefined(); // present at run time: the view is a type, not a wrapper
    // @ts-expect-error nor is the PCI wiring part of Machine
    expect(m.pci).toBeDefined();
    m.dispose();
  });
});

describe('QtestServer', () => {
  it('drives the machine behind the view, and answers nothing once closed', () => {
    const m = machine();
    const out: string[] = [];
    const q = new QtestServer(m, (t) => out.push(t));
    q.feed('writel 0x1000 0xcafe\nreadl 0x1000\n');
    q.handleLine('readq 0xfed90008');
    expect(out).toEqual(['OK\n', 'OK 0x000000000000cafe\n', `OK 0x${m.iommus[0]!.capability.toString(16).padStart(16, '0')}\n`]);
    expect(m.memory.read(0x1000, 4)).toBe(0xcafe);
    q.close();
    q.handleLine('readl 0x1000');
    expect(out).toHaveLength(3);
    m.dispose();
  });
});

describe('QmpSession', () => {
  it('greets, passes reset and quit to the target, and runs machine commands on the model', () => {
    const m = machine();
    const out: string[] = [];
    const calls: string[] = [];
    const s = new QmpSession({ machine: m, reset: () => calls.push('reset'), quit: () => calls.push('quit') }, (t) => out.push(t.trimEnd()));
    s.greet();
    expect(JSON.parse(out[0]!).QMP.version.qemu).toEqual({ micro: 3, minor: 1, major: 11 });
    s.feed('{"execute": "qmp_capabilities"}\n{"execute": "x-vtemu-query-iommu"}\n{"execute": "system_reset"}\n{"execute": "quit"}\n');
    expect(out[1]).toBe('{"return": {}}');
    expect(JSON.parse(out[2]!).return.units.map((u: { id: string; base: string }) => [u.id, u.base])).toEqual([['vtd0', '0x00000000fed90000']]);
    expect(calls).toEqual(['reset', 'quit']);
    m.dispose();
  });

  it('takes no machine (-machine none)', () => {
    const out: string[] = [];
    const s = new QmpSession({ machine: null, reset() {}, quit() {} }, (t) => out.push(t.trimEnd()));
    s.feed('{"execute": "qmp_capabilities"}\n{"execute": "x-vtemu-query-iommu"}\n');
    expect(out[0]).toBe('{"return": {}}');
    expect(out[1]).toBe('{"return": {"units": []}}');
  });
});

describe('machineUnits / inspectIommu', () => {
  it('lists the units with id and window base, and inspects a machine, a unit or nothing', () => {
    const m = machine();
    const units = machineUnits(m);
    expect(units.map((u) => [u.id, u.base, u.unit === m.iommus[0]])).toEqual([['vtd0', VTD_BASE, true]]);
    expect(inspectIommu(m).units.map((u) => [u.id, u.base, u.translation])).toEqual([['vtd0', '0x00000000fed90000', false]]);
    expect(inspectIommu(units[0]!, { views: ['faults'] }).units[0]!.faults).toBeDefined();
    expect(inspectIommu(null)).toEqual({ units: [] });
    const forged: VtdUnitRef = { unit: { ...units[0]!.unit }, id: 'x', base: null };
    expect(() => inspectIommu(forged)).toThrow(/not a VT-d unit/);
    m.dispose();
  });
});

describe('saveStateFile / machineFromState', () => {
  it('round-trips a machine through a file into a fresh public view', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-api-'));
    try {
      const m = machine();
      m.memory.write(0x2000, 4, 0x1234_5678);
      const path = join(dir, 'state.json');
      saveStateFile(m, path);
      m.dispose();
      const back = machineFromState(readStateFile(path));
      expect(back.memory.read(0x2000, 4)).toBe(0x1234_5678);
      expect(back.iommus[0]!.config.cachingMode).toBe(true);
      expect(() => saveStateFile(lookalike(back), path)).toThrow(TypeError);
      back.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
