import { afterEach, describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../machine/q35.js';
import { Gcmd, Reg } from '../hw/intel-iommu/reg-layout.js';
import { inspectIommu } from '../monitor/inspect.js';
import { QmpSession } from './qmp.js';
import { toQValue } from './qmp-inspect.js';
import { toQmpJson } from './qmp-qobject.js';

const machines: Machine[] = [];
afterEach(() => {
  for (const m of machines.splice(0)) m.dispose();
});

/** A negotiated session; ask() returns the parsed reply to a command. */
function session(machine: Machine | null): (cmd: object) => { return?: unknown; error?: { class: string; desc: string } } {
  let out = '';
  const s = new QmpSession({ machine, reset: () => machine?.reset(), quit: () => {} }, (t) => (out += t));
  s.feed('{"execute": "qmp_capabilities"}\n');
  return (cmd) => {
    out = '';
    s.feed(JSON.stringify(cmd) + '\n');
    const lines = out.split('\r\n').filter((l) => l);
    expect(lines).toHaveLength(1);
    return JSON.parse(lines[0]!);
  };
}

/** q35 with intel-iommu and edu at 00:01.0; legacy tables mapping 0x1000 -> 0x5000 for it (DID 3), translation on. */
function machine(): Machine {
  const m = createMachine({ devices: ['intel-iommu,id=vtd0', 'edu'], accel: 'qtest' });
  machines.push(m);
  const w = (a: number, v: number): void => {
    m.memory.write(a, 4, v);
  };
  w(0x10_0000, 0x10_1001);
  w(0x10_1080, 0x10_2001);
  w(0x10_1088, 0x301);
  w(0x10_2000, 0x10_3003);
  w(0x10_3000, 0x10_4003);
  w(0x10_4008, 0x5003);
  w(0xfed9_0000 + Reg.RTADDR, 0x10_0000);
  w(0xfed9_0000 + Reg.GCMD, Gcmd.SRTP);
  w(0xfed9_0000 + Reg.GCMD, Gcmd.TE);
  return m;
}

describe('x-vtemu-query-iommu', () => {
  it('returns the inspector record as JSON, with the translation path of a request', () => {
    const m = machine();
    const ask = session(m);
    const r = ask({ execute: 'x-vtemu-query-iommu', arguments: { requester: '00:01.0', iova: 0x1234 } });
    const unit = (r.return as { units: Record<string, unknown>[] }).units[0]!;
    expect(unit['id']).toBe('vtd0');
    expect(unit['base']).toBe('0x00000000fed90000');
    expect(unit['path']).toMatchObject({ requester: '00:01.0', result: { kind: 'translated', output: '0x0000000000005234', perm: 'RW' } });
    // Members come in QEMU's QDict (hash) order.
    expect(Object.keys(unit).sort()).toEqual(['base', 'caches', 'faults', 'id', 'ir', 'mode', 'path', 'queue', 'summary', 'translation']);
    // The same record the API gives.
    expect(r.return).toEqual(JSON.parse(JSON.stringify(inspectIommu(m, { views: ['caches', 'queue', 'faults', 'ir'], path: { sid: 8, pasid: null, iova: 0x1234, write: false } }))));
  });

  it('selects views, and refuses bad arguments with GenericError', () => {
    const m = machine();
    const ask = session(m);
    const r = ask({ execute: 'x-vtemu-query-iommu', arguments: { views: 'faults' } });
    expect(Object.keys((r.return as { units: object[] }).units[0]!).sort()).toEqual(['base', 'faults', 'id', 'mode', 'summary', 'translation']);
    const err = (args: object): string => ask({ execute: 'x-vtemu-query-iommu', arguments: args }).error!.desc;
    expect(err({ views: 'caches,bogus' })).toBe("Parameter 'views' has an unknown view 'bogus'");
    expect(err({ requester: '0:1' })).toBe("Parameter 'requester' expects bus:dev.fn, not '0:1'");
    expect(err({ iova: 5 })).toBe("Parameter 'requester' is missing");
    expect(err({ requester: '00:01.0', pasid: 0x100000 })).toBe("Parameter 'pasid' expects a value in 0..0xfffff");
    expect(err({ requester: '00:01.0', iova: -1 })).toBe("Parameter 'iova' expects a value in 0..2^53-1");
    expect(err({ requester: 1 })).toBe("Invalid parameter type for 'requester', expected: string");
  });

  it('answers with no unit on a machine without one', () => {
    expect(session(null)({ execute: 'x-vtemu-query-iommu' }).return).toEqual({ units: [] });
  });

  it('maps plain values onto QObjects', () => {
    expect(toQmpJson(toQValue({ a: 1, b: [true, null, 'x'], c: undefined }))).toBe('{"a": 1, "b": [true, null, "x"]}');
  });
});
