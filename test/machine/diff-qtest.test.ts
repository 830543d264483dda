/**
 * Differential qtest sessions that exercise the protocol's asynchronous
 * side against QEMU 11.1: IRQ lines from `irq_intercept_in ioapic` ordered
 * before the reply of the command that caused them, `set_irq_in`, and
 * virtual-time waits (`clock_step` on both sides) around an edu DMA, and an
 * edu factorial (QEMU's factorial thread runs in real time: polled).
 */
import { describe, expect, it } from 'vitest';
import { needQemu, diffTranscripts, type Step } from '../harness/index.js';

const qemu = needQemu('11.1', 'test/machine/diff-qtest.test.ts');

/** edu at 00:01.0, BAR0 at 0xE0000000, memory decode + bus master. */
const EDU_UP: Step[] = ['outl 0xcf8 0x80000810', 'outl 0xcfc 0xe0000000', 'outl 0xcf8 0x80000804', 'outl 0xcfc 0x6'];

/** Step the 100 ms of virtual time an edu DMA takes, then check (poll) that the device says it is done. */
const DMA_DONE: Step = { before: { ns: 100_000_000 }, poll: 'readl 0xe0000098', until: (r) => (parseInt(r.slice(3), 16) & 1) === 0, quiet: true };
const FACTORIAL_DONE: Step = { poll: 'readl 0xe0000020', until: (r) => (parseInt(r.slice(3), 16) & 1) === 0, quiet: true };

describe.skipIf(!qemu)('asynchronous qtest lines vs QEMU 11.1', () => {
  it('edu INTx: IRQ raise/lower lines come before the reply', async () => {
    const steps: Step[] = [
      'irq_intercept_in ioapic',
      ...EDU_UP,
      'writel 0xe0000060 0x1',
      'readl 0xe0000024',
      'writel 0xe0000060 0x4',
      'writel 0xe0000064 0x1',
      'writel 0xe0000064 0x4',
      'readl 0xe0000024',
      'set_irq_in ioapic unnamed-gpio-in 17 1',
      'set_irq_in ioapic unnamed-gpio-in 17 1',
      'set_irq_in ioapic unnamed-gpio-in 17 0',
      'irq_intercept_in ioapic',
      'irq_intercept_in nosuch',
    ];
    const r = await diffTranscripts(['-device', 'edu,addr=1'], steps);
    expect(r.difference).toBeNull();
    expect(r.vtemu.map((l) => l.reply)).toContain('IRQ raise 21');
  });

  it('edu DMA and factorial across waits', async () => {
    const steps: Step[] = [
      'irq_intercept_in ioapic',
      ...EDU_UP,
      'write 0x100000 8 0x0102030405060708',
      'writeq 0xe0000080 0x100000',
      'writeq 0xe0000088 0x40000',
      'writeq 0xe0000090 0x8',
      'writeq 0xe0000098 0x1',
      DMA_DONE,
      'writeq 0xe0000080 0x40000',
      'writeq 0xe0000088 0x200000',
      'writeq 0xe0000090 0x8',
      'writeq 0xe0000098 0x7',
      DMA_DONE,
      'read 0x200000 8',
      'readl 0xe0000024',
      'writel 0xe0000064 0x100',
      // No factorial IRQ (status bit 7): QEMU computes in a thread, so its IRQ line may land after the reply.
      'writel 0xe0000008 0x5',
      FACTORIAL_DONE,
      'readl 0xe0000008',
      'readl 0xe0000020',
      'readl 0xe0000024',
      'writel 0xe0000064 0x1',
    ];
    const r = await diffTranscripts(['-device', 'edu'], steps);
    expect(r.difference).toBeNull();
    expect(r.vtemu.find((l) => l.cmd === 'read 0x200000 8')?.reply).toBe('OK 0x0102030405060708');
  });
});
