/**
 * Deliberately broken driver variants (issue 14): one probe per cache
 * invalidation the VT-d spec requires, each running the Linux-like
 * driver's correct sequence (`broken = false`) or the same sequence with
 * exactly that invalidation left out (`broken = true`, through the driver's
 * skip sites, switched on only around the step that needs it), then a
 * final DMA or interrupt that would use the stale cached state:
 *
 *   context       legacy: edu moved from domain D1 to D2 without the
 *                 context-cache invalidations (IOTLB flush still done);
 *   iotlb-page    legacy, second stage: a page unmapped and its IOVA
 *                 remapped to another frame without the page-selective
 *                 IOTLB invalidations;
 *   iotlb-domain  legacy: the D1 -> D2 move without the domain-selective
 *                 IOTLB flush of D1's DID (linux-guest.ts domainSwitchProbe);
 *   pasid-cache   scalable, second stage: the D1 -> D2 move rewrites the
 *                 RID_PASID entry without the PASID-cache invalidations;
 *   piotlb        scalable, first stage (fsts=on): unmap/remap a page
 *                 without the PASID-based IOTLB invalidation;
 *   iec           an IRTE in use rewritten to another vector without the
 *                 IEC invalidation; the edu MSI is observed;
 *   devtlb        sva-testdev (ATS) reads a process page through its ATC,
 *                 the page is unmapped and the VA remapped to another frame,
 *                 PASID-based IOTLB flushed but the PASID-based device-TLB
 *                 invalidation (descriptor 8) left out; the device reads
 *                 through its ATC again;
 *   in-place      a present leaf PTE rewritten to another frame in one
 *                 store, with no invalidation at all.
 *
 * Every probe runs with caching mode on or off (`probeIommuOptions`).
 * Where caching mode adds a second invalidation of the same kind to the
 * sequence (the context- and PASID-cache invalidations after the new entry
 * is written, the PSI after a map), the broken variant leaves both out: the
 * second would otherwise cover the first and nothing would go stale.
 */
import { PAGE_SIZE } from './alloc.js';
import { EDU_DEVICE, EDU_VENDOR, EduDriver } from './edu.js';
import { runFirmware } from './firmware/boot.js';
import { PciConfigAccess, enableMsi } from './firmware/pci-config.js';
import { pattern } from './linux-guest.js';
import { LinuxVtd } from './linux-vtd/driver.js';
import type { DeviceHandle, Domain } from './linux-vtd/domain.js';
import { InterruptRemapping } from './linux-vtd/irq-remap.js';
import { ProcessMm } from './linux-vtd/process-mm.js';
import { PRQ_DEPTH } from './linux-vtd/prq.js';
import { PasidAllocator, SvaBond, type SvaSkip } from './linux-vtd/sva.js';
import type { InvalidationSite, VtdUnit } from './linux-vtd/unit.js';
import type { GuestPlatform } from './platform.js';
import { SVA_DEVICE, SVA_VENDOR, SvaDevCmd, SvaDevResult, SvaTestdevDriver, svaResultName } from './sva-flow.js';

/** The probe names (the contract with the invalidation sanitizer's tests). */
export type ProbeName = 'context' | 'iotlb-page' | 'iotlb-domain' | 'pasid-cache' | 'piotlb' | 'iec' | 'devtlb' | 'in-place';

/** Machine files (in machines/) the probes run on. */
export type ProbeMachine = 'q35-vtd.json' | 'q35-vtd-sm.json' | 'q35-sva.json';

/** A cache invalidation, named as the unit's 'invalidate' events name it (cache, granularity). */
export interface InvalidationKind {
  readonly cache: 'context' | 'iotlb' | 'pasid' | 'pasid-iotlb' | 'iec' | 'device-iotlb';
  readonly granularity: 'global' | 'domain' | 'device' | 'page' | 'index' | 'pasid';
}

/** What one probe run observed. */
export interface ProbeResult {
  readonly name: ProbeName;
  readonly broken: boolean;
  /** CAP.CM of the unit the device sits behind. */
  readonly cachingMode: boolean;
  /** The final DMA / interrupt used the old translation or entry. */
  readonly stale: boolean;
  /** It used the new one. */
  readonly fresh: boolean;
  /** What the final DMA / interrupt did, in words. */
  readonly observed: string;
  /** One line per invalidation the driver left out (from the log). */
  readonly skipped: string[];
  /** The driver's log, then the observation. */
  readonly log: string[];
}

/** One broken-driver variant. */
export interface InvalidationProbe {
  readonly name: ProbeName;
  readonly machine: ProbeMachine;
  /** Options the machine needs on its intel-iommu besides caching mode. */
  readonly iommuOptions?: string;
  /** The invalidation `broken = true` leaves out. */
  readonly omits: InvalidationKind;
  /**
   * Whether the model keeps the cache the omission leaves stale (then the
   * broken run observes the old state).  False for the PASID cache: QEMU
   * 11.1, and vtemu with it, re-read PASID entries on every IOTLB miss.
   */
  readonly staleObservable: boolean;
  run(p: GuestPlatform, broken: boolean): Promise<ProbeResult>;
}

/** Bytes per edu transfer (inside the first half of its buffer, see linux-guest.ts). */
const XFER = 2048;
/** IOVAs of the probes: X is the one that goes stale, Y where the edu writes back what it read. */
const IOVA_X = 0x40_0000;
const IOVA_Y = 0x80_0000;
const RW = { read: true, write: true } as const;
/** Pattern seeds of the old and the new page. */
const SEED_OLD = 41;
const SEED_NEW = 42;
/** Vectors of the IRTE before and after the rewrite. */
const VECTOR_OLD = 0x51;
const VECTOR_NEW = 0x52;
/** Edu interrupt status bit raised; polls while waiting for an MSI (1 ms of guest time each). */
const EDU_IRQ_BIT = 1;
const MSI_POLLS = 10;
const MSI_POLL_NS = 1_000_000;
/** The process page of the devtlb probe and the bytes sva-testdev reads (a multiple of 4). */
const SVA_VA = 0x5555_5555_4000;
const SVA_XFER = 256;

/** `caching-mode=on|off` plus the probe's own options, for the machine's intel-iommu. */
export function probeIommuOptions(probe: InvalidationProbe, cachingMode: boolean): string {
  return [probe.iommuOptions, `caching-mode=${cachingMode ? 'on' : 'off'}`].filter((o) => o !== undefined).join(',');
}

// ---- shared scaffolding ----------------------------------------------------------

/** A booted driver whose skip set the probe switches on around one step. */
interface Booted {
  readonly p: GuestPlatform;
  readonly drv: LinuxVtd;
  readonly skip: Set<InvalidationSite>;
}

async function boot(p: GuestPlatform): Promise<Booted> {
  const skip = new Set<InvalidationSite>();
  const firmware = await runFirmware(p);
  const drv = await LinuxVtd.boot(p, firmware, { skip });
  return { p, drv, skip };
}

/** Runs `step` with `sites` skipped when `broken`; the skip set is empty again afterwards. */
async function leavingOut<T extends string>(skip: Set<T>, broken: boolean, sites: readonly T[], step: () => Promise<void>): Promise<void> {
  if (broken) for (const s of sites) skip.add(s);
  try {
    await step();
  } finally {
    skip.clear();
  }
}

/** An edu behind a unit with no RMRR, its handle, and three pages: old (pattern), new (pattern), result. */
interface EduRig extends Booted {
  readonly edu: EduDriver;
  readonly dev: DeviceHandle;
  readonly oldPage: number;
  readonly newPage: number;
  readonly resultPage: number;
}

async function eduRig(p: GuestPlatform): Promise<EduRig> {
  const b = await boot(p);
  const fn = b.drv.fw.pci.find(EDU_VENDOR, EDU_DEVICE).find((f) => b.drv.devices.has(f) && b.drv.device(f).rmrrs.length === 0);
  if (!fn) throw new Error('invalidation probe: no edu behind a remapping unit');
  const [oldPage, newPage, resultPage] = [await b.drv.alloc.page(), await b.drv.alloc.page(), await b.drv.alloc.page()];
  await p.writeBytes(oldPage, pattern(SEED_OLD, XFER));
  await p.writeBytes(newPage, pattern(SEED_NEW, XFER));
  return { ...b, edu: EduDriver.bind(p, fn), dev: b.drv.device(fn), oldPage, newPage, resultPage };
}

/** A new unmanaged domain holding the edu, with IOVA_X -> old page and IOVA_Y -> result page. */
async function attachedDomain(r: EduRig, name: string): Promise<Domain> {
  const d = r.drv.newDomain('unmanaged', name);
  await r.drv.attach(r.dev, d);
  await d.ensurePageTable(r.dev.unit);
  await d.map(IOVA_X, r.oldPage, PAGE_SIZE, RW);
  await d.map(IOVA_Y, r.resultPage, PAGE_SIZE, RW);
  return d;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The final DMA: edu reads IOVA_X into its buffer and writes the buffer to
 * IOVA_Y (the result page); stale when it read the old page, fresh when
 * the new one.  Fault records are read and cleared.
 */
async function finish(r: EduRig, name: ProbeName, broken: boolean, what: string): Promise<ProbeResult> {
  await r.drv.handleFaults();
  await r.p.fill(r.resultPage, XFER, 0);
  await r.edu.toDevice(IOVA_X, XFER);
  await r.edu.fromDevice(IOVA_Y, XFER);
  const got = await r.p.readBytes(r.resultPage, XFER);
  const stale = same(got, pattern(SEED_OLD, XFER));
  const fresh = same(got, pattern(SEED_NEW, XFER));
  const faults = await r.drv.handleFaults();
  const seen = stale ? `the OLD page 0x${r.oldPage.toString(16)} (stale)` : fresh ? `the new page 0x${r.newPage.toString(16)}` : 'neither page';
  const observed = `${what}: the DMA from IOVA 0x${IOVA_X.toString(16)} read ${seen}${faults.length ? `, ${faults.length} fault record(s)` : ''}`;
  return result(name, broken, r.dev.unit, stale, fresh, observed, r.drv.drainLog());
}

function result(name: ProbeName, broken: boolean, unit: VtdUnit, stale: boolean, fresh: boolean, observed: string, log: string[]): ProbeResult {
  return {
    name, broken, cachingMode: unit.cachingMode, stale, fresh, observed,
    skipped: log.filter((l) => l.includes('(skipped ')).map((l) => l.trim()),
    log: [...log, observed],
  };
}

/** Throws when the unit does not run the mode a probe needs (a machine / option mistake, not guest input). */
function expectMode(name: ProbeName, unit: VtdUnit, scalable: boolean, firstStage: boolean): void {
  if (unit.scalable !== scalable || unit.firstStage !== firstStage) {
    throw new Error(`probe ${name}: the unit runs ${unit.scalable ? 'scalable' : 'legacy'} mode` +
      `${unit.scalable ? ` on ${unit.firstStage ? 'first' : 'second'}-stage tables` : ''}, not what the probe needs`);
  }
}

// ---- the variants ------------------------------------------------------------------

/**
 * D1 (X -> old) caches X through a DMA; D2 (X -> new) was built beforehand;
 * the edu moves to D2 with `sites` left out when broken.
 */
async function domainSwitch(p: GuestPlatform, name: ProbeName, broken: boolean, scalable: boolean, sites: readonly InvalidationSite[]): Promise<ProbeResult> {
  const r = await eduRig(p);
  expectMode(name, r.dev.unit, scalable, false);
  await attachedDomain(r, 'D1');
  await r.edu.toDevice(IOVA_X, XFER); // caches the context / PASID entry and X -> old
  const d2 = r.drv.newDomain('unmanaged', 'D2');
  await d2.ensurePageTable(r.dev.unit);
  await d2.map(IOVA_X, r.newPage, PAGE_SIZE, RW);
  await d2.map(IOVA_Y, r.resultPage, PAGE_SIZE, RW);
  await leavingOut(r.skip, broken, sites, async () => { await r.drv.attach(r.dev, d2); });
  return finish(r, name, broken, 'edu moved from D1 to D2');
}

/** X -> old cached through a DMA, then unmapped and mapped to the new page (`sites` left out when broken). */
async function remapPage(p: GuestPlatform, name: ProbeName, broken: boolean, scalable: boolean, firstStage: boolean,
  sites: readonly InvalidationSite[]): Promise<ProbeResult> {
  const r = await eduRig(p);
  expectMode(name, r.dev.unit, scalable, firstStage);
  const d = await attachedDomain(r, 'D');
  await r.edu.toDevice(IOVA_X, XFER);
  await leavingOut(r.skip, broken, sites, async () => {
    await d.unmap(IOVA_X, PAGE_SIZE);
    await d.map(IOVA_X, r.newPage, PAGE_SIZE, RW);
  });
  return finish(r, name, broken, `IOVA 0x${IOVA_X.toString(16)} unmapped and remapped to another frame`);
}

/** X -> old cached through a DMA, then its leaf rewritten in place to the new page. */
async function inPlace(p: GuestPlatform, broken: boolean): Promise<ProbeResult> {
  const r = await eduRig(p);
  expectMode('in-place', r.dev.unit, false, false);
  const d = await attachedDomain(r, 'D');
  await r.edu.toDevice(IOVA_X, XFER);
  await leavingOut(r.skip, broken, ['remap-iotlb'], () => d.remapInPlace(IOVA_X, r.newPage, RW));
  return finish(r, 'in-place', broken, `present leaf of IOVA 0x${IOVA_X.toString(16)} rewritten in place`);
}

/** Raises the edu interrupt and returns the vectors of the MSIs observed within MSI_POLLS ms. */
async function raiseAndWatch(r: EduRig): Promise<number[]> {
  r.p.takeInterrupts();
  await r.edu.raise(EDU_IRQ_BIT);
  const seen: number[] = [];
  for (let i = 0; i < MSI_POLLS && seen.length === 0; i++) {
    seen.push(...r.p.takeInterrupts().filter((x) => x.kind === 'msi' && (x.vector === VECTOR_OLD || x.vector === VECTOR_NEW)).map((x) => x.vector));
    if (seen.length === 0) await r.p.sleep(MSI_POLL_NS);
  }
  await r.edu.ack(EDU_IRQ_BIT);
  return seen;
}

/** The edu's MSI through IRTE i (vector old), the IRTE rewritten to vector new, the MSI again. */
async function iec(p: GuestPlatform, broken: boolean): Promise<ProbeResult> {
  if (!p.interrupts.msi) throw new Error('probe iec: MSIs are not observable on this platform');
  const r = await eduRig(p);
  const unit = r.dev.unit;
  const ir = r.drv.ir.get(unit);
  if (!ir) throw new Error('probe iec: interrupt remapping is off on the edu\'s unit');
  const index = ir.allocIndex();
  const sid = r.dev.sids[0]!;
  await ir.program(index, { vector: VECTOR_OLD, dest: 0, sid });
  const msi = InterruptRemapping.msiFor(index);
  await enableMsi(new PciConfigAccess(p), r.edu.fn, msi.address, msi.data);
  const first = await raiseAndWatch(r); // caches IRTE `index`
  if (!first.includes(VECTOR_OLD)) throw new Error(`probe iec: the first MSI did not arrive with vector 0x${VECTOR_OLD.toString(16)}`);
  await leavingOut(r.skip, broken, ['modify-irte-iec'], () => ir.program(index, { vector: VECTOR_NEW, dest: 0, sid }));
  const seen = await raiseAndWatch(r);
  const stale = seen.length === 1 && seen[0] === VECTOR_OLD;
  const fresh = seen.length === 1 && seen[0] === VECTOR_NEW;
  const observed = `IRTE ${index} rewritten from vector 0x${VECTOR_OLD.toString(16)} to 0x${VECTOR_NEW.toString(16)}: the edu MSI arrived with ` +
    (seen.length ? seen.map((v) => `0x${v.toString(16)}`).join(', ') : 'no vector') + (stale ? ' (stale IRTE)' : '');
  return result('iec', broken, unit, stale, fresh, observed, r.drv.drainLog());
}

/**
 * sva-testdev bound to a process (PASID, first stage): a READ through its
 * ATC caches VA -> old frame; munmap (PASID-based IOTLB and, unless broken,
 * device-TLB invalidation), the VA mapped again to a new frame holding other
 * bytes, and a second READ through the ATC.
 */
async function devtlb(p: GuestPlatform, broken: boolean): Promise<ProbeResult> {
  const b = await boot(p);
  const fn = b.drv.fw.pci.find(SVA_VENDOR, SVA_DEVICE).find((f) => b.drv.devices.has(f));
  if (!fn) throw new Error('probe devtlb: no sva-testdev behind a remapping unit');
  const dev = b.drv.device(fn);
  const unit = dev.unit;
  if (!dev.pcie || !dev.svaSupport?.ats || !dev.svaSupport.pasid) throw new Error('probe devtlb: the unit does not use the device\'s ATS and PASID');
  const log = b.drv.drainLog();
  if (!(await dev.pcie.enableAll(PRQ_DEPTH))) throw new Error('probe devtlb: could not enable PASID, PRI and ATS');
  log.push(...dev.pcie.log.splice(0));
  const device = SvaTestdevDriver.bind(p, fn);
  const mm = await ProcessMm.create(p, b.drv.alloc, 'process');
  mm.mmap(SVA_VA, PAGE_SIZE, RW, 'buffer');
  await mm.populate(SVA_VA, PAGE_SIZE);
  const oldWalk = await mm.walk(SVA_VA);
  const svaSkip = new Set<SvaSkip>();
  const pasids = new PasidAllocator(dev.pcie.maxPasids - 1);
  const bond = await SvaBond.bind(unit, { dev, pcie: dev.pcie, sid: dev.sids[0]! }, mm, pasids, svaSkip);
  const read = async (): Promise<Uint8Array> => {
    const res = await device.start(SvaDevCmd.Read | SvaDevCmd.PASID | SvaDevCmd.ATC, SVA_VA, SVA_XFER, bond.pasid);
    log.push(`device READ VA 0x${SVA_VA.toString(16)} PASID ${bond.pasid} through the ATC -> RESULT ${svaResultName(res)}`);
    return res === SvaDevResult.Ok ? device.readBuffer(SVA_XFER) : new Uint8Array(0);
  };
  await mm.cpuWrite(SVA_VA, pattern(SEED_OLD, SVA_XFER));
  const before = await read(); // fills the ATC with VA -> old frame
  if (!same(before, pattern(SEED_OLD, SVA_XFER))) throw new Error('probe devtlb: the first READ did not return the process\'s bytes');
  await leavingOut(svaSkip, broken, ['unmap-devtlb'], () => mm.munmap(SVA_VA, PAGE_SIZE));
  mm.mmap(SVA_VA, PAGE_SIZE, RW, 'buffer again');
  await mm.populate(SVA_VA, PAGE_SIZE);
  const newWalk = await mm.walk(SVA_VA);
  await mm.cpuWrite(SVA_VA, pattern(SEED_NEW, SVA_XFER));
  const got = await read();
  const stale = same(got, pattern(SEED_OLD, SVA_XFER));
  const fresh = same(got, pattern(SEED_NEW, SVA_XFER));
  log.push(...mm.log.splice(0), ...bond.log.splice(0), ...b.drv.drainLog());
  const observed = `VA 0x${SVA_VA.toString(16)} moved from frame 0x${(oldWalk?.phys ?? 0).toString(16)} to 0x${(newWalk?.phys ?? 0).toString(16)}: ` +
    `the device's READ through its ATC returned ${stale ? 'the OLD frame\'s bytes (stale ATC entry)' : fresh ? 'the new frame\'s bytes' : 'neither frame\'s bytes'}`;
  return result('devtlb', broken, unit, stale, fresh, observed, log);
}

/** The probes, one per invalidation. */
export const PROBES: readonly InvalidationProbe[] = [
  {
    name: 'context', machine: 'q35-vtd.json', omits: { cache: 'context', granularity: 'device' }, staleObservable: true,
    run: (p, broken) => domainSwitch(p, 'context', broken, false, ['detach-context', 'attach-context']),
  },
  {
    name: 'iotlb-page', machine: 'q35-vtd.json', omits: { cache: 'iotlb', granularity: 'page' }, staleObservable: true,
    run: (p, broken) => remapPage(p, 'iotlb-page', broken, false, false, ['unmap-iotlb', 'map-iotlb']),
  },
  {
    name: 'iotlb-domain', machine: 'q35-vtd.json', omits: { cache: 'iotlb', granularity: 'domain' }, staleObservable: true,
    run: (p, broken) => domainSwitch(p, 'iotlb-domain', broken, false, ['detach-iotlb']),
  },
  {
    name: 'pasid-cache', machine: 'q35-vtd-sm.json', omits: { cache: 'pasid', granularity: 'pasid' }, staleObservable: false,
    run: (p, broken) => domainSwitch(p, 'pasid-cache', broken, true, ['detach-pasid-cache', 'attach-pasid-cache']),
  },
  {
    name: 'piotlb', machine: 'q35-vtd-sm.json', iommuOptions: 'fsts=on', omits: { cache: 'pasid-iotlb', granularity: 'page' }, staleObservable: true,
    run: (p, broken) => remapPage(p, 'piotlb', broken, true, true, ['unmap-iotlb']),
  },
  {
    name: 'iec', machine: 'q35-vtd.json', omits: { cache: 'iec', granularity: 'index' }, staleObservable: true,
    run: iec,
  },
  {
    name: 'devtlb', machine: 'q35-sva.json', omits: { cache: 'device-iotlb', granularity: 'pasid' }, staleObservable: true,
    run: devtlb,
  },
  {
    name: 'in-place', machine: 'q35-vtd.json', omits: { cache: 'iotlb', granularity: 'page' }, staleObservable: true,
    run: inPlace,
  },
];
