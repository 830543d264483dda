/**
 * The README's API examples, run through the public entry point (src/index.ts)
 * exactly as written there, so the documentation cannot drift from the code.
 */
import { describe, expect, it } from 'vitest';
import { createMachine, MmioRegion, PciDevice, QtestServer, registerDeviceType, type MsiDelivery } from '../../src/index.js';

class Blinky extends PciDevice {
  constructor(readonly rate: number) {
    super({ typeName: 'blinky', vendorId: 0x1234, deviceId: 0xbeef, revision: 1, classCode: 0xff0000 });
    this.registerBar(0, new MmioRegion('blinky', 0x1000, {
      read: () => this.rate,
      write: () => {},
    }, { valid: { min: 4, max: 4 } }), 'mem32');
  }
}

describe('README examples', () => {
  it('a machine with an IOMMU and edu, driven directly', () => {
    const m = createMachine({ accel: 'qtest', memory: '1G', devices: ['intel-iommu,caching-mode=on', 'edu'] });
    const seen: MsiDelivery[] = [];
    m.events.on('interrupt', (irq) => seen.push(irq));
    const faults: number[] = [];
    m.iommus[0]!.events.on('fault', (f) => faults.push(f.reason));
    m.memory.write(0x1000, 4, 0xdeadbeef);
    expect(m.memory.read(0x1000, 4)).toBe(0xdeadbeef);
    expect(m.memory.read64(0xfed90008) & (1n << 7n)).toBe(1n << 7n); // CAP.CM from caching-mode=on
    expect(m.clock.step(100_000_000)).toBe(100_000_000);
    expect(seen).toEqual([]);
    expect(faults).toEqual([]);
    m.dispose();
  });

  it('a third-party PCI device registered and plugged with -device', () => {
    registerDeviceType({
      name: 'blinky', description: 'an example', bus: 'pci',
      props: { rate: { kind: 'uint32', default: 1, help: 'blinks per second' } },
      create: (_ctx, props) => new Blinky(Number(props['rate'])),
    });
    const m = createMachine({ accel: 'qtest', devices: ['blinky,rate=7'] });
    const out: string[] = [];
    const q = new QtestServer(m, (t) => out.push(t.trim()));
    for (const l of ['outl 0xcf8 0x80000800', 'inl 0xcfc', 'outl 0xcf8 0x80000810', 'outl 0xcfc 0xe0000000',
      'outl 0xcf8 0x80000804', 'outw 0xcfc 0x2', 'readl 0xe0000000', 'readw 0xe0000000']) q.handleLine(l);
    expect(out).toEqual(['OK', 'OK 0xbeef1234', 'OK', 'OK', 'OK', 'OK', 'OK 0x0000000000000007', 'OK 0x0000000000000000']);
    m.dispose();
  });
});
