/**
 * PciBus on a fake host: devfn arithmetic, containers, slot allocation and
 * QEMU's plugging rules (multi-function), bus numbers and subordinate
 * ranges (findBus), requester objects, bridge bus-master gating, INTx
 * swizzling through bridges to root IRQs with level counting, and reset.
 */
import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../memory/address-space.js';
import type { DmaRequester } from '../memory/iommu.js';
import { ContainerRegion } from '../memory/region.js';
import { PciBridge } from './bridge.js';
import { PCI_DEVFN_MAX, PCI_FUNC_MAX, PCI_SLOT_MAX, PciBus, type PciBusHost, pciDevfn, pciFunc, pciSlot } from './bus.js';
import { BridgeReg, PciCommand, PciHeaderType, PciReg } from './config.js';
import { TestEndpoint } from '../../test/support/pci-host.js';

/** A host that records root IRQ changes and maps (devfn, pin) to `slot * 4 + pin` mod `irqs`, or as told. */
class FakeHost implements PciBusHost {
  readonly dmaMemory = new AddressSpace('dma', new ContainerRegion('sys', 2 ** 40));
  readonly iommuGeneration = 0;
  readonly levels: [irq: number, level: boolean][] = [];
  readonly mapped: [devfn: number, pin: number][] = [];
  map: (devfn: number, pin: number) => number = (devfn, pin) => (pciSlot(devfn) * 4 + pin) % this.rootIrqCount;
  constructor(
    readonly rootIrqCount = 8,
    readonly bridgeMasterGating = false,
  ) {}
  translatorFor(): null {
    return null;
  }
  mapRootIrq(devfn: number, pin: number): number {
    this.mapped.push([devfn, pin]);
    return this.map(devfn, pin);
  }
  setRootIrq(irq: number, level: boolean): void {
    this.levels.push([irq, level]);
  }
}

/** A plain PCI-to-PCI bridge that counts secondaryDevicePlugged calls. */
class Bridge extends PciBridge {
  pluggedBelow = 0;
  constructor(express = true) {
    super({ typeName: 'test-bridge', vendorId: 0x1234, deviceId: 0x0b, revision: 0, secondaryExpress: express, express });
  }
  override secondaryDevicePlugged(): void {
    this.pluggedBelow++;
  }
}

const root = (host = new FakeHost()) => new PciBus('root', host, null, true);

/** Programs a bridge's primary/secondary/subordinate bus numbers as a guest would. */
function setBuses(b: PciBridge, primary: number, secondary: number, subordinate: number): void {
  b.configWrite(BridgeReg.PrimaryBus, 4, primary | (secondary << 8) | (subordinate << 16));
}

describe('devfn helpers', () => {
  it('32 slots of 8 functions', () => {
    expect(PCI_SLOT_MAX).toBe(32);
    expect(PCI_FUNC_MAX).toBe(8);
    expect(PCI_DEVFN_MAX).toBe(256);
  });

  it('split and join slot and function, masking out-of-range parts', () => {
    expect([pciSlot(0), pciFunc(0)]).toEqual([0, 0]);
    expect([pciSlot(0x0f), pciFunc(0x0f)]).toEqual([1, 7]);
    expect([pciSlot(0xff), pciFunc(0xff)]).toEqual([31, 7]);
    expect([pciSlot(0xfa), pciFunc(0xfa)]).toEqual([31, 2]);
    expect(pciDevfn(0, 0)).toBe(0);
    expect(pciDevfn(1, 2)).toBe(0x0a);
    expect(pciDevfn(31, 7)).toBe(0xff);
    expect(pciDevfn(32, 8)).toBe(0);
    expect(pciDevfn(33, 9)).toBe(0x09);
  });
});

describe('a bus', () => {
  it('has a 2^64 memory and a 64 KiB I/O container of its own, or the ones it is given', () => {
    const host = new FakeHost();
    const bus = new PciBus('pci.1', host, null, false);
    expect(bus.memory.name).toBe('pci.1-mem');
    expect(bus.memory.size).toBe(2 ** 64);
    expect(bus.io.name).toBe('pci.1-io');
    expect(bus.io.size).toBe(0x10000);
    expect(bus.isExpress).toBe(false);
    const memory = new ContainerRegion('m', 0x1000);
    const io = new ContainerRegion('i', 0x100);
    const given = new PciBus('x', host, null, true, { memory, io });
    expect(given.memory).toBe(memory);
    expect(given.io).toBe(io);
    expect(given.isExpress).toBe(true);
  });

  it('a root bus is bus 0 with subordinate 255', () => {
    const bus = root();
    expect(bus.isRoot).toBe(true);
    expect(bus.busNumber()).toBe(0);
    expect(bus.subordinate()).toBe(255);
    expect(bus.parent).toBeNull();
  });

  it('is empty: no devices, no child buses, device() undefined everywhere including out of range', () => {
    const bus = root();
    expect(bus.devices()).toEqual([]);
    expect(bus.childBuses()).toEqual([]);
    for (const devfn of [-1, 0, 255, 256]) expect(bus.device(devfn)).toBeUndefined();
    expect(bus.firstFreeDevfn()).toBe(0);
  });
});

describe('plugging (QEMU do_pci_register_device, pci_init_multifunction)', () => {
  it('auto-placement takes function 0 of the first free slot', () => {
    const bus = root();
    const a = new TestEndpoint();
    expect(bus.plug(a)).toBe(0x00);
    expect(a.devfn).toBe(0);
    expect(a.bus).toBe(bus);
    expect(bus.firstFreeDevfn()).toBe(0x08);
    bus.plug(new TestEndpoint(), { devfn: 0x10 });
    expect(bus.plug(new TestEndpoint())).toBe(0x08);
    expect(bus.plug(new TestEndpoint())).toBe(0x18);
  });

  it('fills all 32 slots, then refuses with QEMU message', () => {
    const bus = root();
    for (let slot = 0; slot < 32; slot++) expect(bus.plug(new TestEndpoint())).toBe(slot << 3);
    expect(bus.firstFreeDevfn()).toBe(-1);
    expect(() => bus.plug(new TestEndpoint())).toThrow('PCI: no slot/function available for test-endpoint, all in use or reserved');
    expect(bus.devices()).toHaveLength(32);
  });

  it('takes any devfn 0-255 and refuses others', () => {
    const bus = root();
    expect(bus.plug(new TestEndpoint(), { devfn: 0xff })).toBe(0xff);
    expect(bus.device(0xff)).toBeDefined();
    expect(() => bus.plug(new TestEndpoint(), { devfn: 256 })).toThrow('PCI: devfn 256 out of range for test-endpoint');
    expect(() => bus.plug(new TestEndpoint(), { devfn: 1.5 })).toThrow(/out of range/);
  });

  it('refuses an occupied devfn, naming the occupant id', () => {
    const bus = root();
    bus.plug(new TestEndpoint(), { devfn: 0x10, id: 'nic0' });
    expect(() => bus.plug(new TestEndpoint(), { devfn: 0x10 })).toThrow(
      'PCI: slot 2 function 0 not available for test-endpoint, in use by test-endpoint,id=nic0',
    );
    bus.plug(new TestEndpoint(), { devfn: 0x00 });
    expect(() => bus.plug(new TestEndpoint(), { devfn: 0x00 })).toThrow(
      'PCI: slot 0 function 0 not available for test-endpoint, in use by test-endpoint,id=(null)',
    );
  });

  it('multifunction: function 0 marks the header type; other functions need it', () => {
    const bus = root();
    const f0 = new TestEndpoint();
    bus.plug(f0, { devfn: 0x18, multifunction: true });
    expect(f0.config.getByte(PciReg.HeaderType)).toBe(PciHeaderType.MultiFunction);
    const f7 = new TestEndpoint();
    bus.plug(f7, { devfn: 0x1f });
    expect(f7.config.getByte(PciReg.HeaderType)).toBe(0);
    // A single-function device at function 0 closes the slot.
    bus.plug(new TestEndpoint(), { devfn: 0x20 });
    expect(() => bus.plug(new TestEndpoint(), { devfn: 0x21 })).toThrow(
      "PCI: single function device can't be populated in function 4.1",
    );
  });

  it('functions before function 0: fine, but then function 0 must be multifunction', () => {
    const bus = root();
    bus.plug(new TestEndpoint(), { devfn: 0x2f });
    expect(() => bus.plug(new TestEndpoint(), { devfn: 0x28 })).toThrow(
      'PCI: 5.0 indicates single function, but 5.7 is already populated.',
    );
    expect(bus.device(0x28)).toBeUndefined();
    bus.plug(new TestEndpoint(), { devfn: 0x28, multifunction: true });
    expect(bus.device(0x28)).toBeDefined();
  });

  it('lists devices in devfn order with their header kind', () => {
    const bus = root();
    const b = new Bridge();
    const e = new TestEndpoint();
    bus.plug(e, { devfn: 0x30 });
    bus.plug(b, { devfn: 0x08 });
    const list = bus.devices();
    expect(list.map((x) => [x.devfn, x.isBridge])).toEqual([
      [0x08, true],
      [0x30, false],
    ]);
    expect(list[0]!.device).toBe(b);
    expect(list[1]!.device).toBe(e);
  });

  it('realizes the device, snapshots its reset state and maps its BARs', () => {
    const bus = root();
    const d = new TestEndpoint();
    d.config.setLong(PciReg.Bar0, 0xe000_0000);
    d.config.setWord(PciReg.Command, PciCommand.Memory);
    bus.plug(d);
    expect(d.bars[0]!.addr).toBe(0xe000_0000);
    expect(bus.memory.has(d.bars[0]!.region)).toBe(true);
    d.configWrite(PciReg.Command, 2, 0);
    expect(bus.memory.has(d.bars[0]!.region)).toBe(false);
    d.reset(); // back to the state at plug time
    expect(d.config.getWord(PciReg.Command)).toBe(PciCommand.Memory);
    expect(bus.memory.has(d.bars[0]!.region)).toBe(true);
  });

  it('a bridge brings its secondary bus; child buses are kept in devfn order', () => {
    const bus = root();
    const b2 = new Bridge();
    const b1 = new Bridge(false);
    bus.plug(b2, { devfn: 0x18 });
    bus.plug(b1, { devfn: 0x08 });
    const children = bus.childBuses();
    expect(children).toHaveLength(2);
    expect(children[0]).toBe(b1.secondaryBus);
    expect(children[1]).toBe(b2.secondaryBus);
    expect(b1.secondaryBus.parent).toBe(b1);
    expect(b1.secondaryBus.isRoot).toBe(false);
    expect(b1.secondaryBus.isExpress).toBe(false);
    expect(b2.secondaryBus.isExpress).toBe(true);
    expect(b2.secondaryBus.host).toBe(bus.host);
  });

  it('tells the bridge above when a device is plugged below it', () => {
    const bus = root();
    const b = new Bridge();
    bus.plug(b);
    expect(b.pluggedBelow).toBe(0);
    b.secondaryBus.plug(new TestEndpoint());
    b.secondaryBus.plug(new TestEndpoint());
    expect(b.pluggedBelow).toBe(2);
  });
});

describe('bus numbers and findBus (QEMU pci_find_bus_nr)', () => {
  function tree() {
    const bus = root();
    const a = new Bridge();
    const b = new Bridge();
    bus.plug(a, { devfn: 0x08 });
    bus.plug(b, { devfn: 0x10 });
    const a1 = new Bridge();
    a.secondaryBus.plug(a1);
    setBuses(a, 0, 1, 4);
    setBuses(a1, 1, 2, 4);
    setBuses(b, 0, 5, 5);
    return { bus, a, a1, b };
  }

  it('a secondary bus is numbered by its bridge; subordinate likewise', () => {
    const { a, a1 } = tree();
    expect(a.secondaryBus.busNumber()).toBe(1);
    expect(a.secondaryBus.subordinate()).toBe(4);
    expect(a1.secondaryBus.busNumber()).toBe(2);
  });

  it('finds each bus by number, through [secondary, subordinate] ranges', () => {
    const { bus, a, a1, b } = tree();
    expect(bus.findBus(0)).toBe(bus);
    expect(bus.findBus(1)).toBe(a.secondaryBus);
    expect(bus.findBus(2)).toBe(a1.secondaryBus);
    expect(bus.findBus(5)).toBe(b.secondaryBus);
    expect(a.secondaryBus.findBus(2)).toBe(a1.secondaryBus);
  });

  it('numbers inside a range without a bus, or outside every range, find nothing', () => {
    const { bus } = tree();
    expect(bus.findBus(3)).toBeNull(); // in a1's range, no bus 3 below it
    expect(bus.findBus(4)).toBeNull(); // subordinate end
    expect(bus.findBus(6)).toBeNull();
    expect(bus.findBus(255)).toBeNull();
  });

  it('follows renumbering at once', () => {
    const { bus, b } = tree();
    setBuses(b, 0, 7, 9);
    expect(bus.findBus(5)).toBeNull();
    expect(bus.findBus(7)).toBe(b.secondaryBus);
    expect(bus.findBus(9)).toBeNull();
  });

  it('an unprogrammed bridge (secondary 0) hides its bus behind the root', () => {
    const bus = root();
    const b = new Bridge();
    bus.plug(b);
    expect(b.secondaryBus.busNumber()).toBe(0);
    expect(bus.findBus(0)).toBe(bus);
    expect(bus.findBus(1)).toBeNull();
  });
});

describe('requesters', () => {
  it('one stable object per devfn, keyed by itself, numbered by the bus at call time', () => {
    const bus = root();
    const b = new Bridge();
    bus.plug(b, { devfn: 0x08 });
    const r: DmaRequester = b.secondaryBus.requester(0x11);
    expect(r.devfn).toBe(0x11);
    expect(r.key).toBe(r);
    expect(b.secondaryBus.requester(0x11)).toBe(r);
    expect(b.secondaryBus.requester(0x111)).toBe(r); // devfn is 8 bits
    expect(b.secondaryBus.requester(0x12)).not.toBe(r);
    expect(bus.requester(0x11)).not.toBe(r);
    expect(r.busNumber()).toBe(0);
    setBuses(b, 0, 3, 3);
    expect(r.busNumber()).toBe(3);
  });
});

describe('upstream bus mastering', () => {
  function chain(gating: boolean) {
    const bus = root(new FakeHost(8, gating));
    const a = new Bridge();
    bus.plug(a);
    const a1 = new Bridge();
    a.secondaryBus.plug(a1);
    return { bus, a, a1, leaf: a1.secondaryBus };
  }

  it('without gating (QEMU 7.2) the bridges do not matter', () => {
    const { bus, leaf } = chain(false);
    expect(bus.upstreamMasterEnabled()).toBe(true);
    expect(leaf.upstreamMasterEnabled()).toBe(true);
  });

  it('with gating every bridge up to the root must be bus master', () => {
    const { bus, a, a1, leaf } = chain(true);
    expect(bus.upstreamMasterEnabled()).toBe(true);
    expect(leaf.upstreamMasterEnabled()).toBe(false);
    a1.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(leaf.upstreamMasterEnabled()).toBe(false);
    expect(a.secondaryBus.upstreamMasterEnabled()).toBe(false);
    a.configWrite(PciReg.Command, 2, PciCommand.Master);
    expect(leaf.upstreamMasterEnabled()).toBe(true);
    expect(a.secondaryBus.upstreamMasterEnabled()).toBe(true);
    a1.configWrite(PciReg.Command, 2, 0);
    expect(leaf.upstreamMasterEnabled()).toBe(false);
    expect(a.secondaryBus.upstreamMasterEnabled()).toBe(true);
  });
});

describe('INTx (QEMU pci_change_irq_level)', () => {
  it('a root-bus device asks the host for its (devfn, pin) and counts the level per root IRQ', () => {
    const host = new FakeHost();
    const bus = root(host);
    const d = new TestEndpoint();
    bus.plug(d, { devfn: 0x18 });
    bus.changeIrqLevel(d, 1, +1);
    expect(host.mapped).toEqual([[0x18, 1]]);
    expect(host.levels).toEqual([[(3 * 4 + 1) % 8, true]]);
    expect(bus.irqLevel(5)).toBe(true);
    bus.changeIrqLevel(d, 1, -1);
    expect(host.levels.at(-1)).toEqual([5, false]);
    expect(bus.irqLevel(5)).toBe(false);
  });

  it('a root IRQ stays up while any device asserts it', () => {
    const host = new FakeHost();
    host.map = () => 2;
    const bus = root(host);
    const a = new TestEndpoint();
    const b = new TestEndpoint();
    bus.plug(a);
    bus.plug(b);
    bus.changeIrqLevel(a, 0, 1);
    bus.changeIrqLevel(b, 0, 1);
    bus.changeIrqLevel(a, 0, -1);
    expect(bus.irqLevel(2)).toBe(true);
    bus.changeIrqLevel(b, 0, -1);
    expect(host.levels).toEqual([
      [2, true],
      [2, true],
      [2, true],
      [2, false],
    ]);
    expect(bus.irqLevel(2)).toBe(false);
  });

  it('swizzles (pin + slot) % 4 at each bridge and asks the host with the top bridge devfn', () => {
    const host = new FakeHost();
    const bus = root(host);
    const a = new Bridge();
    bus.plug(a, { devfn: 0x10 }); // slot 2
    const a1 = new Bridge();
    a.secondaryBus.plug(a1, { devfn: 0x18 }); // slot 3
    const d = new TestEndpoint();
    a1.secondaryBus.plug(d, { devfn: 0x0d }); // slot 1, function 5
    for (let pin = 0; pin < 4; pin++) a1.secondaryBus.changeIrqLevel(d, pin, 1);
    // Below a1: (pin + 1) % 4; below a: (+ 3) % 4 -> (pin + 4) % 4 = pin.
    expect(host.mapped).toEqual([
      [0x10, 0],
      [0x10, 1],
      [0x10, 2],
      [0x10, 3],
    ]);
    host.mapped.length = 0;
    a.secondaryBus.changeIrqLevel(a1, 0, 1); // slot 3: pin 0 -> 3
    expect(host.mapped).toEqual([[0x10, 3]]);
    expect(a.secondaryBus.irqLevel(0)).toBe(false); // levels are counted at the root only
  });

  it('root IRQs outside [0, rootIrqCount) are ignored', () => {
    const host = new FakeHost(4);
    const bus = root(host);
    const d = new TestEndpoint();
    bus.plug(d);
    for (const irq of [-1, 4, 100]) {
      host.map = () => irq;
      bus.changeIrqLevel(d, 0, 1);
    }
    expect(host.levels).toEqual([]);
    host.map = () => 3;
    bus.changeIrqLevel(d, 0, 1);
    expect(host.levels).toEqual([[3, true]]);
    expect(bus.irqLevel(3)).toBe(true);
    expect(bus.irqLevel(4)).toBe(false);
    expect(bus.irqLevel(-1)).toBe(false);
  });
});

describe('reset', () => {
  it('resets every device on the bus, and through bridges the ones below', () => {
    const bus = root();
    const a = new TestEndpoint();
    const b = new TestEndpoint();
    const br = new Bridge();
    bus.plug(a, { devfn: 0x00 });
    bus.plug(b, { devfn: 0xff });
    bus.plug(br, { devfn: 0x08 });
    const below = new TestEndpoint();
    br.secondaryBus.plug(below);
    a.configWrite(PciReg.InterruptLine, 1, 9);
    bus.reset();
    expect([a.resets, b.resets, below.resets]).toEqual([1, 1, 1]);
    expect(a.config.getByte(PciReg.InterruptLine)).toBe(0);
  });
});
