/**
 * A GuestPlatform for unit tests of guest code: sparse RAM, optional MMIO
 * and port handlers, a virtual clock.  Not a machine: no devices unless a
 * test installs handlers.
 */
import { InterruptHub } from '../../../src/guest/interrupt-hub.js';
import type { AccessWidth, GuestInterrupt, GuestPlatform, InterruptHandler } from '../../../src/guest/platform.js';

/** Handler of an MMIO window or port range. */
export interface FakeHandler {
  read(offset: number, size: 1 | 2 | 4 | 8): bigint;
  write(offset: number, size: 1 | 2 | 4 | 8, value: bigint): void;
}

/** RAM page size (the unit of `ramPage`). */
export const FAKE_RAM_PAGE = 0x1000;
const PAGE = FAKE_RAM_PAGE;

/** Sparse-RAM platform with pluggable MMIO/port handlers. */
export class FakePlatform implements GuestPlatform {
  readonly name = 'fake';
  readonly interrupts = { msi: true, intx: true };
  readonly timeMode = 'virtual' as const;
  readonly hub = new InterruptHub();
  private readonly pages = new Map<number, Uint8Array>();
  private readonly mmio: Array<{ base: number; size: number; h: FakeHandler }> = [];
  private readonly ports: Array<{ base: number; size: number; h: FakeHandler }> = [];
  private clock = 0;
  /** Every access, for assertions ("w4 0x1000 0x5" ...). */
  readonly trace: string[] = [];

  /** Maps a handler over [base, base+size) of the memory space. */
  mapMmio(base: number, size: number, h: FakeHandler): void { this.mmio.push({ base, size, h }); }
  /** Maps a handler over a port range. */
  mapPorts(base: number, size: number, h: FakeHandler): void { this.ports.push({ base, size, h }); }

  private page(addr: number): Uint8Array {
    const n = Math.floor(addr / PAGE);
    let p = this.pages.get(n);
    if (!p) { p = new Uint8Array(PAGE); this.pages.set(n, p); }
    return p;
  }

  /**
   * The buffer of RAM page `index` (4 KiB, never replaced once created), or
   * null for a page never touched when `create` is false: lets a test share
   * this RAM synchronously with a device model (e.g. a VT-d unit reading its
   * queue and tables and writing wait status).
   */
  ramPage(index: number, create: boolean): ArrayBuffer | null {
    const p = this.pages.get(index);
    if (p) return p.buffer as ArrayBuffer;
    return create ? this.page(index * PAGE).buffer as ArrayBuffer : null;
  }

  private ramRead(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = this.page(addr + i)[(addr + i) % PAGE]!;
    return out;
  }
  private ramWrite(addr: number, bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.page(addr + i)[(addr + i) % PAGE] = bytes[i]!;
  }
  private find(list: typeof this.mmio, addr: number): { base: number; h: FakeHandler } | undefined {
    return list.find((m) => addr >= m.base && addr < m.base + m.size);
  }
  private readLe(addr: number, size: number): bigint {
    const m = this.find(this.mmio, addr);
    if (m) return m.h.read(addr - m.base, size as 1 | 2 | 4 | 8);
    const b = this.ramRead(addr, size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return v;
  }
  private writeLe(addr: number, size: number, value: bigint): void {
    this.trace.push(`w${size} 0x${addr.toString(16)} 0x${value.toString(16)}`);
    const m = this.find(this.mmio, addr);
    if (m) { m.h.write(addr - m.base, size as 1 | 2 | 4 | 8, value); return; }
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    this.ramWrite(addr, b);
  }

  async read(addr: number, size: AccessWidth): Promise<number> { return Number(this.readLe(addr, size)); }
  async write(addr: number, size: AccessWidth, value: number): Promise<void> { this.writeLe(addr, size, BigInt(value >>> 0) & ((1n << BigInt(8 * size)) - 1n)); }
  async read64(addr: number): Promise<bigint> { return this.readLe(addr, 8); }
  async write64(addr: number, value: bigint): Promise<void> { this.writeLe(addr, 8, BigInt.asUintN(64, value)); }
  async in(port: number, size: AccessWidth): Promise<number> {
    const m = this.find(this.ports, port);
    return m ? Number(m.h.read(port - m.base, size)) : size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
  }
  async out(port: number, size: AccessWidth, value: number): Promise<void> {
    this.trace.push(`out${size} 0x${port.toString(16)} 0x${(value >>> 0).toString(16)}`);
    this.find(this.ports, port)?.h.write(port - this.find(this.ports, port)!.base, size, BigInt(value >>> 0));
  }
  async readBytes(addr: number, length: number): Promise<Uint8Array> { return this.ramRead(addr, length); }
  async writeBytes(addr: number, bytes: Uint8Array): Promise<void> { this.ramWrite(addr, bytes); }
  async fill(addr: number, length: number, byte: number): Promise<void> { this.ramWrite(addr, new Uint8Array(length).fill(byte)); }
  onInterrupt(kind: 'msi' | 'intx', vector: number, handler: InterruptHandler): void { this.hub.on(kind, vector, handler); }
  takeInterrupts(): GuestInterrupt[] { return this.hub.take(); }
  async sleep(ns: number): Promise<void> { this.clock += ns; }
  async now(): Promise<number> { return this.clock; }
  async close(): Promise<void> {}
}
