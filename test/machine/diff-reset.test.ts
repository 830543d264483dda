/**
 * system_reset against QEMU 11.1 (QMP on QEMU, the machine's reset on
 * vtemu): VT-d registers, the edu function's config space and registers
 * and the fw_cfg selector read the same after the reset as on QEMU.
 */
import { describe, expect, it } from 'vitest';
import { needQemu, diffTranscripts, type Step } from '../harness/index.js';

const qemu = needQemu('11.1', 'test/machine/diff-reset.test.ts');

const READS: Step[] = [
  'readl 0xfed90000',
  'readq 0xfed90008',
  'readq 0xfed90010',
  'readl 0xfed9001c',
  'readq 0xfed90020',
  'readl 0xfed90034',
  'readl 0xfed90038',
  'readl 0xfed9003c',
  'readl 0xfed90040',
  'readq 0xfed90220',
  'readq 0xfed90228',
  'outl 0xcf8 0x80000800',
  'inl 0xcfc',
  'outl 0xcf8 0x80000804',
  'inl 0xcfc',
  'outl 0xcf8 0x80000810',
  'inl 0xcfc',
  'outl 0xcf8 0x8000083c',
  'inl 0xcfc',
  'outl 0xcf8 0x80000000',
  'inl 0xcfc',
  'outl 0xcf8 0x80000060',
  'inl 0xcfc',
  'outl 0xcf8 0x8000f860',
  'inl 0xcfc',
  'readl 0xe0000000',
  'inb 0x511',
];

const DIRTY: Step[] = [
  'outl 0xcf8 0x80000810',
  'outl 0xcfc 0xe0000000',
  'outl 0xcf8 0x80000804',
  'outl 0xcfc 0x6',
  'outl 0xcf8 0x8000083c',
  'outl 0xcfc 0xb',
  'writel 0xe0000004 0x12345678',
  'writel 0xe0000060 0x1',
  'writel 0xfed90040 0xfee00000',
  'writel 0xfed9003c 0x44',
  'writel 0xfed90038 0x0',
  'writeq 0xfed90020 0x1000000',
  'writel 0xfed90018 0x40000000',
  'writel 0xfed90018 0x80000000',
  'writel 0xe0000080 0x100000',
  'writel 0xe0000088 0x40000',
  'writel 0xe0000090 0x4',
  'writel 0xe0000098 0x1',
  // The DMA's 100 ms of virtual time, then its run bit polled clear.
  { before: { ns: 100_000_000 }, poll: 'readl 0xe0000098', until: (r: string) => (parseInt(r.slice(3), 16) & 1) === 0, quiet: true },
  'outl 0xcf8 0x8000f860',
  'outl 0xcfc 0x0b0a0b0a',
  'outw 0x510 0x1',
];

describe.skipIf(!qemu)('system_reset vs QEMU 11.1', () => {
  it('a dirtied machine reads the same as QEMU after system_reset', async () => {
    const steps: Step[] = [...READS, ...DIRTY, ...READS, { reset: true }, ...READS];
    const r = await diffTranscripts(['-device', 'intel-iommu', '-device', 'edu'], steps);
    expect(r.difference).toBeNull();
  });
});
