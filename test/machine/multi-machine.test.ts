/**
 * Several machines in one process share no state (issue 12, item 5): pairs
 * of random VT-d scenarios (the differential fuzzer's generator, legacy and
 * scalable mode, so both machines translate, cache, fault and invalidate)
 * run on two in-process machines with their transcripts interleaved command
 * by command give exactly the replies each gives when run alone.  Device
 * types registered for one machine (MachineOptions.deviceTypes) are not seen
 * by another.
 */
import { describe, expect, it } from 'vitest';
import { runTranscript, VtemuRunner, type QtestRunner, type TranscriptLine } from '../harness/index.js';
import { generateCase, generateScalableCase, type FuzzCase } from '../diff/vtd-fuzz-gen.js';
import { createMachine } from '../../src/machine/q35.js';
import { MmioRegion } from '../../src/memory/region.js';
import { PciDevice } from '../../src/pci/device.js';
import type { DeviceType } from '../../src/machine/device-type.js';

const SEED = 0x5eed_0012;
const PAIRS = 6;

/** A runner that records, in a shared log, which machine ran each command. */
function logged(runner: QtestRunner, name: string, log: string[]): QtestRunner {
  return {
    name: runner.name,
    command: (line) => {
      log.push(name);
      return runner.command(line);
    },
    takeAsync: () => runner.takeAsync(),
    wait: (ms, ns) => runner.wait(ms, ns),
    systemReset: () => runner.systemReset?.() ?? Promise.resolve(),
    close: () => runner.close(),
  };
}

async function alone(c: FuzzCase): Promise<TranscriptLine[]> {
  const r = VtemuRunner.start(c.args);
  try {
    return await runTranscript(r, c.steps);
  } finally {
    await r.close();
  }
}

describe('two machines in one process', () => {
  for (let i = 0; i < PAIRS; i++) {
    it(`pair ${i}: interleaved transcripts equal the transcripts run alone`, async () => {
      const a = (i % 2 === 0 ? generateCase : generateScalableCase)(SEED, i);
      const b = (i % 2 === 0 ? generateScalableCase : generateCase)(SEED + 1, i);
      const [soloA, soloB] = [await alone(a), await alone(b)];
      const log: string[] = [];
      const ra = VtemuRunner.start(a.args);
      const rb = VtemuRunner.start(b.args);
      try {
        const [ta, tb] = await Promise.all([runTranscript(logged(ra, 'a', log), a.steps), runTranscript(logged(rb, 'b', log), b.steps)]);
        expect(ta).toEqual(soloA);
        expect(tb).toEqual(soloB);
        // They really interleaved: the machines took turns long before either finished.
        const firstB = log.indexOf('b');
        expect(firstB).toBeGreaterThan(0);
        expect(firstB).toBeLessThan(log.lastIndexOf('a'));
        expect(log.slice(0, 20).filter((n) => n === 'a').length).toBeLessThan(20);
      } finally {
        await Promise.all([ra.close(), rb.close()]);
      }
    });
  }

  it('a device type given to one machine is unknown to another', () => {
    class Probe extends PciDevice {
      constructor() {
        super({ typeName: 'probe-x', vendorId: 0x1234, deviceId: 0x4242, revision: 0, classCode: 0xff0000 });
        this.registerBar(0, new MmioRegion('probe', 0x1000, { read: () => 0x42, write: () => {} }), 'mem32');
      }
    }
    const type: DeviceType = { name: 'probe-x', description: 'test', bus: 'pci', props: {}, create: () => new Probe() };
    const m1 = createMachine({ accel: 'qtest', deviceTypes: [type], devices: ['probe-x'] });
    expect(m1.devices.map((d) => d.spec.type.name)).toEqual(['probe-x']);
    expect(() => createMachine({ accel: 'qtest', devices: ['probe-x'] })).toThrow(/'probe-x' is not a valid device model name/);
    m1.dispose();
  });
});
