/**
 * A device DMA whose address range runs past 2^64 - 1, checked against QEMU
 * 11.1: QEMU's address arithmetic is 64-bit (hwaddr), so the bytes after the
 * top of the space go to address 0 and on.  vtemu's DMA space hands its
 * translator exact page bases above 2^53 and wraps the same way.  edu with
 * dma_mask all-ones; VT-d (aw-bits=39) maps IOVA 0 and 0x1000; the top page
 * faults beyond the address width.
 */
import { describe, expect, it } from 'vitest';
import { needQemu, hex, diffTranscripts, type Step } from '../harness/index.js';

const haveQemu = needQemu('11.1', 'test/diff/dma-wrap.test.ts');

const VTD = 0xfed9_0000;
const GCMD = VTD + 0x18;
const RTADDR = VTD + 0x20;
const FSTS = VTD + 0x34;
const FRCD_LO = VTD + 0x220;
const FRCD_HI = VTD + 0x228;
const TE = 0x8000_0000;
const SRTP = 0x4000_0000;
const BAR = 0xe000_0000;
const EDU_DEVFN = 0x08;
const EDU_BUF = 0x40000;
const ROOT = 0x100_0000;
const CTX = 0x100_1000;
const L3 = 0x100_2000;
const L2 = 0x100_3000;
const L1 = 0x100_4000;
/** IOVA 0 maps here (source bytes), IOVA 0x1000 there (where the buffer is copied back). */
const SRC = 0x200_0000;
const OUT = 0x210_0000;
/** DMA command bits: start, buffer -> RAM. */
const RUN = 1;
const TO_RAM = 2;

const cfg = (reg: number) => hex((0x8000_0000 | (EDU_DEVFN << 8) | reg) >>> 0);

/** One edu DMA of `count` bytes: its 100 ms of virtual time stepped, then its run bit polled clear. */
function dma(src: bigint, dst: bigint, count: number, cmd: number): Step[] {
  return [
    `writeq ${hex(BAR + 0x80)} ${hex(src)}`,
    `writeq ${hex(BAR + 0x88)} ${hex(dst)}`,
    `writeq ${hex(BAR + 0x90)} ${hex(count)}`,
    `writeq ${hex(BAR + 0x98)} ${hex(cmd)}`,
    { poll: `readq ${hex(BAR + 0x98)}`, until: (r) => (BigInt(r.slice(3)) & 1n) === 0n, before: { ns: 100_000_000 }, quiet: true },
  ];
}

function steps(): Step[] {
  return [
    `outl 0xcf8 ${cfg(0x10)}`,
    `outl 0xcfc ${hex(BAR)}`,
    `outl 0xcf8 ${cfg(0x04)}`,
    'outw 0xcfc 0x6',
    // Root entry (bus 0) -> context table; edu's context: 3-level tables at L3, DID 1.
    `writeq ${hex(ROOT)} ${hex(CTX | 1)}`,
    `writeq ${hex(CTX + EDU_DEVFN * 16)} ${hex(L3 | 1)}`,
    `writeq ${hex(CTX + EDU_DEVFN * 16 + 8)} 0x101`,
    `writeq ${hex(L3)} ${hex(L2 | 3)}`,
    `writeq ${hex(L2)} ${hex(L1 | 3)}`,
    `writeq ${hex(L1)} ${hex(SRC | 3)}`,
    `writeq ${hex(L1 + 8)} ${hex(OUT | 3)}`,
    `writeq ${hex(SRC)} 0x8877665544332211`,
    `writeq ${hex(SRC + 8)} 0xffeeddccbbaa9988`,
    `writeq ${hex(RTADDR)} ${hex(ROOT)}`,
    `writel ${hex(GCMD)} ${hex(SRTP)}`,
    `writel ${hex(GCMD)} ${hex(TE)}`,
    // 16 bytes from IOVA 2^64 - 8: 8 from the top page (fault: beyond the address width), 8 from IOVA 0.
    ...dma(0xffff_ffff_ffff_fff8n, BigInt(EDU_BUF), 16, RUN),
    `readl ${hex(FSTS)}`,
    `readq ${hex(FRCD_HI)}`,
    `readq ${hex(FRCD_LO)}`,
    // The buffer back out through IOVA 0x1000, to be read.
    ...dma(BigInt(EDU_BUF), 0x1000n, 16, RUN | TO_RAM),
    `read ${hex(OUT)} 0x10`,
  ];
}

describe.skipIf(!haveQemu)('DMA past the top of the 64-bit space vs QEMU 11.1', () => {
  it('the bytes after 2^64 - 1 come from IOVA 0; the top page faults on its own page', async () => {
    const r = await diffTranscripts(['-device', 'intel-iommu,aw-bits=39', '-device', 'edu,dma_mask=0xffffffffffffffff'], steps());
    expect(r.difference).toBeNull();
    const reply = (cmd: string) => r.qemu.find((t) => t.cmd === cmd)?.reply;
    // FSTS.PPF, FRCD: reason 4 (address beyond the width), read, SID 0x0008; page 2^64 - 4 KiB;
    // the buffer: 8 zero bytes (the faulting top page), then the 8 bytes at IOVA 0.
    expect([`readl ${hex(FSTS)}`, `readq ${hex(FRCD_HI)}`, `readq ${hex(FRCD_LO)}`, `read ${hex(OUT)} 0x10`].map(reply)).toEqual([
      'OK 0x0000000000000002',
      'OK 0xc000000400000008', // PP and PV 0: no PASID (QEMU 7.2 wrote PV 0xFFFF, its PCI_NO_PASID)
      'OK 0xfffffffffffff000',
      `OK 0x${'00'.repeat(8)}1122334455667788`,
    ]);
  });
});
