/**
 * The command engine (command-engine.ts) with the real job, transfer and
 * requests over a scripted AtsPort and fake DMA, and the real endpoint side
 * delivering page-group responses: the checks and their order, RESULT /
 * Done / trace, PENDING and resumption, responses arriving while the
 * command executes, PRI Reset, STATUS and the busy flag.
 */
import { describe, expect, it } from 'vitest';
import { MemTx } from '../../memory/address-space.js';
import type { DmaMemory } from '../../memory/dma-space.js';
import type { AtsCompletion, AtsEndpoint, AtsPort, DevicePageRequest, PageRequestStatus } from '../../memory/iommu.js';
import { PciDevice } from '../../pci/device.js';
import { AtsReg } from '../../pci/pcie-ext-caps.js';
import { PriCtrlBit, PriReg } from '../../pci/pcie-pri.js';
import { DeviceAtc } from './atc.js';
import { SvaAtsRequests, type SvaAtsHost } from './ats-requests.js';
import { SvaCommandEngine } from './command-engine.js';
import { SvaEndpointSide } from './endpoint.js';
import { SvaJob } from './job.js';
import { addSvaCapabilities, SVA_PCI_INIT } from './pci-identity.js';
import { SvaRegisters } from './registers.js';
import { SVA_BUFFER_SIZE, SvaCmd, SvaIrq, SvaPci, SvaResult, SvaStatus } from './regs.js';
import { SvaTransfer, type SvaDmaHost } from './transfer.js';

class BareFunction extends PciDevice {}

const PASID_CTRL = SvaPci.PasidCap + 6;
const PRI_CTRL = SvaPci.PriCap + PriReg.Ctrl;
const READ_ATC_PRI = SvaCmd.Read | SvaCmd.ATC | SvaCmd.PRI;

/** A DMA space where every access succeeds (counted). */
class OkDma implements DmaMemory {
  accesses = 0;
  read(): MemTx {
    this.accesses++;
    return MemTx.Ok;
  }
  write(): MemTx {
    this.accesses++;
    return MemTx.Ok;
  }
  writeU32(): MemTx {
    return MemTx.Ok;
  }
  readWide(): MemTx {
    return this.read();
  }
  writeWide(): MemTx {
    return this.write();
  }
}

/** The host: a port granting `granted` (else nothing), page requests running `onPageRequest`. */
class FakeHost implements SvaDmaHost, SvaAtsHost, AtsPort {
  readonly dma = new OkDma();
  readonly plugged = true;
  granted = false;
  translations = 0;
  readonly pageRequests: DevicePageRequest[] = [];
  prqStatus: PageRequestStatus = 'queued';
  onPageRequest: () => void = () => {};
  dmaWithPasid(): DmaMemory {
    return this.dma;
  }
  translatedDma(): DmaMemory {
    return this.dma;
  }
  masterChainEnabled(): boolean {
    return true;
  }
  atsPort(_endpoint: AtsEndpoint): AtsPort | null {
    return this;
  }
  translationRequest(_pasid: number, iova: number, _noWrite: boolean, out: AtsCompletion): void {
    this.translations++;
    out.translated = iova;
    out.read = this.granted;
    out.write = this.granted;
  }
  pageRequest(_pasid: number, req: DevicePageRequest): PageRequestStatus {
    this.pageRequests.push(req);
    this.onPageRequest();
    return this.prqStatus;
  }
}

function setup(enable: { ats?: boolean; pasid?: boolean; pri?: boolean } = { ats: true, pasid: true, pri: true }) {
  const fn = new BareFunction(SVA_PCI_INIT);
  const caps = addSvaCapabilities(fn);
  if (enable.ats) fn.configWrite(SvaPci.AtsCap + AtsReg.Ctrl, 2, 0x8000);
  if (enable.pasid) fn.configWrite(PASID_CTRL, 2, 0x0007);
  fn.configWrite(SvaPci.PriCap + PriReg.Allocation, 4, 4);
  const priCtrl = (v: number) => {
    fn.configWrite(PRI_CTRL, 2, v);
    caps.pri.configWritten(PRI_CTRL, 2, v);
  };
  if (enable.pri) priCtrl(PriCtrlBit.Enable);
  const host = new FakeHost();
  const msis: number[] = [];
  const regs = new SvaRegisters({ msiEnabled: () => true, msiNotify: (v) => msis.push(v) });
  regs.irqEnable = SvaIrq.Done;
  const job = new SvaJob();
  const atc = new DeviceAtc();
  const traces: Readonly<Record<string, unknown>>[] = [];
  const tracer = { enabled: (e: string) => e === 'sva_testdev_result', trace: (_e: string, f: Readonly<Record<string, unknown>>) => traces.push(f) };
  const endpoint: AtsEndpoint = {
    invalidateAtc: (pasid, addr, size) => side.invalidateAtc(pasid, addr, size),
    pageGroupResponse: (pasid, prgi, code) => side.pageGroupResponse(pasid, prgi, code),
  };
  const requests = new SvaAtsRequests(host, endpoint, job, regs, atc, caps.pri);
  const transfer = new SvaTransfer(host, job, regs.buffer, atc, requests);
  const engine = new SvaCommandEngine(job, regs, atc, caps, transfer, requests, tracer);
  const side = new SvaEndpointSide(job, regs, atc, caps.pri, engine);
  /** Programs ADDR / LENGTH / PASID / PRGI and runs `cmd`; returns RESULT. */
  const run = (cmd: number, length = 16, addr = 0x5000, pasid = 1) => {
    regs.addrLo = addr;
    regs.length = length;
    regs.pasid = pasid;
    engine.runCommand(cmd);
    return regs.result;
  };
  /** PRI Reset (Enable clear), then the device's config-write hook. */
  const priReset = () => {
    priCtrl(PriCtrlBit.Reset);
    engine.priConfigWritten();
  };
  return { fn, caps, host, regs, job, atc, engine, side, msis, traces, run, priReset, priCtrl };
}

describe('NOP, ATC_FLUSH and bad commands', () => {
  it('NOP: RESULT OK, COMMAND recorded, the trace, then the Done interrupt', () => {
    const { regs, msis, traces, run } = setup();
    regs.result = SvaResult.NoAccess;
    expect(run(SvaCmd.Nop | SvaCmd.ATC)).toBe(SvaResult.Ok);
    expect([regs.command, regs.irqStatus, msis, traces]).toEqual([SvaCmd.Nop | SvaCmd.ATC, SvaIrq.Done, [0], [{ command: SvaCmd.Nop | SvaCmd.ATC, result: 0 }]]);
  });

  it('ATC_FLUSH drops every entry', () => {
    const { atc, host, run } = setup();
    host.granted = true;
    run(SvaCmd.Translate, 0x1000, 0x5800);
    expect(atc.count).toBe(2);
    expect(run(SvaCmd.AtcFlush)).toBe(SvaResult.Ok);
    expect(atc.count).toBe(0);
  });

  it('opcodes above PAGE_REQUEST are BAD_COMMAND', () => {
    const { run } = setup();
    for (let op = SvaCmd.AtcFlush + 1; op <= SvaCmd.OPCODE_MASK; op++) expect(run(op)).toBe(SvaResult.BadCommand);
  });

  it('while a command waits: NOP and ATC_FLUSH run, anything else is BAD_COMMAND and the wait goes on', () => {
    const { job, run } = setup();
    expect(run(SvaCmd.PageRequest)).toBe(SvaResult.Pending);
    expect([run(SvaCmd.Read), run(SvaCmd.PageRequest), run(SvaCmd.Nop), run(SvaCmd.AtcFlush)]).toEqual([SvaResult.BadCommand, SvaResult.BadCommand, SvaResult.Ok, SvaResult.Ok]);
    expect(job.pending).toBe(true);
  });
});

describe('checks before a command runs', () => {
  it('LENGTH 0 or above the buffer is BAD_COMMAND, except for PAGE_REQUEST', () => {
    const { host, run } = setup();
    expect([run(SvaCmd.Read, 0), run(SvaCmd.Write, SVA_BUFFER_SIZE + 1), run(SvaCmd.Translate, 0)]).toEqual([SvaResult.BadCommand, SvaResult.BadCommand, SvaResult.BadCommand]);
    expect([host.dma.accesses, host.translations]).toEqual([0, 0]);
    expect([run(SvaCmd.Write, SVA_BUFFER_SIZE), run(SvaCmd.PageRequest, 0)]).toEqual([SvaResult.Ok, SvaResult.Pending]);
  });

  it('the PASID flag needs PASID Enable; the ATC flag and TRANSLATE need ATS Enable; PAGE_REQUEST does not', () => {
    const { run } = setup({ pri: true });
    expect([run(SvaCmd.Read | SvaCmd.PASID), run(SvaCmd.Read | SvaCmd.ATC), run(SvaCmd.Translate)]).toEqual([SvaResult.PasidDisabled, SvaResult.AtsDisabled, SvaResult.AtsDisabled]);
    expect([run(SvaCmd.Read), run(SvaCmd.PageRequest | SvaCmd.ATC)]).toEqual([SvaResult.Ok, SvaResult.Pending]);
  });

  it('LENGTH is checked first, then the PASID, then ATS', () => {
    const { run } = setup({});
    expect(run(SvaCmd.Read | SvaCmd.PASID | SvaCmd.ATC, 0)).toBe(SvaResult.BadCommand);
    expect(run(SvaCmd.Read | SvaCmd.PASID | SvaCmd.ATC)).toBe(SvaResult.PasidDisabled);
  });
});

describe('waiting for a page-group response', () => {
  it('a queued page request leaves RESULT PENDING (traced, no Done), STATUS PENDING, BAR0 not busy', () => {
    const { engine, regs, msis, traces, run } = setup();
    expect(run(READ_ATC_PRI)).toBe(SvaResult.Pending);
    expect([regs.irqStatus, msis, traces]).toEqual([0, [], [{ command: READ_ATC_PRI, result: SvaResult.Pending }]]);
    expect(engine.status() & SvaStatus.Pending).toBe(SvaStatus.Pending);
    expect(engine.busy).toBe(false);
  });

  it('Success resumes a READ from scratch: translated again, then the data moves', () => {
    const { host, regs, side, run } = setup();
    regs.prgi = 0x33;
    run(READ_ATC_PRI);
    host.granted = true;
    side.pageGroupResponse(1, 0x33, 0);
    expect([regs.result, host.translations, host.dma.accesses]).toEqual([SvaResult.Ok, 2, 1]);
  });

  it('Success ends a PAGE_REQUEST with OK; Invalid Request and other codes end a command with PRG_INVALID / PRG_FAILURE', () => {
    const { regs, side, run, host } = setup();
    const results = [0, 1, 2, 0xf].map((code) => {
      run(SvaCmd.PageRequest);
      side.pageGroupResponse(1, 0, code);
      return regs.result;
    });
    expect(results).toEqual([SvaResult.Ok, SvaResult.PrgInvalid, SvaResult.PrgFailure, SvaResult.PrgFailure]);
    expect(run(READ_ATC_PRI)).toBe(SvaResult.PriUnavailable);
    expect(host.translations).toBe(1);
  });

  it('a response arriving inside the page request is handled after the port returns; BAR0 is busy meanwhile', () => {
    const { host, regs, engine, side, run } = setup();
    const busy: boolean[] = [];
    host.onPageRequest = () => {
      busy.push(engine.busy);
      host.granted = true;
      side.pageGroupResponse(1, 0, 0);
    };
    expect(run(READ_ATC_PRI)).toBe(SvaResult.Ok);
    expect([busy, host.translations, host.dma.accesses, regs.prgCount]).toEqual([[true], 2, 1, 1]);
    host.onPageRequest = () => side.pageGroupResponse(1, 0, 1);
    host.granted = false;
    expect(run(READ_ATC_PRI, 16, 0x9000)).toBe(SvaResult.PrgInvalid);
  });

  it('a page request dropped or refused ends the command with PRQ_OVERFLOW / PRQ_REFUSED', () => {
    const { host, job, run } = setup();
    host.prqStatus = 'overflow';
    expect(run(READ_ATC_PRI)).toBe(SvaResult.PrqOverflow);
    host.prqStatus = 'refused';
    expect(run(SvaCmd.PageRequest)).toBe(SvaResult.PrqRefused);
    expect(job.pending).toBe(false);
  });
});

describe('PRI Reset', () => {
  it('while a command waits: it ends with PRI_UNAVAILABLE (and the Done interrupt)', () => {
    const { job, regs, msis, run, priReset } = setup();
    run(READ_ATC_PRI);
    priReset();
    expect([regs.result, job.pending, regs.irqStatus, msis]).toEqual([SvaResult.PriUnavailable, false, SvaIrq.Done, [0]]);
  });

  it('during the page request: the command ends with PRI_UNAVAILABLE when the port returns', () => {
    const { host, regs, msis, traces, run, priReset } = setup();
    host.onPageRequest = priReset;
    expect(run(READ_ATC_PRI)).toBe(SvaResult.PriUnavailable);
    expect([regs.irqStatus, msis, traces]).toEqual([SvaIrq.Done, [0], [{ command: READ_ATC_PRI, result: SvaResult.PriUnavailable }]]);
  });

  it('a config write that leaves the request outstanding changes nothing; so does one with nothing waiting', () => {
    const { job, regs, engine, run, priCtrl } = setup();
    engine.priConfigWritten();
    expect([regs.result, regs.irqStatus]).toEqual([SvaResult.Ok, 0]);
    run(READ_ATC_PRI);
    priCtrl(PriCtrlBit.Enable);
    engine.priConfigWritten();
    expect([job.pending, regs.result]).toEqual([true, SvaResult.Pending]);
  });
});

describe('STATUS', () => {
  it('PENDING and the ATS / PASID / PRI enables', () => {
    expect(setup({}).engine.status()).toBe(0);
    expect(setup({ ats: true }).engine.status()).toBe(SvaStatus.AtsEnabled);
    expect(setup({ pasid: true }).engine.status()).toBe(SvaStatus.PasidEnabled);
    const { engine, run } = setup({ pri: true });
    expect(engine.status()).toBe(SvaStatus.PriEnabled);
    run(SvaCmd.PageRequest);
    expect(engine.status()).toBe(SvaStatus.PriEnabled | SvaStatus.Pending);
  });
});
