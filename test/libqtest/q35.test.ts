/**
 * What QEMU's tests/qtest/q35-test.c checks, through the libqtest client on
 * QEMU 11.1 and vtemu: the MCH (00:00.0) SMRAM control register 0x9D
 * (D_OPEN, D_LCK and what the lock freezes; system_reset unlocks), SMBASE
 * 0x9C (the query value, the lock, the 0x30000 window it closes), and TSEG
 * (ESMRAMC 0x9E: 1, 2 and 8 MiB below the top of low RAM, and the extended
 * size from `-global mch.extended-tseg-mbytes=N`, read back through register
 * 0x50), and the legacy window at 0xA0000 (with -nodefaults: no VGA
 * behind it): RAM below TSEG stays reachable, TSEG reads all-ones and drops writes
 * for everything but SMM once it is enabled with G_SMRAME.  The machine has
 * QEMU's default 128 MiB, so low RAM ends at 0x8000000.
 */
import { describe, expect, it } from 'vitest';
import { LibQtest } from '../harness/libqtest.js';
import { QPciBus } from '../harness/libqtest-pci.js';
import { libqtestTargets } from '../harness/libqtest-targets.js';

const TARGETS = libqtestTargets('test/libqtest/q35.test.ts');

/** MCH configuration registers (Intel 3 Series / ICH9 MCH datasheet 5.1; QEMU q35.h). */
const MCH = {
  DEVFN: 0,
  EXT_TSEG_MBYTES: 0x50,
  SMBASE: 0x9c,
  SMRAM: 0x9d,
  ESMRAMC: 0x9e,
} as const;
/** SMRAM (0x9D) bits. */
const Smram = { C_BASE_SEG: 0x02, G_SMRAME: 0x08, D_LCK: 0x10, D_CLS: 0x20, D_OPEN: 0x40 } as const;
/** ESMRAMC (0x9E): T_EN 0, TSEG_SZ 2:1, reset value 0x38 (SM_L1/L2/CACHE read as 1). */
const Esmramc = { T_EN: 0x01, SZ_SHIFT: 1, RESET: 0x38, SZ_EXTENDED: 3 } as const;
/** SMBASE (0x9C): writing all-ones asks whether SMBASE can be in RAM (0x01); 0x02 locks. */
const Smbase = { QUERY: 0xff, IN_RAM: 0x01, LCK: 0x02 } as const;
/** The window SMBASE locking closes (QEMU: 0x30000, 128 KiB). */
const SMBASE_WINDOW = 0x3_0000;
const SMBASE_WINDOW_SIZE = 0x2_0000;
/** Top of low RAM with -m 128M. */
const TOLUD = 0x800_0000;
const MiB = 0x10_0000;

async function withMch<T>(binary: NonNullable<(typeof TARGETS)[number]['binary']>, args: string, f: (q: LibQtest, pci: QPciBus) => Promise<T>): Promise<T> {
  const q = await LibQtest.start(binary, args);
  try {
    return await f(q, new QPciBus(q));
  } finally {
    await q.quit();
  }
}

describe.each(TARGETS)('libqtest q35 MCH on $name', ({ binary }) => {
  const smram = (pci: QPciBus) => pci.configReadb(MCH.DEVFN, MCH.SMRAM);
  const setSmram = (pci: QPciBus, v: number) => pci.configWriteb(MCH.DEVFN, MCH.SMRAM, v);

  it.skipIf(!binary)('SMRAM 0x9D: D_OPEN settable until D_LCK; the lock freezes the register; system_reset unlocks', async () => {
    await withMch(binary!, '-machine q35', async (q, pci) => {
      expect(await smram(pci)).toBe(Smram.C_BASE_SEG);
      expect(await pci.configReadb(MCH.DEVFN, MCH.ESMRAMC)).toBe(Esmramc.RESET);
      await setSmram(pci, Smram.D_OPEN);
      expect(await smram(pci)).toBe(Smram.D_OPEN | Smram.C_BASE_SEG);
      await setSmram(pci, 0);
      expect(await smram(pci)).toBe(Smram.C_BASE_SEG);
      await setSmram(pci, Smram.D_OPEN | Smram.G_SMRAME);
      expect(await smram(pci)).toBe(Smram.D_OPEN | Smram.G_SMRAME | Smram.C_BASE_SEG);
      // Locking clears D_OPEN; after it D_OPEN and G_SMRAME cannot change.
      await setSmram(pci, Smram.D_OPEN | Smram.G_SMRAME | Smram.D_LCK);
      expect(await smram(pci)).toBe(Smram.D_LCK | Smram.G_SMRAME | Smram.C_BASE_SEG);
      await setSmram(pci, Smram.D_OPEN | Smram.G_SMRAME);
      expect(await smram(pci)).toBe(Smram.D_LCK | Smram.G_SMRAME | Smram.C_BASE_SEG);
      await setSmram(pci, 0);
      expect(await smram(pci)).toBe(Smram.D_LCK | Smram.G_SMRAME | Smram.C_BASE_SEG);
      await q.systemReset();
      expect(await smram(pci)).toBe(Smram.C_BASE_SEG);
      await setSmram(pci, Smram.D_OPEN);
      expect(await smram(pci)).toBe(Smram.D_OPEN | Smram.C_BASE_SEG);
    });
  });

  // Without -nodefaults QEMU adds a VGA (00:01.0) whose legacy window answers 0xA0000 while SMRAM is
  // closed; vtemu has no default devices, so this runs -nodefaults on both.  Then nothing on the PCI
  // side decodes the window and QEMU's PCI view there is transparent: guest RAM shows whatever the
  // SMRAM bits say (test/diff/q35-smram-fwcfg.test.ts also places a PCI BAR there).
  it.skipIf(!binary)('legacy SMRAM 0xA0000 with -nodefaults: RAM whether D_OPEN or not', async () => {
    await withMch(binary!, '-machine q35 -nodefaults', async (q, pci) => {
      const A = 0xa_0000;
      await q.writeb(A, 0x55);
      expect(await q.readb(A)).toBe(0x55);
      await setSmram(pci, Smram.D_OPEN | Smram.G_SMRAME);
      expect(await q.readb(A)).toBe(0x55);
      await q.writeb(A, 0x66);
      expect(await q.readb(A)).toBe(0x66);
      await setSmram(pci, Smram.G_SMRAME);
      expect(await q.readb(A)).toBe(0x66);
      await q.writeb(A, 0x77);
      await setSmram(pci, Smram.D_OPEN);
      expect(await q.readb(A)).toBe(0x77);
      await setSmram(pci, 0);
      expect(await q.readb(A)).toBe(0x77);
    });
  });

  it.skipIf(!binary)('SMBASE 0x9C: query, lock, and the 0x30000 window closed by the lock until system_reset', async () => {
    await withMch(binary!, '-machine q35', async (q, pci) => {
      const smbase = () => pci.configReadb(MCH.DEVFN, MCH.SMBASE);
      expect(await smbase()).toBe(0);
      await q.writeb(SMBASE_WINDOW, 0x5a);
      await q.writeb(SMBASE_WINDOW + SMBASE_WINDOW_SIZE - 1, 0xa5);
      await pci.configWriteb(MCH.DEVFN, MCH.SMBASE, Smbase.QUERY);
      expect(await smbase()).toBe(Smbase.IN_RAM);
      // Not locked yet: still RAM.
      expect(await q.readb(SMBASE_WINDOW)).toBe(0x5a);
      await pci.configWriteb(MCH.DEVFN, MCH.SMBASE, Smbase.LCK);
      expect(await smbase()).toBe(Smbase.LCK);
      await pci.configWriteb(MCH.DEVFN, MCH.SMBASE, 0);
      expect(await smbase()).toBe(Smbase.LCK);
      await pci.configWriteb(MCH.DEVFN, MCH.SMBASE, Smbase.QUERY);
      expect(await smbase()).toBe(Smbase.LCK);
      expect(await q.readb(SMBASE_WINDOW)).toBe(0xff);
      expect(await q.readb(SMBASE_WINDOW + SMBASE_WINDOW_SIZE - 1)).toBe(0xff);
      expect(await q.readb(SMBASE_WINDOW - 1)).toBe(0);
      expect(await q.readb(SMBASE_WINDOW + SMBASE_WINDOW_SIZE)).toBe(0);
      await q.writeb(SMBASE_WINDOW, 0x11);
      expect(await q.readb(SMBASE_WINDOW)).toBe(0xff);
      await q.systemReset();
      expect(await smbase()).toBe(0);
      expect(await q.readb(SMBASE_WINDOW)).toBe(0x5a);
      expect(await q.readb(SMBASE_WINDOW + SMBASE_WINDOW_SIZE - 1)).toBe(0xa5);
    });
  });

  /** TSEG of `mbytes` selected by ESMRAMC size field `sz`: only SMM reaches it once T_EN and G_SMRAME are set. */
  async function checkTseg(q: LibQtest, pci: QPciBus, sz: number, mbytes: number): Promise<void> {
    const base = TOLUD - mbytes * MiB;
    await q.writeb(base - 1, 0x11);
    await q.writeb(base, 0x22);
    await q.writeb(TOLUD - 1, 0x33);
    await pci.configWriteb(MCH.DEVFN, MCH.ESMRAMC, (sz << Esmramc.SZ_SHIFT) | Esmramc.T_EN);
    expect(await pci.configReadb(MCH.DEVFN, MCH.ESMRAMC)).toBe(Esmramc.RESET | (sz << Esmramc.SZ_SHIFT) | Esmramc.T_EN);
    // T_EN alone changes nothing: G_SMRAME is off.
    expect(await q.readb(base)).toBe(0x22);
    await setSmram(pci, Smram.G_SMRAME);
    expect(await q.readb(base - 1)).toBe(0x11);
    expect(await q.readb(base)).toBe(0xff);
    expect(await q.readb(TOLUD - 1)).toBe(0xff);
    await q.writeb(base, 0x44);
    // Locked: ESMRAMC can no longer move or disable TSEG.
    await setSmram(pci, Smram.G_SMRAME | Smram.D_LCK);
    await pci.configWriteb(MCH.DEVFN, MCH.ESMRAMC, 0);
    expect(await pci.configReadb(MCH.DEVFN, MCH.ESMRAMC)).toBe(Esmramc.RESET | (sz << Esmramc.SZ_SHIFT) | Esmramc.T_EN);
    expect(await q.readb(base)).toBe(0xff);
    await q.systemReset();
    expect(await q.readb(base - 1)).toBe(0x11);
    expect(await q.readb(base)).toBe(0x22);
    expect(await q.readb(TOLUD - 1)).toBe(0x33);
  }

  for (const [sz, mbytes] of [[0, 1], [1, 2], [2, 8]] as const) {
    it.skipIf(!binary)(`TSEG of ${mbytes} MiB (ESMRAMC size ${sz})`, async () => {
      await withMch(binary!, '-machine q35', (q, pci) => checkTseg(q, pci, sz, mbytes));
    });
  }

  for (const [args, mbytes] of [['', 64], [' -global mch.extended-tseg-mbytes=16', 16], [' -global mch.extended-tseg-mbytes=3', 3]] as const) {
    it.skipIf(!binary)(`extended TSEG of ${mbytes} MiB (-machine q35${args}); register 0x50 reads the size`, async () => {
      await withMch(binary!, `-machine q35${args}`, async (q, pci) => {
        expect(await pci.configReadw(MCH.DEVFN, MCH.EXT_TSEG_MBYTES)).toBe(mbytes);
        await pci.configWritew(MCH.DEVFN, MCH.EXT_TSEG_MBYTES, 0xffff);
        expect(await pci.configReadw(MCH.DEVFN, MCH.EXT_TSEG_MBYTES)).toBe(mbytes);
        await checkTseg(q, pci, Esmramc.SZ_EXTENDED, mbytes);
      });
    });
  }
});
