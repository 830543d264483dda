/**
 * sva-testdev through its public interface: a PCI bus over guest RAM, BAR0
 * reached through the system address space (bus access rules included), a
 * fake host whose translator stands in for the IOMMU's untranslated and
 * translated request paths, and a fake AtsPort with scripted translation
 * completions and page-request statuses that records every call.  The
 * device is a vtemu extension (QEMU 11.1 has no device issuing ATS or page
 * requests), so these are spec-derived expectations, not QEMU observations.
 */
import { describe, expect, it } from 'vitest';
import { MSI_WINDOW } from '../../core/irq.js';
import { AddressSpace } from '../../memory/address-space.js';
import {
  ALL_PASIDS,
  AtsStatus,
  DmaAccess,
  DmaRequestKind,
  IommuPerm,
  NO_PASID,
  type AtsCompletion,
  type AtsEndpoint,
  type AtsPort,
  type DevicePageRequest,
  type DmaRequester,
  type DmaTranslator,
  type IotlbEntry,
  type PageRequestStatus,
} from '../../memory/iommu.js';
import { createRam } from '../../memory/ram-backend.js';
import { ContainerRegion, RamRegion } from '../../memory/region.js';
import { PciBus, type PciBusHost } from '../../pci/bus.js';
import { PciCommand, PciReg } from '../../pci/config.js';
import { AtsReg } from '../../pci/pcie-ext-caps.js';
import { PriReg, PriStatusBit } from '../../pci/pcie-pri.js';
import { svaTestdevDeviceType, SvaTestdev } from './index.js';
import {
  SVA_ATC_ENTRIES,
  SVA_ID,
  SVA_MAX_PAGE_REQUESTS,
  SvaCmd,
  SvaControl,
  SvaIrq,
  SvaPci,
  SvaReg,
  SvaResult,
  SvaStatus,
} from './regs.js';

const BAR = 0xe000_0000;
const RAM_SIZE = 32 * 1024 * 1024;
const PAGE = 0x1000;
const MIB2 = 0x20_0000;
/** The fake IOMMU's ATS answer: IOVA page + XLAT_SHIFT. */
const XLAT_SHIFT = 0x80_0000;
const MSI_ADDR = 0xfee0_0000;
const MSI_DATA = 0x4041;
/** Config offsets of the capabilities' control registers. */
const ATS_CTRL = SvaPci.AtsCap + AtsReg.Ctrl;
const PASID_CTRL = SvaPci.PasidCap + 6;
const PRI_CTRL = SvaPci.PriCap + PriReg.Ctrl;
const PRI_STATUS = SvaPci.PriCap + PriReg.Status;
const PRI_ALLOC = SvaPci.PriCap + PriReg.Allocation;
const MSI_CAP = 0x40;

/** One request the fake translator saw. */
interface Seen {
  pasid: number;
  iova: number;
  access: DmaAccess;
  kind: DmaRequestKind;
}

/** The host's ATS/PRI port, scripted. */
class FakePort implements AtsPort {
  endpoint: AtsEndpoint | null = null;
  readonly translations: { pasid: number; iova: number; noWrite: boolean }[] = [];
  readonly pageRequests: { pasid: number; req: DevicePageRequest }[] = [];
  /** Fills the completion (default: the page + XLAT_SHIFT, 4 KiB, read and write). */
  answer: (pasid: number, iova: number, noWrite: boolean, out: AtsCompletion) => void = (_p, iova, _nw, out) => {
    out.iova = iova;
    out.translated = iova + XLAT_SHIFT;
    out.addrMask = PAGE - 1;
    out.read = true;
    out.write = true;
  };
  /** What pageRequest returns (after `onPageRequest`, if any). */
  prqStatus: PageRequestStatus = 'queued';
  onPageRequest: ((pasid: number, req: DevicePageRequest) => void) | null = null;

  translationRequest(pasid: number, iova: number, noWrite: boolean, out: AtsCompletion): void {
    this.translations.push({ pasid, iova, noWrite });
    this.answer(pasid, iova, noWrite, out);
  }

  pageRequest(pasid: number, req: DevicePageRequest): PageRequestStatus {
    this.pageRequests.push({ pasid, req });
    this.onPageRequest?.(pasid, req);
    return this.prqStatus;
  }

  /** The IOMMU delivering a page-group response. */
  respond(prgi: number, code: number, pasid = NO_PASID): void {
    this.endpoint!.pageGroupResponse(pasid, prgi, code);
  }
}

/** Answers: success with the given permissions, size and U. */
function grant(read: boolean, write: boolean, size = PAGE, untranslatedOnly = false) {
  return (_p: number, iova: number, _nw: boolean, out: AtsCompletion): void => {
    out.iova = iova;
    out.translated = iova - (iova % size) + XLAT_SHIFT;
    out.addrMask = size - 1;
    out.read = read;
    out.write = write;
    out.untranslatedOnly = untranslatedOnly;
  };
}

interface SetupOptions {
  /** Host has an ATS port (default true). */
  ats?: boolean;
  /** Capabilities the guest enables: ATS, PASID (with execute and privileged), PRI with this allocation. */
  enable?: { ats?: boolean; pasid?: boolean; pri?: number };
}

function setup(opts: SetupOptions = {}) {
  const ram = createRam(RAM_SIZE, 'ts');
  const system = new ContainerRegion('system', 2 ** 64);
  system.add(new RamRegion('ram', RAM_SIZE, ram), 0);
  const memory = new AddressSpace('memory', system);
  const seen: Seen[] = [];
  const faultPages = new Set<number>();
  const msis: { addr: number; data: number }[] = [];
  const port = new FakePort();
  const translator = (pasid: number): DmaTranslator => ({
    interruptWindow: MSI_WINDOW,
    translate(iova: number, access: DmaAccess, out: IotlbEntry, kind: DmaRequestKind = DmaRequestKind.Untranslated): boolean {
      seen.push({ pasid, iova, access, kind });
      const page = iova - (iova % PAGE);
      if (faultPages.has(page)) return false;
      out.iova = page;
      // Identity, folded into RAM for pages beyond it (2^60 + 0x5000 -> 0x5000).
      out.translated = page % RAM_SIZE;
      out.addrMask = PAGE - 1;
      out.perm = IommuPerm.ReadWrite;
      return true;
    },
    interruptWrite(addr: number, data: number) {
      msis.push({ addr, data });
    },
  });
  const host: PciBusHost = {
    dmaMemory: memory,
    iommuGeneration: 0,
    translatorFor: (_r: DmaRequester, pasid: number = NO_PASID) => translator(pasid),
    atsPort: (_r: DmaRequester, endpoint: AtsEndpoint) => {
      port.endpoint = endpoint;
      return opts.ats === false ? null : port;
    },
    mapRootIrq: (_devfn, pin) => pin,
    setRootIrq: () => {},
    rootIrqCount: 8,
  };
  const bus = new PciBus('pcie.0', host, null, true, { memory: system, io: new ContainerRegion('io', 0x10000) });
  const dev = new SvaTestdev();
  bus.plug(dev, { devfn: 0x10 });
  dev.configWrite(PciReg.Bar0, 4, BAR);
  dev.configWrite(PciReg.Command, 2, PciCommand.Memory | PciCommand.Master);
  const en = opts.enable ?? { ats: true, pasid: true, pri: 8 };
  if (en.ats) dev.configWrite(ATS_CTRL, 2, 0x8000);
  if (en.pasid) dev.configWrite(PASID_CTRL, 2, 0x0007);
  if (en.pri !== undefined) {
    dev.configWrite(PRI_ALLOC, 4, en.pri);
    dev.configWrite(PRI_CTRL, 2, 1);
  }
  const rd = (off: number) => memory.read(BAR + off, 4);
  const wr = (off: number, v: number) => memory.write(BAR + off, 4, v >>> 0);
  const setAddr = (a: number) => {
    wr(SvaReg.AddrLo, a % 2 ** 32);
    wr(SvaReg.AddrHi, Math.floor(a / 2 ** 32));
  };
  /** Programs ADDR / LENGTH (/ PASID), writes COMMAND, returns RESULT. */
  const run = (cmd: number, addr = 0, length = 16, pasid?: number) => {
    setAddr(addr);
    wr(SvaReg.Length, length);
    if (pasid !== undefined) wr(SvaReg.Pasid, pasid);
    wr(SvaReg.Command, cmd);
    return rd(SvaReg.Result);
  };
  /** Fills the device buffer with i + seed. */
  const fillBuffer = (n: number, seed = 1) => {
    for (let i = 0; i < n; i++) dev.buffer[i] = (i + seed) & 0xff;
  };
  const ramBytes = (addr: number, n: number) => Array.from({ length: n }, (_, i) => ram.readU8(addr + i));
  const pattern = (n: number, seed = 1) => Array.from({ length: n }, (_, i) => (i + seed) & 0xff);
  const enableMsi = () => {
    dev.configWrite(MSI_CAP + 4, 4, MSI_ADDR);
    dev.configWrite(MSI_CAP + 8, 4, 0);
    dev.configWrite(MSI_CAP + 12, 2, MSI_DATA);
    dev.configWrite(MSI_CAP + 2, 2, 1);
  };
  return { ram, memory, dev, port, seen, faultPages, msis, rd, wr, run, setAddr, fillBuffer, ramBytes, pattern, enableMsi };
}

const READ_ATC = SvaCmd.Read | SvaCmd.ATC;
const WRITE_ATC = SvaCmd.Write | SvaCmd.ATC;

describe('sva-testdev PCI identity and capabilities', () => {
  it('IDs, class, no interrupt pin, an 8 KiB 32-bit BAR', () => {
    const { dev } = setup();
    expect(dev.configRead(0x00, 4)).toBe(0x5341_1234);
    expect(dev.configRead(0x08, 4)).toBe(0x00ff_0001);
    expect(dev.configRead(0x2c, 4)).toBe(0x1100_1af4);
    expect(dev.configRead(PciReg.InterruptPin, 1)).toBe(0);
    expect(dev.isExpress).toBe(true);
    dev.configWrite(PciReg.Bar0, 4, 0xffff_ffff);
    expect(dev.configRead(PciReg.Bar0, 4)).toBe(0xffff_e000);
  });

  it('capability list: PCIe endpoint at 0x80, then MSI (64-bit, 1 vector) at 0x40', () => {
    const { dev } = setup();
    expect(dev.configRead(0x34, 1)).toBe(0x80);
    expect(dev.configRead(0x80, 2)).toBe(0x4010);
    // Flags: version 2, type 0 (endpoint), no slot.
    expect(dev.configRead(0x82, 2)).toBe(0x0002);
    expect(dev.configRead(0x40, 2)).toBe(0x0005);
    // MSI control: 64-bit, one vector (MMC 0), disabled.
    expect(dev.configRead(0x42, 2)).toBe(0x0080);
  });

  it('extended capabilities: ATS 0x100 -> PASID 0x110 (20 bits, exec, priv) -> PRI 0x120 (capacity 32)', () => {
    const { dev } = setup({ enable: {} });
    expect(dev.configRead(0x100, 4)).toBe(0x1101_000f);
    expect(dev.configRead(0x110, 4)).toBe(0x1201_001b);
    expect(dev.configRead(0x114, 2)).toBe(0x1406);
    expect(dev.configRead(0x120, 4)).toBe(0x0001_0013);
    expect(dev.configRead(0x128, 4)).toBe(SvaPci.PriCapacity);
    expect(dev.configRead(PRI_STATUS, 2)).toBe(PriStatusBit.Stopped);
  });

  it('the device type: PCI, Misc, no properties, says it is a vtemu extension; created devices are fresh', () => {
    expect(svaTestdevDeviceType).toMatchObject({ name: 'sva-testdev', bus: 'pci', category: 'Misc', qemuRelease: '11.1' });
    expect(Object.keys(svaTestdevDeviceType.props)).toEqual([]);
    expect(svaTestdevDeviceType.description).toMatch(/vtemu extension, not in QEMU/);
  });
});

describe('sva-testdev registers', () => {
  it('reset values: ID, STATUS from the caps, everything else 0', () => {
    const { rd } = setup({ enable: {} });
    expect(rd(SvaReg.Id)).toBe(SVA_ID);
    for (let off = 4; off < 0x1000; off += 4) expect(rd(off), `0x${off.toString(16)}`).toBe(0);
  });

  it('STATUS bits 1/2/3 follow ATS / PASID / PRI Enable', () => {
    const { rd, dev } = setup({ enable: {} });
    dev.configWrite(ATS_CTRL, 2, 0x8000);
    expect(rd(SvaReg.Status)).toBe(SvaStatus.AtsEnabled);
    dev.configWrite(PASID_CTRL, 2, 1);
    dev.configWrite(PRI_CTRL, 2, 1);
    expect(rd(SvaReg.Status)).toBe(SvaStatus.AtsEnabled | SvaStatus.PasidEnabled | SvaStatus.PriEnabled);
    dev.configWrite(ATS_CTRL, 2, 0);
    expect(rd(SvaReg.Status)).toBe(SvaStatus.PasidEnabled | SvaStatus.PriEnabled);
  });

  it('RW registers keep their writable bits; RO ones and unused offsets ignore writes', () => {
    const { rd, wr } = setup({ enable: {} });
    const rw: [number, number][] = [
      [SvaReg.AddrLo, 0xffff_ffff],
      [SvaReg.AddrHi, 0xffff_ffff],
      [SvaReg.Length, 0xffff_ffff],
      [SvaReg.Pasid, 0xf_ffff],
      [SvaReg.IrqEnable, 0x7],
      [SvaReg.Control, 0x3],
      [SvaReg.Prgi, 0x1ff],
    ];
    for (const [off] of rw) wr(off, 0xffff_ffff);
    for (const [off, mask] of rw) expect(rd(off), `0x${off.toString(16)}`).toBe(mask);
    for (const off of [SvaReg.Id, SvaReg.Status, SvaReg.Result, SvaReg.AtcCount, SvaReg.InvCount, SvaReg.PrqCount, SvaReg.PrgCount, SvaReg.LastAts, SvaReg.XlatLo, SvaReg.XlatHi, SvaReg.LastPrg, 0x50, 0xffc]) {
      wr(off, 0x1234_5678);
    }
    expect(rd(SvaReg.Id)).toBe(SVA_ID);
    for (const off of [SvaReg.Status, SvaReg.Result, SvaReg.AtcCount, SvaReg.LastAts, SvaReg.XlatHi, SvaReg.LastPrg, 0x50, 0xffc]) expect(rd(off)).toBe(0);
  });

  it('registers ignore 1- and 2-byte and unaligned accesses; 8-byte ones are the dword pair', () => {
    const { memory, rd } = setup({ enable: {} });
    memory.write(BAR + SvaReg.AddrLo, 1, 0xaa);
    memory.write(BAR + SvaReg.AddrLo, 2, 0xaaaa);
    memory.write(BAR + SvaReg.AddrLo + 1, 4, 0xaaaa_aaaa);
    expect(rd(SvaReg.AddrLo)).toBe(0);
    expect(memory.read(BAR + SvaReg.Id, 2)).toBe(0);
    expect(memory.read(BAR + SvaReg.Id, 1)).toBe(0);
    expect(memory.read(BAR + 2, 4)).toBe(0);
    memory.write64(BAR + SvaReg.AddrLo, 0x1234_5678_9abc_def0n);
    expect([rd(SvaReg.AddrLo), rd(SvaReg.AddrHi)]).toEqual([0x9abc_def0, 0x1234_5678]);
    expect(memory.read64(BAR + SvaReg.AddrLo)).toBe(0x1234_5678_9abc_def0n);
    expect(memory.read64(BAR + SvaReg.Id)).toBe(BigInt(SVA_ID));
  });

  it('the buffer takes any size at any alignment, little-endian', () => {
    const { memory, dev } = setup({ enable: {} });
    memory.write(BAR + 0x1001, 4, 0x4433_2211);
    memory.write(BAR + 0x1005, 2, 0x6655);
    memory.write(BAR + 0x1007, 1, 0x77);
    expect(Array.from(dev.buffer.subarray(0, 9))).toEqual([0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0]);
    expect(memory.read(BAR + 0x1003, 4)).toBe(0x6655_4433);
    expect(memory.read(BAR + 0x1002, 2)).toBe(0x3322);
    memory.write64(BAR + 0x1ff8, 0x0807_0605_0403_0201n);
    expect(memory.read64(BAR + 0x1ff8)).toBe(0x0807_0605_0403_0201n);
    expect(memory.read64(BAR + 0x1003)).toBe(0x0077_6655_4433n);
    expect(memory.read(BAR + 0x1fff, 1)).toBe(0x08);
  });

  it('IRQ_STATUS is write-1-to-clear', () => {
    const { run, rd, wr } = setup();
    run(SvaCmd.Nop);
    expect(rd(SvaReg.IrqStatus)).toBe(SvaIrq.Done);
    wr(SvaReg.IrqStatus, SvaIrq.PageResponse);
    expect(rd(SvaReg.IrqStatus)).toBe(SvaIrq.Done);
    wr(SvaReg.IrqStatus, 0xffff_ffff);
    expect(rd(SvaReg.IrqStatus)).toBe(0);
  });
});

describe('sva-testdev commands without the ATC', () => {
  it('NOP: OK and Done; COMMAND reads back what was written', () => {
    const { run, rd } = setup();
    expect(run(SvaCmd.Nop | SvaCmd.PASID | 0xff_0000)).toBe(SvaResult.Ok);
    expect(rd(SvaReg.Command)).toBe(SvaCmd.Nop | SvaCmd.PASID | 0xff_0000);
    expect(rd(SvaReg.IrqStatus)).toBe(SvaIrq.Done);
  });

  it('unknown opcodes and LENGTH 0 or above 4096 are BAD_COMMAND', () => {
    const { run, rd, port } = setup();
    for (let op = 6; op <= 0xf; op++) expect(run(op), `op ${op}`).toBe(SvaResult.BadCommand);
    for (const op of [SvaCmd.Read, SvaCmd.Write, SvaCmd.Translate, READ_ATC]) {
      expect(run(op, 0x1000, 0)).toBe(SvaResult.BadCommand);
      expect(run(op, 0x1000, 4097)).toBe(SvaResult.BadCommand);
    }
    expect(rd(SvaReg.IrqStatus)).toBe(SvaIrq.Done);
    expect(port.translations).toEqual([]);
  });

  it('WRITE then READ: untranslated requests without a PASID through the device DMA space', () => {
    const { run, fillBuffer, ramBytes, pattern, dev, seen } = setup();
    fillBuffer(4096, 3);
    expect(run(SvaCmd.Write, 0x10_0800, 4096)).toBe(SvaResult.Ok);
    expect(ramBytes(0x10_0800, 4096)).toEqual(pattern(4096, 3));
    expect(seen.every((s) => s.pasid === NO_PASID && s.kind === DmaRequestKind.Untranslated && s.access === DmaAccess.Write)).toBe(true);
    expect(seen.map((s) => s.iova - (s.iova % PAGE))).toEqual([0x10_0000, 0x10_1000]);
    dev.buffer.fill(0);
    seen.length = 0;
    expect(run(SvaCmd.Read, 0x10_0801, 5)).toBe(SvaResult.Ok);
    expect(Array.from(dev.buffer.subarray(0, 6))).toEqual([...pattern(5, 4), 0]);
    expect(seen).toEqual([{ pasid: NO_PASID, iova: 0x10_0801, access: DmaAccess.Read, kind: DmaRequestKind.Untranslated }]);
  });

  it('the PASID flag puts the requests in the PASID space; PASID Enable clear is PASID_DISABLED', () => {
    const { run, seen, dev, ramBytes } = setup();
    dev.buffer[0] = 0x5a;
    expect(run(SvaCmd.Write | SvaCmd.PASID, 0x20_0000, 1, 0xabcde)).toBe(SvaResult.Ok);
    expect(seen).toEqual([{ pasid: 0xabcde, iova: 0x20_0000, access: DmaAccess.Write, kind: DmaRequestKind.Untranslated }]);
    expect(ramBytes(0x20_0000, 1)).toEqual([0x5a]);
    dev.configWrite(PASID_CTRL, 2, 0);
    seen.length = 0;
    expect(run(SvaCmd.Write | SvaCmd.PASID, 0x20_0000, 1, 1)).toBe(SvaResult.PasidDisabled);
    expect(run(SvaCmd.Read | SvaCmd.PASID | SvaCmd.ATC, 0x20_0000, 1, 1)).toBe(SvaResult.PasidDisabled);
    expect(seen).toEqual([]);
  });

  it('a refused page or bus mastering off is DMA_FAULT', () => {
    const { run, faultPages, dev, ramBytes } = setup();
    faultPages.add(0x30_1000);
    dev.buffer.fill(0xee);
    expect(run(SvaCmd.Write, 0x30_0ff0, 0x20)).toBe(SvaResult.DmaFault);
    // The page before the fault was written, as a DMA space does.
    expect(ramBytes(0x30_0ff0, 0x10)).toEqual(Array(0x10).fill(0xee));
    expect(ramBytes(0x30_1000, 0x10)).toEqual(Array(0x10).fill(0));
    dev.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(run(SvaCmd.Write, 0x30_0000, 4)).toBe(SvaResult.DmaFault);
    expect(ramBytes(0x30_0000, 4)).toEqual([0, 0, 0, 0]);
  });

  it('ADDR at 2^53 and above reaches the translator as the exact page', () => {
    const { run, seen } = setup();
    expect(run(SvaCmd.Read, 2 ** 60 + 0x5000 + 0x10, 8)).toBe(SvaResult.Ok);
    expect(seen.map((s) => s.iova)).toEqual([2 ** 60 + 0x5000]);
  });
});

describe('sva-testdev ATS: TRANSLATE and the device-TLB', () => {
  it('TRANSLATE and the ATC flag need ATS Enable', () => {
    const { run, port } = setup({ enable: { pasid: true } });
    expect(run(SvaCmd.Translate, 0x1000)).toBe(SvaResult.AtsDisabled);
    expect(run(READ_ATC, 0x1000)).toBe(SvaResult.AtsDisabled);
    expect(run(WRITE_ATC, 0x1000)).toBe(SvaResult.AtsDisabled);
    expect(port.translations).toEqual([]);
  });

  it('TRANSLATE: one request per page (No Write unless the WRITE flag), LAST_ATS, XLAT, ATC_COUNT', () => {
    const { run, rd, port } = setup();
    expect(run(SvaCmd.Translate | SvaCmd.PASID, 0x12_3ff8, 16, 9)).toBe(SvaResult.Ok);
    expect(port.translations).toEqual([
      { pasid: 9, iova: 0x12_3000, noWrite: true },
      { pasid: 9, iova: 0x12_4000, noWrite: true },
    ]);
    expect(rd(SvaReg.AtcCount)).toBe(2);
    // R, W, status 0, size 2^12.
    expect(rd(SvaReg.LastAts)).toBe(0x0c03);
    expect([rd(SvaReg.XlatLo), rd(SvaReg.XlatHi)]).toEqual([0x12_4000 + XLAT_SHIFT, 0]);
    expect(run(SvaCmd.Translate | SvaCmd.WRITE, 0x5000, 1)).toBe(SvaResult.Ok);
    expect(port.translations.at(-1)).toEqual({ pasid: NO_PASID, iova: 0x5000, noWrite: false });
    expect(rd(SvaReg.AtcCount)).toBe(3);
  });

  it('TRANSLATE: large pages, U, high translated addresses in LAST_ATS / XLAT', () => {
    const { run, rd, port } = setup();
    port.answer = (_p, iova, _nw, out) => {
      out.translated = 0x12_3456_0000_0000 + 0x1234;
      out.addrMask = 2 ** 30 - 1;
      out.read = true;
      out.untranslatedOnly = true;
      out.iova = iova;
    };
    expect(run(SvaCmd.Translate, 0x4000_0000, 1)).toBe(SvaResult.Ok);
    expect(rd(SvaReg.LastAts)).toBe(0x1e05);
    expect([rd(SvaReg.XlatLo), rd(SvaReg.XlatHi)]).toEqual([0, 0x12_3456]);
  });

  it('TRANSLATE: UR, CA, no access, no port', () => {
    const { run, rd, port } = setup();
    port.answer = (_p, _i, _nw, out) => {
      out.status = AtsStatus.UnsupportedRequest;
    };
    expect(run(SvaCmd.Translate, 0x1000)).toBe(SvaResult.AtsUr);
    expect(rd(SvaReg.LastAts)).toBe(0x0c10);
    port.answer = (_p, _i, _nw, out) => {
      out.status = AtsStatus.CompleterAbort;
      out.read = true;
    };
    expect(run(SvaCmd.Translate, 0x1000)).toBe(SvaResult.AtsCa);
    expect(rd(SvaReg.LastAts)).toBe(0x0c40);
    port.answer = grant(false, false);
    expect(run(SvaCmd.Translate, 0x1000)).toBe(SvaResult.NoAccess);
    expect(rd(SvaReg.LastAts)).toBe(0x0c00);
    expect(rd(SvaReg.AtcCount)).toBe(0);
    const noPort = setup({ ats: false });
    expect(noPort.run(SvaCmd.Translate, 0x1000)).toBe(SvaResult.AtsUr);
    expect(noPort.rd(SvaReg.LastAts)).toBe(0x0c10);
    expect(noPort.run(READ_ATC, 0x1000)).toBe(SvaResult.AtsUr);
  });

  it('READ / WRITE with the ATC: a miss is a translation request, the data moves as translated requests without a PASID', () => {
    const { run, rd, port, seen, fillBuffer, ramBytes, pattern, dev } = setup();
    fillBuffer(0x100, 7);
    expect(run(WRITE_ATC | SvaCmd.PASID, 0x40_0f80, 0x100, 0x42)).toBe(SvaResult.Ok);
    expect(port.translations).toEqual([
      { pasid: 0x42, iova: 0x40_0000, noWrite: false },
      { pasid: 0x42, iova: 0x40_1000, noWrite: false },
    ]);
    expect(ramBytes(0x40_0f80 + XLAT_SHIFT, 0x100)).toEqual(pattern(0x100, 7));
    expect(ramBytes(0x40_0f80, 0x100)).toEqual(Array(0x100).fill(0));
    expect(seen.map((s) => [s.pasid, s.kind, s.iova])).toEqual([
      [NO_PASID, DmaRequestKind.Translated, 0x40_0f80 + XLAT_SHIFT],
      [NO_PASID, DmaRequestKind.Translated, 0x40_1000 + XLAT_SHIFT],
    ]);
    expect(rd(SvaReg.AtcCount)).toBe(2);
    // Hits: no more translation requests; READ asks for read only on a miss.
    dev.buffer.fill(0);
    expect(run(READ_ATC | SvaCmd.PASID, 0x40_0f80, 0x100, 0x42)).toBe(SvaResult.Ok);
    expect(Array.from(dev.buffer.subarray(0, 0x100))).toEqual(pattern(0x100, 7));
    expect(port.translations.length).toBe(2);
    // Another PASID (or none) misses.
    expect(run(READ_ATC, 0x40_0f80, 1)).toBe(SvaResult.Ok);
    expect(port.translations.at(-1)).toEqual({ pasid: NO_PASID, iova: 0x40_0000, noWrite: true });
  });

  it('a 2 MiB completion serves the later pages without new requests', () => {
    const { run, rd, port } = setup();
    port.answer = grant(true, true, MIB2);
    expect(run(READ_ATC, 0x60_0000, 16)).toBe(SvaResult.Ok);
    expect(rd(SvaReg.LastAts) >>> 8).toBe(21);
    for (const a of [0x60_1000, 0x6f_fff8, 0x7f_f000]) expect(run(READ_ATC, a, 16), a.toString(16)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(1);
    expect(rd(SvaReg.AtcCount)).toBe(1);
    expect(run(READ_ATC, 0x80_0000, 16)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(2);
  });

  it('a read-only entry serves READ; WRITE sends a new request whose completion replaces it', () => {
    const { run, rd, port } = setup();
    port.answer = grant(true, false);
    expect(run(READ_ATC, 0x9000, 8)).toBe(SvaResult.Ok);
    expect(run(READ_ATC, 0x9000, 8)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(1);
    port.answer = grant(true, true);
    expect(run(WRITE_ATC, 0x9000, 8)).toBe(SvaResult.Ok);
    expect(port.translations.at(-1)).toEqual({ pasid: NO_PASID, iova: 0x9000, noWrite: false });
    expect(rd(SvaReg.AtcCount)).toBe(1);
    expect(run(WRITE_ATC, 0x9000, 8)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(2);
    // A write-only grant serves WRITE but a READ asks again.
    port.answer = grant(false, true);
    expect(run(WRITE_ATC, 0xa000, 8)).toBe(SvaResult.Ok);
    expect(run(READ_ATC, 0xa000, 8)).toBe(SvaResult.NoAccess);
    expect(port.translations.length).toBe(4);
  });

  it('U: the page moves as an untranslated request (with the PASID), and the entry serves later accesses', () => {
    const { run, port, seen, ramBytes, dev } = setup();
    port.answer = grant(false, false, PAGE, true);
    dev.buffer.fill(0x33, 0, 4);
    expect(run(WRITE_ATC | SvaCmd.PASID, 0x7000, 4, 5)).toBe(SvaResult.Ok);
    expect(seen).toEqual([{ pasid: 5, iova: 0x7000, access: DmaAccess.Write, kind: DmaRequestKind.Untranslated }]);
    expect(ramBytes(0x7000, 4)).toEqual([0x33, 0x33, 0x33, 0x33]);
    expect(run(READ_ATC | SvaCmd.PASID, 0x7000, 4, 5)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(1);
  });

  it('UR / CA on a transfer; a refused translated request is DMA_FAULT; bus mastering off sends nothing', () => {
    const { run, port, faultPages, dev } = setup();
    port.answer = (_p, _i, _nw, out) => {
      out.status = AtsStatus.UnsupportedRequest;
    };
    expect(run(WRITE_ATC, 0x1000)).toBe(SvaResult.AtsUr);
    port.answer = (_p, _i, _nw, out) => {
      out.status = AtsStatus.CompleterAbort;
    };
    expect(run(WRITE_ATC, 0x1000)).toBe(SvaResult.AtsCa);
    port.answer = grant(true, true);
    faultPages.add(0x1000 + XLAT_SHIFT);
    expect(run(WRITE_ATC, 0x1000)).toBe(SvaResult.DmaFault);
    const n = port.translations.length;
    dev.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(run(READ_ATC, 0x5000)).toBe(SvaResult.DmaFault);
    expect(run(SvaCmd.Translate, 0x5000)).toBe(SvaResult.DmaFault);
    expect(port.translations.length).toBe(n);
  });

  it('ATC_FLUSH drops every entry; the ATC holds 64 entries', () => {
    const { run, rd, port } = setup();
    for (let i = 0; i < SVA_ATC_ENTRIES + 3; i++) run(SvaCmd.Translate, i * PAGE, 1);
    expect(rd(SvaReg.AtcCount)).toBe(SVA_ATC_ENTRIES);
    const n = port.translations.length;
    // The oldest (page 0) was replaced.
    expect(run(READ_ATC, 0, 1)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(n + 1);
    expect(run(SvaCmd.AtcFlush)).toBe(SvaResult.Ok);
    expect(rd(SvaReg.AtcCount)).toBe(0);
  });
});

describe('sva-testdev ATC invalidation requests', () => {
  /** ATC entries at 0x10_0000.. (4 pages) for PASID 1 and 2 and without a PASID, via TRANSLATE. */
  const filled = () => {
    const s = setup();
    for (const pasid of [1, 2]) s.run(SvaCmd.Translate | SvaCmd.PASID, 0x10_0000, 0x1000, pasid);
    for (const pasid of [1, 2]) s.run(SvaCmd.Translate | SvaCmd.PASID, 0x10_2000, 0x1000, pasid);
    s.run(SvaCmd.Translate, 0x10_0000, 0x1000);
    s.run(SvaCmd.Translate, 0x10_2000, 0x1000);
    expect(s.rd(SvaReg.AtcCount)).toBe(6);
    s.wr(SvaReg.IrqStatus, 0xff);
    return s;
  };

  it('by PASID with an 8 KiB range; NO_PASID; ALL_PASIDS over 2 MiB; 2^64', () => {
    const { port, rd } = filled();
    const ep = port.endpoint!;
    // 8 KiB at 0x10_0000: PASID 1's first page only.
    expect(ep.invalidateAtc(1, 0x10_0000, 2 * PAGE)).toBe('done');
    expect(rd(SvaReg.AtcCount)).toBe(5);
    expect(ep.invalidateAtc(NO_PASID, 0x10_2000, PAGE)).toBe('done');
    expect(rd(SvaReg.AtcCount)).toBe(4);
    // 2 MiB holding 0x10_3000: both of PASID 2's pages.
    expect(ep.invalidateAtc(2, 0x10_3000, MIB2)).toBe('done');
    expect(rd(SvaReg.AtcCount)).toBe(2);
    expect(ep.invalidateAtc(ALL_PASIDS, 0x10_2000, PAGE)).toBe('done');
    expect(rd(SvaReg.AtcCount)).toBe(1);
    expect(ep.invalidateAtc(2, 0, 2 ** 64)).toBe('done');
    expect(rd(SvaReg.AtcCount)).toBe(1);
    expect(ep.invalidateAtc(NO_PASID, 0, 2 ** 64)).toBe('done');
    expect(rd(SvaReg.AtcCount)).toBe(0);
    expect(rd(SvaReg.InvCount)).toBe(6);
    expect(rd(SvaReg.IrqStatus)).toBe(SvaIrq.AtcInvalidated);
  });

  it('after an invalidation the next access asks again (no stale translation)', () => {
    const { port, run } = filled();
    const n = port.translations.length;
    expect(run(READ_ATC | SvaCmd.PASID, 0x10_0000, 4, 1)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(n);
    port.endpoint!.invalidateAtc(1, 0x10_0000, PAGE);
    expect(run(READ_ATC | SvaCmd.PASID, 0x10_0000, 4, 1)).toBe(SvaResult.Ok);
    expect(port.translations.length).toBe(n + 1);
  });

  it('CONTROL.STALL: timeout, FAIL: error; nothing changes (STALL wins)', () => {
    const { port, rd, wr } = filled();
    const ep = port.endpoint!;
    wr(SvaReg.Control, SvaControl.Stall | SvaControl.Fail);
    expect(ep.invalidateAtc(ALL_PASIDS, 0, 2 ** 64)).toBe('timeout');
    wr(SvaReg.Control, SvaControl.Fail);
    expect(ep.invalidateAtc(ALL_PASIDS, 0, 2 ** 64)).toBe('error');
    expect([rd(SvaReg.AtcCount), rd(SvaReg.InvCount), rd(SvaReg.IrqStatus)]).toEqual([6, 0, 0]);
    wr(SvaReg.Control, 0);
    expect(ep.invalidateAtc(ALL_PASIDS, 0, 2 ** 64)).toBe('done');
    expect(rd(SvaReg.AtcCount)).toBe(0);
  });
});

describe('sva-testdev PRI', () => {
  it('no access without the PRI flag: NO_ACCESS; with it and PRI disabled or without credits: PRI_UNAVAILABLE', () => {
    const { run, port, dev } = setup({ enable: { ats: true, pasid: true } });
    port.answer = grant(false, false);
    expect(run(READ_ATC, 0x1000)).toBe(SvaResult.NoAccess);
    expect(run(READ_ATC | SvaCmd.PRI, 0x1000)).toBe(SvaResult.PriUnavailable);
    dev.configWrite(PRI_CTRL, 2, 1);
    // Allocation 0: no credits.
    expect(run(READ_ATC | SvaCmd.PRI, 0x1000)).toBe(SvaResult.PriUnavailable);
    expect(run(SvaCmd.PageRequest, 0x1000)).toBe(SvaResult.PriUnavailable);
    expect(port.pageRequests).toEqual([]);
  });

  it('a page request (LPIG, PRGI, R or W, exec / priv from the flags), PENDING, then a successful response retries: the data moves once', () => {
    const { run, rd, wr, port, seen, fillBuffer, ramBytes, pattern, dev } = setup();
    port.answer = grant(true, false);
    fillBuffer(0x20, 9);
    wr(SvaReg.Prgi, 0x1a5);
    expect(run(WRITE_ATC | SvaCmd.PRI | SvaCmd.PASID | SvaCmd.EXEC | SvaCmd.PRIV, 0x20_0ff0, 0x20, 77)).toBe(SvaResult.Pending);
    // Page 0 lacks write: one request, nothing moved.
    expect(port.pageRequests).toEqual([
      { pasid: 77, req: { addr: 0x20_0000, read: false, write: true, execute: true, privileged: true, prgi: 0x1a5, last: true } },
    ]);
    expect(seen).toEqual([]);
    expect(rd(SvaReg.Status) & SvaStatus.Pending).toBe(SvaStatus.Pending);
    expect([rd(SvaReg.PrqCount), rd(SvaReg.IrqStatus), dev.pri.outstanding()]).toEqual([1, 0, 1]);
    // The guest maps the page writable and answers.
    port.answer = grant(true, true);
    port.respond(0x1a5, 0, 77);
    expect(rd(SvaReg.Result)).toBe(SvaResult.Ok);
    expect(rd(SvaReg.Status) & SvaStatus.Pending).toBe(0);
    expect(rd(SvaReg.IrqStatus)).toBe(SvaIrq.Done | SvaIrq.PageResponse);
    expect([rd(SvaReg.PrgCount), rd(SvaReg.LastPrg), dev.pri.outstanding()]).toEqual([1, 0x01a5_0000, 0]);
    expect(ramBytes(0x20_0ff0 + XLAT_SHIFT, 0x20)).toEqual(pattern(0x20, 9));
    expect(seen.filter((s) => s.access === DmaAccess.Write).length).toBe(2);
    // READ's page requests ask for read only.
    port.answer = grant(false, false);
    expect(run(READ_ATC | SvaCmd.PRI, 0x50_0000, 4)).toBe(SvaResult.Pending);
    expect(port.pageRequests.at(-1)).toEqual({ pasid: NO_PASID, req: { addr: 0x50_0000, read: true, write: false, execute: false, privileged: false, prgi: 0x1a5, last: true } });
  });

  it('the retry can go PENDING again; at most 4 page requests per command, then NO_ACCESS', () => {
    const { run, rd, port, dev } = setup();
    port.answer = grant(false, false);
    expect(run(READ_ATC | SvaCmd.PRI, 0x3000, 4)).toBe(SvaResult.Pending);
    for (let i = 1; i < SVA_MAX_PAGE_REQUESTS; i++) {
      port.respond(0, 0);
      expect(rd(SvaReg.Result)).toBe(SvaResult.Pending);
      expect(port.pageRequests.length).toBe(i + 1);
    }
    port.respond(0, 0);
    expect(rd(SvaReg.Result)).toBe(SvaResult.NoAccess);
    expect(port.pageRequests.length).toBe(SVA_MAX_PAGE_REQUESTS);
    expect([rd(SvaReg.PrgCount), rd(SvaReg.PrqCount), dev.pri.outstanding(), dev.isPending]).toEqual([4, 4, 0, false]);
    // A new command gets a fresh budget.
    expect(run(READ_ATC | SvaCmd.PRI, 0x3000, 4)).toBe(SvaResult.Pending);
  });

  it('two pages: nothing moves while the second page waits; the retry writes each byte once', () => {
    const { run, port, seen, rd, fillBuffer, ramBytes, pattern } = setup();
    port.answer = (_p, iova, nw, out) => (iova === 0x9000 ? grant(true, false) : grant(true, true))(_p, iova, nw, out);
    fillBuffer(0x20, 5);
    expect(run(WRITE_ATC | SvaCmd.PRI, 0x8ff0, 0x20)).toBe(SvaResult.Pending);
    expect(port.pageRequests.map((p) => p.req.addr)).toEqual([0x9000]);
    expect(seen).toEqual([]);
    expect(ramBytes(0x8ff0 + XLAT_SHIFT, 0x20)).toEqual(Array(0x20).fill(0));
    port.answer = grant(true, true);
    port.respond(0, 0);
    expect(rd(SvaReg.Result)).toBe(SvaResult.Ok);
    // Page 0 hit the ATC on the retry; page 1's read-only entry was asked again.
    expect(port.translations.map((t) => t.iova)).toEqual([0x8000, 0x9000, 0x9000]);
    expect(seen.map((s) => [s.iova, s.access, s.kind])).toEqual([
      [0x8ff0 + XLAT_SHIFT, DmaAccess.Write, DmaRequestKind.Translated],
      [0x9000 + XLAT_SHIFT, DmaAccess.Write, DmaRequestKind.Translated],
    ]);
    expect(ramBytes(0x8ff0 + XLAT_SHIFT, 0x20)).toEqual(pattern(0x20, 5));
  });

  it('responses: INVALID -> PRG_INVALID, FAILURE -> PRG_FAILURE and PRI Response Failure (no more page requests)', () => {
    const { run, rd, port, dev } = setup();
    port.answer = grant(false, false);
    expect(run(READ_ATC | SvaCmd.PRI, 0x3000, 4)).toBe(SvaResult.Pending);
    port.respond(0, 1);
    expect(rd(SvaReg.Result)).toBe(SvaResult.PrgInvalid);
    expect(dev.pri.outstanding()).toBe(0);
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.Pending);
    port.respond(0, 0xf);
    expect(rd(SvaReg.Result)).toBe(SvaResult.PrgFailure);
    expect(dev.configRead(PRI_STATUS, 2) & PriStatusBit.ResponseFailure).toBe(PriStatusBit.ResponseFailure);
    expect(dev.pri.outstanding()).toBe(0);
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.PriUnavailable);
    // Other codes are failures of the command too (but only 0xF is a Response Failure).
    const s = setup();
    expect(s.run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.Pending);
    s.port.respond(0, 2);
    expect(s.rd(SvaReg.Result)).toBe(SvaResult.PrgFailure);
    expect(s.dev.configRead(PRI_STATUS, 2) & PriStatusBit.ResponseFailure).toBe(0);
  });

  it('a response with an unexpected PRGI: UPRGI, counted, the waiting command keeps waiting', () => {
    const { run, rd, wr, port, dev } = setup();
    // The endpoint was registered when the device was plugged, before any request.
    expect(port.endpoint).toBe(dev.endpoint);
    wr(SvaReg.Prgi, 3);
    expect(run(SvaCmd.PageRequest | SvaCmd.WRITE, 0x3000)).toBe(SvaResult.Pending);
    expect(port.pageRequests[0]!.req).toMatchObject({ read: true, write: true, prgi: 3 });
    port.respond(4, 0);
    expect(dev.configRead(PRI_STATUS, 2) & PriStatusBit.UnexpectedPrgIndex).toBe(PriStatusBit.UnexpectedPrgIndex);
    expect([rd(SvaReg.Result), rd(SvaReg.PrgCount), rd(SvaReg.LastPrg), rd(SvaReg.IrqStatus), dev.pri.outstanding()]).toEqual([
      SvaResult.Pending,
      1,
      0x0004_0000,
      SvaIrq.PageResponse,
      1,
    ]);
    port.respond(3, 0);
    expect(rd(SvaReg.Result)).toBe(SvaResult.Ok);
    // Nothing pending at all.
    port.respond(3, 0);
    expect(rd(SvaReg.PrgCount)).toBe(3);
  });

  it('overflow: PRQ_OVERFLOW, refused or no port: PRQ_REFUSED; the credit comes back at once', () => {
    const { run, port, dev, rd } = setup({ enable: { ats: true, pasid: true, pri: 1 } });
    port.answer = grant(false, false);
    port.prqStatus = 'overflow';
    expect(run(READ_ATC | SvaCmd.PRI, 0x3000, 4)).toBe(SvaResult.PrqOverflow);
    port.prqStatus = 'refused';
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.PrqRefused);
    expect([dev.pri.outstanding(), dev.isPending, rd(SvaReg.PrqCount)]).toEqual([0, false, 2]);
    const noPort = setup({ ats: false });
    expect(noPort.run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.PrqRefused);
    expect([noPort.dev.pri.outstanding(), noPort.rd(SvaReg.PrqCount)]).toEqual([0, 0]);
  });

  it('PRI credits: one outstanding request per credit', () => {
    const { run, port, dev } = setup({ enable: { ats: true, pasid: true, pri: 1 } });
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.Pending);
    port.respond(0, 0);
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.Pending);
    expect(dev.pri.canIssue()).toBe(false);
  });

  it('PAGE_REQUEST needs PRI Enable and honours PASID; bus mastering off is DMA_FAULT', () => {
    const { run, port, dev } = setup();
    expect(run(SvaCmd.PageRequest | SvaCmd.PASID, 0x1234_5678, 0, 0x99)).toBe(SvaResult.Pending);
    expect(port.pageRequests[0]).toEqual({ pasid: 0x99, req: { addr: 0x1234_5000, read: true, write: false, execute: false, privileged: false, prgi: 0, last: true } });
    port.respond(0, 0);
    dev.configWrite(PciReg.Command, 2, PciCommand.Memory);
    expect(run(SvaCmd.PageRequest, 0x1000)).toBe(SvaResult.DmaFault);
    expect(dev.pri.outstanding()).toBe(0);
  });

  it('while PENDING: NOP and ATC_FLUSH run, anything else is BAD_COMMAND and the wait goes on', () => {
    const { run, rd, port } = setup();
    port.answer = grant(false, false);
    expect(run(READ_ATC | SvaCmd.PRI, 0x3000, 4)).toBe(SvaResult.Pending);
    for (const cmd of [SvaCmd.Read, SvaCmd.Write, SvaCmd.Translate, SvaCmd.PageRequest, READ_ATC]) expect(run(cmd, 0x5000, 4)).toBe(SvaResult.BadCommand);
    expect(run(SvaCmd.Nop)).toBe(SvaResult.Ok);
    expect(run(SvaCmd.AtcFlush)).toBe(SvaResult.Ok);
    expect(rd(SvaReg.Status) & SvaStatus.Pending).toBe(SvaStatus.Pending);
    expect(port.translations.length).toBe(1);
    // The retry uses the command as it was issued, not the registers written since.
    port.answer = grant(true, true);
    port.respond(0, 0);
    expect(rd(SvaReg.Result)).toBe(SvaResult.Ok);
    expect(port.translations.at(-1)!.iova).toBe(0x3000);
  });

  it('a response delivered during the page request itself is handled when the port returns', () => {
    const { run, rd, port, ramBytes, dev } = setup();
    port.answer = grant(false, false);
    port.onPageRequest = () => {
      port.answer = grant(true, true);
      port.respond(0, 0);
    };
    dev.buffer[0] = 0x77;
    expect(run(WRITE_ATC | SvaCmd.PRI, 0x3000, 1)).toBe(SvaResult.Ok);
    expect(ramBytes(0x3000 + XLAT_SHIFT, 1)).toEqual([0x77]);
    expect([rd(SvaReg.PrgCount), dev.pri.outstanding(), dev.isPending]).toEqual([1, 0, false]);
    port.onPageRequest = () => port.respond(0, 1);
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.PrgInvalid);
  });

  it('the BAR refuses accesses while a command runs (host code called from the port reads 0, writes are dropped)', () => {
    const { run, rd, port, memory } = setup();
    const inside: number[] = [];
    port.answer = (p, iova, nw, out) => {
      inside.push(memory.read(BAR + SvaReg.Id, 4));
      memory.write(BAR + SvaReg.Command, 4, SvaCmd.AtcFlush);
      grant(true, true)(p, iova, nw, out);
    };
    expect(run(SvaCmd.Translate, 0x3000, 4)).toBe(SvaResult.Ok);
    expect(inside).toEqual([0]);
    expect(rd(SvaReg.AtcCount)).toBe(1);
    expect(rd(SvaReg.Command)).toBe(SvaCmd.Translate);
  });

  it('a PRI Reset while a command waits ends it with PRI_UNAVAILABLE', () => {
    const { run, rd, dev } = setup();
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.Pending);
    dev.configWrite(PRI_CTRL, 2, 0);
    expect(rd(SvaReg.Result)).toBe(SvaResult.Pending);
    dev.configWrite(PRI_CTRL, 2, 2);
    expect([rd(SvaReg.Result), rd(SvaReg.Status) & SvaStatus.Pending, rd(SvaReg.IrqStatus)]).toEqual([SvaResult.PriUnavailable, 0, SvaIrq.Done]);
  });
});

describe('sva-testdev MSI and reset', () => {
  it('an enabled IRQ bit sends the MSI when MSI is enabled; disabled bits or MSI off send nothing', () => {
    const { run, wr, msis, enableMsi, port } = setup();
    run(SvaCmd.Nop);
    expect(msis).toEqual([]);
    enableMsi();
    run(SvaCmd.Nop);
    expect(msis).toEqual([]);
    wr(SvaReg.IrqEnable, SvaIrq.Done);
    run(SvaCmd.Nop);
    expect(msis).toEqual([{ addr: MSI_ADDR, data: MSI_DATA }]);
    wr(SvaReg.IrqEnable, SvaIrq.AtcInvalidated);
    run(SvaCmd.Translate, 0, 1);
    expect(msis.length).toBe(1);
    port.endpoint!.invalidateAtc(ALL_PASIDS, 0, 2 ** 64);
    expect(msis.length).toBe(2);
    wr(SvaReg.IrqEnable, SvaIrq.PageResponse);
    expect(run(SvaCmd.PageRequest, 0)).toBe(SvaResult.Pending);
    expect(msis.length).toBe(2);
    port.respond(0, 0);
    expect(msis.length).toBe(3);
  });

  it('reset: registers, buffer, ATC, the waiting command and the PRI accounting', () => {
    const { run, rd, wr, dev, port, setAddr, memory } = setup();
    for (const off of [SvaReg.Length, SvaReg.Pasid, SvaReg.IrqEnable, SvaReg.Control, SvaReg.Prgi]) wr(off, 0xffff_ffff);
    wr(SvaReg.Control, 0);
    run(SvaCmd.Translate, 0x1000, 1);
    port.endpoint!.invalidateAtc(NO_PASID, 0x5000, PAGE);
    run(SvaCmd.Translate, 0x1000, 1);
    memory.write(BAR + 0x1010, 4, 0xdead_beef);
    setAddr(0x1234_5678_9000);
    expect(run(SvaCmd.PageRequest, 0x3000)).toBe(SvaResult.Pending);
    dev.reset();
    expect(rd(SvaReg.Id)).toBe(0);
    dev.configWrite(PciReg.Bar0, 4, BAR);
    dev.configWrite(PciReg.Command, 2, PciCommand.Memory | PciCommand.Master);
    expect(rd(SvaReg.Id)).toBe(SVA_ID);
    for (let off = 4; off < 0x1000; off += 4) expect(rd(off), `0x${off.toString(16)}`).toBe(0);
    expect(dev.buffer.every((b) => b === 0)).toBe(true);
    expect([dev.atc.count, dev.isPending, dev.pri.outstanding()]).toEqual([0, false, 0]);
    // The response to the forgotten request is unexpected now.
    dev.configWrite(PRI_CTRL, 2, 1);
    port.respond(0, 0);
    expect(dev.configRead(PRI_STATUS, 2) & PriStatusBit.UnexpectedPrgIndex).toBe(PriStatusBit.UnexpectedPrgIndex);
    expect(rd(SvaReg.Result)).toBe(SvaResult.Ok);
  });
});

describe('sva-testdev hostile input', () => {
  it('random register and buffer accesses, commands, responses and invalidations never throw', () => {
    const { memory, port, dev } = setup();
    let seed = 0x1234_5678;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    port.answer = (_p, iova, _nw, out) => {
      const r = next();
      out.status = [AtsStatus.Success, AtsStatus.UnsupportedRequest, AtsStatus.CompleterAbort][r % 3]!;
      out.iova = iova;
      out.translated = (r & 0xfff_f000) % RAM_SIZE;
      out.addrMask = [0xfff, 0x1f_ffff, 0x3fff_ffff, 0x7ff, r][(r >>> 3) % 5]!;
      out.read = (r & 0x100) !== 0;
      out.write = (r & 0x200) !== 0;
      out.untranslatedOnly = (r & 0x400) !== 0;
    };
    const statuses: PageRequestStatus[] = ['queued', 'overflow', 'refused'];
    for (let i = 0; i < 3000; i++) {
      const r = next();
      const sizes = [1, 2, 4, 8] as const;
      const size = sizes[r % 4]!;
      const off = (next() % 0x2000) & (r & 0x10 ? ~3 : ~0);
      port.prqStatus = statuses[(r >>> 8) % 3]!;
      const value = next();
      switch ((r >>> 4) % 8) {
        case 0:
          port.endpoint?.pageGroupResponse(value & 0xfffff, value & 0x3ff, value >>> 28);
          break;
        case 1:
          port.endpoint?.invalidateAtc([ALL_PASIDS, NO_PASID, 1][value % 3]!, value * PAGE, 2 ** (12 + (value % 53)));
          break;
        case 2:
          memory.write(BAR + SvaReg.Command, 4, value & 0x3fff);
          break;
        case 3:
          memory.write(BAR + SvaReg.Length, 4, value % 0x1100);
          break;
        default:
          if (size === 8) memory.write64(BAR + off, BigInt(value) * 0x1_0000_0001n);
          else memory.write(BAR + off, size, value);
          memory.read(BAR + off, size === 8 ? 4 : size);
      }
    }
    expect(dev.atc.count).toBeLessThanOrEqual(SVA_ATC_ENTRIES);
  });
});
