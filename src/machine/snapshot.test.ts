import { describe, expect, it } from 'vitest';
import { createMachine, type Machine, type MachineOptions } from './q35.js';
import { decodeState, encodeState, fileUriPath, machineFromState } from './snapshot-file.js';
import { pciFunctions, SNAPSHOT_VERSION, type MachineState } from './snapshot.js';
import { SnapshotError } from '../core/snapshot-state.js';

const CF8 = 0xcf8;
const CFC = 0xcfc;
const EDU_BAR = 0xe000_0000;
const VTD = 0xfed9_0000;
const OPTS: MachineOptions = {
  accel: 'qtest',
  memory: '256M',
  devices: ['intel-iommu,intremap=on', 'pcie-root-port,id=rp,chassis=1', 'edu,bus=rp', 'edu,addr=5.0', 'iommu-testdev'],
  machine: ['kernel-irqchip=split'],
};

function cfgWrite(m: Machine, bus: number, devfn: number, reg: number, size: 1 | 2 | 4, v: number): void {
  m.io.write(CF8, 4, (0x8000_0000 | (bus << 16) | (devfn << 8) | (reg & 0xfc)) >>> 0);
  m.io.write(CFC + (reg & 3), size, v);
}

function cfgRead(m: Machine, bus: number, devfn: number, reg: number): number {
  m.io.write(CF8, 4, (0x8000_0000 | (bus << 16) | (devfn << 8) | (reg & 0xfc)) >>> 0);
  return m.io.read(CFC, 4);
}

/** A machine with state in every section: RAM, timers, VT-d queue and faults, IOAPIC, fw_cfg, bridges, MCH. */
function busyMachine(): Machine {
  const m = createMachine(OPTS);
  // Root port at 00:01.0 (first free slot after... whatever plugged it): find it by type.
  const fns = pciFunctions(m);
  const [rpPath] = [...fns].find(([, d]) => d.typeName === 'pcie-root-port')!;
  const rpDevfn = parseInt(rpPath.slice(0, 2), 16) << 3;
  cfgWrite(m, 0, rpDevfn, 0x18, 4, 0x00_01_01_00); // primary 0, secondary 1, subordinate 1
  cfgWrite(m, 0, rpDevfn, 0x20, 4, 0xe010_e000); // memory window 0xe0000000-0xe01fffff
  cfgWrite(m, 0, rpDevfn, 0x04, 2, 0x6);
  cfgWrite(m, 1, 0, 0x10, 4, EDU_BAR);
  cfgWrite(m, 1, 0, 0x04, 2, 0x6);
  // edu behind the port: liveness, a long factorial and a pending DMA.
  m.memory.write(EDU_BAR + 0x04, 4, 0x1234);
  m.memory.write(EDU_BAR + 0x20, 4, 0x80);
  m.memory.write(EDU_BAR + 0x08, 4, 5_000_000);
  m.memory.write(EDU_BAR + 0x80, 4, 0x40000);
  m.memory.write(EDU_BAR + 0x88, 4, 0x10_0000);
  m.memory.write(EDU_BAR + 0x90, 4, 0x100);
  m.memory.write(EDU_BAR + 0x98, 4, 0x5);
  // RAM, sparse and not page-aligned at the edges.
  for (let i = 0; i < 300; i++) m.memory.write(0x40_0ff0 + i * 4, 4, 0xa5a5_0000 + i);
  m.memory.write(0x0f00_0000, 4, 0xdead_beef);
  // VT-d: queue at 0x200000 with a wait descriptor, root table, a fault (no root entry).
  m.memory.write(VTD + 0x90, 4, 0x20_0000);
  m.memory.write(VTD + 0x18, 4, 0x0400_0000); // QIE
  m.memory.write(0x20_0000, 4, 0x25); // wait, SW|IF? (status write)
  m.memory.write(0x20_0008, 4, 0x30_0000);
  m.memory.write(VTD + 0x88, 4, 0x10);
  m.memory.write(VTD + 0x20, 4, 0x50_0000);
  m.memory.write(VTD + 0x18, 4, 0x4400_0000); // SRTP (QIE kept)
  m.memory.write(VTD + 0x18, 4, 0xc400_0000); // TE
  m.memory.write(VTD + 0xa4, 4, 0x800); // IECTL unmask
  // IOAPIC: select, program an entry.
  m.memory.write(0xfec0_0000, 4, 0x12);
  m.memory.write(0xfec0_0010, 4, 0x0001_a030);
  m.memory.write(0xfec0_0000, 4, 0x03);
  // fw_cfg: select the signature and read two bytes.
  m.io.write(0x510, 2, 0);
  m.io.read(0x511, 1);
  m.io.read(0x511, 1);
  // MCH: SMRAM open, ESMRAMC, PCIEXBAR enabled.
  cfgWrite(m, 0, 0, 0x9d, 1, 0x4a);
  cfgWrite(m, 0, 0, 0x60, 4, 0xb000_0001);
  m.clock.step(1000);
  return m;
}

function roundTrip(state: MachineState): Machine {
  return machineFromState(decodeState(encodeState(state)));
}

describe('machine snapshots', () => {
  it('a restored machine saves byte-identically to the saved one', () => {
    const m = busyMachine();
    const s1 = encodeState(m.saveState());
    const r = roundTrip(decodeState(s1));
    expect(encodeState(r.saveState())).toBe(s1);
    m.dispose();
    r.dispose();
  });

  it('the restored machine goes on as the saved one: timers, DMA, faults, config, RAM', () => {
    const m = busyMachine();
    const r = roundTrip(m.saveState());
    const observe = (x: Machine): number[] => {
      x.clock.step(200_000_000);
      return [
        x.memory.read(EDU_BAR + 0x08, 4),
        x.memory.read(EDU_BAR + 0x20, 4),
        x.memory.read(EDU_BAR + 0x24, 4),
        x.memory.read(EDU_BAR + 0x98, 4),
        x.memory.read(0x10_0000, 4),
        x.memory.read(0x40_0ff0, 4),
        x.memory.read(0x0f00_0000, 4),
        x.memory.read(VTD + 0x1c, 4),
        x.memory.read(VTD + 0x34, 4),
        x.memory.read(VTD + 0x80, 4),
        x.memory.read(0x30_0000, 4),
        x.memory.read(0xfec0_0010, 4),
        x.io.read(0x511, 1),
        cfgRead(x, 0, 0, 0x9c),
        cfgRead(x, 1, 0, 0x10),
        x.memory.read(0xb000_0000 + (1 << 20) + 0, 4),
      ];
    };
    const a = observe(m);
    const b = observe(r);
    expect(b).toEqual(a);
    // The DMA and factorial completed after the cut on both.
    expect(a[1]! & 1).toBe(0);
    expect(a[3]! & 1).toBe(0);
    expect(encodeState(r.saveState())).toBe(encodeState(m.saveState()));
    m.dispose();
    r.dispose();
  });

  it('RAM is sparse: only non-zero pages are kept', () => {
    const m = createMachine({ accel: 'qtest', memory: '1G' });
    m.memory.write(0x1000, 4, 1);
    m.memory.write(0x2000, 4, 2);
    m.memory.write(0x3_0000_000 & 0x3fff_ffff, 4, 3);
    const s = m.saveState();
    expect(s.ram.runs.map((r) => r[0])).toEqual([0x1000, 0x3000_0000]);
    expect(Buffer.from(s.ram.runs[0]![1], 'base64').length).toBe(0x2000);
    m.dispose();
  });

  it('restoring into a used machine clears RAM the state does not hold', () => {
    const m = createMachine({ accel: 'qtest' });
    const clean = m.saveState();
    m.memory.write(0x5000, 4, 0x77);
    m.restoreState(clean);
    expect(m.memory.read(0x5000, 4)).toBe(0);
    m.dispose();
  });

  it('refuses another version, another configuration and foreign text with one clear error', () => {
    const m = createMachine({ accel: 'qtest' });
    const s = m.saveState();
    expect(() => decodeState(encodeState({ ...s, version: SNAPSHOT_VERSION + 1 }))).toThrow(
      new SnapshotError(`snapshot: format version ${SNAPSHOT_VERSION + 1} is not supported (this vtemu reads version ${SNAPSHOT_VERSION})`),
    );
    expect(() => decodeState('{"hello":1}')).toThrow(/not a vtemu machine state/);
    expect(() => decodeState('garbage')).toThrow(/not a vtemu machine state/);
    const other = createMachine({ accel: 'qtest', devices: ['edu'] });
    expect(() => other.restoreState(s)).toThrow(/another configuration/);
    const damaged = JSON.parse(encodeState(s)) as { sections: Record<string, Record<string, unknown>> };
    damaged.sections['ioapic']!['rteLo'] = 'AAAA';
    expect(() => m.restoreState(damaged as unknown as MachineState)).toThrow(/ioapic\.rteLo/);
    m.dispose();
    other.dispose();
  });

  it('takes file: URIs only, with QEMU wording otherwise', () => {
    expect(fileUriPath('file:/tmp/x')).toBe('/tmp/x');
    expect(() => fileUriPath('tcp:1.2.3.4:5')).toThrow('unknown migration protocol: tcp:1.2.3.4:5');
  });
});
