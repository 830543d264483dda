/**
 * The translation and data phases of READ / WRITE / TRANSLATE
 * (transfer.ts) against fake DMA spaces that record every access and a
 * scripted AtsPort: which space each page moves through, at which
 * address, with which bytes, and when a page request goes out instead.
 */
import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import type { DmaMemory } from '../../memory/dma-space.js';
import { NO_PASID, type AtsCompletion, type AtsEndpoint, type AtsPort, type DevicePageRequest, type PageRequestStatus } from '../../memory/iommu.js';
import { PciDevice } from '../../pci/device.js';
import { PriReg } from '../../pci/pcie-pri.js';
import { DeviceAtc } from './atc.js';
import { SvaAtsRequests, type SvaAtsHost } from './ats-requests.js';
import { SvaJob } from './job.js';
import { addSvaCapabilities, SVA_PCI_INIT } from './pci-identity.js';
import { SvaRegisters } from './registers.js';
import { SVA_MAX_PAGE_REQUESTS, SvaCmd, SvaPci, SvaResult } from './regs.js';
import { SvaTransfer, type SvaDmaHost } from './transfer.js';

const PAGE = 0x1000;
/** The fake port translates page P to P + XLAT_SHIFT. */
const XLAT_SHIFT = 0x80_0000;

class BareFunction extends PciDevice {}

/** One access a fake DMA space saw. */
interface Access {
  space: string;
  addr: number | bigint;
  bytes: number[];
  write: boolean;
}

/** A DMA space that records accesses, reads back `fill`, and fails at `failAt`. */
class FakeDma implements DmaMemory {
  failAt = new Set<number | bigint>();
  constructor(
    private readonly name: string,
    private readonly log: Access[],
    private readonly fill = 0xee,
  ) {}
  private access(addr: number | bigint, data: Uint8Array, write: boolean): MemTx {
    if (!write) data.fill(this.fill);
    this.log.push({ space: this.name, addr, bytes: Array.from(data), write });
    return this.failAt.has(addr) ? MemTx.DecodeError : MemTx.Ok;
  }
  read(addr: number, dst: Uint8Array): MemTx {
    return this.access(addr, dst, false);
  }
  write(addr: number, src: Uint8Array): MemTx {
    return this.access(addr, src, true);
  }
  writeU32(): MemTx {
    throw new Error('not used');
  }
  readWide(addr: bigint, dst: Uint8Array): MemTx {
    return this.access(addr, dst, false);
  }
  writeWide(addr: bigint, src: Uint8Array): MemTx {
    return this.access(addr, src, true);
  }
}

/** The access a fake translation grants. */
type Perms = { read: boolean; write: boolean; u?: boolean };

class FakePort implements AtsPort {
  readonly translations: { pasid: number; iova: number; noWrite: boolean }[] = [];
  readonly pageRequests: DevicePageRequest[] = [];
  perms: (iova: number) => Perms = () => ({ read: true, write: true });
  /** Size of the translations (the fake translates the whole aligned range by XLAT_SHIFT). */
  answerSize = PAGE;
  translationRequest(pasid: number, iova: number, noWrite: boolean, out: AtsCompletion): void {
    this.translations.push({ pasid, iova, noWrite });
    const p = this.perms(iova);
    out.translated = iova - (iova % this.answerSize) + XLAT_SHIFT;
    out.addrMask = this.answerSize - 1;
    out.read = p.read;
    out.write = p.write;
    out.untranslatedOnly = p.u ?? false;
  }
  pageRequest(_pasid: number, req: DevicePageRequest): PageRequestStatus {
    this.pageRequests.push(req);
    return 'queued';
  }
}

class FakeHost implements SvaDmaHost, SvaAtsHost {
  readonly log: Access[] = [];
  readonly dma = new FakeDma('dma', this.log);
  readonly pasidSpaces = new Map<number, FakeDma>();
  readonly translated = new FakeDma('translated', this.log, 0x77);
  plugged = true;
  constructor(readonly port: FakePort) {}
  dmaWithPasid(pasid: number): DmaMemory {
    let d = this.pasidSpaces.get(pasid);
    if (d === undefined) this.pasidSpaces.set(pasid, (d = new FakeDma(`pasid${pasid}`, this.log)));
    return d;
  }
  translatedDma(): DmaMemory {
    if (!this.plugged) throw new Error('translatedDma asked while unplugged');
    return this.translated;
  }
  masterChainEnabled(): boolean {
    return true;
  }
  atsPort(_endpoint: AtsEndpoint): AtsPort | null {
    return this.port;
  }
}

function setup() {
  const fn = new BareFunction(SVA_PCI_INIT);
  const { pri } = addSvaCapabilities(fn);
  fn.configWrite(SvaPci.PriCap + PriReg.Allocation, 4, 32);
  fn.configWrite(SvaPci.PriCap + PriReg.Ctrl, 2, 1);
  pri.configWritten(SvaPci.PriCap + PriReg.Ctrl, 2, 1);
  const port = new FakePort();
  const host = new FakeHost(port);
  const job = new SvaJob();
  const regs = new SvaRegisters({ msiEnabled: () => false, msiNotify: () => {} });
  const atc = new DeviceAtc();
  const endpoint: AtsEndpoint = { invalidateAtc: () => 'done', pageGroupResponse: () => {} };
  const requests = new SvaAtsRequests(host, endpoint, job, regs, atc, pri);
  const transfer = new SvaTransfer(host, job, regs.buffer, atc, requests);
  for (let i = 0; i < regs.buffer.length; i++) regs.buffer[i] = i & 0xff;
  /** Starts a job at ADDR `addr` (below 2^53, or given as [lo, hi]). */
  const start = (cmd: number, addr: number | [number, number], length: number, pasid = 6) => {
    const [lo, hi] = typeof addr === 'number' ? [addr % 2 ** 32, Math.floor(addr / 2 ** 32)] : addr;
    job.start(cmd, lo, hi, length, pasid);
  };
  return { host, port, job, regs, atc, transfer, start };
}

const bytes = (from: number, n: number) => Array.from({ length: n }, (_, i) => (from + i) & 0xff);

describe('untranslated READ / WRITE', () => {
  it('one access of LENGTH bytes through dma without the PASID flag, dmaWithPasid with it', () => {
    const { host, transfer, start } = setup();
    start(SvaCmd.Write, 0x5ffc, 8);
    expect(transfer.untranslated(true)).toBe(SvaResult.Ok);
    start(SvaCmd.Read | SvaCmd.PASID, 0x3000, 4, 9);
    expect(transfer.untranslated(false)).toBe(SvaResult.Ok);
    expect(host.log).toEqual([
      { space: 'dma', addr: 0x5ffc, bytes: bytes(0, 8), write: true },
      { space: 'pasid9', addr: 0x3000, bytes: [0xee, 0xee, 0xee, 0xee], write: false },
    ]);
  });

  it('from 2^53 on, the exact address through the bigint entry point', () => {
    const { host, transfer, start } = setup();
    start(SvaCmd.Read, [0xffff_f123, 0xffff_ffff], 4);
    expect(transfer.untranslated(false)).toBe(SvaResult.Ok);
    start(SvaCmd.Read, 2 ** 53 - 4, 4);
    transfer.untranslated(false);
    start(SvaCmd.Read, 2 ** 53 - 4, 8);
    transfer.untranslated(false);
    expect(host.log.map((a) => a.addr)).toEqual([0xffff_ffff_ffff_f123n, 2 ** 53 - 4, 2n ** 53n - 4n]);
  });

  it('a failed access is DMA_FAULT', () => {
    const { host, transfer, start } = setup();
    host.dma.failAt.add(0x4000);
    start(SvaCmd.Write, 0x4000, 4);
    expect(transfer.untranslated(true)).toBe(SvaResult.DmaFault);
  });
});

describe('READ / WRITE through the ATC', () => {
  it('a miss: a translation request (No Write for a READ), then a translated access at the translation', () => {
    const { host, port, transfer, start, regs } = setup();
    start(SvaCmd.Read | SvaCmd.ATC | SvaCmd.PASID, 0x5010, 4, 3);
    expect(transfer.throughAtc(false)).toBe(SvaResult.Ok);
    expect(port.translations).toEqual([{ pasid: 3, iova: 0x5000, noWrite: true }]);
    expect(host.log).toEqual([{ space: 'translated', addr: 0x5010 + XLAT_SHIFT, bytes: [0x77, 0x77, 0x77, 0x77], write: false }]);
    expect(Array.from(regs.buffer.subarray(0, 5))).toEqual([0x77, 0x77, 0x77, 0x77, 4]);
  });

  it('a hit that allows the access sends no translation request', () => {
    const { port, transfer, start, host } = setup();
    start(SvaCmd.Write | SvaCmd.ATC, 0x5000, 4);
    transfer.throughAtc(true);
    transfer.throughAtc(true);
    expect([port.translations.length, host.log.length]).toEqual([1, 2]);
  });

  it('a hit without the access asks again (a write after a read-only translation)', () => {
    const { port, transfer, start } = setup();
    port.perms = () => ({ read: true, write: false });
    start(SvaCmd.Read | SvaCmd.ATC, 0x5000, 4);
    transfer.throughAtc(false);
    port.perms = () => ({ read: true, write: true });
    start(SvaCmd.Write | SvaCmd.ATC, 0x5000, 4);
    expect(transfer.throughAtc(true)).toBe(SvaResult.Ok);
    expect(port.translations.map((t) => t.noWrite)).toEqual([true, false]);
  });

  it('a large translation serves every page inside it at its offset, from the ATC after the first request', () => {
    const { host, port, transfer, start } = setup();
    port.answerSize = 0x20_0000;
    start(SvaCmd.Read | SvaCmd.ATC, 0x40_1010, 4);
    expect(transfer.throughAtc(false)).toBe(SvaResult.Ok);
    start(SvaCmd.Read | SvaCmd.ATC, 0x45_3000, 4);
    expect(transfer.throughAtc(false)).toBe(SvaResult.Ok);
    expect(port.translations.map((t) => t.iova)).toEqual([0x40_1000]);
    expect(host.log.map((a) => a.addr)).toEqual([0x40_1010 + XLAT_SHIFT, 0x45_3000 + XLAT_SHIFT]);
  });

  it('two pages: both translated before any data moves, the buffer split between them', () => {
    const { host, port, transfer, start } = setup();
    start(SvaCmd.Write | SvaCmd.ATC, 0x5ffe, 4);
    expect(transfer.throughAtc(true)).toBe(SvaResult.Ok);
    expect(port.translations.map((t) => t.iova)).toEqual([0x5000, 0x6000]);
    expect(host.log).toEqual([
      { space: 'translated', addr: 0x5ffe + XLAT_SHIFT, bytes: [0, 1], write: true },
      { space: 'translated', addr: 0x6000 + XLAT_SHIFT, bytes: [2, 3], write: true },
    ]);
  });

  it('a page whose translation has U moves untranslated (with the PASID); the other one translated', () => {
    const { host, port, transfer, start } = setup();
    port.perms = (iova) => (iova === 0x6000 ? { read: false, write: false, u: true } : { read: true, write: true });
    start(SvaCmd.Write | SvaCmd.ATC | SvaCmd.PASID, 0x5ffe, 4, 2);
    expect(transfer.throughAtc(true)).toBe(SvaResult.Ok);
    expect(host.log.map((a) => [a.space, a.addr])).toEqual([
      ['translated', 0x5ffe + XLAT_SHIFT],
      ['pasid2', 0x6000],
    ]);
  });

  it('a failed page still lets the other page move; the result is DMA_FAULT', () => {
    const { host, transfer, start } = setup();
    host.translated.failAt.add(0x5ffe + XLAT_SHIFT);
    start(SvaCmd.Write | SvaCmd.ATC, 0x5ffe, 4);
    expect(transfer.throughAtc(true)).toBe(SvaResult.DmaFault);
    expect(host.log).toHaveLength(2);
  });

  it('unplugged: translated pages fail without a translated request', () => {
    const { host, transfer, start } = setup();
    start(SvaCmd.Read | SvaCmd.ATC, 0x5000, 4);
    transfer.throughAtc(false);
    host.plugged = false;
    expect(transfer.throughAtc(false)).toBe(SvaResult.DmaFault);
    expect(host.log).toHaveLength(1);
  });

  it('no access: NO_ACCESS without PRI, nothing moves', () => {
    const { host, port, transfer, start } = setup();
    port.perms = () => ({ read: false, write: false });
    start(SvaCmd.Read | SvaCmd.ATC, 0x5000, 4);
    expect(transfer.throughAtc(false)).toBe(SvaResult.NoAccess);
    expect([host.log, port.pageRequests]).toEqual([[], []]);
  });

  it('no access with PRI: a page request for the access needed, nothing moves', () => {
    const { host, port, transfer, start, job } = setup();
    port.perms = (iova) => ({ read: iova !== 0x6000, write: false });
    start(SvaCmd.Read | SvaCmd.ATC | SvaCmd.PRI, 0x5ffe, 4);
    expect(transfer.throughAtc(false)).toBe(SvaResult.Pending);
    expect(port.pageRequests.map((r) => [r.addr, r.read, r.write])).toEqual([[0x6000, true, false]]);
    expect([host.log, job.issued]).toEqual([[], 1]);
    port.perms = () => ({ read: true, write: false });
    start(SvaCmd.Write | SvaCmd.ATC | SvaCmd.PRI, 0x5000, 4);
    job.pending = false;
    transfer.throughAtc(true);
    expect(port.pageRequests.map((r) => [r.addr, r.read, r.write])[1]).toEqual([0x5000, false, true]);
  });

  it('after SVA_MAX_PAGE_REQUESTS page requests a command gives up with NO_ACCESS', () => {
    const { port, transfer, start, job } = setup();
    port.perms = () => ({ read: false, write: false });
    start(SvaCmd.Read | SvaCmd.ATC | SvaCmd.PRI, 0x5000, 4);
    job.issued = SVA_MAX_PAGE_REQUESTS - 1;
    expect(transfer.throughAtc(false)).toBe(SvaResult.Pending);
    job.pending = false;
    expect(transfer.throughAtc(false)).toBe(SvaResult.NoAccess);
    expect(port.pageRequests).toHaveLength(1);
  });
});

describe('TRANSLATE', () => {
  it('a translation request per page, No Write unless the WRITE flag, filling the ATC; no data moves', () => {
    const { host, port, atc, transfer, start } = setup();
    start(SvaCmd.Translate, 0x5800, 0x1000);
    expect(transfer.translateAll()).toBe(SvaResult.Ok);
    start(SvaCmd.Translate | SvaCmd.WRITE, 0x9000, 1);
    expect(transfer.translateAll()).toBe(SvaResult.Ok);
    expect(port.translations).toEqual([
      { pasid: NO_PASID, iova: 0x5000, noWrite: true },
      { pasid: NO_PASID, iova: 0x6000, noWrite: true },
      { pasid: NO_PASID, iova: 0x9000, noWrite: false },
    ]);
    expect([atc.count, host.log]).toEqual([3, []]);
  });

  it('a page granted nothing ends it with NO_ACCESS (a U grant is fine)', () => {
    const { port, transfer, start } = setup();
    port.perms = (iova) => (iova === 0x5000 ? { read: false, write: false, u: true } : { read: false, write: false });
    start(SvaCmd.Translate, 0x5800, 0x1000);
    expect(transfer.translateAll()).toBe(SvaResult.NoAccess);
    expect(port.translations).toHaveLength(2);
  });
});
