/**
 * The Linux-like guest's shared-virtual-addressing flow on
 * machines/q35-sva.json (issue 10, item 4), step by step as Linux runs it
 * for a device driver that calls iommu_sva_bind_device:
 *
 *   1. boot: firmware, the VT-d driver, the unit's SVA capability
 *      (scalable mode, PASID, PRS, first stage, device-TLB; PDS, SMPWC)
 *      and its page-request queue with the event interrupt;
 *   2. device: sva-testdev's ATS / PASID / PRI capabilities (read by the
 *      driver at probe through ECAM), its context entry with DTE / PASIDE /
 *      PRE (written at probe), PASID, PRI and ATS enabled;
 *   3. bind: a process address space (x86 page table, a 2 MiB page too), a
 *      PASID, the first-stage PASID entry;
 *   4. DMA to process virtual addresses through the device-TLB;
 *   5. faults: a page not present -> page request -> handle_mm_fault ->
 *      page-group response Success -> the device retries; an address the
 *      process does not own -> Invalid Request;
 *   6. unmap: PTE cleared, PASID-IOTLB and device-TLB invalidation; the
 *      device must page-request again, and is refused;
 *   7. unbind: PASID entry torn down with its invalidations and the drain,
 *      ATS / PRI / PASID disabled.
 *
 * Each step records readable lines (registers and descriptor words) and
 * checks.  The device driver here holds its own copy of sva-testdev's
 * register map (guest code sees only the machine); a test compares it with
 * src/hw/sva-testdev/regs.ts.  Runs on any GuestPlatform with sva-testdev,
 * which QEMU has not.
 */
import { pattern, type Check } from './linux-guest.js';
import { PAGE_SIZE } from './alloc.js';
import { runFirmware } from './firmware/boot.js';
import type { PciFunction } from './firmware/pci-enum.js';
import type { GuestPlatform } from './platform.js';
import { LinuxVtd, type DriverOptions } from './linux-vtd/driver.js';
import { SmCtx, smContextAddress } from './linux-vtd/pasid.js';
import { ProcessMm } from './linux-vtd/process-mm.js';
import { PageRequestQueue, PRQ_DEPTH, PrsBit, type PrqRun } from './linux-vtd/prq.js';
import { PasidAllocator, SvaBond, type SvaDevice, type SvaSkip } from './linux-vtd/sva.js';
import { responseName } from './linux-vtd/sva-descriptors.js';
import type { VtdUnit } from './linux-vtd/unit.js';

// ---- the sva-testdev driver ---------------------------------------------------

/** sva-testdev's PCI identity. */
export const SVA_VENDOR = 0x1234;
export const SVA_DEVICE = 0x5341;
/** BAR0 registers (guest copy of the device's register map). */
export const SvaDevReg = {
  Id: 0x000, Status: 0x004, Command: 0x008, Result: 0x00c, AddrLo: 0x010, AddrHi: 0x014, Length: 0x018, Pasid: 0x01c,
  AtcCount: 0x020, InvCount: 0x024, PrqCount: 0x028, PrgCount: 0x02c, LastAts: 0x030, IrqStatus: 0x034, IrqEnable: 0x038,
  Control: 0x03c, XlatLo: 0x040, XlatHi: 0x044, Prgi: 0x048, LastPrg: 0x04c, Buffer: 0x1000,
} as const;
/** COMMAND opcodes and flags. */
export const SvaDevCmd = {
  Nop: 0, Read: 1, Write: 2, Translate: 3, PageRequest: 4, AtcFlush: 5,
  PASID: 1 << 8, ATC: 1 << 9, PRI: 1 << 10, PRIV: 1 << 11, EXEC: 1 << 12, WRITE: 1 << 13,
} as const;
/** RESULT values. */
export const SvaDevResult = {
  Ok: 0, Pending: 1, DmaFault: 0x10, AtsUr: 0x11, AtsCa: 0x12, NoAccess: 0x13, AtsDisabled: 0x14, PasidDisabled: 0x15,
  PriUnavailable: 0x16, PrqRefused: 0x17, PrqOverflow: 0x18, PrgInvalid: 0x19, PrgFailure: 0x1a, BadCommand: 0x1b,
} as const;
/** STATUS bits. */
export const SvaDevStatus = { Pending: 1, AtsEnabled: 2, PasidEnabled: 4, PriEnabled: 8 } as const;
/** PRGI is 9 bits. */
const PRGI_MASK = 0x1ff;
/** LAST_ATS: R 0, W 1, U 2, status 7:4, log2 size 15:8. */
const LAST_ATS_STATUS_SHIFT = 4;
const LAST_ATS_SIZE_SHIFT = 8;
const NIBBLE = 0xf;
const BYTE = 0xff;
const DWORD = 4;
const TWO_POW_32 = 2 ** 32;

/** Name of a RESULT value. */
export function svaResultName(r: number): string {
  const e = Object.entries(SvaDevResult).find(([, v]) => v === r);
  return e ? `${e[0]} (0x${r.toString(16)})` : `0x${r.toString(16)}`;
}

/** The device's counters and last completions, for logs. */
export interface SvaDevCounters {
  readonly atc: number;
  readonly inv: number;
  readonly prq: number;
  readonly prg: number;
  readonly lastAts: number;
  readonly lastPrg: number;
  readonly xlat: number;
}

/** A driver for sva-testdev. */
export class SvaTestdevDriver {
  constructor(private readonly p: GuestPlatform, readonly fn: PciFunction, readonly bar0: number) {}

  /** Binds to a function the firmware enumerated (BAR0 assigned). */
  static bind(p: GuestPlatform, fn: PciFunction): SvaTestdevDriver {
    const bar = fn.bars.find((b) => b.index === 0);
    if (!bar?.address) throw new Error(`sva-testdev ${fn.name}: BAR0 not assigned`);
    return new SvaTestdevDriver(p, fn, bar.address);
  }

  reg(off: number): Promise<number> {
    return this.p.read(this.bar0 + off, 4);
  }

  setReg(off: number, value: number): Promise<void> {
    return this.p.write(this.bar0 + off, 4, value);
  }

  /** Fills the data buffer (dword writes). */
  async fillBuffer(bytes: Uint8Array): Promise<void> {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i + DWORD <= bytes.length; i += DWORD) await this.setReg(SvaDevReg.Buffer + i, v.getUint32(i, true));
  }

  /** Reads `length` bytes (a multiple of 4) of the data buffer. */
  async readBuffer(length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const v = new DataView(out.buffer);
    for (let i = 0; i + DWORD <= length; i += DWORD) v.setUint32(i, await this.reg(SvaDevReg.Buffer + i), true);
    return out;
  }

  /** Programs ADDR / LENGTH / PASID and writes COMMAND; returns RESULT right after. */
  async start(cmd: number, addr: number, length: number, pasid = 0, prgi = 0): Promise<number> {
    await this.setReg(SvaDevReg.AddrLo, addr % TWO_POW_32);
    await this.setReg(SvaDevReg.AddrHi, Math.floor(addr / TWO_POW_32));
    await this.setReg(SvaDevReg.Length, length);
    await this.setReg(SvaDevReg.Pasid, pasid);
    await this.setReg(SvaDevReg.Prgi, prgi);
    await this.setReg(SvaDevReg.Command, cmd);
    return this.reg(SvaDevReg.Result);
  }

  async counters(): Promise<SvaDevCounters> {
    return {
      atc: await this.reg(SvaDevReg.AtcCount),
      inv: await this.reg(SvaDevReg.InvCount),
      prq: await this.reg(SvaDevReg.PrqCount),
      prg: await this.reg(SvaDevReg.PrgCount),
      lastAts: await this.reg(SvaDevReg.LastAts),
      lastPrg: await this.reg(SvaDevReg.LastPrg),
      xlat: (await this.reg(SvaDevReg.XlatHi)) * TWO_POW_32 + (await this.reg(SvaDevReg.XlatLo)),
    };
  }
}

/** "LAST_ATS R W size 2^12 -> 0x..." */
export function describeAts(c: SvaDevCounters): string {
  const a = c.lastAts;
  const perms = `${a & 1 ? 'R' : '-'}${a & 2 ? 'W' : '-'}${a & 4 ? 'U' : '-'}`;
  return `LAST_ATS 0x${a.toString(16)} (${perms}, status ${(a >> LAST_ATS_STATUS_SHIFT) & NIBBLE}, 2^${(a >> LAST_ATS_SIZE_SHIFT) & BYTE} bytes) XLAT 0x${c.xlat.toString(16)}`;
}

function describeCounters(c: SvaDevCounters): string {
  return `ATC_COUNT ${c.atc} INV_COUNT ${c.inv} PRQ_COUNT ${c.prq} PRG_COUNT ${c.prg}`;
}

// ---- the flow -----------------------------------------------------------------

/** Options of the flow. */
export interface SvaFlowOptions {
  /** Invalidations to leave out (test-only: the device must then reach what it should not). */
  readonly skip?: ReadonlySet<SvaSkip>;
  readonly driver?: DriverOptions;
}

/** One step: a title and what it did. */
export interface SvaStep {
  readonly title: string;
  readonly lines: string[];
}

/** What the flow did. */
export interface SvaFlowResult {
  readonly steps: SvaStep[];
  readonly checks: Check[];
}

/** The page-request event's vector (the fault event uses 0xf1) and the xAPIC address of CPU 0. */
export const PRQ_VECTOR = 0xf2;
const MSI_ADDRESS = 0xfee0_0000;
/** Bytes each DMA moves (a multiple of 4, inside one page). */
const XFER = 256;
/** The process's memory: a heap of 16 pages (2 populated), a 2 MiB page, and an address it does not own. */
const HEAP = 0x5555_5555_4000;
const HEAP_PAGES = 16;
const HEAP_POPULATED = 2;
const HUGE = 0x7f12_3440_0000;
const HUGE_OFFSET = 0x1_2340;
const FAULT_PAGE = HEAP + 8 * PAGE_SIZE;
const NOT_OWNED = 0x6000_0000_0000;
/** Polls of RESULT while a command is pending, and the virtual time between them. */
const POLLS = 50;
const POLL_NS = 1_000_000;
/** log2 of 2 MiB: the LAST_ATS size field of a 2 MiB translation. */
const SIZE_2M = 21;

/** The context-entry bits of a device the driver uses ATS, PASID and PRI of. */
const SVA_CONTEXT_BITS = SmCtx.DTE | SmCtx.PASIDE | SmCtx.PRE;

/** What the unit must offer for SVA (Linux intel_svm_check + the scalable-mode, first-stage and ATS prerequisites). */
function svaCapable(unit: VtdUnit): { ok: boolean; line: string } {
  const need = { SMTS: unit.ecapf('SMTS'), PASID: unit.ecapf('PASID'), PRS: unit.ecapf('PRS'), FLTS: unit.ecapf('FLTS'), DT: unit.ecapf('DT') };
  const pss = unit.ecapf('PSS');
  const pds = unit.ecapf('PDS');
  const ok = unit.scalable && Object.values(need).every((v) => v === 1);
  const line = `unit 0x${unit.base.toString(16)} SVA: ${Object.entries(need).map(([k, v]) => `${k} ${v}`).join(' ')} ` +
    `PSS ${pss} (${pss + 1}-bit PASIDs) PDS ${pds} SMPWC ${unit.ecapf('SMPWC')} FS1GP ${unit.capf('FL1GP')} -> ${ok ? 'SVM capable' : 'SVM disabled'}`;
  return { ok, line };
}

/** Runs the SVA flow on `p` (a machine with an SVA-capable unit and one sva-testdev). */
export async function runSvaFlow(p: GuestPlatform, opts: SvaFlowOptions = {}): Promise<SvaFlowResult> {
  const steps: SvaStep[] = [];
  const checks: Check[] = [];
  let lines: string[] = [];
  const step = (title: string): void => { lines = []; steps.push({ title, lines }); };
  const check = (name: string, ok: boolean, detail: string): void => {
    checks.push({ name, ok, detail });
    lines.push(`[${ok ? 'PASS' : 'FAIL'}] ${name}: ${detail}`);
  };

  // 1. Boot, SVA capability, page-request queue.
  step('boot: VT-d unit, SVA capability, page-request queue');
  const firmware = await runFirmware(p);
  const drv = await LinuxVtd.boot(p, firmware, opts.driver ?? {});
  lines.push(...drv.drainLog());
  const fn = firmware.pci.find(SVA_VENDOR, SVA_DEVICE).find((f) => drv.devices.has(f));
  if (!fn) {
    check('sva-testdev present', false, 'no sva-testdev behind a remapping unit');
    return { steps, checks };
  }
  const dev = drv.device(fn);
  const unit = dev.unit;
  const capable = svaCapable(unit);
  lines.push(capable.line);
  check('unit offers SVA', capable.ok, capable.line.replace(/^.*SVA: /, ''));
  if (!capable.ok) return { steps, checks };
  const prq = new PageRequestQueue(unit);
  await prq.enable(PRQ_VECTOR, MSI_ADDRESS);
  lines.push(...prq.log.splice(0));
  let prqEvents = 0;
  let lastEvent = '';
  p.onInterrupt('msi', PRQ_VECTOR, (irq) => { prqEvents++; lastEvent = `MSI 0x${(irq.address ?? 0).toString(16)} data 0x${(irq.data ?? 0).toString(16)}`; });

  // 2. The device: capabilities and context entry (both from probe), PASID / PRI / ATS.
  step('device: ATS, PASID and PRI capabilities, context entry');
  const pcie = dev.pcie;
  if (!pcie) {
    check('PASID, PRI and ATS enabled', false, `${fn.name}: no PCI Express capabilities read at probe`);
    return { steps, checks };
  }
  const sva: SvaDevice = { dev, pcie, sid: dev.sids[0]! };
  const ctx = smContextAddress(unit, sva.sid);
  const ctxLo = ctx === undefined ? 0n : await p.read64(ctx);
  lines.push(`${fn.name} SID 0x${sva.sid.toString(16)}: scalable context ${ctx === undefined ? '(none)' : `0x${ctx.toString(16)}`} lo 0x${ctxLo.toString(16)} ` +
    `(${contextBitNames(ctxLo)}, written at probe)`);
  check('context entry: DTE, PASIDE and PRE from probe', (ctxLo & (SVA_CONTEXT_BITS | SmCtx.P)) === (SVA_CONTEXT_BITS | SmCtx.P),
    `lo 0x${ctxLo.toString(16)}: ${contextBitNames(ctxLo)}`);
  const enabled = await pcie.enableAll(PRQ_DEPTH);
  lines.push(...pcie.log.splice(0));
  const device = SvaTestdevDriver.bind(p, fn);
  const status = await device.reg(SvaDevReg.Status);
  const want = SvaDevStatus.AtsEnabled | SvaDevStatus.PasidEnabled | SvaDevStatus.PriEnabled;
  check('PASID, PRI and ATS enabled', enabled && (status & want) === want, `sva-testdev STATUS 0x${status.toString(16)} (ATS|PASID|PRI enable bits 0x${want.toString(16)})`);
  if (!enabled) return { steps, checks };

  // 3. Bind a process address space.
  step('bind: process address space, PASID, first-stage PASID entry');
  const mm = await ProcessMm.create(p, drv.alloc, 'process');
  mm.mmap(HEAP, HEAP_PAGES * PAGE_SIZE, { read: true, write: true }, 'heap');
  await mm.populate(HEAP, HEAP_POPULATED * PAGE_SIZE);
  const hugePhys = await mm.mapHuge(HUGE, { read: true, write: true }, 'huge');
  lines.push(...mm.log.splice(0));
  lines.push(`process: CR3 0x${mm.cr3.toString(16)} (4-level x86 page table, ${mm.pt.tablePages} table pages)`);
  const unitPasids = 2 ** (unit.ecapf('PSS') + 1);
  const pasids = new PasidAllocator(Math.min(pcie.maxPasids, unitPasids) - 1);
  const bond = await SvaBond.bind(unit, sva, mm, pasids, opts.skip);
  lines.push(...bond.log.splice(0));
  const pasid = bond.pasid;
  check('PASID allocated from 1', pasid === 1, `PASID ${pasid} (global allocator ${pasids.min}..${pasids.max})`);
  const bonds = new Map<string, ProcessMm>([[`${sva.sid}:${pasid}`, mm]]);
  const resolve = (rid: number, pa: number): ProcessMm | undefined => bonds.get(`${rid}:${pa}`);

  let prgi = 0;
  /** Runs a command (PASID | ATC | PRI) to its end, serving page requests while it is pending; logs each round. */
  const run = async (what: string, cmd: number, addr: number): Promise<{ result: number; runs: PrqRun[] }> => {
    const runs: PrqRun[] = [];
    const events = prqEvents;
    const full = cmd | SvaDevCmd.PASID | SvaDevCmd.ATC | SvaDevCmd.PRI;
    prgi = (prgi + 1) & PRGI_MASK;
    let result = await device.start(full, addr, XFER, pasid, prgi);
    lines.push(`${what}: COMMAND 0x${full.toString(16)} (PASID|ATC|PRI) ADDR 0x${addr.toString(16)} LENGTH ${XFER} PASID ${pasid} PRGI ${prgi} ` +
      `-> RESULT ${svaResultName(result)}`);
    for (let i = 0; i < POLLS && result === SvaDevResult.Pending; i++) {
      const pending = prqEvents > events + runs.length || (!p.interrupts.msi && ((await prq.status()) & PrsBit.PPR) !== 0);
      if (pending) {
        if (p.interrupts.msi) lines.push(`page-request event interrupt: ${lastEvent} (PEADDR/PEDATA)`);
        runs.push(await prq.handle(resolve));
        lines.push(...prq.log.splice(0));
      } else {
        await p.sleep(POLL_NS);
      }
      result = await device.reg(SvaDevReg.Result);
    }
    const c = await device.counters();
    lines.push(`  -> RESULT ${svaResultName(result)}; ${describeCounters(c)}; ${describeAts(c)}`);
    return { result, runs };
  };

  // 4. DMA to process virtual addresses.
  step('DMA to process virtual addresses through the device-TLB');
  const a = pattern(31, XFER);
  await mm.cpuWrite(HEAP, a);
  lines.push(`CPU: ${XFER} bytes written at VA 0x${HEAP.toString(16)}`);
  const rd = await run('device READ', SvaDevCmd.Read, HEAP);
  const got = await device.readBuffer(XFER);
  check('device reads process memory by VA', rd.result === SvaDevResult.Ok && equal(got, a),
    `READ VA 0x${HEAP.toString(16)}: RESULT ${svaResultName(rd.result)}, buffer ${equal(got, a) ? 'equals' : 'differs from'} what the CPU wrote`);
  const b = pattern(32, XFER);
  await device.fillBuffer(b);
  const wr = await run('device WRITE', SvaDevCmd.Write, HEAP + PAGE_SIZE);
  const seen = await mm.cpuRead(HEAP + PAGE_SIZE, XFER);
  check('device writes process memory by VA', wr.result === SvaDevResult.Ok && seen !== undefined && equal(seen, b),
    `WRITE VA 0x${(HEAP + PAGE_SIZE).toString(16)}: RESULT ${svaResultName(wr.result)}, CPU reads ${seen && equal(seen, b) ? 'the same bytes' : 'other bytes'}`);
  const hw = await run('device WRITE (2 MiB page)', SvaDevCmd.Write, HUGE + HUGE_OFFSET);
  const hc = await device.counters();
  const hugeSeen = await p.readBytes(hugePhys + HUGE_OFFSET, XFER);
  const hugeSize = (hc.lastAts >> LAST_ATS_SIZE_SHIFT) & BYTE;
  check('2 MiB page: one 2 MiB translation', hw.result === SvaDevResult.Ok && hugeSize === SIZE_2M && equal(hugeSeen, b),
    `WRITE VA 0x${(HUGE + HUGE_OFFSET).toString(16)}: ${describeAts(hc)}; bytes at physical 0x${(hugePhys + HUGE_OFFSET).toString(16)} ${equal(hugeSeen, b) ? 'equal' : 'differ'}`);

  // 5. Page faults served through the page-request queue.
  step('fault: page request, handle_mm_fault, page-group response, retry');
  const before = await device.counters();
  const c = pattern(33, XFER);
  await device.fillBuffer(c);
  const fw = await run('device WRITE (page not present)', SvaDevCmd.Write, FAULT_PAGE);
  const after = await device.counters();
  const faulted = await mm.cpuRead(FAULT_PAGE, XFER);
  const served = fw.runs.flatMap((r) => r.responses);
  check('not-present page: page request served, device retried', fw.result === SvaDevResult.Ok && served.length === 1 && served[0]!.code === 0 &&
    after.prq === before.prq + 1 && faulted !== undefined && equal(faulted, c),
  `${fw.runs.flatMap((r) => r.requests).length} page request(s), response ${served.map((s) => responseName(s.code)).join(', ') || 'none'}; ` +
    `RESULT ${svaResultName(fw.result)}; CPU reads ${faulted && equal(faulted, c) ? 'the device\'s bytes' : 'other bytes'} at VA 0x${FAULT_PAGE.toString(16)}`);
  if (p.interrupts.msi) check('page-request event interrupt', prqEvents > 0, prqEvents ? `${prqEvents} event MSI(s), last ${lastEvent}` : 'no MSI with the page-request vector');
  const nr = await run('device READ (not the process\'s memory)', SvaDevCmd.Read, NOT_OWNED);
  const refused = nr.runs.flatMap((r) => r.responses);
  check('address outside the process: Invalid Request', nr.result === SvaDevResult.PrgInvalid && refused.length === 1 && refused[0]!.code === 1,
    `VA 0x${NOT_OWNED.toString(16)}: response ${refused.map((s) => responseName(s.code)).join(', ') || 'none'}, RESULT ${svaResultName(nr.result)}, LAST_PRG 0x${(await device.reg(SvaDevReg.LastPrg)).toString(16)}`);

  // 6. Unmap: the device must lose the page.
  step('unmap: PTE cleared, PASID-IOTLB and device-TLB invalidation');
  const u0 = await device.counters();
  lines.push(`before: ${describeCounters(u0)}`);
  await mm.munmap(HEAP, PAGE_SIZE);
  lines.push(...mm.log.splice(0), ...bond.log.splice(0));
  const u1 = await device.counters();
  lines.push(`after: ${describeCounters(u1)}`);
  check('device-TLB invalidation reached the device', u1.inv > u0.inv && u1.atc < u0.atc, `INV_COUNT ${u0.inv} -> ${u1.inv}, ATC_COUNT ${u0.atc} -> ${u1.atc}`);
  const ur = await run('device READ (unmapped)', SvaDevCmd.Read, HEAP);
  const u2 = await device.counters();
  check('unmapped VA: new translation, page request refused', ur.result === SvaDevResult.PrgInvalid && u2.prq === u1.prq + 1,
    `READ VA 0x${HEAP.toString(16)}: PRQ_COUNT ${u1.prq} -> ${u2.prq}, RESULT ${svaResultName(ur.result)}`);

  // 7. Unbind and disable.
  step('unbind: PASID entry torn down, ATS / PRI / PASID disabled');
  await bond.unbind(pasids, prq);
  lines.push(...bond.log.splice(0), ...prq.log.splice(0));
  bonds.clear();
  await pcie.disableAll();
  lines.push(...pcie.log.splice(0));
  const st = await device.reg(SvaDevReg.Status);
  const after7 = await device.start(SvaDevCmd.Read | SvaDevCmd.PASID | SvaDevCmd.ATC | SvaDevCmd.PRI, HEAP + PAGE_SIZE, XFER, pasid);
  lines.push(`device READ with PASID ${pasid} after unbind -> RESULT ${svaResultName(after7)}`);
  check('unbound and disabled', (st & want) === 0 && after7 === SvaDevResult.PasidDisabled && pasids.alloc() === pasid,
    `STATUS 0x${st.toString(16)}, RESULT ${svaResultName(after7)}, PASID ${pasid} free again`);
  const faults = await drv.handleFaults();
  lines.push(...drv.drainLog());
  check('no DMA remapping faults', faults.length === 0, faults.length ? `${faults.length} fault record(s)` : 'fault recording registers empty');
  return { steps, checks };
}

/** "P DTE PASIDE PRE" of a scalable context entry's low qword. */
function contextBitNames(lo: bigint): string {
  const bits = [[SmCtx.P, 'P'], [SmCtx.DTE, 'DTE'], [SmCtx.PASIDE, 'PASIDE'], [SmCtx.PRE, 'PRE']] as const;
  return bits.filter(([b]) => lo & b).map(([, n]) => n).join(' ') || 'no bits';
}

function equal(x: Uint8Array, y: Uint8Array): boolean {
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
