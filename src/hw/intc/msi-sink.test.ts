import { describe, expect, it } from 'vitest';
import { AddressSpace } from '../../memory/address-space.js';
import { ContainerRegion } from '../../memory/region.js';
import { decodeMsi, MsiAddr, MsiSink, type MsiDelivery } from './msi-sink.js';

describe('decodeMsi', () => {
  it('decodes a physical, fixed, edge message', () => {
    const m = decodeMsi(0xfee0_3000, 0x0041, { kind: 'msi', source: 8 });
    expect(m).toMatchObject({
      vector: 0x41,
      destination: 3,
      destMode: 'physical',
      deliveryMode: 0,
      trigger: 'edge',
      level: false,
      redirectionHint: false,
      remappable: false,
      address: 0xfee0_3000,
      data: 0x41,
      origin: { kind: 'msi', source: 8 },
    });
  });

  it('decodes logical mode, redirection hint, lowest priority, level trigger', () => {
    const m = decodeMsi(0xfeef_000c, (1 << 15) | (1 << 14) | (1 << 8) | 0xef, { kind: 'ioapic', source: 2 });
    expect(m.destination).toBe(0xf0);
    expect(m.destMode).toBe('logical');
    expect(m.redirectionHint).toBe(true);
    expect(m.deliveryMode).toBe(1);
    expect(m.trigger).toBe('level');
    expect(m.level).toBe(true);
    expect(m.vector).toBe(0xef);
  });

  it('decodes extended destination bits and the upper address half', () => {
    // ext dest 0x7f in bits 11:5 -> destination bits 14:8
    expect(decodeMsi((0xfee0_0fe0 | (0x12 << 12)) >>> 0, 0, { kind: 'msi' }).destination).toBe(0x7f12);
    // x2APIC destination bits 31:8 in the upper address half
    const addr = 0x1234_5600 * 2 ** 32 + 0xfeea_b000;
    expect(decodeMsi(addr, 0, { kind: 'msi' }).destination).toBe(0x1234_56ab);
  });

  it('flags remappable-format messages', () => {
    expect(decodeMsi(0xfee0_0010, 0, { kind: 'msi' }).remappable).toBe(true);
  });

  it('decodes all delivery modes', () => {
    for (let mode = 0; mode < 8; mode++) {
      expect(decodeMsi(MsiAddr.Base, mode << 8, { kind: 'msi' }).deliveryMode).toBe(mode);
    }
  });
});

describe('MsiSink', () => {
  it('records and emits deliveries', () => {
    const sink = new MsiSink();
    const seen: MsiDelivery[] = [];
    sink.events.on('interrupt', (irq) => seen.push(irq));
    sink.deliverMsi(0xfee0_0000, 0x30, { kind: 'iommu' });
    sink.deliverMsi(0xfee0_1000, 0x31, { kind: 'msi', source: 0x10 });
    expect(sink.delivered.map((d) => d.vector)).toEqual([0x30, 0x31]);
    expect(seen).toEqual(sink.delivered);
    sink.clear();
    expect(sink.delivered).toEqual([]);
  });

  it('keeps at most `limit` deliveries', () => {
    const sink = new MsiSink({ limit: 2 });
    for (let v = 0; v < 5; v++) sink.deliverMsi(MsiAddr.Base, v, { kind: 'msi' });
    expect(sink.delivered.map((d) => d.vector)).toEqual([3, 4]);
  });

  describe('MMIO window', () => {
    const make = () => {
      const root = new ContainerRegion('system', 2 ** 32);
      const sink = new MsiSink();
      root.add(sink.region, MsiAddr.Base);
      return { sink, as: new AddressSpace('memory', root) };
    };

    it('delivers 4-byte writes at message offsets', () => {
      const { sink, as } = make();
      as.write(0xfee0_0000, 4, 0x4041);
      as.write(0xfee0_1004, 4, 0x22);
      as.write(0xfee0_200c, 4, 0x23);
      expect(sink.delivered.map((d) => [d.vector, d.destination, d.destMode, d.redirectionHint])).toEqual([
        [0x41, 0, 'physical', false],
        [0x22, 1, 'logical', false],
        [0x23, 2, 'logical', true],
      ]);
      expect(sink.delivered[0]!.address).toBe(0xfee0_0000);
      expect(sink.delivered[0]!.data).toBe(0x4041);
      expect(sink.delivered[0]!.origin.kind).toBe('msi');
    });

    it('delivers a 4-byte DMA-style byte write', () => {
      const { sink, as } = make();
      as.writeBytes(0xfee0_0000, new Uint8Array([0x55, 0, 0, 0]));
      expect(sink.delivered.map((d) => d.vector)).toEqual([0x55]);
    });

    it('ignores narrower writes and local APIC register offsets', () => {
      const { sink, as } = make();
      as.write(0xfee0_0000, 1, 0x41);
      as.write(0xfee0_0000, 2, 0x41);
      as.write(0xfee0_00b0, 4, 0); // LAPIC EOI register
      expect(sink.delivered).toEqual([]);
      expect(sink.droppedLapicWrites).toBe(1);
    });

    it('reads 0 without side effects', () => {
      const { sink, as } = make();
      expect(as.read(0xfee0_0030, 4)).toBe(0);
      expect(as.read(0xfee0_0000, 1)).toBe(0);
      expect(sink.delivered).toEqual([]);
    });
  });
});
