/**
 * A minimal VT-d register model for unit tests of the driver's sequencing:
 * GCMD -> GSTS, CCMD.ICC / IOTLB.IVT self-clearing, and a queue that
 * executes wait descriptors (status writes).  No translation.
 */
import type { FakePlatform } from './fake-platform.js';

/** Options of the fake unit. */
export interface FakeVtdOptions {
  readonly cap?: bigint;
  readonly ecap?: bigint;
  readonly gsts?: number;
}

/** Installs the model at `base`; returns the log of register writes ("GCMD 0x..."). */
export function installFakeVtd(p: FakePlatform, base: number, o: FakeVtdOptions = {}): string[] {
  const log: string[] = [];
  const cap = o.cap ?? 0x00d2008c22260206n;
  const ecap = o.ecap ?? 0xf00f4an;
  const iro = Number((ecap >> 8n) & 0x3ffn) * 16;
  let gsts = o.gsts ?? 0;
  const q = new Map<number, bigint>();
  const names: Record<number, string> = { 0x18: 'GCMD', 0x20: 'RTADDR', 0x28: 'CCMD', 0x34: 'FSTS', 0x38: 'FECTL', 0x3c: 'FEDATA', 0x40: 'FEADDR',
    0x44: 'FEUADDR', 0x88: 'IQT', 0x90: 'IQA', 0xb8: 'IRTA', [iro]: 'IVA', [iro + 8]: 'IOTLB' };
  p.mapMmio(base, 0x1000, {
    read(off, size) {
      let v: bigint;
      if (off === 0) v = 0x10n;
      else if (off === 8 || off === 12) v = off === 8 ? cap : cap >> 32n;
      else if (off === 0x10 || off === 0x14) v = off === 0x10 ? ecap : ecap >> 32n;
      else if (off === 0x1c) v = BigInt(gsts >>> 0);
      else if (off === 0x80) v = q.get(0x88) ?? 0n; // IQH follows IQT (everything done)
      else v = (q.get(off & ~7) ?? 0n) >> (off & 4 ? 32n : 0n);
      return size === 8 ? v : v & 0xffffffffn;
    },
    write(off, _size, value) {
      log.push(`${names[off] ?? '0x' + off.toString(16)} 0x${value.toString(16)}`);
      const v = Number(value & 0xffffffffn) >>> 0;
      if (off === 0x18) {
        const persistent = 0x80000000 | 0x04000000 | 0x02000000;
        gsts = (gsts & ~persistent) | (v & persistent);
        if (v & 0x40000000) gsts |= 0x40000000;
        if (v & 0x01000000) gsts |= 0x01000000;
        return;
      }
      if (off === 0x28 || off === iro + 8) { q.set(off, value & ~(1n << 63n)); return; }
      if (off === 0x88) {
        // run descriptors from the old tail to the new one: wait descriptors write their status
        const iqa = Number((q.get(0x90) ?? 0n) & ~0xfffn);
        const from = Number(q.get(0x88) ?? 0n) / 16;
        const to = v / 16;
        for (let i = from; i !== to; i = (i + 1) % 256) {
          const at = iqa + i * 16;
          void p.read64(at).then(async (q0) => {
            log.push(`QI type ${Number(q0 & 0xfn)} 0x${q0.toString(16)}`);
            if ((q0 & 0xfn) === 5n && q0 & 0x20n) await p.write(Number(await p.read64(at + 8)), 4, Number(q0 >> 32n));
          });
        }
      }
      q.set(off, value);
    },
  });
  return log;
}
