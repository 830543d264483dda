/**
 * prq.ts against a fake remapping unit on a FakePlatform: page request
 * decoding, the queue's enable / disable, the handler (groups, sticky
 * errors, malformed requests, stop markers, overflow recovery, a refused
 * response).  The drain is exercised through unbind in sva.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../alloc.js';
import type { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { SVA_SID, fakeSvaUnit, type FakeUnit } from '../../../test/support/guest-fakes/fake-sva-unit.js';
import { ProcessMm } from './process-mm.js';
import { PageRequestQueue, PrqReg, PrsBit, decodePageRequest } from './prq.js';

describe('page request descriptors', () => {
  it('page request descriptors decode as QEMU writes them', () => {
    expect(decodePageRequest(3, 0x1_0010_0101n, 0x5555_5555_c026n)).toMatchObject({
      index: 3, rid: 0x10, pasid: 1, addr: 0x5555_5555_c000, read: false, write: true, exec: false, priv: false, lpig: true, prgi: 4,
    });
    expect(decodePageRequest(0, 0n, 0xffff_8000_0000_1001n)).toMatchObject({ canonical: true, read: true });
    expect(decodePageRequest(0, 0n, 0xfff7_8000_0000_1001n)).toMatchObject({ canonical: false });
    expect(decodePageRequest(0, 0n, 0x0000_8000_0000_1001n)).toMatchObject({ canonical: false });
    expect(decodePageRequest(0, 0x30_0000_0000_0001n | (0x123n << 16n), 0x7ff9n)).toMatchObject({
      rid: 0x123, pasid: undefined, read: true, write: false, exec: true, priv: true, lpig: false, prgi: 0x1ff, addr: 0x7000,
    });
  });
});

describe('the page-request queue', () => {
  /** Writes page request `index` into the ring and moves PQT past it. */
  async function post(p: FakePlatform, fake: FakeUnit, prq: PageRequestQueue, index: number, q0: bigint, q1: bigint): Promise<void> {
    await p.write64(prq.base + index * 32, q0);
    await p.write64(prq.base + index * 32 + 8, q1);
    fake.regs.set(PrqReg.PQT, BigInt((index + 1) * 32));
    fake.regs.set(PrqReg.PRS, BigInt(PrsBit.PPR));
  }

  const req = (rid: number, pasid: number | undefined, addr: number, rw: 'r' | 'w', lpig: boolean, prgi: number, extra = 0n): readonly [bigint, bigint] => [
    1n | (pasid !== undefined ? (1n << 8n) | (BigInt(pasid) << 32n) : 0n) | (BigInt(rid) << 16n) | extra,
    BigInt(addr) | (rw === 'r' ? 1n : 2n) | (lpig ? 4n : 0n) | (BigInt(prgi) << 3n),
  ];

  async function queue() {
    const env = await fakeSvaUnit();
    const prq = new PageRequestQueue(env.unit);
    await prq.enable(0xf2, 0xfee0_0000);
    const mm = await ProcessMm.create(env.p, env.alloc, 'proc');
    mm.mmap(0x1000_0000, 4 * PAGE_SIZE, { read: true, write: true }, 'heap');
    env.fake.take();
    return { ...env, prq, mm, resolve: (rid: number, pasid: number) => (rid === SVA_SID && pasid === 1 ? mm : undefined) };
  }

  it('enable: event registers, then PQH = PQT = 0 and PQA = ring | PRQ_ORDER, the ring 64 KiB aligned', async () => {
    const { p, fake, prq } = await queue();
    expect(prq.base % 0x1_0000).toBe(0);
    expect(p.trace.filter((l) => l.includes('0xfed900')).slice(-7)).toEqual([
      'w4 0xfed900e4 0xf2', 'w4 0xfed900e8 0xfee00000', 'w4 0xfed900ec 0x0', 'w4 0xfed900e0 0x0',
      'w8 0xfed900c0 0x0', 'w8 0xfed900c8 0x0', `w8 0xfed900d0 0x${(prq.base + 4).toString(16)}`,
    ]);
    await prq.disable();
    expect(fake.regs.get(PrqReg.PQA)).toBe(0n);
  });

  it('a fault in the process: PPR cleared first, handle_mm_fault, PQH = PQT, a Success response with the request\'s PRGI', async () => {
    const { p, fake, prq, mm, resolve } = await queue();
    const [q0, q1] = req(SVA_SID, 1, 0x1000_2000, 'w', true, 7);
    await post(p, fake, prq, 0, q0, q1);
    const run = await prq.handle(resolve);
    expect(run.responses).toEqual([{ rid: SVA_SID, pasid: 1, prgi: 7, code: 0 }]);
    expect(fake.regs.get(PrqReg.PRS)).toBe(0n);
    expect(fake.regs.get(PrqReg.PQH)).toBe(0x20n);
    expect(fake.descs.splice(0)[0]).toEqual([0x1_0010_0019n, 0x3cn]);
    expect(await mm.walk(0x1000_2000)).toMatchObject({ write: true });
    const order = p.trace.filter((l) => l.includes('0xfed900dc') || l.includes('0xfed900c0')).slice(-2);
    expect(order).toEqual(['w4 0xfed900dc 0x1', 'w8 0xfed900c0 0x20']);
  });

  it('a group answers once, at its last request; errors are sticky; unknown PASIDs are Invalid', async () => {
    const { p, fake, prq, mm, resolve } = await queue();
    const a = req(SVA_SID, 1, 0x1000_0000, 'r', false, 3);
    await post(p, fake, prq, 0, a[0], a[1]);
    expect((await prq.handle(resolve)).responses).toEqual([]);
    expect(await mm.walk(0x1000_0000)).toBeUndefined();
    const b = req(SVA_SID, 1, 0x5000_0000, 'r', false, 3);
    const c = req(SVA_SID, 1, 0x1000_1000, 'w', true, 3);
    await post(p, fake, prq, 1, b[0], b[1]);
    await post(p, fake, prq, 2, c[0], c[1]);
    expect((await prq.handle(resolve)).responses).toEqual([{ rid: SVA_SID, pasid: 1, prgi: 3, code: 1 }]);
    expect(await mm.walk(0x1000_0000)).toBeDefined();
    expect(await mm.walk(0x1000_1000)).toBeUndefined(); // after the failure the group's later requests are not served
    const d = req(SVA_SID, 9, 0x1000_0000, 'r', true, 4);
    await post(p, fake, prq, 3, d[0], d[1]);
    expect((await prq.handle(resolve)).responses).toEqual([{ rid: SVA_SID, pasid: 9, prgi: 4, code: 1 }]);
  });

  it('malformed requests are answered Invalid at once (LPIG only); stop markers are dropped', async () => {
    const { p, fake, prq, resolve } = await queue();
    const posts = [
      req(SVA_SID, 1, 2 ** 47, 'r', true, 1), // not canonical
      req(SVA_SID, 1, 0x1000_0000, 'r', true, 2, 1n << 53n), // privileged
      req(SVA_SID, 1, 0x1000_0000, 'r', true, 3, 1n << 52n), // execute with read
      req(SVA_SID, 1, 0x1000_0000, 'r', false, 4, 1n << 53n), // privileged, not last: no response
      [1n | (1n << 8n) | (1n << 32n) | (BigInt(SVA_SID) << 16n), 0x1000_0000n | 4n | (5n << 3n)] as const, // stop marker
    ];
    for (let i = 0; i < posts.length; i++) await post(p, fake, prq, i, posts[i]![0], posts[i]![1]);
    const run = await prq.handle(resolve);
    expect(run.requests).toHaveLength(5);
    expect(run.responses.map((r) => [r.prgi, r.code])).toEqual([[1, 1], [2, 1], [3, 1]]);
    expect(prq.log.join('\n')).toMatch(/address is not canonical[\s\S]*privileged mode[\s\S]*execution request not supported[\s\S]*stop marker: dropped/);
  });

  it('overflow: PRO is cleared once the queue is empty, partial groups dropped', async () => {
    const { p, fake, prq, resolve } = await queue();
    const a = req(SVA_SID, 1, 0x1000_0000, 'r', false, 6);
    await post(p, fake, prq, 0, a[0], a[1]);
    fake.regs.set(PrqReg.PRS, BigInt(PrsBit.PPR | PrsBit.PRO));
    const run = await prq.handle(resolve);
    expect(run.overflow).toBe(true);
    expect(fake.regs.get(PrqReg.PRS)).toBe(0n);
    const b = req(SVA_SID, 1, 0x1000_1000, 'r', true, 6);
    await post(p, fake, prq, 1, b[0], b[1]);
    expect((await prq.handle(resolve)).responses).toEqual([{ rid: SVA_SID, pasid: 1, prgi: 6, code: 0 }]);
  });

  it('a response the unit refuses (IQE) is logged, not thrown', async () => {
    const { p, fake, prq, resolve, unit } = await queue();
    const a = req(SVA_SID, undefined, 0x1000_0000, 'r', true, 2);
    await post(p, fake, prq, 0, a[0], a[1]);
    const submit = unit.qi.submit.bind(unit.qi);
    unit.qi.submit = async () => { throw new Error('VT-d: invalidation queue error at descriptor 9 (submitted from 9)'); };
    const run = await prq.handle(resolve);
    unit.qi.submit = submit;
    expect(run.responses).toEqual([{ rid: SVA_SID, pasid: undefined, prgi: 2, code: 1 }]);
    expect(prq.log.at(-1)).toMatch(/page-group response refused: VT-d: invalidation queue error/);
  });
});
