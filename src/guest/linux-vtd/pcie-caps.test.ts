/**
 * pcie-caps.ts against a FakePlatform: the MCH's PCIEXBAR through CF8/CFC,
 * one PCIe function's 4 KiB config space through ECAM (ATS at 0x100, PASID
 * at 0x110, PRI at 0x120, written through per-byte write masks and PRI's
 * Stopped rule), and the accesses Linux's PCI core makes.
 */
import { describe, expect, it } from 'vitest';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { fakeFn, installFakePci } from '../../../test/support/guest-fakes/fake-pci.js';
import {
  AtsBits, EcamAccess, ExtCapId, PasidBits, PcieSvaFunction, PriBits, PriRegs, SEABIOS_ECAM_BASE, ensureEcam, extCapabilities,
} from './pcie-caps.js';

const BDF = { bus: 0, dev: 2, fn: 0 };
const ECAM_OFFSET = (BDF.dev << 3) << 12;
const ATS = 0x100;
const PASID = 0x110;
const PRI = 0x120;

/** One function's extended config space: values, write masks, PRI's Stopped following Enable. */
class FakeFunction {
  readonly cfg = new Uint8Array(0x1000);
  readonly wmask = new Uint8Array(0x1000);
  readonly writes: string[] = [];
  private readonly v = new DataView(this.cfg.buffer);

  constructor(opts: { qdep?: number; pageAligned?: boolean; width?: number; exec?: boolean; priv?: boolean; capacity?: number; noPri?: boolean } = {}) {
    this.v.setUint32(ATS, ExtCapId.Ats | (1 << 16) | (PASID << 20), true);
    this.v.setUint16(ATS + 4, (opts.qdep ?? 0) | (opts.pageAligned === false ? 0 : AtsBits.PAGE_ALIGNED), true);
    this.mask(ATS + 6, 0x800f);
    this.v.setUint32(PASID, ExtCapId.Pasid | (1 << 16) | ((opts.noPri ? 0 : PRI) << 20), true);
    this.v.setUint16(PASID + 4, ((opts.width ?? 20) << 8) | (opts.exec ? PasidBits.EXEC : 0) | (opts.priv ? PasidBits.PRIV : 0), true);
    this.mask(PASID + 6, 0x7);
    if (!opts.noPri) {
      this.v.setUint32(PRI, ExtCapId.Pri | (1 << 16), true);
      this.v.setUint16(PRI + PriRegs.Status, PriBits.STOPPED, true);
      this.v.setUint32(PRI + PriRegs.Capacity, opts.capacity ?? 32, true);
      this.mask(PRI + PriRegs.Ctrl, PriBits.ENABLE);
      this.v.setUint32(PRI + PriRegs.Allocation + 0, 0, true);
      this.wmask.fill(0xff, PRI + PriRegs.Allocation, PRI + PriRegs.Allocation + 4);
    }
  }

  private mask(off: number, m: number): void {
    this.wmask[off] = m & 0xff;
    this.wmask[off + 1] = m >> 8;
  }

  word(off: number): number {
    return this.v.getUint16(off, true);
  }

  dword(off: number): number {
    return this.v.getUint32(off, true);
  }

  setWord(off: number, value: number): void {
    this.v.setUint16(off, value, true);
  }

  read(off: number, size: number): bigint {
    let x = 0n;
    for (let i = size - 1; i >= 0; i--) x = (x << 8n) | BigInt(this.cfg[off + i]!);
    return x;
  }

  write(off: number, size: number, value: bigint): void {
    this.writes.push(`+0x${off.toString(16)} w${size * 8} 0x${value.toString(16)}`);
    for (let i = 0; i < size; i++) {
      const b = Number((value >> BigInt(8 * i)) & 0xffn);
      const m = this.wmask[off + i]!;
      this.cfg[off + i] = (this.cfg[off + i]! & ~m) | (b & m);
    }
    const ctl = this.word(PRI + PriRegs.Ctrl);
    const sta = this.word(PRI + PriRegs.Status);
    this.setWord(PRI + PriRegs.Status, ctl & PriBits.ENABLE ? sta & ~PriBits.STOPPED : sta | PriBits.STOPPED);
  }
}

/** A platform with the MCH at 00:00.0 and `f` reachable through ECAM at 0xB0000000. */
function platform(f: FakeFunction): { p: FakePlatform; mch: ReturnType<typeof fakeFn> } {
  const p = new FakePlatform();
  const mch = fakeFn(0, 0, { vendor: 0x8086, device: 0x29c0 });
  installFakePci(p, [mch]);
  p.mapMmio(SEABIOS_ECAM_BASE + ECAM_OFFSET, 0x1000, { read: (o, s) => f.read(o, s), write: (o, s, v) => f.write(o, s, v) });
  return { p, mch };
}

async function probe(f = new FakeFunction()): Promise<{ fn: PcieSvaFunction; f: FakeFunction; ecam: EcamAccess }> {
  const { p } = platform(f);
  const ecam = await ensureEcam(p);
  return { fn: await PcieSvaFunction.probe(ecam, BDF), f, ecam };
}

describe('ECAM', () => {
  it('programs PCIEXBAR as SeaBIOS does when it is off (upper dword, then base | enable)', async () => {
    const f = new FakeFunction();
    const { p, mch } = platform(f);
    const ecam = await ensureEcam(p);
    expect(ecam.base).toBe(SEABIOS_ECAM_BASE);
    expect(new DataView(mch.cfg.buffer).getUint32(0x60, true)).toBe(0xb000_0001);
    const cfgWrites = p.trace.filter((l) => l.startsWith('out4 0xcf')).slice(-4);
    expect(cfgWrites).toEqual(['out4 0xcf8 0x80000064', 'out4 0xcfc 0x0', 'out4 0xcf8 0x80000060', 'out4 0xcfc 0xb0000001']);
    expect(ecam.log).toEqual(['ECAM: PCIEXBAR (00:00.0 +0x60) = 0xb0000001: 256 buses at 0xb0000000']);
    expect(ecam.address(BDF, 0x104)).toBe(0xb001_0104);
  });

  it('keeps a PCIEXBAR the firmware enabled, base per its length field', async () => {
    const { p, mch } = platform(new FakeFunction());
    const dv = new DataView(mch.cfg.buffer);
    dv.setUint32(0x60, 0xe800_0000 | 0x2 | 1, true); // 128 MiB at 0xE8000000
    dv.setUint32(0x64, 0x1, true);
    const ecam = await ensureEcam(p);
    expect(ecam.base).toBe(0x1_e800_0000);
    expect(dv.getUint32(0x60, true)).toBe(0xe800_0003);
    expect(ecam.log).toEqual(['ECAM: PCIEXBAR already enabled at 0x1e8000000']);
  });
});

describe('extended capability walk', () => {
  it('finds ATS, PASID and PRI through the next pointers', async () => {
    const { f, ecam } = await probe();
    expect([...(await extCapabilities(ecam, BDF))]).toEqual([[ExtCapId.Ats, ATS], [ExtCapId.Pasid, PASID], [ExtCapId.Pri, PRI]]);
    expect(f.writes).toEqual([]);
  });

  it('stops at a zero header, a pointer below 0x100 and a loop', async () => {
    const f = new FakeFunction();
    const { p } = platform(f);
    const ecam = new EcamAccess(p, SEABIOS_ECAM_BASE);
    new DataView(f.cfg.buffer).setUint32(PRI, ExtCapId.Pri | (ATS << 20), true); // PRI -> ATS: a loop
    expect([...(await extCapabilities(ecam, BDF)).keys()]).toEqual([ExtCapId.Ats, ExtCapId.Pasid, ExtCapId.Pri]);
    new DataView(f.cfg.buffer).setUint32(PASID, ExtCapId.Pasid | (0x40 << 20), true);
    expect([...(await extCapabilities(ecam, BDF)).keys()]).toEqual([ExtCapId.Ats, ExtCapId.Pasid]);
    new DataView(f.cfg.buffer).setUint32(ATS, 0, true);
    expect((await extCapabilities(ecam, BDF)).size).toBe(0);
    new DataView(f.cfg.buffer).setUint32(ATS, 0xffff_ffff, true);
    expect((await extCapabilities(ecam, BDF)).size).toBe(0);
  });

  it('reads what each capability offers', async () => {
    const { fn } = await probe(new FakeFunction({ qdep: 8, width: 16, exec: true, capacity: 512 }));
    expect(fn.caps).toEqual({
      ats: { offset: ATS, qdep: 8, pageAligned: true },
      pasid: { offset: PASID, width: 16, exec: true, priv: false },
      pri: { offset: PRI, capacity: 512, pasidRequired: false },
    });
    expect(fn.maxPasids).toBe(65536);
    expect(fn.log.at(-1)).toBe('00:02.0: extended capabilities ATS@0x100 (QDEP 8, page aligned) PASID@0x110 (width 16, exec) PRI@0x120 (capacity 512)');
  });

  it('a QDEP field of 0 means 32 (Linux pci_ats_queue_depth)', async () => {
    expect((await probe()).fn.caps.ats?.qdep).toBe(32);
  });
});

describe('enabling as Linux\'s PCI core does', () => {
  it('PASID, PRI (reset, allocation, enable), ATS: the accesses in order', async () => {
    const { fn, f } = await probe(new FakeFunction({ exec: true, priv: true }));
    expect(await fn.enableAll(2048)).toBe(true);
    expect(f.writes).toEqual(['+0x116 w16 0x7', '+0x124 w16 0x2', '+0x12c w32 0x20', '+0x124 w16 0x1', '+0x106 w16 0x8000']);
    expect([fn.pasidEnabled, fn.priEnabled, fn.atsEnabled, fn.priAllocation, fn.pasidFeatures]).toEqual([true, true, true, 32, 6]);
    expect(f.word(ATS + 6)).toBe(AtsBits.ENABLE);
    expect(fn.log.filter((l) => l.startsWith('  cfg'))).toEqual(f.writes.map((w) => `  cfg 00:02.0 ${w}`));
  });

  it('Exec / Priv only when supported; the allocation is the smaller of capacity and request', async () => {
    const { fn, f } = await probe(new FakeFunction({ capacity: 4096 }));
    await fn.enablePasid();
    await fn.enablePri(2048);
    expect(f.writes).toEqual(['+0x116 w16 0x1', '+0x124 w16 0x2', '+0x12c w32 0x800', '+0x124 w16 0x1']);
  });

  it('PRI is not enabled when the function is not Stopped (pci_enable_pri -EBUSY)', async () => {
    const { fn, f } = await probe();
    // A request still outstanding: Stopped stays clear whatever is written.
    f.setWord(PRI + PriRegs.Status, 0);
    const write = f.write.bind(f);
    f.write = (o, s, v) => { write(o, s, v); f.setWord(PRI + PriRegs.Status, 0); };
    expect(await fn.enablePri(32)).toBe(false);
    expect(f.writes).toEqual(['+0x124 w16 0x2']);
    expect(fn.priEnabled).toBe(false);
  });

  it('ATS needs Page Aligned Request (pci_ats_page_aligned) and a page shift of at least 12', async () => {
    const { fn, f } = await probe(new FakeFunction({ pageAligned: false }));
    expect(await fn.enableAts()).toBe(false);
    const ok = await probe();
    expect(await ok.fn.enableAts(11)).toBe(false);
    expect(await ok.fn.enableAts(14)).toBe(true);
    expect(ok.f.writes).toEqual(['+0x106 w16 0x8002']);
    expect(f.writes).toEqual([]);
  });

  it('nothing is enabled twice, nor without the capability', async () => {
    const { fn, f } = await probe(new FakeFunction({ noPri: true }));
    expect(await fn.enablePri(32)).toBe(false);
    expect(await fn.enableAll(32)).toBe(false);
    expect(await fn.enablePasid()).toBe(false);
    expect(await fn.enableAts()).toBe(false);
    expect(f.writes).toEqual(['+0x116 w16 0x1', '+0x106 w16 0x8000']);
  });

  it('disable: ATS (read-modify-write, STU kept), PRI (read-modify-write), PASID (0)', async () => {
    const { fn, f } = await probe(new FakeFunction({ exec: true }));
    await fn.enablePasid();
    await fn.enablePri(32);
    await fn.enableAts(13);
    f.writes.length = 0;
    await fn.disableAll();
    expect(f.writes).toEqual(['+0x106 w16 0x1', '+0x124 w16 0x0', '+0x116 w16 0x0']);
    expect([fn.atsEnabled, fn.priEnabled, fn.pasidEnabled]).toEqual([false, false, false]);
    await fn.disableAll();
    expect(f.writes).toHaveLength(3);
  });
});
