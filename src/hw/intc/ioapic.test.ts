import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../core/clock.js';
import type { InterruptOrigin } from '../../core/irq.js';
import { AddressSpace } from '../../memory/address-space.js';
import { ContainerRegion } from '../../memory/region.js';
import { IOAPIC_BASE, IOAPIC_EOI_STORM_COUNT, Ioapic, IoapicMmio, IoapicReg, Rte } from './ioapic.js';
import { MsiSink } from './msi-sink.js';
import { u32Stream } from '../../../test/support/prng.js';

interface Sent {
  address: number;
  data: number;
  origin: InterruptOrigin;
}

function setup(version?: 0x11 | 0x20, clock?: VirtualClock) {
  const sent: Sent[] = [];
  const ioapic = new Ioapic({
    deliver: (address, data, origin) => sent.push({ address, data, origin }),
    ...(version ? { version } : {}),
    ...(clock ? { clock } : {}),
  });
  const root = new ContainerRegion('system', 2 ** 32);
  root.add(ioapic.region, IOAPIC_BASE);
  const as = new AddressSpace('memory', root);
  const sel = (reg: number) => as.write(IOAPIC_BASE + IoapicMmio.RegSel, 4, reg);
  const rd = (reg: number) => {
    sel(reg);
    return as.read(IOAPIC_BASE + IoapicMmio.Window, 4);
  };
  const wr = (reg: number, v: number) => {
    sel(reg);
    as.write(IOAPIC_BASE + IoapicMmio.Window, 4, v >>> 0);
  };
  const setRte = (pin: number, lo: number, hi = 0) => {
    wr(IoapicReg.RedirectionBase + 2 * pin + 1, hi);
    wr(IoapicReg.RedirectionBase + 2 * pin, lo);
  };
  const rte = (pin: number) => [rd(IoapicReg.RedirectionBase + 2 * pin), rd(IoapicReg.RedirectionBase + 2 * pin + 1)];
  return { ioapic, as, sent, rd, wr, sel, setRte, rte };
}

describe('IOAPIC registers', () => {
  it('has QEMU reset values', () => {
    const { rd, rte } = setup();
    expect(rd(IoapicReg.Id)).toBe(0);
    expect(rd(IoapicReg.Version)).toBe(0x0017_0020);
    expect(rd(IoapicReg.Arbitration)).toBe(0);
    for (let pin = 0; pin < 24; pin++) expect(rte(pin)).toEqual([Rte.Masked, 0]);
  });

  it('supports version 0x11 and rejects others', () => {
    expect(setup(0x11).rd(IoapicReg.Version)).toBe(0x0017_0011);
    expect(() => new Ioapic({ deliver: () => {}, version: 0x12 as 0x11 })).toThrow(/version 0x11 or 0x20/);
  });

  it('ID: bits 27:24 writable, mirrored in ARB; VER and ARB read-only', () => {
    const { rd, wr } = setup();
    wr(IoapicReg.Id, 0xffff_ffff);
    expect(rd(IoapicReg.Id)).toBe(0x0f00_0000);
    expect(rd(IoapicReg.Arbitration)).toBe(0x0f00_0000);
    wr(IoapicReg.Version, 0);
    wr(IoapicReg.Arbitration, 0);
    expect(rd(IoapicReg.Version)).toBe(0x0017_0020);
    expect(rd(IoapicReg.Arbitration)).toBe(0x0f00_0000);
  });

  it('IOREGSEL is 8 bits and readable at any width; IOWIN is 4-byte only', () => {
    const { as, rd, sel } = setup();
    sel(0x1234);
    expect(as.read(IOAPIC_BASE, 4)).toBe(0x34);
    as.write(IOAPIC_BASE, 1, 0x01);
    expect(as.read(IOAPIC_BASE, 1)).toBe(0x01);
    expect(as.read(IOAPIC_BASE + IoapicMmio.Window, 2)).toBe(0);
    as.write(IOAPIC_BASE + IoapicMmio.Window, 2, 0xffff); // ignored
    expect(rd(IoapicReg.Version)).toBe(0x0017_0020);
  });

  it('decodes only address bits 7:0 of the 4 KiB window', () => {
    const { as } = setup();
    as.write(IOAPIC_BASE + 0x100, 4, IoapicReg.Version);
    expect(as.read(IOAPIC_BASE + 0x210, 4)).toBe(0x0017_0020);
    expect(as.read(IOAPIC_BASE + 0x20, 4)).toBe(0);
  });

  it('redirection entries: all bits writable except remote IRR and delivery status', () => {
    const { setRte, rte } = setup();
    setRte(5, 0xffff_ffff, 0xffff_ffff);
    expect(rte(5)).toEqual([(0xffff_ffff & ~Rte.ReadOnly) >>> 0, 0xffff_ffff]);
    // Unselected indirect registers read 0.
    const { rd } = setup();
    expect(rd(0x03)).toBe(0);
    expect(rd(0x40)).toBe(0);
  });

  it('reset masks every entry again', () => {
    const { ioapic, setRte, rte, rd, wr } = setup();
    setRte(3, 0x30, 0x0100_0000);
    wr(IoapicReg.Id, 0x0500_0000);
    ioapic.reset();
    expect(rte(3)).toEqual([Rte.Masked, 0]);
    expect(rd(IoapicReg.Id)).toBe(0);
  });
});

describe('IOAPIC delivery', () => {
  it('edge: delivers on each assertion, QEMU message layout', () => {
    const { ioapic, setRte, sent } = setup();
    // vector 0x31, lowest priority, logical, dest 0x0f
    setRte(4, 0x31 | (1 << 8) | Rte.DestModeLogical, 0x0f00_0000);
    ioapic.pins[4]!.set(true);
    ioapic.pins[4]!.set(false);
    ioapic.pins[4]!.set(true);
    expect(sent).toEqual([
      { address: 0xfee0_f004, data: 0x131, origin: { kind: 'ioapic', source: 4 } },
      { address: 0xfee0_f004, data: 0x131, origin: { kind: 'ioapic', source: 4 } },
    ]);
  });

  it('edge: repeated assertion without a low phase delivers again (no edge detection, as QEMU)', () => {
    const { ioapic, setRte, sent } = setup();
    setRte(9, 0x40);
    ioapic.pins[9]!.set(true);
    ioapic.pins[9]!.set(true);
    expect(sent.length).toBe(2);
  });

  it('edge: masked assertions are dropped, not latched', () => {
    const { ioapic, setRte, sent } = setup();
    setRte(6, 0x41 | Rte.Masked);
    ioapic.pins[6]!.set(true);
    setRte(6, 0x41);
    expect(sent).toEqual([]);
  });

  it('input 0 drives pin 2 (ISA IRQ0 override)', () => {
    const { ioapic, setRte, sent } = setup();
    setRte(2, 0x22);
    setRte(0, 0x20);
    ioapic.pins[0]!.set(true);
    expect(sent.map((s) => [s.data, s.origin.source])).toEqual([[0x22, 2]]);
  });

  it('level: sets remote IRR, coalesces until EOI, re-delivers if still asserted', () => {
    const { ioapic, as, setRte, rte, sent } = setup();
    setRte(16, 0x50 | Rte.TriggerLevel, 0x0100_0000);
    ioapic.pins[16]!.set(true);
    expect(sent).toEqual([{ address: 0xfee0_1000, data: 0x8050, origin: { kind: 'ioapic', source: 16 } }]);
    expect(rte(16)[0]! & Rte.RemoteIrr).toBe(Rte.RemoteIrr);
    ioapic.pins[16]!.set(true);
    expect(sent.length).toBe(1);
    // EOI register with another vector: nothing.
    as.write(IOAPIC_BASE + IoapicMmio.Eoi, 4, 0x51);
    expect(sent.length).toBe(1);
    // EOI for 0x50 with the line still high: remote IRR cleared, then set again by re-delivery.
    as.write(IOAPIC_BASE + IoapicMmio.Eoi, 4, 0x50);
    expect(sent.length).toBe(2);
    expect(rte(16)[0]! & Rte.RemoteIrr).toBe(Rte.RemoteIrr);
    // Lower the line, then EOI: no re-delivery, remote IRR clear.
    ioapic.pins[16]!.set(false);
    ioapic.eoi(0x50);
    expect(sent.length).toBe(2);
    expect(rte(16)[0]! & Rte.RemoteIrr).toBe(0);
    expect(ioapic.pending).toBe(0);
  });

  it('level: a masked asserted line is delivered when unmasked', () => {
    const { ioapic, setRte, sent } = setup();
    setRte(17, 0x60 | Rte.TriggerLevel | Rte.Masked);
    ioapic.pins[17]!.set(true);
    expect(sent).toEqual([]);
    expect(ioapic.pending).toBe(1 << 17);
    setRte(17, 0x60 | Rte.TriggerLevel);
    expect(sent.map((s) => s.data)).toEqual([0x8060]);
  });

  it('level: switching to edge clears remote IRR (Linux EOI hack)', () => {
    const { ioapic, setRte, rte, sent } = setup();
    setRte(18, 0x70 | Rte.TriggerLevel);
    ioapic.pins[18]!.set(true);
    expect(rte(18)[0]! & Rte.RemoteIrr).toBe(Rte.RemoteIrr);
    setRte(18, 0x70 | Rte.Masked);
    expect(rte(18)[0]! & Rte.RemoteIrr).toBe(0);
    expect(sent.length).toBe(1);
  });

  it('the EOI register does nothing on version 0x11', () => {
    const { ioapic, as, setRte, rte } = setup(0x11);
    setRte(19, 0x71 | Rte.TriggerLevel);
    ioapic.pins[19]!.set(true);
    as.write(IOAPIC_BASE + IoapicMmio.Eoi, 4, 0x71);
    expect(rte(19)[0]! & Rte.RemoteIrr).toBe(Rte.RemoteIrr);
  });

  it('passes remappable-format entries through (format bit 48 -> address bit 4, index[15] -> bit 2)', () => {
    const { ioapic, setRte, sent } = setup();
    // Remappable: index 0x1234 (bits 63:49 = index[14:0]), format bit 48, index[15] in bit 11.
    const index = 0x9234;
    const hi = (((index & 0x7fff) << 1) | 1) << 16;
    setRte(10, Rte.TriggerLevel | Rte.DestModeLogical | 0x00, hi >>> 0);
    ioapic.pins[10]!.set(true);
    const s = sent[0]!;
    expect(s.address & 0x10).toBe(0x10);
    expect(s.address & 0x4).toBe(0x4);
    // Interrupt remapping's decode of the handle: address bits 19:5 = index[14:0], bit 2 = index[15].
    const decoded = ((s.address >>> 5) & 0x7fff) | (((s.address >>> 2) & 1) << 15);
    expect(decoded).toBe(index);
    expect(s.data).toBe(0x8000);
  });

  it('delivery into an MSI sink decodes destination and mode', () => {
    const sink = new MsiSink();
    const ioapic = new Ioapic({ deliver: (a, d, o) => sink.deliverMsi(a, d, o) });
    const root = new ContainerRegion('system', 2 ** 32);
    root.add(ioapic.region, IOAPIC_BASE);
    const as = new AddressSpace('memory', root);
    as.write(IOAPIC_BASE, 4, IoapicReg.RedirectionBase + 2 * 11 + 1);
    as.write(IOAPIC_BASE + IoapicMmio.Window, 4, 0x0300_0000);
    as.write(IOAPIC_BASE, 4, IoapicReg.RedirectionBase + 2 * 11);
    as.write(IOAPIC_BASE + IoapicMmio.Window, 4, 0x44 | (4 << 8) | Rte.TriggerLevel);
    ioapic.pins[11]!.set(true);
    expect(sink.delivered.map((d) => [d.vector, d.destination, d.deliveryMode, d.trigger, d.origin.source])).toEqual([
      [0x44, 3, 4, 'level', 11],
    ]);
  });

  it('intercept reports level changes and still delivers', () => {
    const { ioapic, setRte, sent } = setup();
    const seen: string[] = [];
    ioapic.setIntercept((n, level) => seen.push(`IRQ ${level ? 'raise' : 'lower'} ${n}`));
    setRte(2, 0x22);
    ioapic.pins[0]!.set(false);
    ioapic.pins[0]!.set(true);
    ioapic.pins[0]!.set(true);
    ioapic.pins[0]!.set(false);
    ioapic.pins[23]!.set(true);
    expect(seen).toEqual(['IRQ raise 0', 'IRQ lower 0', 'IRQ raise 23']);
    expect(sent.length).toBe(2);
    ioapic.setIntercept(null);
    ioapic.pins[23]!.set(false);
    expect(seen.length).toBe(3);
  });

  it('delays re-delivery after an EOI storm when a clock is given', () => {
    const clock = new VirtualClock('qtest');
    const { ioapic, setRte, sent } = setup(0x20, clock);
    setRte(20, 0x90 | Rte.TriggerLevel);
    ioapic.pins[20]!.set(true);
    for (let i = 0; i < IOAPIC_EOI_STORM_COUNT; i++) ioapic.eoi(0x90);
    expect(sent.length).toBe(IOAPIC_EOI_STORM_COUNT);
    clock.step(10_000_000);
    expect(sent.length).toBe(IOAPIC_EOI_STORM_COUNT + 1);
  });
});

describe('IOAPIC robustness', () => {
  it('random guest accesses never throw and keep invariants (seed 0x12345678)', () => {
    const { ioapic, as, rte } = setup();
    const rnd = u32Stream(0x1234_5678);
    const sizes = [1, 2, 4] as const;
    for (let i = 0; i < 20000; i++) {
      const off = rnd() % 0x1000;
      const size = sizes[rnd() % 3]!;
      const at = IOAPIC_BASE + off - (off % size);
      if (rnd() & 1) as.write(at, size, rnd());
      else as.read(at, size);
      if ((rnd() & 7) === 0) ioapic.pins[rnd() % 24]!.set((rnd() & 1) === 1);
    }
    for (let pin = 0; pin < 24; pin++) {
      const [lo] = rte(pin);
      // Delivery status is never set; edge entries never hold remote IRR.
      expect(lo! & Rte.DeliveryStatus).toBe(0);
      if (!(lo! & Rte.TriggerLevel)) expect(lo! & Rte.RemoteIrr).toBe(0);
    }
  });

  it('traces like QEMU when the tracer asks', () => {
    const events: string[] = [];
    const ioapic = new Ioapic({
      deliver: () => {},
      tracer: { enabled: (e) => e.startsWith('ioapic_') && e !== 'ioapic_mem_read', trace: (e) => events.push(e) },
    });
    ioapic.region.ops.write(IoapicMmio.RegSel, 4, 0x10);
    ioapic.region.ops.write(IoapicMmio.Window, 4, 0x30 | Rte.TriggerLevel);
    ioapic.pins[0x0]!.set(false);
    ioapic.pins[5]!.set(true);
    ioapic.region.ops.read(IoapicMmio.Window, 4);
    ioapic.pins[0]!.set(true);
    ioapic.eoi(0x30);
    expect(events).toEqual([
      'ioapic_mem_write',
      'ioapic_mem_write',
      'ioapic_set_irq',
      'ioapic_set_irq',
      'ioapic_set_irq',
      'ioapic_eoi_broadcast',
    ]);
  });
});
