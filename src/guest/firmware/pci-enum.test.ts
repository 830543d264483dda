import { describe, expect, it } from 'vitest';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { fakeFn, installFakePci } from '../../../test/support/guest-fakes/fake-pci.js';
import { enumeratePci, isPcieToPciBridge } from './pci-enum.js';
import { PcieType } from './pci-config.js';
import { buildGroups, dmaAliases } from '../linux-vtd/groups.js';

function topology() {
  const behind1 = fakeFn(1, 0, { bars: [[0, { size: 0x100000 }]] });
  const behind2 = fakeFn(2, 0, { bars: [[0, { size: 0x100000 }]] });
  const pciBridge = fakeFn(0, 0, { bridge: true, pcieType: PcieType.PcieToPciBridge, children: [behind1, behind2] });
  const rootPort = fakeFn(2, 0, { bridge: true, pcieType: PcieType.RootPort, children: [pciBridge] });
  const edu = fakeFn(1, 0, { bars: [[0, { size: 0x100000 }], [2, { size: 0x4000, is64: true }], [4, { size: 0x20, io: true }]] });
  const host = fakeFn(0, 0, { vendor: 0x8086, device: 0x29c0 });
  return { root: [host, edu, rootPort], rootPort, pciBridge, edu };
}

describe('enumeratePci', () => {
  it('assigns bus numbers depth-first, BARs from the window, bridge windows, and enables decode + bus master', async () => {
    const p = new FakePlatform();
    const t = topology();
    installFakePci(p, t.root);
    const pci = await enumeratePci(p);
    expect(pci.functions.map((f) => f.name)).toEqual(['00:00.0', '00:01.0', '00:02.0', '01:00.0', '02:01.0', '02:02.0']);
    const rp = pci.at(0, 2, 0)!;
    const br = pci.at(1, 0, 0)!;
    expect([rp.secondaryBus, rp.subordinateBus, br.secondaryBus, br.subordinateBus]).toEqual([1, 2, 2, 2]);
    expect(t.rootPort.cfg.subarray(0x18, 0x1b)).toEqual(new Uint8Array([0, 1, 2]));
    const edu = pci.at(0, 1, 0)!;
    expect(edu.bars.map((b) => [b.index, b.kind, b.size, b.address])).toEqual([
      [0, 'mem32', 0x100000, 0xe0000000], [2, 'mem64', 0x4000, 0xe0100000], [4, 'io', 0x20, 0xc000],
    ]);
    expect(t.edu.cfg[4]! & 7).toBe(7);
    const a = pci.at(2, 1, 0)!.bars[0]!.address;
    const b = pci.at(2, 2, 0)!.bars[0]!.address;
    expect([a, b]).toEqual([0xe0200000, 0xe0300000]);
    const dv = new DataView(t.rootPort.cfg.buffer);
    expect([dv.getUint16(0x20, true), dv.getUint16(0x22, true)]).toEqual([0xe020, 0xe030]);
    expect(isPcieToPciBridge(br)).toBe(true);
  });

  it('gives devices behind a PCIe-to-PCI bridge the (secondary bus, 0) alias and one group', async () => {
    const p = new FakePlatform();
    installFakePci(p, topology().root);
    const pci = await enumeratePci(p);
    const x = pci.at(2, 1, 0)!;
    expect(dmaAliases(x)).toEqual([0x0208, 0x0200]);
    expect(dmaAliases(pci.at(0, 1, 0)!)).toEqual([0x0008]);
    const groups = buildGroups(pci.functions.filter((f) => !f.isBridge));
    expect(groups.map((g) => g.members.map((m) => m.name))).toEqual([['00:00.0'], ['00:01.0'], ['02:01.0', '02:02.0']]);
  });
});
