/**
 * What QEMU's tests/qtest/fw_cfg-test.c checks, through the libqtest client
 * on QEMU 11.1 and vtemu, started without -machine as fw_cfg-test is (the
 * binary's default machine): over the I/O interface (selector 0x510, data
 * 0x511; QEMU docs/specs/fw_cfg.rst), the signature, the interface ID, the
 * UUID from -uuid, the RAM size, nographic, the CPU counts from -smp, the
 * NUMA table (none, and two nodes), the boot menu flag from -boot menu=on,
 * and the files etc/boot-fail-wait (-boot reboot-timeout=N) and
 * etc/boot-menu-wait (-boot splash-time=N).
 */
import { describe, expect, it } from 'vitest';
import { LibQtest } from '../harness/libqtest.js';
import { libqtestTargets } from '../harness/libqtest-targets.js';

const TARGETS = libqtestTargets('test/libqtest/fw-cfg.test.ts');

/** The I/O ports of the x86 fw_cfg device. */
const FW_CFG_CTL = 0x510;
const FW_CFG_DATA = 0x511;
/** Item keys (fw_cfg.rst, "Selector Register"). */
const Key = {
  SIGNATURE: 0x00, ID: 0x01, UUID: 0x02, RAM_SIZE: 0x03, NOGRAPHIC: 0x04, NB_CPUS: 0x05,
  NUMA: 0x0d, BOOT_MENU: 0x0e, MAX_CPUS: 0x0f, FILE_DIR: 0x19,
} as const;
/** ID bits: the traditional interface, DMA. */
const ID_TRADITIONAL = 0x1;
const ID_DMA = 0x2;
/** A file directory entry: size (BE32), select (BE16), reserved, name[56]. */
const DIR_ENTRY_SIZE = 64;

/** Reads `n` bytes of item `key` through the data port. */
async function item(q: LibQtest, key: number, n: number): Promise<Uint8Array> {
  await q.outw(FW_CFG_CTL, key);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = await q.inb(FW_CFG_DATA);
  return out;
}

/** An item as a little-endian integer of `n` bytes. */
async function le(q: LibQtest, key: number, n: number): Promise<bigint> {
  const b = await item(q, key, n);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

/** The key of file `name` from the directory, or null. */
async function fileKey(q: LibQtest, name: string): Promise<{ key: number; size: number } | null> {
  const head = await item(q, Key.FILE_DIR, 4);
  const count = new DataView(head.buffer).getUint32(0);
  const all = await item(q, Key.FILE_DIR, 4 + count * DIR_ENTRY_SIZE);
  const view = new DataView(all.buffer);
  for (let i = 0; i < count; i++) {
    const at = 4 + i * DIR_ENTRY_SIZE;
    const raw = all.subarray(at + 8, at + DIR_ENTRY_SIZE);
    const fname = Buffer.from(raw.subarray(0, raw.indexOf(0) < 0 ? raw.length : raw.indexOf(0))).toString('latin1');
    if (fname === name) return { key: view.getUint16(at + 4), size: view.getUint32(at) };
  }
  return null;
}

describe.each(TARGETS)('libqtest fw_cfg on $name', ({ binary }) => {
  async function run(args: string, f: (q: LibQtest) => Promise<void>): Promise<void> {
    const q = await LibQtest.start(binary!, args);
    try {
      await f(q);
    } finally {
      await q.quit();
    }
  }

  it.skipIf(!binary)('signature, ID, RAM size, nographic and the CPU counts of the default machine', async () => {
    await run('', async (q) => {
      expect(Buffer.from(await item(q, Key.SIGNATURE, 4)).toString('latin1')).toBe('QEMU');
      expect(await le(q, Key.ID, 4)).toBe(BigInt(ID_TRADITIONAL | ID_DMA));
      expect(await le(q, Key.RAM_SIZE, 8)).toBe(128n << 20n);
      expect(await le(q, Key.NOGRAPHIC, 2)).toBe(0n);
      expect(await le(q, Key.NB_CPUS, 2)).toBe(1n);
      expect(await le(q, Key.MAX_CPUS, 2)).toBe(1n);
      expect(await le(q, Key.BOOT_MENU, 2)).toBe(0n);
      // No -numa: the table holds a node count of 0.
      expect(await le(q, Key.NUMA, 8)).toBe(0n);
    });
  });

  it.skipIf(!binary)('-uuid: the 16 bytes in order', async () => {
    await run('-uuid 4600cb32-38ec-4b2f-8acb-81c6ea54f2d8', async (q) => {
      expect(Buffer.from(await item(q, Key.UUID, 16)).toString('hex')).toBe('4600cb3238ec4b2f8acb81c6ea54f2d8');
    });
  });

  it.skipIf(!binary)('-smp cpus=1,maxcpus=8 and -smp 3,maxcpus=5', async () => {
    await run('-smp cpus=1,maxcpus=8', async (q) => {
      expect(await le(q, Key.NB_CPUS, 2)).toBe(1n);
      expect(await le(q, Key.MAX_CPUS, 2)).toBe(8n);
    });
    await run('-smp 3,maxcpus=5', async (q) => {
      expect(await le(q, Key.NB_CPUS, 2)).toBe(3n);
      expect(await le(q, Key.MAX_CPUS, 2)).toBe(5n);
    });
  });

  it.skipIf(!binary)('-numa: two nodes, the CPU-to-node table and the node sizes', async () => {
    const args =
      '-m 512M -smp 4,sockets=4,cores=1,threads=1 -object memory-backend-ram,id=ram0,size=128M -object memory-backend-ram,id=ram1,size=384M ' +
      '-numa node,memdev=ram0,nodeid=0 -numa node,memdev=ram1,nodeid=1 ' +
      '-numa cpu,node-id=0,socket-id=0 -numa cpu,node-id=1,socket-id=1 -numa cpu,node-id=0,socket-id=2 -numa cpu,node-id=1,socket-id=3';
    await run(args, async (q) => {
      // u64 nodes, then one u64 node id per APIC id (4), then one u64 size per node.
      const words = [...Array(1 + 4 + 2).keys()].map(() => 0n);
      const b = await item(q, Key.NUMA, 8 * words.length);
      const v = new DataView(b.buffer);
      for (let i = 0; i < words.length; i++) words[i] = v.getBigUint64(8 * i, true);
      expect(words).toEqual([2n, 0n, 1n, 0n, 1n, 128n << 20n, 384n << 20n]);
    });
  });

  it.skipIf(!binary)('-boot menu=on sets the boot menu flag', async () => {
    await run('-boot menu=on', async (q) => {
      expect(await le(q, Key.BOOT_MENU, 2)).toBe(1n);
    });
  });

  it.skipIf(!binary)('-boot reboot-timeout=15: etc/boot-fail-wait holds 15 (u32)', async () => {
    await run('-boot reboot-timeout=15', async (q) => {
      const f = await fileKey(q, 'etc/boot-fail-wait');
      expect(f?.size).toBe(4);
      expect(await le(q, f!.key, 4)).toBe(15n);
    });
  });

  it.skipIf(!binary)('-boot splash-time=12: etc/boot-menu-wait holds 12 (u16)', async () => {
    await run('-boot splash-time=12', async (q) => {
      const f = await fileKey(q, 'etc/boot-menu-wait');
      expect(f?.size).toBe(2);
      expect(await le(q, f!.key, 2)).toBe(12n);
    });
  });
});
