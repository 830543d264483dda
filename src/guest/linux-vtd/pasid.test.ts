import { describe, expect, it } from 'vitest';
import { GuestAllocator } from '../alloc.js';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { Domain, type DeviceHandle } from './domain.js';
import { PasidEntry, Pgtt, SmCtx, setPasidEntry, setupSmContext, smContextAddress, smContextSvaBits, tearDownPasidEntry } from './pasid.js';
import { Reg } from './regs.js';
import { VtdUnit, type InvalidationSite } from './unit.js';

const BASE = 0xfed90000;
/** CAP / ECAP of QEMU 11.1 with scalable-mode=on (second stage) and with fsts=on (first stage). */
const SS = { cap: 0x80d2008c222f0606n, ecap: 0x0000480080f00f4an };
const FS = { cap: 0x81d2008c222f0606n, ecap: 0x0000880000f00f4an };
const SKIP_TEARDOWN: ReadonlySet<InvalidationSite> = new Set(['detach-pasid-cache', 'detach-iotlb']);

/** A probed unit over a register window that only answers CAP/ECAP (no caching mode: no invalidation at attach). */
async function unit(caps: { cap: bigint; ecap: bigint }): Promise<[FakePlatform, VtdUnit]> {
  const p = new FakePlatform();
  p.mapMmio(BASE, 0x1000, {
    read: (off, size) => (off === Reg.CAP ? caps.cap : off === Reg.ECAP ? caps.ecap : off === Reg.VER ? 0x10n : 0n) & (size === 8 ? ~0n : 0xffff_ffffn),
    write: () => {},
  });
  const u = new VtdUnit(p, BASE, new GuestAllocator(p, 0x10_0000, 0x80_0000), { skip: SKIP_TEARDOWN });
  expect(await u.probe()).toBe(true);
  u.rootTable = await u.alloc.page();
  return [p, u];
}

function device(u: VtdUnit, name: string, sids: number[]): DeviceHandle {
  return { name, sids, unit: u, rmrrs: [], domain: undefined };
}

const qwords = async (p: FakePlatform, at: number, n: number): Promise<bigint[]> =>
  Promise.all(Array.from({ length: n }, (_, i) => p.read64(at + i * 8)));

describe('scalable-mode context entries', () => {
  it('use the lower root half for devfn < 0x80 and the upper for the rest, 32-byte entries at (devfn & 0x7F)', async () => {
    const [p, u] = await unit(SS);
    expect(u.scalable).toBe(true);
    const low = device(u, '00:03.0', [0x0018]);
    const high = device(u, '00:12.0', [0x0090]);
    const t1 = await setupSmContext(u, low);
    const t2 = await setupSmContext(u, high);
    const [rootLo, rootHi] = await qwords(p, u.rootTable, 2);
    expect(rootLo! & 0xfffn).toBe(SmCtx.P);
    expect(rootHi! & 0xfffn).toBe(SmCtx.P);
    const ctxLow = Number(rootLo! & ~0xfffn) + 0x18 * 32;
    const ctxHigh = Number(rootHi! & ~0xfffn) + 0x10 * 32;
    // PASID directory | PDTS 2 (512 entries) | P; FPD clear; RID_PASID 0; upper qwords zero
    expect(await qwords(p, ctxLow, 4)).toEqual([BigInt(t1.dir) | (2n << 9n) | 1n, 0n, 0n, 0n]);
    expect(await qwords(p, ctxHigh, 4)).toEqual([BigInt(t2.dir) | (2n << 9n) | 1n, 0n, 0n, 0n]);
  });

  it('leave an alias another device already set up pointing at that device\'s table (Linux: present entries are kept)', async () => {
    const [p, u] = await unit(SS);
    const a = device(u, '02:01.0', [0x0208, 0x0200]);
    const b = device(u, '02:02.0', [0x0210, 0x0200]);
    const ta = await setupSmContext(u, a);
    await setupSmContext(u, b);
    const root = Number((await p.read64(u.rootTable + 2 * 16)) & ~0xfffn);
    expect((await p.read64(root)) & ~0xfffn).toBe(BigInt(ta.dir));
    expect(b.pasidTable!.dir).not.toBe(ta.dir);
  });
});

describe('scalable-mode context entries: DTE, PASIDE and PRE at probe (Linux context_entry_set_pasid_table)', () => {
  it('set from what the driver decided for the device, on every requester ID it programs; no invalidation without caching mode', async () => {
    const [p, u] = await unit(SS);
    const dev: DeviceHandle = { ...device(u, '02:00.0', [0x200, 0x100]), svaSupport: { ats: true, pasid: true, pri: true } };
    u.log.length = 0;
    const t = await setupSmContext(u, dev);
    const base = BigInt(t.dir) | (2n << 9n) | SmCtx.P;
    for (const sid of [0x200, 0x100]) {
      expect(await qwords(p, smContextAddress(u, sid)!, 4)).toEqual([base | SmCtx.DTE | SmCtx.PASIDE | SmCtx.PRE, 0n, 0n, 0n]);
    }
    expect(u.log[0]).toBe(`  02:00.0 SID 0x200: scalable context -> PASID directory 0x${t.dir.toString(16)} (PDTS 2, RID_PASID 0, DTE PASIDE PRE)`);
    expect(u.log.filter((l) => l.includes('invalidation'))).toEqual([]);
  });

  it('each bit on its own; a device without support (edu) gets none and the same log line as before', async () => {
    expect(smContextSvaBits({ ats: true, pasid: false, pri: false })).toBe(SmCtx.DTE);
    expect(smContextSvaBits({ ats: false, pasid: true, pri: false })).toBe(SmCtx.PASIDE);
    expect(smContextSvaBits({ ats: false, pasid: false, pri: true })).toBe(SmCtx.PRE);
    expect(smContextSvaBits({ ats: false, pasid: false, pri: false })).toBe(0n);
    expect(smContextSvaBits(undefined)).toBe(0n);
    const [p, u] = await unit(SS);
    const edu = device(u, '00:01.0', [0x8]);
    u.log.length = 0;
    const t = await setupSmContext(u, edu);
    expect(await p.read64(smContextAddress(u, 0x8)!)).toBe(BigInt(t.dir) | (2n << 9n) | SmCtx.P);
    expect(u.log).toEqual([`  00:01.0 SID 0x8: scalable context -> PASID directory 0x${t.dir.toString(16)} (PDTS 2, RID_PASID 0)`]);
    expect(smContextAddress(u, 0x10)).toBeUndefined();
  });
});

describe('RID_PASID entries', () => {
  it('second stage: table | AW | PGTT 2 | P, DID in qword 1; DID 1 is never a domain\'s', async () => {
    const [p, u] = await unit(SS);
    const dev = device(u, '00:03.0', [0x18]);
    await setupSmContext(u, dev);
    const d = new Domain('dma', 'dma-0');
    await setPasidEntry(u, dev, d);
    expect(d.firstStage).toBe(false);
    expect(d.did(u)).toBe(2);
    const dirEntry = await p.read64(dev.pasidTable!.dir);
    expect(dirEntry & 0xfffn).toBe(1n);
    const entry = Number(dirEntry & ~0xfffn);
    const q = await qwords(p, entry, 8);
    expect(q[0]).toBe(BigInt(d.pageTable!.root) | (2n << PasidEntry.AW_SHIFT) | (BigInt(Pgtt.SECOND_STAGE) << PasidEntry.PGTT_SHIFT) | PasidEntry.P);
    expect(q.slice(1)).toEqual([2n, 0n, 0n, 0n, 0n, 0n, 0n]);
  });

  it('first stage (ECAP.FLTS): AW | PGTT 1 | P, first-stage table in qword 2, 4-level', async () => {
    const [p, u] = await unit(FS);
    expect(u.firstStage).toBe(true);
    const dev = device(u, '00:03.0', [0x18]);
    const d = new Domain('dma', 'dma-0');
    await setPasidEntry(u, dev, d);
    expect([d.firstStage, d.pageTable!.levels]).toEqual([true, 4]);
    const entry = await dev.pasidTable!.entry(0);
    expect(await qwords(p, entry, 4)).toEqual([(2n << 2n) | (1n << 6n) | 1n, 2n, BigInt(d.pageTable!.root), 0n]);
  });

  it('pass-through: AW | PGTT 4 | P with DID 1 and no table', async () => {
    const [p, u] = await unit(FS);
    const dev = device(u, '00:03.0', [0x18]);
    const d = new Domain('identity', 'identity');
    await setPasidEntry(u, dev, d);
    expect(d.pageTable).toBeUndefined();
    const entry = await dev.pasidTable!.entry(0);
    expect(await qwords(p, entry, 3)).toEqual([(2n << 2n) | (4n << 6n) | 1n, 1n, 0n]);
  });

  it('teardown clears the entry after a PASID-cache and the matching IOTLB invalidation', async () => {
    for (const [caps, iotlb] of [[SS, 'IOTLB'], [FS, 'PASID-based IOTLB']] as const) {
      const [p, u] = await unit(caps);
      const dev = device(u, '00:03.0', [0x18]);
      await setPasidEntry(u, dev, new Domain('dma', 'dma-0'));
      u.log.length = 0;
      await tearDownPasidEntry(u, dev);
      expect(u.log.slice(0, 2)).toEqual(['  (skipped detach-pasid-cache PASID-cache invalidation)', `  (skipped detach-iotlb ${iotlb} invalidation)`]);
      expect(await qwords(p, await dev.pasidTable!.entry(0), 8)).toEqual(new Array(8).fill(0n));
      // nothing left to tear down
      u.log.length = 0;
      await tearDownPasidEntry(u, dev);
      expect(u.log).toEqual([]);
    }
  });
});
