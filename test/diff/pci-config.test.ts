/**
 * Differential test: PCI configuration space of every function on bus 0 of
 * `-machine q35 -nodefaults -device edu -device edu` against QEMU 11.1,
 * through CF8/CFC (PCIEXBAR is disabled without firmware, so there is no
 * ECAM).  Per function: all 64 dwords; then BAR sizing (all-ones written to
 * every BAR and the ROM BAR, read back, restored), command/status/cache-line/
 * interrupt-line masks, read-only ID registers, byte and word reads across
 * the header; for the edus the MSI capability (control, address, data, masks);
 * finally all 64 dwords again.  A scan of all 256 devfns checks which
 * functions exist (absent ones read all-ones).
 *
 * Both run `-machine q35` (QEMU 11.1's alias of pc-q35-11.1, whose MCH
 * reads 64 at EXT_TSEG_MBYTES, 0x50; pc-q35-7.2 reads 16 there, and vtemu
 * models both types).
 *
 * Both sides run through the shared harness (test/harness).
 */
import { describe, expect, it } from 'vitest';
import { needQemu, hex, diffTranscripts } from '../harness/index.js';

const haveQemu = needQemu('11.1', 'test/diff/pci-config.test.ts');

const DEVICES = ['edu', 'edu'];
/** Functions QEMU has on bus 0 with two edus: MCH, edu, edu, LPC, AHCI, SMBus. */
const FUNCTIONS: readonly { devfn: number; name: string }[] = [
  { devfn: 0x00, name: '00.0 MCH' },
  { devfn: 0x08, name: '01.0 edu' },
  { devfn: 0x10, name: '02.0 edu' },
  { devfn: 0xf8, name: '1f.0 ICH9 LPC' },
  { devfn: 0xfa, name: '1f.2 ICH9 AHCI' },
  { devfn: 0xfb, name: '1f.3 ICH9 SMBus' },
];
const EDU_DEVFNS = [0x08, 0x10];

const cfgAddr = (devfn: number, reg: number) => hex((0x8000_0000 | (devfn << 8) | (reg & 0xfc)) >>> 0);

type Width = 'b' | 'w' | 'l';

class Cfg {
  readonly l: string[] = [];
  constructor(private readonly devfn: number) {}
  rd(reg: number, w: Width): this {
    this.l.push(`outl 0xcf8 ${cfgAddr(this.devfn, reg)}`, `in${w} ${hex(0xcfc + (reg & 3))}`);
    return this;
  }
  wr(reg: number, w: Width, v: number): this {
    this.l.push(`outl 0xcf8 ${cfgAddr(this.devfn, reg)}`, `out${w} ${hex(0xcfc + (reg & 3))} ${hex(v >>> 0)}`);
    return this;
  }
  dump(): this {
    for (let r = 0; r < 0x100; r += 4) this.rd(r, 'l');
    return this;
  }
}

/** All lines for one present function. */
function functionLines(devfn: number): string[] {
  const c = new Cfg(devfn).dump();
  // BAR sizing: BARs 0-5 and the expansion ROM BAR.
  for (const bar of [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30]) c.wr(bar, 'l', 0xffffffff).rd(bar, 'l').wr(bar, 'l', 0).rd(bar, 'l');
  // Command (incl. INTx disable and SERR) and status (write-1-to-clear bits).
  c.wr(0x04, 'w', 0xffff).rd(0x04, 'w').rd(0x04, 'l').wr(0x04, 'w', 0).rd(0x04, 'w');
  c.wr(0x06, 'w', 0xffff).rd(0x06, 'w');
  // Cache line size, latency timer, BIST, interrupt line/pin, min grant, max latency.
  for (const r of [0x0c, 0x0d, 0x0f, 0x3c, 0x3d, 0x3e, 0x3f]) c.wr(r, 'b', 0xff).rd(r, 'b');
  c.wr(0x3c, 'b', 0x0b).rd(0x3c, 'l');
  // Capability pointer and IDs are read-only.
  c.wr(0x34, 'b', 0).rd(0x34, 'b');
  c.wr(0x00, 'l', 0).wr(0x08, 'l', 0).wr(0x2c, 'l', 0).rd(0x00, 'l').rd(0x08, 'l').rd(0x2c, 'l');
  // Byte and word reads across the header, incl. unaligned offsets within the data window.
  for (let r = 0; r < 0x40; r++) c.rd(r, 'b');
  for (let r = 0; r < 0x40; r += 2) c.rd(r, 'w');
  if (EDU_DEVFNS.includes(devfn)) msiLines(c);
  return c.dump().l;
}

/** The edu's MSI capability at 0x40 (64-bit, 1 vector, no per-vector mask). */
function msiLines(c: Cfg): void {
  c.wr(0x42, 'w', 0xffff).rd(0x40, 'l');
  c.wr(0x42, 'w', 0x0070).rd(0x40, 'l');
  c.wr(0x44, 'l', 0xffffffff).rd(0x44, 'l');
  c.wr(0x48, 'l', 0xffffffff).rd(0x48, 'l');
  c.wr(0x4c, 'l', 0xffffffff).rd(0x4c, 'l');
  c.wr(0x44, 'l', 0xfee00000).wr(0x48, 'l', 0).wr(0x4c, 'w', 0x4041).wr(0x42, 'w', 1).rd(0x40, 'l');
  c.wr(0x41, 'b', 0).wr(0x40, 'b', 0x11).rd(0x40, 'l');
  for (let r = 0x40; r < 0x60; r += 4) c.rd(r, 'l');
  for (let r = 0x40; r < 0x50; r++) c.rd(r, 'b');
  c.wr(0x42, 'w', 0).rd(0x40, 'l');
}

/** Dword 0 of every devfn on bus 0, plus a few disabled/odd config addresses. */
function scanLines(): string[] {
  const l: string[] = [];
  for (let devfn = 0; devfn < 256; devfn++) l.push(`outl 0xcf8 ${cfgAddr(devfn, 0)}`, 'inl 0xcfc');
  // Config address register readback, enable bit clear, other buses.
  l.push('outl 0xcf8 0x80000000', 'inl 0xcf8', 'outl 0xcf8 0x00000000', 'inl 0xcfc', 'outl 0xcf8 0x80010000', 'inl 0xcfc');
  l.push('outl 0xcf8 0x80ff0000', 'inl 0xcfc', 'outl 0xcf8 0x80000000', 'inw 0xcfe', 'inb 0xcff', 'inw 0xcf8');
  return l;
}

// ---------------------------------------------------------------------------

const ARGS = DEVICES.flatMap((d) => ['-device', d]);
/** QEMU 11.1 with the same arguments. */
const QEMU_ARGS = ARGS;

/** Runs `lines` on QEMU 11.1 and vtemu; expects identical replies; returns QEMU's replies. */
async function compare(lines: readonly string[]): Promise<string[]> {
  const r = await diffTranscripts(ARGS, lines, QEMU_ARGS);
  if (r.difference !== null) {
    // Name every differing access (up to 20), not only the first.
    const mismatches: string[] = [];
    for (let i = 0; i < Math.min(r.qemu.length, r.vtemu.length) && mismatches.length < 20; i++) {
      const q = r.qemu[i]!;
      const v = r.vtemu[i]!;
      if (q.reply === v.reply) continue;
      let sel = '';
      for (let j = q.step; j >= 0 && !sel; j--) if (lines[j]!.startsWith('outl 0xcf8')) sel = lines[j]!;
      mismatches.push(`${sel} ; ${q.cmd} -> vtemu ${v.reply}, qemu ${q.reply}`);
    }
    expect(mismatches).toEqual([]);
  }
  expect(r.difference).toBeNull();
  return r.qemu.map((t) => t.reply);
}

describe.skipIf(!haveQemu)('PCI config space of bus 0 against QEMU 11.1 (q35)', () => {
  it('scan: which devfns exist; CF8 behaviour', async () => {
    const qemu = await compare(scanLines());
    const present = FUNCTIONS.map((f) => qemu[2 * f.devfn + 1]);
    expect(present.every((r) => r !== 'OK 0xffffffff')).toBe(true);
  });

  for (const f of FUNCTIONS) {
    it(`${f.name}: registers, BAR sizing, masks${EDU_DEVFNS.includes(f.devfn) ? ', MSI capability' : ''}`, async () => {
      const qemu = await compare(functionLines(f.devfn));
      expect(qemu[0]).not.toBe('OK 0xffffffff');
    });
  }
});
