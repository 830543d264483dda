import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QtestClient, QtestError } from './qtest-client.js';

/** A scripted qtest target: answers each line with `reply(line)`; may inject asynchronous lines. */
function target(reply: (line: string, push: (s: string) => void) => string): { client: QtestClient; seen: string[] } {
  const toClient = new PassThrough();
  const fromClient = new PassThrough();
  const seen: string[] = [];
  let buf = '';
  fromClient.setEncoding('utf8');
  fromClient.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      seen.push(line);
      const r = reply(line, (s) => toClient.write(s + '\n'));
      toClient.write(r + '\n');
    }
  });
  return { client: QtestClient.fromStreams('fake', toClient, fromClient), seen };
}

describe('QtestClient', () => {
  it('probes a QEMU-7.2-like target: real time, INTx only', async () => {
    const { client } = target((l) => (l === 'endianness' ? 'OK little' : l.startsWith('irq_intercept_in') ? 'OK' : `FAIL Unknown command '${l.split(' ')[0]}'`));
    await client.probe();
    expect(client.timeMode).toBe('real');
    expect(client.interrupts).toEqual({ intx: true, msi: false });
  });

  it('probes a vtemu-like target: virtual clock and the MSI extension', async () => {
    const { client } = target((l) => (l === 'endianness' ? 'OK little' : l.startsWith('clock_step') ? 'OK 5' : 'OK'));
    await client.probe();
    expect(client.timeMode).toBe('virtual');
    expect(client.interrupts).toEqual({ intx: true, msi: true });
    expect(await client.now()).toBe(5);
  });

  it('probes a QEMU-11.1-like target (-accel qtest): virtual clock read from its own steps, no zero steps sent', async () => {
    let clock = 0;
    const { client, seen } = target((l) => {
      if (l === 'endianness') return 'OK little';
      if (l === 'irq_intercept_in ioapic') return 'OK';
      const step = /^clock_step (\d+)$/.exec(l);
      if (!step) return `FAIL Unknown command '${l.split(' ')[0]}'`;
      // QEMU 11.1 qtest.c: a step that does not advance the clock is refused.
      if (Number(step[1]) === 0) return 'FAIL could not advance time';
      clock += Number(step[1]);
      return `OK ${clock}`;
    });
    await client.probe();
    expect(client.timeMode).toBe('virtual');
    expect(client.interrupts).toEqual({ intx: true, msi: false });
    expect(await client.now()).toBe(0);
    await client.sleep(1500);
    await client.sleep(0.2); // rounds to 0: nothing sent
    expect(await client.now()).toBe(1500);
    expect(seen.filter((l) => l.startsWith('clock_step'))).toEqual(['clock_step 0', 'clock_step 0', 'clock_step 1500', 'clock_step 0']);
  });

  it('formats commands, parses replies, and routes asynchronous lines', async () => {
    const { client, seen } = target((l, push) => {
      if (l.startsWith('readl')) { push('IRQ raise 17'); push('MSI 0xfee00000 0x4ee'); return 'OK 0x0000000000000010'; }
      if (l.startsWith('readq')) return 'OK 0x00d2008c22260206';
      if (l.startsWith('inb')) return 'OK 0x0051';
      if (l.startsWith('read ')) return 'OK 0x0102';
      return 'OK';
    });
    const got: number[] = [];
    client.onInterrupt('msi', 0xee, (irq) => got.push(irq.data!));
    expect(await client.read(0xfed90000, 4)).toBe(0x10);
    expect(await client.read64(0xfed90008)).toBe(0x00d2008c22260206n);
    expect(await client.in(0x511, 1)).toBe(0x51);
    expect(await client.readBytes(0x1000, 2)).toEqual(new Uint8Array([1, 2]));
    await client.writeBytes(0x2000, new Uint8Array([0xab, 0xcd]));
    await client.write64(0x20, -1n);
    await client.out(0xcf8, 4, 0x80000000);
    expect(got).toEqual([0x4ee]);
    expect(client.takeInterrupts()).toEqual([
      { kind: 'intx', vector: 17, level: true },
      { kind: 'msi', vector: 0xee, address: 0xfee00000, data: 0x4ee },
    ]);
    expect(seen).toEqual(['readl 0xfed90000', 'readq 0xfed90008', 'inb 0x511', 'read 0x1000 0x2', 'write 0x2000 0x2 0xabcd',
      'writeq 0x20 0xffffffffffffffff', 'outl 0xcf8 0x80000000']);
  });

  it('rejects FAIL replies with the command in the message', async () => {
    const { client } = target(() => 'FAIL nope');
    await expect(client.read(0, 4)).rejects.toThrow(QtestError);
    await expect(client.ok('foo')).rejects.toThrow("'foo' -> 'FAIL nope'");
  });

  it('connects to a target listening on a unix socket', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'qtest-sock-')), 'qtest.sock');
    const server = createServer((sock) => {
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        for (const line of d.split('\n').filter(Boolean)) sock.write(line === 'endianness' ? 'OK little\n' : line.startsWith('readl') ? 'OK 0x00000000000000ed\n' : 'FAIL x\n');
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const c = await QtestClient.connectUnix('sock', path);
      expect(c.timeMode).toBe('real');
      expect(await c.read(0xe0000000, 4)).toBe(0xed);
      await c.close();
    } finally {
      server.close();
    }
  });
});
