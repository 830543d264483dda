/**
 * A firmware bus (port I/O + memory, as fw_cfg/ACPI readers use) over any
 * qtest runner, so the same firmware-side code reads QEMU (11.1 or 7.2) and vtemu.
 */
import type { FirmwareBus } from '../../src/hw/fw-cfg/client.js';
import type { QtestRunner } from './runner.js';

function ok(reply: string, cmd: string): string {
  if (!reply.startsWith('OK')) throw new Error(`${cmd}: ${reply}`);
  return reply;
}

/** The FirmwareBus of a qtest runner. */
export function qtestBus(r: QtestRunner): FirmwareBus {
  return {
    async outw(port, value) {
      const c = `outw 0x${port.toString(16)} 0x${(value & 0xffff).toString(16)}`;
      ok(await r.command(c), c);
    },
    async outl(port, value) {
      const c = `outl 0x${port.toString(16)} 0x${(value >>> 0).toString(16)}`;
      ok(await r.command(c), c);
    },
    async inb(port) {
      const c = `inb 0x${port.toString(16)}`;
      return Number.parseInt(ok(await r.command(c), c).slice(3), 16);
    },
    async memRead(addr, length) {
      if (length === 0) return new Uint8Array(0);
      const c = `read 0x${addr.toString(16)} ${length}`;
      return new Uint8Array(Buffer.from(ok(await r.command(c), c).slice(5), 'hex'));
    },
    async memWrite(addr, bytes) {
      if (bytes.length === 0) return;
      const c = `write 0x${addr.toString(16)} ${bytes.length} 0x${Buffer.from(bytes).toString('hex')}`;
      ok(await r.command(c), c);
    },
  };
}
