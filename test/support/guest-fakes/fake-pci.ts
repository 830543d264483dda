/**
 * A tiny PCI configuration model for unit tests of the firmware's
 * enumeration: functions with config bytes and BAR size masks, bridges that
 * route by their secondary bus register, CF8/CFC ports.
 */
import type { FakePlatform } from './fake-platform.js';

/** One fake function. */
export interface FakeFn {
  readonly dev: number;
  readonly fn: number;
  readonly cfg: Uint8Array;
  /** BAR index -> size (power of two); 64-bit BARs take two slots. */
  readonly bars: ReadonlyMap<number, { size: number; is64?: boolean; io?: boolean }>;
  readonly children: FakeFn[];
}

/** Creates a function: `bridge` sets header type 1; `pcieType` adds a PCIe capability at 0x40. */
export function fakeFn(dev: number, fn: number, opts: { vendor?: number; device?: number; bridge?: boolean; pcieType?: number;
  bars?: Array<[number, { size: number; is64?: boolean; io?: boolean }]>; children?: FakeFn[]; multi?: boolean } = {}): FakeFn {
  const cfg = new Uint8Array(256);
  const dv = new DataView(cfg.buffer);
  dv.setUint16(0, opts.vendor ?? 0x1234, true);
  dv.setUint16(2, opts.device ?? 0x11e8, true);
  cfg[0x0e] = (opts.bridge ? 1 : 0) | (opts.multi ? 0x80 : 0);
  if (opts.pcieType !== undefined) {
    cfg[0x06] = 0x10;
    cfg[0x34] = 0x40;
    cfg[0x40] = 0x10;
    dv.setUint16(0x42, opts.pcieType << 4, true);
  }
  const bars = new Map(opts.bars ?? []);
  for (const [i, b] of bars) dv.setUint32(0x10 + 4 * i, b.io ? 1 : b.is64 ? 4 : 0, true);
  return { dev, fn, cfg, bars, children: opts.children ?? [] };
}

/** Installs CF8/CFC over a root bus of fake functions. */
export function installFakePci(p: FakePlatform, root: FakeFn[]): void {
  let address = 0;
  const find = (bus: number, dev: number, fn: number): FakeFn | undefined => {
    const walk = (list: FakeFn[], b: number): FakeFn | undefined => {
      if (b === bus) return list.find((f) => f.dev === dev && f.fn === fn);
      for (const f of list) {
        const sec = f.cfg[0x19]!;
        const sub = f.cfg[0x1a]!;
        if ((f.cfg[0x0e]! & 0x7f) === 1 && sec !== 0 && bus >= sec && bus <= sub) return walk(f.children, sec);
      }
      return undefined;
    };
    return walk(root, 0);
  };
  const target = (): [FakeFn | undefined, number] => {
    const bus = (address >>> 16) & 0xff;
    const devfn = (address >>> 8) & 0xff;
    return [find(bus, devfn >> 3, devfn & 7), address & 0xfc];
  };
  p.mapPorts(0xcf8, 4, { read: () => BigInt(address), write: (_o, _s, v) => { address = Number(v); } });
  p.mapPorts(0xcfc, 4, {
    read(off, size) {
      const [f, reg] = target();
      if (!f) return (1n << BigInt(8 * size)) - 1n;
      let v = 0n;
      for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(f.cfg[reg + off + i]!);
      return v;
    },
    write(off, size, value) {
      const [f, reg] = target();
      if (!f) return;
      const at = reg + off;
      if (at >= 0x10 && at < 0x28 && size === 4) {
        const i = (at - 0x10) / 4;
        const prev = f.bars.get(i - 1);
        const bar = f.bars.get(i);
        const dv = new DataView(f.cfg.buffer);
        if (bar) {
          const low = bar.io ? 1 : bar.is64 ? 4 : 0;
          dv.setUint32(at, ((Number(value) & ~(bar.size - 1)) | low) >>> 0, true);
        } else if (prev?.is64) {
          dv.setUint32(at, Number(value) >>> 0, true);
        }
        return;
      }
      for (let i = 0; i < size; i++) f.cfg[at + i] = Number((value >> BigInt(8 * i)) & 0xffn);
    },
  });
}
