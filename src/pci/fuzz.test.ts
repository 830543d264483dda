import { describe, expect, it } from 'vitest';
import { PcieRootPort, PciePciBridge, PciPciBridge, X3130Upstream, Xio3130Downstream } from './bridges.js';
import { TestEndpoint, makeTestHost } from '../../test/support/pci-host.js';
import { u32Stream } from '../../test/support/prng.js';

function topology() {
  const t = makeTestHost();
  const root = t.host.rootBus;
  const rp = new PcieRootPort();
  root.plug(rp, { devfn: 0x08 });
  const up = new X3130Upstream();
  rp.secondaryBus.plug(up);
  const down = new Xio3130Downstream();
  up.secondaryBus.plug(down);
  down.secondaryBus.plug(new TestEndpoint());
  const pb = new PciePciBridge();
  root.plug(pb, { devfn: 0x10 });
  pb.secondaryBus.plug(new TestEndpoint({ express: false }), { devfn: 0x08 });
  const br = new PciPciBridge({ chassisNr: 1 });
  pb.secondaryBus.plug(br, { devfn: 0x10 });
  br.secondaryBus.plug(new TestEndpoint({ express: false }));
  root.plug(new TestEndpoint(), { devfn: 0x18 });
  return t;
}

describe('guest input never throws (property tests)', () => {
  for (const seed of [1, 2, 3, 0xdeadbeef]) {
    it(`random CF8/CFC, ECAM and memory/I/O traffic, seed ${seed}`, () => {
      const { io, mem, host } = topology();
      const r = u32Stream(seed);
      const sizes = [1, 2, 4] as const;
      for (let i = 0; i < 20000; i++) {
        const kind = r() % 8;
        const size = sizes[r() % 3]!;
        const value = r();
        if (kind === 0) io.write(0xcf8, 4, (0x8000_0000 | (r() % 8 << 16) | (r() & 0xfffc)) >>> 0);
        else if (kind === 1) io.write(0xcfc + (r() % 4), size, value);
        else if (kind === 2) io.read(0xcfc + (r() % 4), size);
        else if (kind === 3) io.write(0xcf8, 4, 0x8000_0060), io.write(0xcfc, 4, (0xb000_0001 | (r() & 0x6)) >>> 0);
        else if (kind === 4) mem.write(0xb000_0000 + (r() % 0x800_0000), size, value);
        else if (kind === 5) mem.read(0xb000_0000 + (r() % 0x800_0000), size);
        else if (kind === 6) mem.read((r() % 0x20) * 0x1000_0000 + (r() & 0xffff), size);
        else io.read(r() & 0xffff, size);
      }
      // Whatever the guest did, both mechanisms still agree on every function found.
      io.write(0xcf8, 4, 0x8000_0060);
      io.write(0xcfc, 4, 0xb000_0001);
      for (const f of host.allFunctions()) {
        for (let reg = 0; reg < 0x40; reg += 4) {
          io.write(0xcf8, 4, (0x8000_0000 | (f.busNumber << 16) | (f.devfn << 8) | reg) >>> 0);
          const viaCf8 = io.read(0xcfc, 4);
          expect(mem.read(0xb000_0000 + f.busNumber * 0x10_0000 + f.devfn * 0x1000 + reg, 4)).toBe(viaCf8);
        }
      }
    });
  }
});
