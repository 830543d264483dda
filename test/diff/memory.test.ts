/**
 * Differential test: every qtest memory and port command on QEMU 11.1 and
 * vtemu with identical replies (RAM below and above 4 GiB, unassigned
 * memory and ports, VT-d registers refusing 1/2-byte accesses, legacy ROM
 * areas with the same halt firmware on both sides, data formats of
 * read/write/b64read/b64write/memset), plus the `-m 64G` RSS check on the
 * spawned CLI.
 *
 * The fw_cfg port accesses stay on QEMU 7.2: vtemu's fw_cfg is 7.2's, and
 * QEMU 11.1's fw_cfg device answers 2- and 4-byte reads of its data port
 * (0x511) and its selector (0x510) with 0 on every machine type (pc-q35-7.2
 * included), where 7.2 (and vtemu) return data: a change of a q35 device
 * between the releases, not of anything the VT-d oracle is about.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { availableRamBackends } from '../../src/memory/ram-backend.js';
import { needQemu, diffTranscripts, VtemuCliRunner, type Step } from '../harness/index.js';

const qemu = needQemu('11.1', 'test/diff/memory.test.ts');
const qemu72 = needQemu('7.2', 'test/diff/memory.test.ts (fw_cfg ports)');

const RAM_STEPS: Step[] = [
  'endianness',
  'readb 0x1000',
  'writeb 0x1000 0x12',
  'writew 0x1002 0x3456',
  'writel 0x1004 0x789abcde',
  'writeq 0x1008 0x0123456789abcdef',
  'readb 0x1000',
  'readw 0x1002',
  'readl 0x1004',
  'readq 0x1008',
  'readw 0x1001',
  'readl 0x1003',
  'readq 0x1005',
  'read 0x1000 16',
  'read 0x0fff 3',
  'b64read 0x1000 16',
  'b64read 0x1000 0',
  'write 0x2000 4 0xdeadbeef',
  'read 0x2000 4',
  'write 0x2000 4 0x11',
  'read 0x2000 4',
  'write 0x2000 2 zz123',
  'read 0x2000 2',
  'write 0x2000 3 0xg1a-zz',
  'read 0x2000 3',
  'write 0x2000 4 0x',
  'write 0x2000 2 0x112233',
  'read 0x2000 4',
  'b64write 0x3000 3 AQID',
  'read 0x3000 4',
  'memset 0x3000 3 0x1a5',
  'read 0x2fff 5',
  'memset 0x3000 0 0xff',
  'read 0x3000 1',
  'writeb 0x4000 -1',
  'readq 0x4000',
  'writew 0x4000 0x123456',
  'readl 0x4000',
  'writel 0x4000 010',
  'readl 0x4000',
  'writeq 0x7fffff8 0xffffffffffffffff',
  'readq 0x7fffff8',
  'read 0x7fffffc 8',
  'readl 0x7fffffe',
  'readq 0x8000000',
  'writel 0x8000000 0x1',
  'readl 0x8000000',
];

const UNASSIGNED_STEPS: Step[] = [
  'readl 0xe0000000',
  'readq 0xe0000000',
  'writel 0xe0000000 0x1234',
  'readl 0xe0000000',
  'read 0xdffffffe 4',
  'readq 0xffffffffffffff00',
  'writeq 0xffffffffffffff00 0x1',
  'readq 0x100000000',
  'inb 0x1234',
  'inw 0x1234',
  'inl 0x1234',
  'outb 0x1234 0x55',
  'inb 0x1234',
  'foo bar',
  'module_load a b',
];

/** fw_cfg's selector and data ports, at every width (QEMU 7.2's fw_cfg). */
const FW_CFG_PORT_STEPS: Step[] = [
  'outw 0x510 0x0',
  'inb 0x511',
  'inb 0x511',
  'inw 0x511',
  'outw 0x510 0x1',
  'inl 0x511',
];

const VTD_STEPS: Step[] = [
  'readl 0xfed90000',
  'readb 0xfed90000',
  'readw 0xfed90000',
  'readl 0xfed90004',
  'readq 0xfed90008',
  'readq 0xfed90010',
  'writeb 0xfed90020 0xff',
  'readq 0xfed90020',
  'read 0xfed90000 4',
  'read 0xfed90000 8',
  'read 0xfed90010 8',
  'b64read 0xfed90010 8',
  'readl 0xfed90ffc',
];

/** The legacy areas below 1 MiB and the BIOS at the top of 4 GiB (the halt firmware). */
const ROM_STEPS: Step[] = [
  'readl 0xa0000',
  'writel 0xa0000 0x1234',
  'readl 0xa0000',
  'readl 0xc0000',
  'writel 0xc0000 0x1234',
  'readl 0xc0000',
  'writel 0xdfffc 0x1234',
  'readl 0xdfffc',
  'writel 0xe0000 0x1234',
  'readl 0xe0000',
  'readl 0xffff0',
  'writel 0xffff0 0x1234',
  'readl 0xffff0',
  'readq 0xffff0',
  'read 0xfffee 4',
  'readl 0xfffffff0',
  'readw 0xfffffff1',
  'writel 0xfffffff0 0',
  'readl 0xfffffff0',
  'b64read 0xfffffff0 16',
  'readl 0xfffe0000',
  'readl 0xfffeffff',
];

const HIGH_RAM_STEPS: Step[] = [
  'writel 0x100000000 0xcafef00d',
  'readl 0x100000000',
  'readq 0xfffffffc',
  'writeq 0x13ffffff8 0x1122334455667788',
  'readq 0x13ffffff8',
  'readl 0x140000000',
  'readl 0x7ffffffc',
  'writel 0x7ffffffc 0x1',
  'readl 0x7ffffffc',
];

describe.skipIf(!qemu)('memory commands vs QEMU 11.1', () => {
  it('RAM below 4 GiB (128 MiB default): every width, formats and edge cases', async () => {
    const r = await diffTranscripts([], RAM_STEPS);
    expect(r.difference).toBeNull();
    expect(r.vtemu.length).toBe(RAM_STEPS.length);
  });

  it('unassigned memory and ports', async () => {
    const r = await diffTranscripts([], UNASSIGNED_STEPS);
    expect(r.difference).toBeNull();
  });

  it('VT-d registers: refused 1/2-byte accesses read 0 and drop writes', async () => {
    const r = await diffTranscripts(['-device', 'intel-iommu'], VTD_STEPS);
    expect(r.difference).toBeNull();
  });

  it('legacy ROM areas and the BIOS image (reads, dropped writes)', async () => {
    const r = await diffTranscripts([], ROM_STEPS);
    expect(r.difference).toBeNull();
  });

  it('RAM split around the PCI hole with -m 3G', async () => {
    const r = await diffTranscripts(['-m', '3G'], HIGH_RAM_STEPS);
    expect(r.difference).toBeNull();
  });
});

describe.skipIf(!qemu72)('fw_cfg ports vs QEMU 7.2 (QEMU 7.2 only: 11.1 reads 0 from multi-byte port accesses)', () => {
  it('selector and data port at every width', async () => {
    const r = await diffTranscripts([], FW_CFG_PORT_STEPS, [], { oracle: '7.2' });
    expect(r.difference).toBeNull();
    // Multi-byte data-port reads return data (11.1: 'OK 0x0000' and 'OK 0x00000000').
    expect(r.qemu.map((l) => l.reply)).toEqual(['OK', 'OK 0x0051', 'OK 0x0045', 'OK 0xff4d', 'OK', 'OK 0x51ffff03']);
  });
});

// Guest RAM is sparse: 8 GiB of it (as much as QEMU 11.1 agrees to allocate on a
// small host: it refuses more than the host's overcommit heuristic allows, and
// so does vtemu) costs only the pages touched.  The last page: 2 GiB low, the
// rest from 4 GiB, ending at 10 GiB.
describe('vtemu -m 8G', () => {
  it.each(availableRamBackends())('answers endianness with a small resident set (%s RAM)', async (backend) => {
    const v = VtemuCliRunner.start(['-m', '8G'], { VTEMU_RAM: backend });
    try {
      expect(await v.command('endianness')).toBe('OK little');
      expect(await v.command('writel 0x27fff0000 0x1234')).toBe('OK');
      expect(await v.command('readl 0x27fff0000')).toBe('OK 0x0000000000001234');
      const status = readFileSync(`/proc/${v.child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
      expect(kb).toBeGreaterThan(0);
      expect(kb).toBeLessThan(100 * 1024);
    } finally {
      await v.close();
    }
  });
});
