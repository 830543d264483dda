/**
 * The small qtest step builders the VT-d differential tests share: guest
 * memory and VT-d register reads and writes as harness `Step`s.  A read given
 * an expected value carries the exact reply QEMU prints for it
 * (`OK 0x%016x`); any other step is a bare qtest line whose reply is only
 * compared between the targets.  Every builder is a pure string formatter, so
 * a transcript built here is byte-for-byte what the tests sent when each
 * defined its own copy.
 *
 * Tests whose helpers expect a plain `OK` after a write (or mask values
 * differently) keep their own builders: those are not the same steps.
 */
import { hex, type Step } from '../harness/index.js';

/** QEMU's q35 base of the VT-d register page. */
export const VTD_BASE = 0xfed9_0000;

/** `OK 0x%016x`, the reply of a qtest readl/readq of `v`. */
export function okValue(v: number | bigint): string {
  return `OK 0x${BigInt(v).toString(16).padStart(16, '0')}`;
}

/** A qtest command, with the reply it must get when `expectValue` is given. */
export function step(cmd: string, expectValue?: number | bigint): Step {
  return expectValue === undefined ? cmd : { cmd, expect: okValue(expectValue) };
}

/** Little-endian bytes of qwords as the hex payload of a qtest `write`. */
export function leHex(qwords: readonly bigint[]): string {
  let s = '';
  for (const q of qwords) for (let i = 0n; i < 8n; i++) s += ((q >> (8n * i)) & 0xffn).toString(16).padStart(2, '0');
  return s;
}

// ---- guest memory -----------------------------------------------------------

/** writeq of guest memory. */
export const put64 = (addr: number, v: bigint | number): Step => step(`writeq ${hex(addr)} ${hex(BigInt(v))}`);
/** writel of guest memory. */
export const put32 = (addr: number, v: number): Step => step(`writel ${hex(addr)} ${hex(v >>> 0)}`);
/** readq of guest memory (with its expected value). */
export const get64 = (addr: number, expectValue?: bigint | number): Step => step(`readq ${hex(addr)}`, expectValue);
/** readl of guest memory (with its expected value). */
export const get32 = (addr: number, expectValue?: number): Step => step(`readl ${hex(addr)}`, expectValue);

// ---- VT-d registers (offsets from VTD_BASE) ---------------------------------

/** 32-bit VT-d register write. */
export const regW32 = (off: number, v: number): Step => step(`writel ${hex(VTD_BASE + off)} ${hex(v >>> 0)}`);
/** 64-bit VT-d register write. */
export const regW64 = (off: number, v: bigint | number): Step => step(`writeq ${hex(VTD_BASE + off)} ${hex(BigInt(v))}`);
/** 32-bit VT-d register read (with its expected value). */
export const regR32 = (off: number, expectValue?: number): Step => step(`readl ${hex(VTD_BASE + off)}`, expectValue);
/** 64-bit VT-d register read (with its expected value). */
export const regR64 = (off: number, expectValue?: bigint | number): Step => step(`readq ${hex(VTD_BASE + off)}`, expectValue);
