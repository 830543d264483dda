/**
 * Translation requests and page requests (ats-requests.ts) against a fake
 * host: bus-master gate, no port, the completion in LAST_ATS / XLAT and the
 * ATC, and page requests with their PRI credits, PENDING state and fields.
 */
import { describe, expect, it } from 'vitest';
import { AtsStatus, NO_PASID, type AtsCompletion, type AtsEndpoint, type AtsPort, type DevicePageRequest, type PageRequestStatus } from '../../memory/iommu.js';
import { PciDevice } from '../../pci/device.js';
import { PriReg } from '../../pci/pcie-pri.js';
import { DeviceAtc } from './atc.js';
import { SvaAtsRequests, type SvaAtsHost } from './ats-requests.js';
import { NO_RESPONSE, SvaJob } from './job.js';
import { addSvaCapabilities, SVA_PCI_INIT } from './pci-identity.js';
import { SvaRegisters } from './registers.js';
import { SvaCmd, SvaLastAts, SvaPci, SvaResult } from './regs.js';

const PAGE = 0x1000;
const MIB2 = 0x20_0000;

class BareFunction extends PciDevice {}

/** The host's port, scripted. */
class FakePort implements AtsPort {
  readonly translations: { pasid: number; iova: number; noWrite: boolean }[] = [];
  readonly pageRequests: { pasid: number; req: DevicePageRequest }[] = [];
  answer: (out: AtsCompletion) => void = () => {};
  prqStatus: PageRequestStatus = 'queued';
  onPageRequest: () => void = () => {};
  translationRequest(pasid: number, iova: number, noWrite: boolean, out: AtsCompletion): void {
    this.translations.push({ pasid, iova, noWrite });
    this.answer(out);
  }
  pageRequest(pasid: number, req: DevicePageRequest): PageRequestStatus {
    this.pageRequests.push({ pasid, req });
    this.onPageRequest();
    return this.prqStatus;
  }
}

class FakeHost implements SvaAtsHost {
  master = true;
  port: AtsPort | null;
  readonly registered: AtsEndpoint[] = [];
  constructor(port: AtsPort) {
    this.port = port;
  }
  masterChainEnabled(): boolean {
    return this.master;
  }
  atsPort(endpoint: AtsEndpoint): AtsPort | null {
    this.registered.push(endpoint);
    return this.port;
  }
}

function setup(priAllocation = 2) {
  const fn = new BareFunction(SVA_PCI_INIT);
  const { pri } = addSvaCapabilities(fn);
  fn.configWrite(SvaPci.PriCap + PriReg.Allocation, 4, priAllocation);
  fn.configWrite(SvaPci.PriCap + PriReg.Ctrl, 2, 1);
  pri.configWritten(SvaPci.PriCap + PriReg.Ctrl, 2, 1);
  const port = new FakePort();
  const host = new FakeHost(port);
  const endpoint: AtsEndpoint = { invalidateAtc: () => 'done', pageGroupResponse: () => {} };
  const job = new SvaJob();
  const regs = new SvaRegisters({ msiEnabled: () => false, msiNotify: () => {} });
  const atc = new DeviceAtc();
  const requests = new SvaAtsRequests(host, endpoint, job, regs, atc, pri);
  return { fn, pri, port, host, endpoint, job, regs, atc, requests };
}

/** Answers Success with `perms` over `size` bytes, translated to `translated` (in that size's frame). */
function grant(port: FakePort, perms: { read?: boolean; write?: boolean; u?: boolean }, translated: number, size = PAGE): void {
  port.answer = (out) => {
    out.translated = translated;
    out.addrMask = size - 1;
    out.read = perms.read ?? false;
    out.write = perms.write ?? false;
    out.untranslatedOnly = perms.u ?? false;
  };
}

describe('translationRequest', () => {
  it('with bus mastering off: DMA_FAULT, nothing sent, nothing recorded', () => {
    const { host, port, regs, requests } = setup();
    host.master = false;
    expect(requests.translationRequest(0x5000, false)).toBe(SvaResult.DmaFault);
    expect([port.translations, host.registered, regs.lastAts]).toEqual([[], [], 0]);
  });

  it('sends the job PASID, the page and No Write through the port it registered the endpoint with', () => {
    const { host, port, endpoint, job, requests } = setup();
    job.start(SvaCmd.Translate | SvaCmd.PASID, 0, 0, 1, 3);
    grant(port, { read: true }, 0x9000);
    expect(requests.translationRequest(0x5000, true)).toBe(SvaResult.Ok);
    expect(port.translations).toEqual([{ pasid: 3, iova: 0x5000, noWrite: true }]);
    expect(host.registered).toEqual([endpoint]);
  });

  it('a granting completion: LAST_ATS (R, W, status, log2 size), XLAT aligned to the size, an ATC entry', () => {
    const { port, regs, atc, requests } = setup();
    grant(port, { read: true, write: true }, 0x1_2345_6000, MIB2);
    expect(requests.translationRequest(0x40_1000, false)).toBe(SvaResult.Ok);
    expect(regs.lastAts).toBe(SvaLastAts.R | SvaLastAts.W | (21 << SvaLastAts.SIZE_SHIFT));
    expect([regs.xlatHi, regs.xlatLo]).toEqual([1, 0x2340_0000]);
    expect(requests.cached).toEqual({ ...requests.cached, pasid: NO_PASID, iova: 0x40_0000, addrMask: MIB2 - 1, translated: 0x1_2340_0000, read: true, write: true, untranslatedOnly: false });
    expect(atc.lookup(NO_PASID, 0x40_1000)).toBe(requests.cached);
  });

  it('a U completion is cached (LAST_ATS U); one granting nothing is OK but not cached', () => {
    const { port, regs, atc, requests } = setup();
    grant(port, { u: true }, 0);
    expect(requests.translationRequest(0x5000, false)).toBe(SvaResult.Ok);
    expect([regs.lastAts, atc.count, requests.cached?.untranslatedOnly]).toEqual([SvaLastAts.U | (12 << SvaLastAts.SIZE_SHIFT), 1, true]);
    grant(port, {}, 0x7000);
    expect(requests.translationRequest(0x6000, false)).toBe(SvaResult.Ok);
    expect([regs.lastAts, atc.count, requests.cached]).toEqual([12 << SvaLastAts.SIZE_SHIFT, 1, null]);
    expect(regs.xlatLo).toBe(0x7000);
  });

  it('a port that leaves the completion alone: Success, 4 KiB, no access, at the page itself', () => {
    const { port, regs, requests } = setup();
    expect(requests.translationRequest(0x5000, false)).toBe(SvaResult.Ok);
    expect(port.translations).toHaveLength(1);
    expect([regs.lastAts, regs.xlatLo, requests.completion.iova]).toEqual([12 << SvaLastAts.SIZE_SHIFT, 0, 0x5000]);
  });

  it('Unsupported Request and Completer Abort: ATS_UR / ATS_CA, the status in LAST_ATS without permissions, nothing cached', () => {
    const { port, regs, atc, requests } = setup();
    port.answer = (out) => {
      out.status = AtsStatus.UnsupportedRequest;
      out.read = true;
    };
    expect(requests.translationRequest(0x5000, false)).toBe(SvaResult.AtsUr);
    expect(regs.lastAts).toBe((1 << SvaLastAts.STATUS_SHIFT) | (12 << SvaLastAts.SIZE_SHIFT));
    port.answer = (out) => {
      out.status = AtsStatus.CompleterAbort;
      out.write = true;
    };
    expect(requests.translationRequest(0x5000, false)).toBe(SvaResult.AtsCa);
    expect(regs.lastAts).toBe((4 << SvaLastAts.STATUS_SHIFT) | (12 << SvaLastAts.SIZE_SHIFT));
    expect([atc.count, requests.cached]).toEqual([0, null]);
  });

  it('no port on the host: Unsupported Request', () => {
    const { host, regs, requests } = setup();
    host.port = null;
    expect(requests.translationRequest(0x5000, false)).toBe(SvaResult.AtsUr);
    expect(regs.lastAts >>> SvaLastAts.STATUS_SHIFT & 0xf).toBe(AtsStatus.UnsupportedRequest);
  });
});

describe('pageRequest', () => {
  it('queued: PENDING, one PRI credit taken, PRQ_COUNT, the request fields', () => {
    const { port, job, regs, pri, requests } = setup();
    job.start(SvaCmd.PageRequest | SvaCmd.PASID | SvaCmd.EXEC | SvaCmd.PRIV, 0, 0, 0, 4);
    regs.prgi = 0x1a5;
    expect(requests.pageRequest(0x7000, true, false)).toBe(SvaResult.Pending);
    expect(port.pageRequests).toEqual([{ pasid: 4, req: { addr: 0x7000, read: true, write: false, execute: true, privileged: true, prgi: 0x1a5, last: true } }]);
    expect([job.pending, job.pendingPrgi, job.issued, regs.prqCount, pri.outstanding()]).toEqual([true, 0x1a5, 1, 1, 1]);
  });

  it('without EXEC / PRIV flags the request has neither', () => {
    const { port, job, requests } = setup();
    job.start(SvaCmd.Write | SvaCmd.ATC | SvaCmd.PRI, 0, 0, 1, 0);
    requests.pageRequest(0x7000, false, true);
    expect(port.pageRequests[0]!.req).toMatchObject({ read: false, write: true, execute: false, privileged: false });
    expect(port.pageRequests[0]!.pasid).toBe(NO_PASID);
  });

  it('overflow and refused: the credit comes back, no wait, a response kept meanwhile is dropped', () => {
    const { port, job, regs, pri, requests } = setup();
    port.onPageRequest = () => (job.deferredCode = 0);
    port.prqStatus = 'overflow';
    expect(requests.pageRequest(0x7000, true, false)).toBe(SvaResult.PrqOverflow);
    expect([job.pending, job.deferredCode, pri.outstanding(), regs.prqCount, job.issued]).toEqual([false, NO_RESPONSE, 0, 1, 1]);
    port.prqStatus = 'refused';
    expect(requests.pageRequest(0x7000, true, false)).toBe(SvaResult.PrqRefused);
    expect([job.pending, pri.outstanding(), regs.prqCount, job.issued]).toEqual([false, 0, 2, 2]);
  });

  it('no port: refused before anything is sent; the credit comes back, PRQ_COUNT unchanged', () => {
    const { host, port, job, regs, pri, requests } = setup();
    host.port = null;
    expect(requests.pageRequest(0x7000, true, false)).toBe(SvaResult.PrqRefused);
    expect([port.pageRequests.length, pri.outstanding(), regs.prqCount, job.issued, job.pending]).toEqual([0, 0, 0, 1, false]);
  });

  it('no PRI credit left: PRI_UNAVAILABLE, not counted as issued', () => {
    const { port, job, requests } = setup(1);
    expect(requests.pageRequest(0x7000, true, false)).toBe(SvaResult.Pending);
    job.pending = false;
    expect(requests.pageRequest(0x8000, true, false)).toBe(SvaResult.PriUnavailable);
    expect([port.pageRequests.length, job.issued]).toEqual([1, 1]);
  });

  it('with bus mastering off: DMA_FAULT before PRI is asked', () => {
    const { host, pri, requests } = setup();
    host.master = false;
    expect(requests.pageRequest(0x7000, true, false)).toBe(SvaResult.DmaFault);
    expect(pri.outstanding()).toBe(0);
  });
});
