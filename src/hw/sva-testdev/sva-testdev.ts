/**
 * `sva-testdev`: vtemu's shared-virtual-addressing test device (a vtemu
 * extension; QEMU 11.1 has no device that issues ATS translation requests
 * or page requests).  See regs.ts for the register map and the commands.
 *
 * A PCI Express endpoint with MSI and the ATS, PASID and PRI extended
 * capabilities.  A guest programs ADDR / LENGTH / PASID and writes COMMAND;
 * the command runs before the write returns, except that a command waiting
 * for a page-group response stays PENDING until the response arrives.
 *
 * Request paths (PCIe Base 6.0 §10):
 *  - untranslated requests through `dma` (no PASID) or `dmaWithPasid`;
 *  - ATS translation requests and page requests through the host's AtsPort
 *    (`atsPort(endpoint)`); no port means no ATS on the host: translation
 *    requests complete as Unsupported Request, page requests are refused;
 *  - translated requests through `translatedDma()`, always without a PASID
 *    (a translated request carries none; QEMU refuses them with one).
 * Bus mastering gates all of them: the DMA spaces check it themselves, ATS
 * and PRI here (the whole chain of bridges, as the DMA spaces do).
 *
 * READ / WRITE with the ATC flag translate every page of the command first
 * (device-TLB hit, else a translation request; a completion granting any
 * access is cached) and only then move the data, so a command retried after
 * a page request writes once.  A page whose completion lacks the access
 * needed raises a page request (PRI flag) and the command waits; a
 * successful response retries it from scratch.  A completion with U set
 * makes the device use an untranslated request for that page (the spec's
 * meaning of U).
 *
 * Beyond the register map's comment:
 *  - TRANSLATE honours the WRITE flag (translation requests with No Write
 *    clear); without it they ask for read access only.
 *  - A PRI Reset (config space) while a command waits forgets its page
 *    request: the command ends with PRI_UNAVAILABLE instead of waiting
 *    forever.
 *  - While a command executes, BAR accesses are refused (reads 0, writes
 *    dropped): the device's own DMA hitting its BAR, or host code run
 *    synchronously from a translation or page request, as QEMU's
 *    re-entrancy guard refuses accesses from inside an MMIO callback.
 *    A page-group response arriving then is kept and handled when the
 *    port call returns.
 */
import type { Tracer } from '../../machine/device-type.js';
import { MemTx } from '../../memory/address-space.js';
import { hi32, iova, lo32, TWO_POW_32 } from '../../memory/address.js';
import type { DmaMemory } from '../../memory/dma-space.js';
import {
  AtsStatus,
  newAtsCompletion,
  NO_PASID,
  type AtsEndpoint,
  type AtsInvalidationResult,
  type AtsPort,
} from '../../memory/iommu.js';
import { MmioRegion, type MmioOps } from '../../memory/region.js';
import { PciDevice } from '../../pci/device.js';
import { addPcieCap, PcieType } from '../../pci/pcie-cap.js';
import { addAtsCap, addPasidCap, type AtsCap, type PasidCap } from '../../pci/pcie-ext-caps.js';
import { addPriCap, type PriCap } from '../../pci/pcie-pri.js';
import { ATC_PAGE_SIZE, DeviceAtc, translationSize, type AtcEntry } from './atc.js';
import {
  SVA_BUFFER_SIZE,
  SVA_ID,
  SVA_MAX_PAGE_REQUESTS,
  SvaCmd,
  SvaControl,
  SvaIrq,
  SvaLastAts,
  SvaPci,
  SvaReg,
  SvaResult,
  SvaStatus,
} from './regs.js';

/** Legacy capability offsets: MSI (64-bit, one vector, 14 bytes) and the PCIe capability (0x3C bytes). */
const MSI_CAP_OFFSET = 0x40;
const PCIE_CAP_OFFSET = 0x80;
/** PCIe capability values of a QEMU endpoint: RBER; error-reporting enables writable; x1 2.5 GT/s. */
const DEVCAP_RBER = 0x0000_8000;
const DEVCTL_ERR_ENABLES = 0x000f;
const LINKCAP_X1 = 0x0000_0411;
const LINKSTA_X1 = 0x0011;
/** DEVCAP2 extended fmt field + end-end TLP prefix supported; DEVCTL2 end-end TLP prefix blocking writable. */
const DEVCAP2_EXT = 0x0030_0000;
const DEVCTL2_EETLPPB = 0x8000;

/** Access size of the registers (8-byte accesses are split by the bus). */
const REG_SIZE = 4;
const REG_ALIGN_MASK = REG_SIZE - 1;
/** Writable bits of the masked registers. */
const PASID_MASK = 0xf_ffff;
const PRGI_MASK = 0x1ff;
const IRQ_MASK = SvaIrq.Done | SvaIrq.PageResponse | SvaIrq.AtcInvalidated;
const CONTROL_MASK = SvaControl.Stall | SvaControl.Fail;
/** LAST_PRG: code in bits 3:0, PRGI in bits 24:16. */
const PRG_CODE_MASK = 0xf;
const LAST_PRG_PRGI_SHIFT = 16;
/** LAST_ATS status field width (4 bits) and size field width (8 bits). */
const ATS_STATUS_MASK = 0xf;
const ATS_SIZE_MASK = 0xff;
/** Page-group response codes (PCIe §10.4.2): success, invalid request, response failure. */
const PRG_SUCCESS = 0;
const PRG_INVALID = 1;
const PRG_FAILURE = 0xf;
/** ADDR bits 11:0: the offset into a 4 KiB page. */
const PAGE_OFFSET_MASK = ATC_PAGE_SIZE - 1;
/** A command spans at most two pages (LENGTH is at most 4 KiB). */
const MAX_PAGES = 2;
/** Device addresses wrap past 2^64 - 1. */
const ADDRESS_SPAN = 2 ** 64;
/** From 2^53 on a number no longer holds every integer: the bigint DMA entry points take over. */
const EXACT_LIMIT = 2 ** 53;
/** No page-group response waiting to be handled. */
const NO_RESPONSE = -1;

/** Construction options of an sva-testdev. */
export interface SvaTestdevOptions {
  readonly tracer?: Tracer;
}

/** The sva-testdev PCI Express function. */
export class SvaTestdev extends PciDevice {
  /** BAR0. */
  readonly mmio: MmioRegion;
  /** The data buffer (BAR0 0x1000-0x1FFF). */
  readonly buffer = new Uint8Array(SVA_BUFFER_SIZE);
  /** The device-TLB. */
  readonly atc = new DeviceAtc();
  readonly ats: AtsCap;
  readonly pasidCap: PasidCap;
  readonly pri: PriCap;
  /** What the host's AtsPort calls: ATC invalidations and page-group responses. */
  readonly endpoint: AtsEndpoint;

  private command = 0;
  private result: number = SvaResult.Ok;
  private addrLo = 0;
  private addrHi = 0;
  private length = 0;
  private pasid = 0;
  private invCount = 0;
  private prqCount = 0;
  private prgCount = 0;
  private lastAts = 0;
  private irqStatus = 0;
  private irqEnable = 0;
  private control = 0;
  private xlatLo = 0;
  private xlatHi = 0;
  private prgi = 0;
  private lastPrg = 0;

  /** The command being run or waiting, as it was when issued. */
  private jobCmd = 0;
  /** Its ADDR as a 4 KiB page base (exact up to 2^64) and the offset into that page. */
  private jobPage = 0;
  private jobOffset = 0;
  private jobLength = 0;
  /** PASID of its requests (NO_PASID without the PASID flag). */
  private jobPasid = NO_PASID;
  /** Page requests it issued so far (retries included). */
  private jobIssued = 0;
  /** A command is executing: the BAR refuses accesses; responses are deferred. */
  private running = false;
  /** A page request is outstanding for the job (STATUS.PENDING). */
  private pending = false;
  private pendingPrgi = 0;
  /** A response to the job that arrived while it was running. */
  private deferredCode = NO_RESPONSE;

  /** The translation of each page of the running transfer: translated page address, or U. */
  private readonly pageXlat = new Float64Array(MAX_PAGES);
  private readonly pageUntranslated = new Uint8Array(MAX_PAGES);
  private readonly completion = newAtsCompletion();
  /** The ATC entry the last translation request created (null: none). */
  private cached: AtcEntry | null = null;
  private readonly tracer: Tracer | undefined;

  constructor(options: SvaTestdevOptions = {}) {
    super({
      typeName: 'sva-testdev',
      vendorId: SvaPci.VendorId,
      deviceId: SvaPci.DeviceId,
      revision: SvaPci.Revision,
      classCode: SvaPci.ClassCode,
      subsystemVendorId: SvaPci.SubsystemVendorId,
      subsystemId: SvaPci.SubsystemId,
      express: true,
    });
    this.tracer = options.tracer;
    const ops: MmioOps = {
      read: (offset, size) => this.read(offset, size),
      write: (offset, size, value) => this.write(offset, size, value),
    };
    // One region for registers and buffer: 1..8 bytes anywhere (the buffer takes any size and
    // alignment), split into at most 4-byte pieces; the registers ignore all but aligned dwords.
    this.mmio = new MmioRegion('sva-testdev.bar0', SvaPci.MmioSize, ops, {
      valid: { min: 1, max: 8, unaligned: true },
      impl: { min: 1, max: 4 },
    });
    this.initMsi(MSI_CAP_OFFSET, SvaPci.MsiVectors, true, false);
    addPcieCap(this, PCIE_CAP_OFFSET, {
      type: PcieType.Endpoint,
      devCap: DEVCAP_RBER,
      devCtlWmask: DEVCTL_ERR_ENABLES,
      linkCap: LINKCAP_X1,
      linkSta: LINKSTA_X1,
      devCap2: DEVCAP2_EXT,
      devCtl2Wmask: DEVCTL2_EETLPPB,
    });
    this.ats = addAtsCap(this, SvaPci.AtsCap);
    this.pasidCap = addPasidCap(this, SvaPci.PasidCap, { width: SvaPci.PasidWidth, execute: true, privileged: true });
    this.pri = addPriCap(this, SvaPci.PriCap, { capacity: SvaPci.PriCapacity });
    this.registerBar(0, this.mmio, 'mem32');
    this.endpoint = {
      invalidateAtc: (pasid, addr, size) => this.invalidateAtc(pasid, addr, size),
      pageGroupResponse: (pasid, prgi, code) => this.pageGroupResponse(pasid, prgi, code),
    };
  }

  /** IRQ_STATUS (for tests and traces). */
  get interruptStatus(): number {
    return this.irqStatus;
  }

  /** True while a command waits for a page-group response. */
  get isPending(): boolean {
    return this.pending;
  }

  override configWrite(offset: number, size: 1 | 2 | 4, value: number): void {
    super.configWrite(offset, size, value);
    this.pri.configWritten(offset, size, value);
    // Only a PRI Reset forgets the one request a waiting command has outstanding.
    if (this.pending && this.pri.outstanding() === 0) {
      this.pending = false;
      if (!this.running) this.finish(SvaResult.PriUnavailable);
    }
  }

  /** Everything back to power-on: registers, buffer, ATC, PRI accounting, the waiting command. */
  protected override deviceReset(): void {
    this.pri.reset();
    this.atc.flush();
    this.buffer.fill(0);
    this.command = 0;
    this.result = SvaResult.Ok;
    this.addrLo = 0;
    this.addrHi = 0;
    this.length = 0;
    this.pasid = 0;
    this.invCount = 0;
    this.prqCount = 0;
    this.prgCount = 0;
    this.lastAts = 0;
    this.irqStatus = 0;
    this.irqEnable = 0;
    this.control = 0;
    this.xlatLo = 0;
    this.xlatHi = 0;
    this.prgi = 0;
    this.lastPrg = 0;
    this.jobCmd = 0;
    this.jobIssued = 0;
    this.pending = false;
    this.deferredCode = NO_RESPONSE;
  }

  // ---- the AtsEndpoint side ----------------------------------------------------

  /** An ATC invalidation request (PCIe §10.3): CONTROL can leave it unanswered or fail it. */
  private invalidateAtc(pasid: number, addr: number, size: number): AtsInvalidationResult {
    if (this.control & SvaControl.Stall) return 'timeout';
    if (this.control & SvaControl.Fail) return 'error';
    this.atc.invalidate(pasid, addr, size);
    this.invCount = (this.invCount + 1) >>> 0;
    this.raiseIrq(SvaIrq.AtcInvalidated);
    return 'done';
  }

  /** A page-group response (PCIe §10.4.2). */
  private pageGroupResponse(_pasid: number, prgi: number, code: number): void {
    const c = code & PRG_CODE_MASK;
    const g = prgi & PRGI_MASK;
    this.prgCount = (this.prgCount + 1) >>> 0;
    this.lastPrg = (c | (g << LAST_PRG_PRGI_SHIFT)) >>> 0;
    const ours = this.pending && g === this.pendingPrgi;
    if (ours) this.pri.retire(1);
    else this.pri.unexpectedPrgIndex();
    if (c === PRG_FAILURE) this.pri.responseFailure();
    this.raiseIrq(SvaIrq.PageResponse);
    if (!ours) return;
    this.pending = false;
    if (this.running) this.deferredCode = c;
    else this.resume(c);
  }

  /** The waiting command's response arrived: retry a transfer or finish. */
  private resume(code: number): void {
    if (code === PRG_SUCCESS && this.isTransfer()) this.execute();
    else this.finish(responseResult(code));
  }

  // ---- BAR0 ----------------------------------------------------------------

  private read(offset: number, size: 1 | 2 | 4): number {
    if (this.running) return 0;
    if (offset >= SvaReg.Buffer) return this.readBuffer(offset - SvaReg.Buffer, size);
    if (size !== REG_SIZE || offset & REG_ALIGN_MASK) return 0;
    switch (offset) {
      case SvaReg.Id:
        return SVA_ID;
      case SvaReg.Status:
        return this.status();
      case SvaReg.Command:
        return this.command;
      case SvaReg.Result:
        return this.result;
      case SvaReg.AddrLo:
        return this.addrLo;
      case SvaReg.AddrHi:
        return this.addrHi;
      case SvaReg.Length:
        return this.length;
      case SvaReg.Pasid:
        return this.pasid;
      case SvaReg.AtcCount:
        return this.atc.count;
      case SvaReg.InvCount:
        return this.invCount;
      case SvaReg.PrqCount:
        return this.prqCount;
      case SvaReg.PrgCount:
        return this.prgCount;
      case SvaReg.LastAts:
        return this.lastAts;
      case SvaReg.IrqStatus:
        return this.irqStatus;
      case SvaReg.IrqEnable:
        return this.irqEnable;
      case SvaReg.Control:
        return this.control;
      case SvaReg.XlatLo:
        return this.xlatLo;
      case SvaReg.XlatHi:
        return this.xlatHi;
      case SvaReg.Prgi:
        return this.prgi;
      case SvaReg.LastPrg:
        return this.lastPrg;
      default:
        return 0;
    }
  }

  private write(offset: number, size: 1 | 2 | 4, value: number): void {
    if (this.running) return;
    if (offset >= SvaReg.Buffer) {
      this.writeBuffer(offset - SvaReg.Buffer, size, value);
      return;
    }
    if (size !== REG_SIZE || offset & REG_ALIGN_MASK) return;
    const v = value >>> 0;
    switch (offset) {
      case SvaReg.Command:
        this.runCommand(v);
        break;
      case SvaReg.AddrLo:
        this.addrLo = v;
        break;
      case SvaReg.AddrHi:
        this.addrHi = v;
        break;
      case SvaReg.Length:
        this.length = v;
        break;
      case SvaReg.Pasid:
        this.pasid = v & PASID_MASK;
        break;
      case SvaReg.IrqStatus:
        this.irqStatus = (this.irqStatus & ~v) >>> 0;
        break;
      case SvaReg.IrqEnable:
        this.irqEnable = v & IRQ_MASK;
        break;
      case SvaReg.Control:
        this.control = v & CONTROL_MASK;
        break;
      case SvaReg.Prgi:
        this.prgi = v & PRGI_MASK;
        break;
    }
  }

  /** Little-endian bytes of the buffer (bytes past its end read 0). */
  private readBuffer(at: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v << 8) | (at + i < SVA_BUFFER_SIZE ? this.buffer[at + i]! : 0);
    return v >>> 0;
  }

  private writeBuffer(at: number, size: number, value: number): void {
    for (let i = 0; i < size && at + i < SVA_BUFFER_SIZE; i++) this.buffer[at + i] = (value >>> (8 * i)) & 0xff;
  }

  private status(): number {
    return (
      (this.pending ? SvaStatus.Pending : 0) |
      (this.ats.enabled() ? SvaStatus.AtsEnabled : 0) |
      (this.pasidCap.enabled() ? SvaStatus.PasidEnabled : 0) |
      (this.pri.enabled() ? SvaStatus.PriEnabled : 0)
    );
  }

  // ---- commands -------------------------------------------------------------

  /** A COMMAND write. */
  private runCommand(cmd: number): void {
    this.command = cmd;
    const op = cmd & SvaCmd.OPCODE_MASK;
    if (op === SvaCmd.Nop) return this.finish(SvaResult.Ok);
    if (op === SvaCmd.AtcFlush) {
      this.atc.flush();
      return this.finish(SvaResult.Ok);
    }
    if (this.pending || op > SvaCmd.PageRequest) return this.finish(SvaResult.BadCommand);
    const r = this.check(cmd, op);
    if (r !== SvaResult.Ok) return this.finish(r);
    this.jobCmd = cmd;
    this.jobPage = this.addrHi * TWO_POW_32 + ((this.addrLo & ~PAGE_OFFSET_MASK) >>> 0);
    this.jobOffset = this.addrLo & PAGE_OFFSET_MASK;
    this.jobLength = this.length;
    this.jobPasid = cmd & SvaCmd.PASID ? this.pasid : NO_PASID;
    this.jobIssued = 0;
    this.execute();
  }

  /** The checks before a READ / WRITE / TRANSLATE / PAGE_REQUEST runs. */
  private check(cmd: number, op: number): number {
    if (op !== SvaCmd.PageRequest && (this.length === 0 || this.length > SVA_BUFFER_SIZE)) return SvaResult.BadCommand;
    if (cmd & SvaCmd.PASID && !(this.pasidCap.enabled() && this.pasidCap.accepts(this.pasid))) return SvaResult.PasidDisabled;
    const usesAts = op === SvaCmd.Translate || (op !== SvaCmd.PageRequest && (cmd & SvaCmd.ATC) !== 0);
    if (usesAts && !this.ats.enabled()) return SvaResult.AtsDisabled;
    return SvaResult.Ok;
  }

  /** Runs the job; a response arriving during a page request is handled here, after the port returns. */
  private execute(): void {
    this.running = true;
    this.deferredCode = NO_RESPONSE;
    let r: number;
    for (;;) {
      r = this.attempt();
      if (r !== SvaResult.Pending || this.pending) break;
      const code = this.deferredCode;
      this.deferredCode = NO_RESPONSE;
      if (code === NO_RESPONSE) {
        // A PRI Reset during the page request forgot it.
        r = SvaResult.PriUnavailable;
        break;
      }
      if (code !== PRG_SUCCESS || !this.isTransfer()) {
        r = responseResult(code);
        break;
      }
    }
    this.running = false;
    if (r === SvaResult.Pending) {
      this.result = SvaResult.Pending;
      this.traceResult();
    } else {
      this.finish(r);
    }
  }

  /** One run of the job from scratch. */
  private attempt(): number {
    switch (this.jobCmd & SvaCmd.OPCODE_MASK) {
      case SvaCmd.PageRequest:
        return this.pageRequest(this.jobPage, true, (this.jobCmd & SvaCmd.WRITE) !== 0);
      case SvaCmd.Translate:
        return this.translateAll();
      default: {
        const write = (this.jobCmd & SvaCmd.OPCODE_MASK) === SvaCmd.Write;
        return this.jobCmd & SvaCmd.ATC ? this.atcTransfer(write) : this.untranslatedTransfer(write);
      }
    }
  }

  private isTransfer(): boolean {
    const op = this.jobCmd & SvaCmd.OPCODE_MASK;
    return op === SvaCmd.Read || op === SvaCmd.Write;
  }

  /** A command ended: RESULT, then the Done interrupt. */
  private finish(r: number): void {
    this.result = r;
    this.traceResult();
    this.raiseIrq(SvaIrq.Done);
  }

  // ---- pages of the job ------------------------------------------------------

  private pageCount(): number {
    return this.jobOffset + this.jobLength > ATC_PAGE_SIZE ? MAX_PAGES : 1;
  }

  /** Base of the job's page `i` (wrapping past 2^64). */
  private pageBase(i: number): number {
    const p = this.jobPage + i * ATC_PAGE_SIZE;
    return p >= ADDRESS_SPAN ? p - ADDRESS_SPAN : p;
  }

  /** Offset into page `i` where the job's bytes start. */
  private pageStart(i: number): number {
    return i === 0 ? this.jobOffset : 0;
  }

  /** Bytes of the job in page `i`. */
  private pageBytes(i: number): number {
    const first = Math.min(this.jobLength, ATC_PAGE_SIZE - this.jobOffset);
    return i === 0 ? first : this.jobLength - first;
  }

  /** The job's untranslated DMA space (with its PASID, if any). */
  private untranslatedSpace(): DmaMemory {
    return this.jobPasid === NO_PASID ? this.dma : this.dmaWithPasid(this.jobPasid);
  }

  // ---- transfers -------------------------------------------------------------

  /** READ / WRITE without the ATC: one untranslated access of LENGTH bytes. */
  private untranslatedTransfer(write: boolean): number {
    const data = this.buffer.subarray(0, this.jobLength);
    return move(this.untranslatedSpace(), this.jobPage, this.jobOffset, data, write) === MemTx.Ok ? SvaResult.Ok : SvaResult.DmaFault;
  }

  /** READ / WRITE through the ATC: translate every page, then move the data. */
  private atcTransfer(write: boolean): number {
    const pages = this.pageCount();
    for (let i = 0; i < pages; i++) {
      const r = this.translatePage(i, write);
      if (r !== SvaResult.Ok) return r;
    }
    let r: number = SvaResult.Ok;
    for (let i = 0, done = 0; i < pages; i++) {
      const n = this.pageBytes(i);
      const data = this.buffer.subarray(done, done + n);
      done += n;
      let tx: MemTx;
      if (this.pageUntranslated[i]) {
        tx = move(this.untranslatedSpace(), this.pageBase(i), this.pageStart(i), data, write);
      } else if (!this.plugged) {
        tx = MemTx.DecodeError;
      } else {
        const mem = this.translatedDma();
        const at = this.pageXlat[i]! + this.pageStart(i);
        tx = write ? mem.write(at, data) : mem.read(at, data);
      }
      if (tx !== MemTx.Ok) r = SvaResult.DmaFault;
    }
    return r;
  }

  /** Makes sure page `i` has a usable translation (ATC hit or a new completion); may raise a page request. */
  private translatePage(i: number, write: boolean): number {
    const page = this.pageBase(i);
    const hit = this.atc.lookup(this.jobPasid, page);
    if (hit !== null && allows(hit, write)) {
      this.record(i, hit, page);
      return SvaResult.Ok;
    }
    const r = this.translationRequest(page, !write);
    if (r !== SvaResult.Ok) return r;
    if (this.cached !== null && allows(this.cached, write)) {
      this.record(i, this.cached, page);
      return SvaResult.Ok;
    }
    if (!(this.jobCmd & SvaCmd.PRI) || this.jobIssued >= SVA_MAX_PAGE_REQUESTS) return SvaResult.NoAccess;
    return this.pageRequest(page, !write, write);
  }

  private record(i: number, e: AtcEntry, page: number): void {
    this.pageUntranslated[i] = e.untranslatedOnly ? 1 : 0;
    this.pageXlat[i] = e.translated + (page - e.iova);
  }

  /** TRANSLATE: a translation request for every page, filling the ATC. */
  private translateAll(): number {
    const noWrite = (this.jobCmd & SvaCmd.WRITE) === 0;
    for (let i = 0, pages = this.pageCount(); i < pages; i++) {
      const r = this.translationRequest(this.pageBase(i), noWrite);
      if (r !== SvaResult.Ok) return r;
      const c = this.completion;
      if (!(c.read || c.write || c.untranslatedOnly)) return SvaResult.NoAccess;
    }
    return SvaResult.Ok;
  }

  // ---- ATS and PRI -----------------------------------------------------------

  /** The host's port (null: no ATS there). */
  private port(): AtsPort | null {
    return this.atsPort(this.endpoint);
  }

  /**
   * One ATS translation request for `page`: the completion lands in
   * `this.completion` and LAST_ATS / XLAT, and is cached when it grants any
   * access.  Returns OK for any Success completion.
   */
  private translationRequest(page: number, noWrite: boolean): number {
    if (!this.masterChainEnabled()) return SvaResult.DmaFault;
    const c = this.completion;
    this.cached = null;
    c.status = AtsStatus.Success;
    c.iova = page;
    c.translated = 0;
    c.addrMask = PAGE_OFFSET_MASK;
    c.read = false;
    c.write = false;
    c.untranslatedOnly = false;
    const port = this.port();
    if (port === null) c.status = AtsStatus.UnsupportedRequest;
    else port.translationRequest(this.jobPasid, iova(page), noWrite, c);
    this.recordCompletion(c.status === AtsStatus.Success);
    if (c.status === AtsStatus.UnsupportedRequest) return SvaResult.AtsUr;
    if (c.status !== AtsStatus.Success) return SvaResult.AtsCa;
    if (c.read || c.write || c.untranslatedOnly) this.cached = this.atc.insert(this.jobPasid, page, c);
    return SvaResult.Ok;
  }

  /** LAST_ATS and XLAT from `this.completion`. */
  private recordCompletion(success: boolean): void {
    const c = this.completion;
    const size = c.addrMask + 1;
    const log2 = Math.log2(size);
    const sizeField = Number.isInteger(log2) ? log2 & ATS_SIZE_MASK : 0;
    const perms = success ? (c.read ? SvaLastAts.R : 0) | (c.write ? SvaLastAts.W : 0) | (c.untranslatedOnly ? SvaLastAts.U : 0) : 0;
    this.lastAts = (perms | ((c.status & ATS_STATUS_MASK) << SvaLastAts.STATUS_SHIFT) | (sizeField << SvaLastAts.SIZE_SHIFT)) >>> 0;
    const unit = translationSize(c.addrMask);
    const base = c.translated - (c.translated % unit);
    this.xlatLo = lo32(base);
    this.xlatHi = hi32(base);
  }

  /** One page request for `page` (LPIG set, PRGI register); PENDING when the host queued it. */
  private pageRequest(page: number, read: boolean, write: boolean): number {
    if (!this.masterChainEnabled()) return SvaResult.DmaFault;
    if (!this.pri.issue()) return SvaResult.PriUnavailable;
    this.jobIssued++;
    const port = this.port();
    if (port === null) {
      this.pri.retire(1);
      return SvaResult.PrqRefused;
    }
    this.prqCount = (this.prqCount + 1) >>> 0;
    this.pending = true;
    this.pendingPrgi = this.prgi;
    const status = port.pageRequest(this.jobPasid, {
      addr: page,
      read,
      write,
      execute: (this.jobCmd & SvaCmd.EXEC) !== 0,
      privileged: (this.jobCmd & SvaCmd.PRIV) !== 0,
      prgi: this.prgi,
      last: true,
    });
    if (status === 'queued') return SvaResult.Pending;
    // Dropped or refused: no response will come; the credit comes back at once.
    if (this.pending) this.pri.retire(1);
    this.pending = false;
    this.deferredCode = NO_RESPONSE;
    return status === 'overflow' ? SvaResult.PrqOverflow : SvaResult.PrqRefused;
  }

  // ---- interrupts and traces ---------------------------------------------------

  /** Sets IRQ_STATUS bits; an enabled one sends the MSI (edu-style: no INTx). */
  private raiseIrq(bits: number): void {
    this.irqStatus = (this.irqStatus | bits) >>> 0;
    if (bits & this.irqEnable && this.msiEnabled()) this.msiNotify(0);
  }

  private traceResult(): void {
    if (this.tracer !== undefined && this.tracer.enabled('sva_testdev_result')) {
      this.tracer.trace('sva_testdev_result', { command: this.command, result: this.result });
    }
  }
}

/** True when a cached translation serves an access (a U entry serves any, untranslated). */
function allows(e: AtcEntry, write: boolean): boolean {
  return e.untranslatedOnly || (write ? e.write : e.read);
}

/** RESULT of a command ended by a page-group response. */
function responseResult(code: number): number {
  if (code === PRG_SUCCESS) return SvaResult.Ok;
  return code === PRG_INVALID ? SvaResult.PrgInvalid : SvaResult.PrgFailure;
}

/** One untranslated access at page + offset (the bigint entry points from 2^53 on). */
function move(mem: DmaMemory, page: number, offset: number, data: Uint8Array, write: boolean): MemTx {
  const addr = page + offset;
  if (addr + data.length <= EXACT_LIMIT) return write ? mem.write(addr, data) : mem.read(addr, data);
  const wide = BigInt(page) + BigInt(offset);
  return write ? mem.writeWide(wide, data) : mem.readWide(wide, data);
}
