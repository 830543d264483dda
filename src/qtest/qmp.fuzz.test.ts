/**
 * QMP fuzz test: hostile messages (test/support/qmp-fuzz-gen.ts) never throw
 * out of the session, every message the reader completes gets exactly one
 * reply (events aside), the session keeps answering `query-status` after
 * each one, and an in-process `quit` is never triggered by accident without
 * a SHUTDOWN event.  Runs on `-machine none` and on a q35 machine with
 * devices, so that the commands libqtest-based tests use (qom-get/set,
 * device-list-properties, human-monitor-command ...) meet real objects.
 * Seed and case count: VTEMU_QMP_FUZZ_SEED, VTEMU_QMP_FUZZ_CASES (default a
 * few seconds' worth).
 */
import { describe, expect, it } from 'vitest';
import { QmpSession } from './qmp.js';
import { createMachine, type Machine } from '../machine/q35.js';
import { QmpJsonReader } from './qmp-json.js';
import { Rng } from '../../test/support/prng.js';
import { QMP_RESYNC, qmpFuzzMessage } from '../../test/support/qmp-fuzz-gen.js';

const SEED = Number(process.env['VTEMU_QMP_FUZZ_SEED'] ?? 0x9e3779b9);
const CASES = Number(process.env['VTEMU_QMP_FUZZ_CASES'] ?? 1000);
const PROBE = '{"execute": "query-status", "id": "probe"}\n';
const PROBE_REPLY = '{"return": {"status": "running", "running": true}, "id": "probe"}';

const MACHINES: readonly [string, () => Machine | null][] = [
  ['-machine none', () => null],
  ['q35 with devices', () => createMachine({ accel: 'qtest', devices: ['intel-iommu,id=iommu,caching-mode=on', 'edu', 'pcie-root-port,id=rp,chassis=1', 'iommu-testdev,bus=rp'] })],
];

describe.each(MACHINES)('QmpSession fuzz (%s)', (_name, build) => {
  it(`answers every message exactly once and keeps answering (seed 0x${SEED.toString(16)}, ${CASES} cases)`, () => {
    const r = new Rng(SEED);
    const machine = build();
    let lines: string[] = [];
    let quits = 0;
    const session = (): QmpSession => {
      const s = new QmpSession({ machine, reset: () => machine?.reset(), quit: () => quits++ }, (t) => lines.push(...t.split('\r\n').filter((l) => l)));
      s.feed('{"execute": "qmp_capabilities"}\n');
      return s;
    };
    let s = session();
    let messages = 0;
    const counter = new QmpJsonReader({ value: () => messages++, error: () => messages++ });
    counter.feed('{"execute": "qmp_capabilities"}\n');
    for (let i = 0; i < CASES; i++) {
      const msg = qmpFuzzMessage(r);
      lines = [];
      messages = 0;
      const before = quits;
      expect(() => {
        s.feed(msg);
        s.feed(QMP_RESYNC);
      }).not.toThrow();
      counter.feed(msg);
      counter.feed(QMP_RESYNC);
      const replies = lines.filter((l) => !l.startsWith('{"timestamp"'));
      for (const l of replies) expect(l, `case ${i}`).toMatch(/^\{("id": .*, )?"(return|error)": /);
      if (quits !== before) {
        // After a successful quit nothing more is read (QEMU exits).
        expect(lines.some((l) => l.includes('"SHUTDOWN"'))).toBe(true);
        expect(replies.length, `case ${i}`).toBeLessThanOrEqual(messages);
        s = session(); // QEMU would have exited: start a fresh session, as a new process would
        counter.reset();
        counter.feed('{"execute": "qmp_capabilities"}\n');
        continue;
      }
      expect(replies.length, `case ${i}`).toBe(messages);
      lines = [];
      s.feed(PROBE);
      expect(lines.at(-1), `case ${i}`).toBe(PROBE_REPLY);
      counter.feed(PROBE);
    }
    machine?.dispose();
  }, 120_000);
});
