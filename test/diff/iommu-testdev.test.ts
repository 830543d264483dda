/**
 * Differential tests of `iommu-testdev` (QEMU 11.1, hw/misc/iommu-testdev.c)
 * against QEMU 11.1 (`-accel qtest`): config space, BAR sizing, registers,
 * access widths, reset, every result code, DMA without an IOMMU and through
 * intel-iommu: legacy 3-level second-stage tables, and scalable mode (second
 * stage of 3 and 4 levels, first stage with `fsts=on`, pass-through, the
 * attribute register, the scalable fault codes; the tables are laid out by
 * test/support/vtd-sm-tables.ts), with the fault record each translation
 * fault leaves.  Every checked reply is also an expectation, so
 * vtemu has to meet them when QEMU 11.1 is absent; with it, the transcripts
 * must be identical too.  The device sits at 00:01.0 (devfn 0x08) with BAR0
 * at 0xE0000000; only memory decoding is enabled, never bus mastering: QEMU's
 * device DMAs through pci_device_iommu_address_space, which ignores it.
 *
 * What QEMU 11.1 does that the reference page (/work/shared/reference/qemu-11-vtd.md,
 * "iommu-testdev") gets wrong or leaves out, each pinned by a scenario below:
 *  - the doorbell arms on bit 0 alone: 3 arms, 2 disarms (the page: "write 1 / write 0");
 *  - a trigger that is not armed still overwrites the result (0xDEAD0005), busy or not;
 *  - "class 0xff00" is the 16-bit class word: base class 0x00, subclass 0xff (dword 0x08 = 0x00ff0000);
 *    subsystem 0x1af4:0x1100 (QEMU's default), interrupt pin 0;
 *  - the DMA runs with bus mastering disabled (pci_device_iommu_address_space, not the bus-master space);
 *  - attributes are only inconsistent with space-valid set and space 0/1 contradicting
 *    the secure bit: 0x8 and 0xB fail, 0x9, 0xA, 0xC-0xF and 0x1-0x7 run; otherwise they change nothing on q35;
 *    length 0 is checked before them;
 *  - 1-/2-byte and unaligned accesses read 0 and are dropped; an 8-byte access is
 *    two 4-byte ones (readq at 0x00 runs the trigger);
 *  - the result register is writable (any value), the doorbell reads 0;
 *  - a DMA whose IOVA or GPA hits the device's own BAR0 is refused by QEMU's
 *    re-entrancy guard: 0xDEAD0002 / 0xDEAD0003, registers untouched;
 *  - a write that faults part-way still writes the pages after the fault
 *    (0xDEAD0002 all the same), and a partial RAM write leaves its RAM part written;
 *  - with intel-iommu present but translation off, the IOVA is used as the address;
 *  - addresses wrap past 2^64.
 * In scalable mode (the page's "Scalable-mode structures" / "First-stage walk" sections):
 *  - the device's requests carry no PASID: they use PASID 0's entry, and their
 *    fault records have PP = 0 and PV = 0;
 *  - the attribute register changes nothing there either (same answers on second and first stage);
 *  - a first-stage leaf written to gets D only when A and D are both clear: a leaf whose A
 *    software set beforehand keeps D clear;
 *  - pass-through checks no address width and records nothing: an address with nothing
 *    there is 0xDEAD0002 without a fault, as is a translation whose output is beyond RAM.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { checkTranscripts, hex, needQemu, qemuOracle, runCli, type Step } from '../harness/index.js';
import {
  clearFault, enableTranslation, expectFault, expectNoFault, FPD, Fs, get64, latchRoot, Leaf, PageAllocator, PageTables, pasidEntry,
  pasidEntryQwords, Pgtt, PRESENT, regR32, smChain, Ss, VtdReg, type PasidEntryFields, type SmLayout,
} from '../support/vtd-sm-tables.js';

const haveQemu = needQemu('11.1', 'test/diff/iommu-testdev.test.ts');

const ARGS = ['-machine', 'q35', '-device', 'iommu-testdev'];
const ARGS_VTD = ['-machine', 'q35', '-device', 'intel-iommu', '-device', 'iommu-testdev'];
const TIMEOUT = 60_000;

// ---- addresses and values -------------------------------------------------------

const BAR = 0xe000_0000;
const DEVFN = 0x08;
const RAM_END = 0x800_0000; // -m 128M (QEMU's default): the PCI hole starts here.
const HOLE = 0x4000_0000; // nothing there

/** BAR0 register offsets (QEMU ITD_REG_*). */
const REG = { TRIGGER: 0x00, IOVA_LO: 0x04, IOVA_HI: 0x08, LEN: 0x0c, RESULT: 0x10, DBELL: 0x14, ATTRS: 0x18, GPA_LO: 0x1c, GPA_HI: 0x20 } as const;
/** Result values (QEMU ITD_DMA_*). */
const RES = {
  OK: 0, IDLE: 0xffff_ffff, BUSY: 0xffff_fffe,
  BAD_LEN: 0xdead_0001, TX_FAIL: 0xdead_0002, RD_FAIL: 0xdead_0003, MISMATCH: 0xdead_0004, NOT_ARMED: 0xdead_0005, BAD_ATTRS: 0xdead_0006,
} as const;

const VTD = 0xfed9_0000;
const VTD_REG = { GCMD: 0x18, GSTS: 0x1c, RTADDR: 0x20, FSTS: 0x34, FRCD0: 0x220 } as const;
const GCMD = { TE: 0x8000_0000, SRTP: 0x4000_0000 } as const;
const FSTS_PPF = 0x2;
/** FRCD high qword: F 63, T 62 (0 = write), PV 59:40, FR 39:32, SID 15:0. */
const FRCD_F = 1n << 63n;
const frcdHi = (reason: number, sid: number) => FRCD_F | (BigInt(reason) << 32n) | BigInt(sid);
/** Fault reasons (VT-d 7.1.3): a write to a leaf without W (or a non-present one), an IOVA beyond the AGAW. */
const FR_WRITE = 5;
const FR_BEYOND_MGAW = 4;

// Legacy tables (VT-d 9.1-9.3): root -> context (DID 1, AW 1 = 3-level) -> L3 -> L2 -> L1.
const ROOT = 0x100_0000;
const CTX = 0x100_1000;
const L3 = 0x100_2000;
const L2 = 0x100_3000;
const L1 = 0x100_4000;
const PAGE_A = 0x200_0000; // IOVA 0x0000, read/write
const PAGE_B = 0x210_0000; // IOVA 0x1000, read-only
const PAGE_D = 0x230_0000; // IOVA 0x3000, read/write (IOVA 0x2000 is not present)
const PAGE_E = 0x240_0000; // IOVA 0x4000, read/write, contiguous run with PAGE_F
const PAGE_F = 0x240_1000; // IOVA 0x5000

// ---- steps --------------------------------------------------------------------

const okVal = (v: number | bigint) => `OK 0x${BigInt(v).toString(16).padStart(16, '0')}`;
/** A qtest command whose reply is `OK`. */
const ok = (cmd: string): Step => ({ cmd, expect: 'OK' });
/** A command with its expected `OK 0x...` value. */
const val = (cmd: string, v: number | bigint): Step => ({ cmd, expect: okVal(v) });

const cfgAddr = (reg: number, devfn = DEVFN) => hex((0x8000_0000 | (devfn << 8) | reg) >>> 0);
/** inl's reply format (QEMU prints `0x%04x`). */
const inlVal = (v: number) => `OK 0x${(v >>> 0).toString(16).padStart(4, '0')}`;
const cfgRead = (reg: number, v: number): Step[] => [ok(`outl 0xcf8 ${cfgAddr(reg)}`), { cmd: 'inl 0xcfc', expect: inlVal(v) }];
const cfgWrite = (reg: number, v: number): Step[] => [ok(`outl 0xcf8 ${cfgAddr(reg)}`), ok(`outl 0xcfc ${hex(v >>> 0)}`)];

/** BAR0 at 0xE0000000, memory decoding on, bus mastering off (the function at `devfn` on bus 0). */
const barSetup = (devfn = DEVFN): Step[] => [
  ok(`outl 0xcf8 ${cfgAddr(0x10, devfn)}`), ok(`outl 0xcfc ${hex(BAR)}`),
  ok(`outl 0xcf8 ${cfgAddr(0x04, devfn)}`), ok('outw 0xcfc 0x2'),
];

const rd = (off: number, v: number | bigint): Step => val(`readl ${hex(BAR + off)}`, v);
const wr = (off: number, v: number): Step => ok(`writel ${hex(BAR + off)} ${hex(v >>> 0)}`);
const result = (v: number): Step => rd(REG.RESULT, v);
/** Triggers: the read returns 0 and runs the DMA; then the result. */
const trigger = (v: number): Step[] => [rd(REG.TRIGGER, 0), result(v)];

/** Programs IOVA, GPA and length (64-bit values as bigints). */
function program(iova: bigint, gpa: bigint, len: number): Step[] {
  const lo = (x: bigint) => Number(x & 0xffff_ffffn);
  const hi = (x: bigint) => Number(x >> 32n);
  return [wr(REG.IOVA_LO, lo(iova)), wr(REG.IOVA_HI, hi(iova)), wr(REG.GPA_LO, lo(gpa)), wr(REG.GPA_HI, hi(gpa)), wr(REG.LEN, len)];
}

/** Arms, triggers, expects `res`; a second trigger finds it disarmed. */
function dma(iova: bigint | number, gpa: bigint | number, len: number, res: number): Step[] {
  return [...program(BigInt(iova), BigInt(gpa), len), wr(REG.DBELL, 1), result(RES.BUSY), ...trigger(res), ...trigger(RES.NOT_ARMED)];
}

/** The pattern 78 56 34 12 from phase `from`, `n` bytes, as qtest `read` prints bytes. */
function patternHex(n: number, from = 0): string {
  const bytes = ['78', '56', '34', '12'];
  let s = '';
  for (let i = 0; i < n; i++) s += bytes[(from + i) & 3];
  return s;
}
const bytesAt = (addr: number, hexBytes: string): Step => ({ cmd: `read ${hex(addr)} ${hex(hexBytes.length / 2)}`, expect: `OK 0x${hexBytes}` });
const zeros = (n: number) => '00'.repeat(n);

async function check(args: readonly string[], steps: Step[]): Promise<void> {
  const r = await checkTranscripts(args, steps, { qemu: haveQemu, oracle: '11.1' });
  expect(r.unmet).toEqual([]);
  expect(r.difference).toBeNull();
}

// ---- scenarios ------------------------------------------------------------------

describe('iommu-testdev vs QEMU 11.1: PCI function', () => {
  /** Dword values of the config space at reset (checked on QEMU 11.1). */
  const RESET_CONFIG: Record<number, number> = { 0x00: 0x0005_1b36, 0x08: 0x00ff_0000, 0x2c: 0x1100_1af4 };
  /** After writing all-ones to every dword: the write masks. */
  const ONES_CONFIG: Record<number, number> = { 0x00: 0x0005_1b36, 0x04: 0x0507, 0x08: 0x00ff_0000, 0x0c: 0xff, 0x10: 0xffff_f000, 0x2c: 0x1100_1af4, 0x3c: 0xff };

  it('config space: all 256 bytes at reset, and the write masks', async () => {
    const steps: Step[] = [];
    for (let reg = 0; reg < 0x100; reg += 4) steps.push(...cfgRead(reg, RESET_CONFIG[reg] ?? 0));
    // Byte reads of the header: every byte lane.
    for (let reg = 0; reg < 0x40; reg++) {
      const dword = RESET_CONFIG[reg & ~3] ?? 0;
      steps.push(ok(`outl 0xcf8 ${cfgAddr(reg & ~3)}`), { cmd: `inb ${hex(0xcfc + (reg & 3))}`, expect: inlVal((dword >>> (8 * (reg & 3))) & 0xff) });
    }
    for (let reg = 0; reg < 0x100; reg += 4) steps.push(...cfgWrite(reg, 0xffff_ffff), ...cfgRead(reg, reg >= 0x40 ? 0xffff_ffff : (ONES_CONFIG[reg] ?? 0)));
    await check(ARGS, steps);
  }, TIMEOUT);

  it('BAR sizing: BAR0 is 4 KiB, 32-bit, non-prefetchable memory; BAR1-5 and the ROM BAR are absent', async () => {
    const steps: Step[] = [];
    for (const reg of [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30]) steps.push(...cfgWrite(reg, 0xffff_ffff), ...cfgRead(reg, reg === 0x10 ? 0xffff_f000 : 0));
    steps.push(...cfgWrite(0x10, 0x1234_5678), ...cfgRead(0x10, 0x1234_5000));
    // Mapped where the guest puts it once memory decoding is on.
    steps.push(...barSetup(), ...cfgRead(0x10, BAR), ...cfgRead(0x04, 0x2), rd(REG.ATTRS, 2));
    await check(ARGS, steps);
  }, TIMEOUT);
});

describe('iommu-testdev vs QEMU 11.1: registers', () => {
  it('reset values; RW registers keep any value; the trigger, doorbell and unused offsets', async () => {
    const rw = [REG.IOVA_LO, REG.IOVA_HI, REG.LEN, REG.RESULT, REG.ATTRS, REG.GPA_LO, REG.GPA_HI];
    await check(ARGS, [
      ...barSetup(),
      rd(REG.IOVA_LO, 0), rd(REG.IOVA_HI, 0), rd(REG.LEN, 0), result(RES.IDLE), rd(REG.DBELL, 0), rd(REG.ATTRS, 2),
      rd(REG.GPA_LO, 0), rd(REG.GPA_HI, 0), rd(0x24, 0), rd(0x800, 0), rd(0xffc, 0),
      ...rw.map((off, i) => wr(off, 0xa5a5_0000 + i)),
      ...rw.map((off, i) => rd(off, 0xa5a5_0000 + i)),
      wr(REG.TRIGGER, 0x5), wr(0x24, 0x5), wr(0xffc, 0x5), rd(0x24, 0), rd(0xffc, 0),
      ...trigger(RES.NOT_ARMED),
      // Doorbell: bit 0 arms (busy), anything else disarms (idle); it reads 0.
      wr(REG.DBELL, 3), result(RES.BUSY), rd(REG.DBELL, 0),
      wr(REG.DBELL, 2), result(RES.IDLE),
      wr(REG.DBELL, 0xffff_ffff), result(RES.BUSY), wr(REG.DBELL, 0), result(RES.IDLE), ...trigger(RES.NOT_ARMED),
      wr(REG.RESULT, 0x12345), result(0x12345),
    ]);
  }, TIMEOUT);

  it('4-byte accesses only: narrower and unaligned ones read 0 and are dropped, 8-byte ones split', async () => {
    await check(ARGS, [
      ...barSetup(),
      wr(REG.IOVA_LO, 0x1122_3344),
      val(`readb ${hex(BAR + 4)}`, 0), val(`readw ${hex(BAR + 4)}`, 0), val(`readw ${hex(BAR + 6)}`, 0), val(`readb ${hex(BAR + 7)}`, 0),
      val(`readl ${hex(BAR + 6)}`, 0), val(`readl ${hex(BAR + 5)}`, 0),
      val(`readq ${hex(BAR + 4)}`, 0x1122_3344), val(`readq ${hex(BAR + 8)}`, 0),
      ok(`writeb ${hex(BAR + 4)} 0xaa`), ok(`writew ${hex(BAR + 4)} 0xbbbb`), ok(`writel ${hex(BAR + 6)} 0xffffffff`), rd(REG.IOVA_LO, 0x1122_3344),
      ok(`writeq ${hex(BAR + 4)} 0x5566778899aabbcc`), rd(REG.IOVA_LO, 0x99aa_bbcc), rd(REG.IOVA_HI, 0x5566_7788),
      // writeq at 0x10: result = 1, then the doorbell's 0xffffffff arms (busy).
      ok(`writeq ${hex(BAR + 0x10)} 0xffffffff00000001`), result(RES.BUSY),
      // readq at 0x00 is the trigger (length 0 here) and IOVA lo.
      val(`readq ${hex(BAR)}`, 0x99aa_bbcc_0000_0000n), result(RES.BAD_LEN),
      // 1- and 2-byte reads of the trigger do not run it; byte-range reads do when they cover it whole.
      wr(REG.DBELL, 1), val(`readb ${hex(BAR)}`, 0), val(`readw ${hex(BAR)}`, 0), val(`readl ${hex(BAR + 2)}`, 0), result(RES.BUSY),
      { cmd: `read ${hex(BAR + 1)} 0x3`, expect: 'OK 0x000000' }, result(RES.BUSY),
      { cmd: `read ${hex(BAR)} 0x4`, expect: 'OK 0x00000000' }, result(RES.BAD_LEN),
      ok(`write ${hex(BAR + 0x10)} 0x4 0x01000000`), result(1),
      ok(`write ${hex(BAR + 0x14)} 0x4 0x01000000`), result(RES.BUSY),
      ok(`write ${hex(BAR + 0x14)} 0x4 0x00000000`), result(RES.IDLE),
      ok(`write ${hex(BAR + 0x14)} 0x1 0x01`), result(RES.IDLE),
    ]);
  }, TIMEOUT);

  it('system_reset: registers back to their reset values, disarmed, BAR unmapped', async () => {
    await check(ARGS, [
      ...barSetup(),
      wr(REG.IOVA_LO, 0x10_0000), wr(REG.IOVA_HI, 1), wr(REG.LEN, 4), wr(REG.ATTRS, 0xf), wr(REG.GPA_LO, 0x10_0000), wr(REG.GPA_HI, 1),
      wr(REG.DBELL, 1), result(RES.BUSY),
      { reset: true },
      ...cfgRead(0x04, 0), ...cfgRead(0x10, 0),
      ...barSetup(),
      rd(REG.IOVA_LO, 0), rd(REG.IOVA_HI, 0), rd(REG.LEN, 0), result(RES.IDLE), rd(REG.ATTRS, 2), rd(REG.GPA_LO, 0), rd(REG.GPA_HI, 0),
      ...trigger(RES.NOT_ARMED),
    ]);
  }, TIMEOUT);
});

describe('iommu-testdev vs QEMU 11.1: results without an IOMMU', () => {
  it('success: the pattern 78 56 34 12, cut at the length, read back at the GPA', async () => {
    await check(ARGS, [
      ...barSetup(),
      ok(`write 0x100000 0x18 0x${'ee'.repeat(0x18)}`),
      ...dma(0x10_0000, 0x10_0000, 0x13, RES.OK),
      bytesAt(0x10_0000, patternHex(0x13) + 'eeeeeeeeee'),
      // An unaligned IOVA, and a GPA that is not the IOVA but holds the same bytes.
      ...dma(0x20_0002, 0x20_0002, 6, RES.OK), bytesAt(0x20_0000, '0000' + patternHex(6) + '0000'),
      ...dma(0x30_0000, 0x10_0000, 8, RES.OK), bytesAt(0x30_0000, patternHex(8)),
      // Long, across 64 KiB boundaries from an unaligned start; the pattern phase carries on.
      ...dma(0x40_fffd, 0x40_fffd, 0x2_0007, RES.OK),
      bytesAt(0x40_fff8, zeros(5) + patternHex(11)),
      bytesAt(0x41_fff8, patternHex(16, 0x1_fff8 - 0xfffd)),
      bytesAt(0x42_fff8, patternHex(12, 0x2_fff8 - 0xfffd) + zeros(4)),
    ]);
  }, TIMEOUT);

  it('0xDEAD0005 not armed, 0xDEAD0001 length 0, 0xDEAD0006 inconsistent attributes', async () => {
    const attrs: [number, number][] = [
      [0x0, RES.OK], [0x1, RES.OK], [0x7, RES.OK], [0x8, RES.BAD_ATTRS], [0x9, RES.OK], [0xa, RES.OK], [0xb, RES.BAD_ATTRS],
      [0xc, RES.OK], [0xd, RES.OK], [0xe, RES.OK], [0xf, RES.OK], [0x10, RES.OK], [0xffff_fff7, RES.OK], [0xffff_fff8, RES.BAD_ATTRS], [0xffff_fffa, RES.OK],
    ];
    await check(ARGS, [
      ...barSetup(),
      ...program(0x10_0000n, 0x10_0000n, 4), ...trigger(RES.NOT_ARMED), bytesAt(0x10_0000, zeros(4)),
      ...dma(0x10_0000, 0x10_0000, 0, RES.BAD_LEN),
      // Attribute errors are found before anything is written.
      wr(REG.ATTRS, 0x8), ...dma(0x10_0000, 0x10_0000, 4, RES.BAD_ATTRS), bytesAt(0x10_0000, zeros(4)),
      ...attrs.flatMap(([a, res]) => [wr(REG.ATTRS, a), wr(REG.DBELL, 1), ...trigger(res)]),
      // Length 0 wins over bad attributes.
      wr(REG.ATTRS, 0x8), ...dma(0x10_0000, 0x10_0000, 0, RES.BAD_LEN),
    ]);
  }, TIMEOUT);

  it('0xDEAD0002 write failed, 0xDEAD0003 read-back failed, 0xDEAD0004 mismatch', async () => {
    await check(ARGS, [
      ...barSetup(),
      ...dma(HOLE, 0x10_0000, 4, RES.TX_FAIL),
      // Running off the end of RAM: the RAM part is written all the same.
      ...dma(RAM_END - 4, RAM_END - 4, 8, RES.TX_FAIL), bytesAt(RAM_END - 8, zeros(4) + patternHex(4)),
      ...dma(0x10_0000, HOLE, 4, RES.RD_FAIL),
      ...dma(0x10_0000, RAM_END - 4, 8, RES.RD_FAIL),
      ...dma(0x10_0000, 0x20_0000, 8, RES.MISMATCH),
      ...dma(0x30_0000, 0x30_0001, 7, RES.MISMATCH),
      // The GPA's high half counts: the read-back is at 4 GiB + 0x300000 (nothing there with 128 MiB).
      ...dma(0x30_0000, 0x1_0030_0000n, 4, RES.RD_FAIL),
      ...dma(0x30_0000, 0x30_0000, 4, RES.OK),
      ...dma(0x1_0030_0000n, 0x30_0000, 4, RES.TX_FAIL),
    ]);
  }, TIMEOUT);

  it('a DMA into its own BAR0 is refused (re-entrancy guard): 0xDEAD0002 / 0xDEAD0003, registers untouched', async () => {
    await check(ARGS, [
      ...barSetup(),
      ...dma(BAR, 0x10_0000, 4, RES.TX_FAIL),
      ...dma(BAR + REG.IOVA_LO, 0x10_0000, 4, RES.TX_FAIL), rd(REG.IOVA_LO, BAR + REG.IOVA_LO),
      ...dma(0x10_0000, BAR, 4, RES.RD_FAIL),
      ...dma(0x10_0000, BAR + REG.RESULT, 4, RES.RD_FAIL),
      // BAR0 answers again once the DMA is over.
      rd(REG.GPA_LO, BAR + REG.RESULT),
    ]);
  }, TIMEOUT);

  it('addresses are 64-bit and wrap past 2^64', async () => {
    await check(ARGS, [
      ...barSetup(),
      ...dma(0xffff_ffff_ffff_fffcn, 0n, 8, RES.TX_FAIL), bytesAt(0, patternHex(4, 4) + zeros(4)),
      ...dma(0x10_0000, 0xffff_ffff_ffff_fffcn, 8, RES.RD_FAIL),
      ...dma(2n ** 53n, 0x10_0000, 4, RES.TX_FAIL),
    ]);
  }, TIMEOUT);
});

describe('iommu-testdev vs QEMU 11.1: through intel-iommu (legacy, 3-level second stage)', () => {
  const put64 = (addr: number, v: number | bigint): Step => ok(`writeq ${hex(addr)} ${hex(BigInt(v))}`);
  const vtdRl = (off: number, v: number): Step => val(`readl ${hex(VTD + off)}`, v);
  const frcd = (lo: number, hi: bigint): Step[] => [
    val(`readq ${hex(VTD + VTD_REG.FRCD0)}`, lo),
    val(`readq ${hex(VTD + VTD_REG.FRCD0 + 8)}`, hi),
  ];
  /** Root and context entries for 00:01.0 (DID 1, AW 3-level), three table levels, five leaves. */
  const tables = (): Step[] => [
    put64(ROOT, CTX | 1),
    put64(CTX + DEVFN * 16, L3 | 1), put64(CTX + DEVFN * 16 + 8, 1 | (1 << 8)),
    put64(L3, L2 | 3), put64(L2, L1 | 3),
    put64(L1 + 0 * 8, PAGE_A | 3), put64(L1 + 1 * 8, PAGE_B | 1), put64(L1 + 3 * 8, PAGE_D | 3),
    put64(L1 + 4 * 8, PAGE_E | 3), put64(L1 + 5 * 8, PAGE_F | 3),
  ];
  const enable = (): Step[] => [
    put64(VTD + VTD_REG.RTADDR, ROOT),
    ok(`writel ${hex(VTD + VTD_REG.GCMD)} ${hex(GCMD.SRTP)}`), vtdRl(VTD_REG.GSTS, GCMD.SRTP),
    ok(`writel ${hex(VTD + VTD_REG.GCMD)} ${hex(GCMD.TE)}`), vtdRl(VTD_REG.GSTS, (GCMD.TE | GCMD.SRTP) >>> 0),
  ];

  it('translation off: the IOVA is the address; on: writes land where the tables say, read back by GPA', async () => {
    await check(ARGS_VTD, [
      ...barSetup(), ...tables(),
      // Before TE: no translation (IOVA 0 is GPA 0), so the GPA PAGE_A does not hold the pattern.
      ...dma(0, PAGE_A, 0x10, RES.MISMATCH), bytesAt(0, patternHex(0x10)), bytesAt(PAGE_A, zeros(0x10)),
      ...enable(),
      ...dma(0, PAGE_A, 0x10, RES.OK), bytesAt(PAGE_A, patternHex(0x10) + zeros(4)),
      // The GPA is not translated: IOVA 0x3000 went to PAGE_D, not to GPA 0x3000.
      ...dma(0x3000, 0x3000, 4, RES.MISMATCH), bytesAt(PAGE_D, patternHex(4)), bytesAt(0x3000, zeros(4)),
      // Two contiguous leaves, across the page boundary.
      ...dma(0x4ffc, PAGE_E + 0xffc, 8, RES.OK), bytesAt(PAGE_F - 4, patternHex(8)),
      // A whole page.
      ...dma(0x3000, PAGE_D, 0x1000, RES.OK), bytesAt(PAGE_D + 0xff8, patternHex(8, 0xff8) + zeros(8)),
      vtdRl(VTD_REG.FSTS, 0),
    ]);
  }, TIMEOUT);

  it('a translation fault: 0xDEAD0002 and the fault record (FSTS.PPF, FRCD0); later pages still written', async () => {
    await check(ARGS_VTD, [
      ...barSetup(), ...tables(), ...enable(),
      // IOVA 0x1ffc-0x2003: the read-only leaf refuses the write; 0x2000 is not present (collapsed into the first fault).
      ...dma(0x1ffc, PAGE_B + 0xffc, 8, RES.TX_FAIL), bytesAt(PAGE_B + 0xff8, zeros(16)),
      vtdRl(VTD_REG.FSTS, FSTS_PPF), ...frcd(0x1000, frcdHi(FR_WRITE, DEVFN)),
      // 0x0000-0x3fff: page 0 written, 1 and 2 fault, page 3 written; the record keeps the first fault.
      ...dma(0, PAGE_A, 0x4000, RES.TX_FAIL), bytesAt(PAGE_A + 0xff8, patternHex(8, 0xff8)), bytesAt(PAGE_D, patternHex(8)),
      vtdRl(VTD_REG.FSTS, FSTS_PPF), ...frcd(0x1000, frcdHi(FR_WRITE, DEVFN)),
      // FSTS.PPF follows FRCD.F: clearing F (write 1) clears it; the next fault is recorded anew.
      ok(`writel ${hex(VTD + VTD_REG.FSTS)} 0x2`), vtdRl(VTD_REG.FSTS, FSTS_PPF),
      ok(`writel ${hex(VTD + VTD_REG.FRCD0 + 12)} 0x80000000`), vtdRl(VTD_REG.FSTS, 0),
      ...dma(0x2000, PAGE_A, 4, RES.TX_FAIL),
      vtdRl(VTD_REG.FSTS, FSTS_PPF), ...frcd(0x2000, frcdHi(FR_WRITE, DEVFN)),
      // Beyond the context's 39-bit address width.
      ok(`writel ${hex(VTD + VTD_REG.FRCD0 + 12)} 0x80000000`),
      ...dma(1n << 40n, PAGE_A, 4, RES.TX_FAIL), vtdRl(VTD_REG.FSTS, FSTS_PPF), ...frcd(2 ** 40, frcdHi(FR_BEYOND_MGAW, DEVFN)),
    ]);
  }, TIMEOUT);

  it('the interrupt window 0xFEE00000-0xFEEFFFFF: 4-byte writes are interrupt requests, others fail', async () => {
    await check(ARGS_VTD, [
      ...barSetup(), ...tables(), ...enable(),
      // 2 bytes: refused by the interrupt region (4-byte accesses only).
      ...dma(0xfee0_0000, PAGE_A, 2, RES.TX_FAIL),
      // Two 4-byte MSIs (data 0x12345678, remapping off): accepted; nothing at GPA PAGE_A.
      ...dma(0xfee0_0000, PAGE_A, 8, RES.MISMATCH),
      // The last 2 bytes of the window (refused), then 0xFEF00000: a translation fault.
      ...dma(0xfeef_fffe, PAGE_A, 4, RES.TX_FAIL), vtdRl(VTD_REG.FSTS, FSTS_PPF), ...frcd(0xfef0_0000, frcdHi(FR_WRITE, DEVFN)),
    ]);
  }, TIMEOUT);
});

// ==== scalable mode ========================================================================

/** A machine with intel-iommu in scalable mode (`iommu`: its properties) and the device (`dev`: its -device value). */
const smArgs = (iommu: string, dev = 'iommu-testdev'): string[] => ['-machine', 'q35', '-device', `intel-iommu,${iommu}`, '-device', dev];
/** Second stage, HAW 39: SAGAW offers 3 levels only. */
const SS39 = smArgs('scalable-mode=on,aw-bits=39');
/** Second stage, HAW 48: SAGAW offers 3 and 4 levels. */
const SS48 = smArgs('scalable-mode=on,aw-bits=48');
/** First stage (fsts=on needs aw-bits=48; ECAP.SSTS is then clear, so PGTT=2 is refused). */
const FS48 = smArgs('scalable-mode=on,fsts=on,aw-bits=48');

/** Scalable-mode root, context tables, PASID directory and table (each one page), then page tables. */
const SM_LAYOUT: SmLayout = { root: 0x100_0000, lowerContext: 0x100_1000, upperContext: 0x100_2000, pasidDir: 0x100_3000, pasidTable: 0x100_4000 };
const SM_TABLES = 0x101_0000;
const SM_TABLES_END = 0x108_0000;
/** 2 MiB-aligned, the output of the 2 MiB leaf. */
const PAGE_2M = 0x400_0000;
/** devfn 0x80 (`addr=0x10.0`): the first function served by the root entry's upper context table. */
const UPPER_DEVFN = 0x80;

/**
 * IOVAs of the scalable-mode tables (`smMaps`): RW, D, E, F -> PAGE_A, PAGE_D,
 * PAGE_E, PAGE_F (E and F a run of two leaves); RO -> PAGE_B without write
 * permission; nothing at UNMAPPED; a 2 MiB leaf M2 -> PAGE_2M; G1 a 1 GiB
 * leaf mapping G1 + x to x where a scenario adds it.
 */
const SM_IOVA = { RW: 0x0000, RO: 0x1000, UNMAPPED: 0x2000, D: 0x3000, E: 0x4000, F: 0x5000, M2: 0x40_0000, G1: 0x4000_0000 } as const;
/** A canonical upper-half IOVA (bits 63:47 set) for first-stage tables of 4 levels. */
const IOVA_UPPER_HALF = 0xffff_8000_0000_0000n;
/** The interrupt window (spec 3.15): QEMU's interrupt region for an untranslated request, fault 0x87 as a translation's output. */
const INTERRUPT_WINDOW = 0xfee0_0000;
/** The first page past the 39-bit address width of a 3-level second stage. */
const BEYOND_39_BITS = 2n ** 39n;

/** Fault reasons in scalable mode (spec 7.1.3; QEMU keeps the legacy codes for the second-stage walk). */
const SmFr = {
  BEYOND_AW: 0x4,
  WRITE: 0x5,
  PTE_RESERVED: 0xc,
  PASID_NOT_PRESENT: 0x59,
  PASID_INVALID: 0x5b,
  FS_NOT_PRESENT: 0x71,
  FS_RESERVED: 0x72,
  FS_NON_CANONICAL: 0x80,
  FS_USER: 0x81,
  FS_WRITE: 0x85,
  SM_INTERRUPT: 0x87,
} as const;

/** A fresh allocator of table pages. */
const smPages = () => new PageAllocator(SM_TABLES, SM_TABLES_END);

/** The usual mappings (see SM_IOVA); RO gets R only (second stage) or P|US without RW (first stage). */
function smMaps(t: PageTables): Step[] {
  const readOnly = t.stage === 'second' ? Ss.R : Fs.P | Fs.US;
  return [
    ...t.map(SM_IOVA.RW, PAGE_A), ...t.map(SM_IOVA.RO, PAGE_B, Leaf.K4, readOnly), ...t.map(SM_IOVA.D, PAGE_D),
    ...t.map(SM_IOVA.E, PAGE_E), ...t.map(SM_IOVA.F, PAGE_F), ...t.map(SM_IOVA.M2, PAGE_2M, Leaf.M2),
  ];
}

/** A PASID entry: second stage over `t` (AW 1 for 3 levels, 2 for 4), DID 1. */
const ssEntry = (t: PageTables, f: Partial<PasidEntryFields> = {}): bigint[] =>
  pasidEntryQwords({ pgtt: Pgtt.SecondStage, aw: t.levels - 2, did: 1, ssTable: t.top, ...f });
/** A PASID entry: first stage over `t` (4 levels), AW 2 (QEMU's canonical width 48), DID 1. */
const fsEntry = (t: PageTables, f: Partial<PasidEntryFields> = {}): bigint[] =>
  pasidEntryQwords({ pgtt: Pgtt.FirstStage, aw: 2, did: 1, fsTable: t.top, ...f });

/** BAR0, the tables of `t`, the chain root -> context -> PASID 0's `entry` for `devfn`, translation on. */
function smSetup(t: PageTables | null, entry: readonly bigint[], devfn = DEVFN): Step[] {
  return [...barSetup(devfn), ...(t ? smMaps(t) : []), ...smChain(SM_LAYOUT, devfn, entry), ...enableTranslation(SM_LAYOUT.root)];
}

/** Replaces PASID 0's entry and re-latches the root (QEMU drops its cached translations on SRTP). */
const newPasidEntry = (entry: readonly bigint[]): Step[] => [...pasidEntry(SM_LAYOUT.pasidTable, 0, entry), ...latchRoot(SM_LAYOUT.root)];

/** The record a faulting DMA write left (FSTS.PPF only, FRCD 0 with PP = 0, PV = 0), then cleared. */
const writeFault = (reason: number, iova: number | bigint, sid = DEVFN): Step[] => [...expectFault({ reason, sid, write: true }, iova), ...clearFault()];
/** No fault pending. */
const noFault = (): Step => regR32(VtdReg.FSTS, 0);
/** Zeroes `n` bytes at `addr`. */
const clear = (addr: number, n: number): Step => ok(`memset ${hex(addr)} ${hex(n)} 0x0`);

describe('iommu-testdev vs QEMU 11.1: intel-iommu scalable-mode=on, second stage (PGTT=2)', () => {
  it('3-level tables (aw-bits=39): 4 KiB leaves, a run of two leaves, a whole page, a 2 MiB leaf; the GPA is not translated', async () => {
    const t = new PageTables(smPages(), 'second', 3);
    await check(SS39, [
      ...smSetup(t, ssEntry(t)),
      ...dma(SM_IOVA.RW, PAGE_A, 0x10, RES.OK), bytesAt(PAGE_A, patternHex(0x10) + zeros(4)),
      // IOVA 0x3000 went to PAGE_D, not to GPA 0x3000.
      ...dma(SM_IOVA.D, SM_IOVA.D, 4, RES.MISMATCH), bytesAt(PAGE_D, patternHex(4)), bytesAt(SM_IOVA.D, zeros(4)),
      ...dma(SM_IOVA.F - 4, PAGE_F - 4, 8, RES.OK), bytesAt(PAGE_F - 4, patternHex(8)),
      ...dma(SM_IOVA.D, PAGE_D, 0x1000, RES.OK), bytesAt(PAGE_D + 0xff8, patternHex(8, 0xff8) + zeros(8)),
      // Inside the 2 MiB leaf, across 4 KiB boundaries from an unaligned start.
      ...dma(SM_IOVA.M2 + 0x1_fffd, PAGE_2M + 0x1_fffd, 0x1_0007, RES.OK),
      bytesAt(PAGE_2M + 0x1_fff8, zeros(5) + patternHex(11)), bytesAt(PAGE_2M + 0x2_fff8, patternHex(12, 0xfffb) + zeros(4)),
      ...expectNoFault(),
    ]);
  }, TIMEOUT);

  it('4-level tables (aw-bits=48, AW=2): 4 KiB, 2 MiB and 1 GiB leaves; a translation to nothing fails without a record; then 3 levels (AW=1)', async () => {
    const alloc = smPages();
    const t = new PageTables(alloc, 'second', 4);
    const t3 = new PageTables(alloc, 'second', 3);
    await check(SS48, [
      ...smSetup(t, ssEntry(t)), ...t.map(SM_IOVA.G1, 0, Leaf.G1),
      ...dma(SM_IOVA.RW, PAGE_A, 8, RES.OK), ...dma(SM_IOVA.M2 + 0x10, PAGE_2M + 0x10, 8, RES.OK),
      ...dma(SM_IOVA.G1 + PAGE_E + 0x20, PAGE_E + 0x20, 8, RES.OK), bytesAt(PAGE_E + 0x20, patternHex(8)),
      // The 1 GiB leaf runs past the end of RAM: translated, the RAM part written, no fault recorded.
      ...dma(SM_IOVA.G1 + RAM_END - 4, RAM_END - 4, 8, RES.TX_FAIL), bytesAt(RAM_END - 8, zeros(4) + patternHex(4)),
      noFault(),
      ...smMaps(t3), ...t3.map(SM_IOVA.G1, 0, Leaf.G1), ...newPasidEntry(ssEntry(t3)),
      ...dma(SM_IOVA.G1 + PAGE_D + 8, PAGE_D + 8, 8, RES.OK), ...dma(SM_IOVA.E, PAGE_E, 4, RES.OK),
      ...expectNoFault(),
    ]);
  }, TIMEOUT);

  it('walk faults: 0xDEAD0002 and FRCD 0 (write, PP = 0); later pages still written; the interrupt window', async () => {
    const t = new PageTables(smPages(), 'second', 3);
    await check(SS39, [
      ...smSetup(t, ssEntry(t)),
      ...dma(SM_IOVA.RO, PAGE_B, 4, RES.TX_FAIL), bytesAt(PAGE_B, zeros(4)), ...writeFault(SmFr.WRITE, SM_IOVA.RO),
      ...dma(SM_IOVA.UNMAPPED + 0x10, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.WRITE, SM_IOVA.UNMAPPED),
      // Pages 0 and 3 written; 1 (read-only) is recorded, 2 (unmapped) collapsed into it (same source-id, F still set).
      ...dma(SM_IOVA.RW, PAGE_A, 0x4000, RES.TX_FAIL), bytesAt(PAGE_A + 0xff8, patternHex(8, 0xff8)), bytesAt(PAGE_D + 0xff8, patternHex(8, 0xff8)),
      bytesAt(PAGE_B, zeros(4)), ...writeFault(SmFr.WRITE, SM_IOVA.RO),
      // Pages 0 and 3 are cached now: drop them before changing the tables.
      ...latchRoot(SM_LAYOUT.root),
      // Bit 62 (TM) is reserved without device-iotlb and stale-tm.
      ...t.patch(SM_IOVA.E, 1, { set: 1n << 62n }), ...dma(SM_IOVA.E, PAGE_E, 4, RES.TX_FAIL), ...writeFault(SmFr.PTE_RESERVED, SM_IOVA.E),
      ...dma(BEYOND_39_BITS, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.BEYOND_AW, BEYOND_39_BITS),
      // Past 2^64: the last page faults, then IOVA 0 (PAGE_A) takes the rest.
      clear(PAGE_A, 8), ...dma(0xffff_ffff_ffff_fffcn, PAGE_A, 8, RES.TX_FAIL), bytesAt(PAGE_A, patternHex(4, 4) + zeros(4)),
      ...writeFault(SmFr.BEYOND_AW, 0xffff_ffff_ffff_f000n),
      // A translation into the interrupt window faults 0x87 (legacy: 0xE).
      ...t.replace(SM_IOVA.D, 1, BigInt(INTERRUPT_WINDOW) | Ss.R | Ss.W), ...dma(SM_IOVA.D, PAGE_D, 4, RES.TX_FAIL), ...writeFault(SmFr.SM_INTERRUPT, SM_IOVA.D),
      // An untranslated request in the window is an interrupt request (4-byte writes only), not a translation.
      clear(PAGE_A, 8), ...dma(INTERRUPT_WINDOW, PAGE_A, 8, RES.MISMATCH), bytesAt(PAGE_A, zeros(8)),
      ...dma(INTERRUPT_WINDOW, PAGE_A, 2, RES.TX_FAIL), noFault(),
    ]);
  }, TIMEOUT);

  it('PASID-entry faults (0x59, 0x5B) and fault processing disable: 0xDEAD0002 with or without a record', async () => {
    const t = new PageTables(smPages(), 'second', 3);
    const ctxFpd: readonly [bigint, bigint, bigint, bigint] = [BigInt(SM_LAYOUT.pasidDir) | PRESENT | FPD, 0n, 0n, 0n];
    await check(SS39, [
      ...smSetup(t, ssEntry(t)),
      ...newPasidEntry(ssEntry(t, { present: false })), ...dma(SM_IOVA.RW, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.PASID_NOT_PRESENT, SM_IOVA.RW),
      ...newPasidEntry(ssEntry(t, { pgtt: Pgtt.FirstStage })), ...dma(SM_IOVA.RW, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.PASID_INVALID, SM_IOVA.RW),
      // FPD in the PASID entry: the walk fault is not recorded.
      ...newPasidEntry(ssEntry(t, { fpd: true })), ...dma(SM_IOVA.UNMAPPED, PAGE_A, 4, RES.TX_FAIL), noFault(),
      ...dma(SM_IOVA.D, PAGE_D, 4, RES.OK),
      // FPD in the context entry covers a PASID entry that is not present.
      ...smChain(SM_LAYOUT, DEVFN, ssEntry(t, { present: false }), { context: ctxFpd }), ...latchRoot(SM_LAYOUT.root),
      ...dma(SM_IOVA.RW, PAGE_A, 4, RES.TX_FAIL), noFault(),
      ...newPasidEntry(ssEntry(t)), ...dma(SM_IOVA.RW, PAGE_A, 4, RES.OK),
    ]);
  }, TIMEOUT);

  it('a device at devfn 0x80 is translated through the upper context table; its faults name SID 0x80', async () => {
    const t = new PageTables(smPages(), 'second', 3);
    await check(smArgs('scalable-mode=on,aw-bits=39', 'iommu-testdev,addr=0x10.0'), [
      ...barSetup(UPPER_DEVFN), ...smMaps(t),
      ...smChain(SM_LAYOUT, UPPER_DEVFN, ssEntry(t), { rootLo: 0n }), ...enableTranslation(SM_LAYOUT.root),
      ...dma(SM_IOVA.RW, PAGE_A, 8, RES.OK), bytesAt(PAGE_A, patternHex(8)),
      ...dma(SM_IOVA.UNMAPPED, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.WRITE, SM_IOVA.UNMAPPED, UPPER_DEVFN),
    ]);
  }, TIMEOUT);
});

describe('iommu-testdev vs QEMU 11.1: intel-iommu scalable-mode=on,fsts=on, first stage (PGTT=1)', () => {
  it('4 KiB and 2 MiB leaves and a canonical upper-half IOVA; A on every level walked, D on the leaf unless A was set, written back', async () => {
    const t = new PageTables(smPages(), 'first', 4);
    /** The entry of `level` on the walk of `iova` as mapped, plus `bits`. */
    const entryWith = (iova: number, level: number, bits: bigint): Step => get64(t.entryAt(iova, level), t.entry(iova, level) | bits);
    const upper = Number(IOVA_UPPER_HALF);
    await check(FS48, [
      ...smSetup(t, fsEntry(t)), ...t.map(upper, PAGE_D + 0x1000),
      entryWith(SM_IOVA.RW, 4, 0n), entryWith(SM_IOVA.RW, 1, 0n),
      ...dma(SM_IOVA.RW, PAGE_A, 0x10, RES.OK), bytesAt(PAGE_A, patternHex(0x10) + zeros(4)),
      ...[4, 3, 2].map((level) => entryWith(SM_IOVA.RW, level, Fs.A)), entryWith(SM_IOVA.RW, 1, Fs.A | Fs.D),
      // QEMU 11.1 sets A|D in a leaf only when both are clear: a leaf with A already set keeps D clear after a write.
      ...t.patch(SM_IOVA.D, 1, { set: Fs.A }), ...dma(SM_IOVA.D, SM_IOVA.D, 4, RES.MISMATCH), bytesAt(PAGE_D, patternHex(4)), entryWith(SM_IOVA.D, 1, 0n),
      ...dma(SM_IOVA.F - 4, PAGE_F - 4, 8, RES.OK), entryWith(SM_IOVA.E, 1, Fs.A | Fs.D), entryWith(SM_IOVA.F, 1, Fs.A | Fs.D),
      // Not written to: no A, no D.
      entryWith(SM_IOVA.RO, 1, 0n),
      ...dma(SM_IOVA.M2 + 0x1_fffd, PAGE_2M + 0x1_fffd, 0x1_0007, RES.OK), bytesAt(PAGE_2M + 0x2_fff8, patternHex(12, 0xfffb) + zeros(4)),
      entryWith(SM_IOVA.M2, 2, Fs.A | Fs.D), entryWith(SM_IOVA.M2, 3, Fs.A),
      // Bits 63:48 are not an index: the canonical upper half walks with bits 47:12.
      ...dma(IOVA_UPPER_HALF + 0x10n, PAGE_D + 0x1010, 8, RES.OK), entryWith(upper, 4, Fs.A), entryWith(upper, 1, Fs.A | Fs.D),
      ...expectNoFault(),
    ]);
  }, TIMEOUT);

  it('walk faults: 0x85, 0x71, 0x81, 0x72, 0x80, 0x87, and 0x5B for PGTT=2; later pages still written', async () => {
    const t = new PageTables(smPages(), 'first', 4);
    await check(FS48, [
      ...smSetup(t, fsEntry(t)),
      ...dma(SM_IOVA.RO, PAGE_B, 4, RES.TX_FAIL), bytesAt(PAGE_B, zeros(4)), ...writeFault(SmFr.FS_WRITE, SM_IOVA.RO),
      ...dma(SM_IOVA.UNMAPPED, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.FS_NOT_PRESENT, SM_IOVA.UNMAPPED),
      ...dma(SM_IOVA.RW, PAGE_A, 0x4000, RES.TX_FAIL), bytesAt(PAGE_A + 0xff8, patternHex(8, 0xff8)), bytesAt(PAGE_D + 0xff8, patternHex(8, 0xff8)),
      ...writeFault(SmFr.FS_WRITE, SM_IOVA.RO),
      ...latchRoot(SM_LAYOUT.root),
      ...t.patch(SM_IOVA.D, 1, { clear: Fs.US }), ...dma(SM_IOVA.D, PAGE_D, 4, RES.TX_FAIL), ...writeFault(SmFr.FS_USER, SM_IOVA.D),
      ...t.patch(SM_IOVA.E, 1, { set: 1n << 51n }), ...dma(SM_IOVA.E, PAGE_E, 4, RES.TX_FAIL), ...writeFault(SmFr.FS_RESERVED, SM_IOVA.E),
      ...dma(2n ** 47n, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.FS_NON_CANONICAL, 2n ** 47n),
      // Canonical but not mapped; the record keeps all 64 bits of the page.
      ...dma(0xffff_ffff_ffff_f000n, PAGE_A, 4, RES.TX_FAIL), ...writeFault(SmFr.FS_NOT_PRESENT, 0xffff_ffff_ffff_f000n),
      ...t.replace(SM_IOVA.F, 1, BigInt(INTERRUPT_WINDOW) | Fs.P | Fs.RW | Fs.US), ...dma(SM_IOVA.F, PAGE_F, 4, RES.TX_FAIL),
      ...writeFault(SmFr.SM_INTERRUPT, SM_IOVA.F),
      clear(PAGE_A, 8), ...dma(INTERRUPT_WINDOW, PAGE_A, 8, RES.MISMATCH), bytesAt(PAGE_A, zeros(8)), noFault(),
      ...newPasidEntry(fsEntry(t, { pgtt: Pgtt.SecondStage, ssTable: t.top })), ...dma(SM_IOVA.RW, PAGE_A, 4, RES.TX_FAIL),
      ...writeFault(SmFr.PASID_INVALID, SM_IOVA.RW),
    ]);
  }, TIMEOUT);
});

describe('iommu-testdev vs QEMU 11.1: intel-iommu scalable mode, pass-through (PGTT=4)', () => {
  for (const [name, args, aw, haw] of [['second-stage unit', SS39, 1, 39n], ['first-stage unit (fsts=on)', FS48, 2, 48n]] as const) {
    it(`IOVA = GPA, no page tables; addresses with nothing there fail without a fault record (${name})`, async () => {
      await check(args, [
        ...smSetup(null, pasidEntryQwords({ pgtt: Pgtt.PassThrough, aw, did: 1 })),
        ...dma(PAGE_A, PAGE_A, 0x10, RES.OK), bytesAt(PAGE_A, patternHex(0x10)),
        ...dma(SM_IOVA.D, PAGE_D, 4, RES.MISMATCH), bytesAt(SM_IOVA.D, patternHex(4)),
        ...dma(HOLE, PAGE_A, 4, RES.TX_FAIL),
        ...dma(RAM_END - 4, RAM_END - 4, 8, RES.TX_FAIL), bytesAt(RAM_END - 8, zeros(4) + patternHex(4)),
        // Beyond the unit's address width: not checked (no fault 0x4), nothing there.
        ...dma(2n ** haw, PAGE_A, 4, RES.TX_FAIL),
        clear(PAGE_A, 8), ...dma(INTERRUPT_WINDOW, PAGE_A, 8, RES.MISMATCH), bytesAt(PAGE_A, zeros(8)),
        ...expectNoFault(),
      ]);
    }, TIMEOUT);
  }
});

describe('iommu-testdev vs QEMU 11.1: the attribute register in scalable mode', () => {
  /** Attribute values and whether they are inconsistent (0xDEAD0006, checked before any access). */
  const ATTRS: readonly (readonly [number, boolean])[] = [
    ...Array.from({ length: 16 }, (_, a) => [a, a === 0x8 || a === 0xb] as const),
    [0x10, false], [0xffff_fff7, false], [0xffff_fff8, true], [0xffff_fffa, false],
  ];
  /** Per value: a DMA through a mapping (success, the pattern written) and through nothing (a recorded fault), or 0xDEAD0006 twice. */
  const sweep = (fault: number): Step[] =>
    ATTRS.flatMap(([a, bad]) => [
      wr(REG.ATTRS, a), clear(PAGE_A, 4),
      ...dma(SM_IOVA.RW, PAGE_A, 4, bad ? RES.BAD_ATTRS : RES.OK), bytesAt(PAGE_A, bad ? zeros(4) : patternHex(4)),
      ...dma(SM_IOVA.UNMAPPED, PAGE_A, 4, bad ? RES.BAD_ATTRS : RES.TX_FAIL), ...(bad ? [noFault()] : writeFault(fault, SM_IOVA.UNMAPPED)),
    ]);

  it('second stage: secure and space change nothing; only 0x8 and 0xB (space valid, contradicting) fail, before translation', async () => {
    const t = new PageTables(smPages(), 'second', 3);
    await check(SS39, [...smSetup(t, ssEntry(t)), ...sweep(SmFr.WRITE)]);
  }, TIMEOUT);

  it('first stage: the same answers', async () => {
    const t = new PageTables(smPages(), 'first', 4);
    await check(FS48, [...smSetup(t, fsEntry(t)), ...sweep(SmFr.FS_NOT_PRESENT)]);
  }, TIMEOUT);
});

describe('iommu-testdev vs QEMU 11.1: -device listings', () => {
  const q11 = haveQemu ? qemuOracle('11.1')! : null;
  const qemuOut = (args: string[]) => spawnSync(q11!.command, [...q11!.prefix, ...args], { encoding: 'utf8' }).stdout;

  it('-device iommu-testdev,help and the -device help line', () => {
    const help = runCli(['-device', 'iommu-testdev,help']);
    expect(help.code).toBe(0);
    expect(help.stdout.split('\n')[0]).toBe('iommu-testdev options:');
    expect(help.stdout).toContain('  rombar=<int32>         -  (default: -1)\n');
    const list = runCli(['-device', 'help']).stdout;
    expect(list).toContain('Misc devices:\n');
    expect(list).toContain('name "iommu-testdev", bus PCI, desc "A test device for IOMMU"\n');
    if (!q11) return;
    expect(help.stdout).toBe(qemuOut(['-device', 'iommu-testdev,help']));
    const misc = (text: string) => text.split('\n\n').find((b) => b.startsWith('Misc devices:'))!.split('\n');
    expect(misc(qemuOut(['-device', 'help']))).toContain('name "iommu-testdev", bus PCI, desc "A test device for IOMMU"');
    expect(misc(list)).toContain('name "iommu-testdev", bus PCI, desc "A test device for IOMMU"');
  });
});
