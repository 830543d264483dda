/**
 * x-strict=on warns and changes nothing: a qtest transcript that breaks the
 * strict rules one after another (QIE with a non-zero tail, IQA rewritten
 * and register-based invalidations with QI on, TE before SRTP, RTADDR moved
 * without SRTP, SIRTP and IRE) gets the same replies from vtemu with
 * `x-strict=on` as from QEMU 11.1 without it (QEMU has no such property).
 * QEMU 11.1 itself traces `vtd_warn_invalid_qi_tail` for the first and
 * prints "Queued Invalidation enabled, should not use register-based
 * invalidation" for the register commands, then carries on as vtemu does.
 */
import { describe, expect, it } from 'vitest';
import { Gcmd, Reg } from '../../src/hw/intel-iommu/reg-layout.js';
import { diffTranscripts, needQemu, type Step } from '../harness/index.js';
import { get32, put64, regR32, regR64, regW32, regW64 } from '../support/qtest-steps.js';

const qemu = needQemu('11.1', 'intel-iommu x-strict differential test');

const IQ = 0x10_0000;
const STATUS = 0x20_0000;
const ROOT = 0x30_0000;
const IRT = 0x40_0000;

describe.skipIf(!qemu)('intel-iommu x-strict=on vs QEMU 11.1', () => {
  it('the rule-breaking register sequence answers exactly as QEMU', async () => {
    const steps: Step[] = [
      // Wait descriptor (type 5, SW, status data 0x1234) at index 0; IQT = 1 before QIE.
      put64(IQ, 0x25n | (0x1234n << 32n)),
      put64(IQ + 8, BigInt(STATUS)),
      regW32(Reg.IQT, 0x10),
      regW64(Reg.IQA, IQ),
      regW32(Reg.GCMD, Gcmd.QIE),
      regR32(Reg.GSTS, Gcmd.QIE),
      regR64(Reg.IQH, 0x10),
      get32(STATUS, 0x1234),
      // IQA rewritten while QI is on (not latched), register-based invalidations (ignored).
      regW64(Reg.IQA, IQ + 0x1000),
      regR64(Reg.IQA),
      regW64(Reg.IOTLB, (1n << 63n) | (1n << 60n)),
      regR64(Reg.IOTLB),
      regW64(Reg.CCMD, (1n << 63n) | (1n << 61n)),
      regR64(Reg.CCMD),
      // TE before any SRTP, then RTADDR moved without SRTP.
      regW32(Reg.GCMD, (Gcmd.QIE | Gcmd.TE) >>> 0),
      regR32(Reg.GSTS),
      regW64(Reg.RTADDR, ROOT),
      regW32(Reg.GCMD, (Gcmd.QIE | Gcmd.TE | Gcmd.SRTP) >>> 0),
      regW64(Reg.RTADDR, ROOT + 0x1000),
      regR32(Reg.GSTS),
      regR64(Reg.RTADDR),
      // SIRTP and IRE without an IEC invalidation; IRTA moved after.
      regW64(Reg.IRTA, IRT | 0xf),
      regW32(Reg.GCMD, (Gcmd.QIE | Gcmd.TE | Gcmd.SIRTP) >>> 0),
      regW32(Reg.GCMD, (Gcmd.QIE | Gcmd.TE | Gcmd.IRE) >>> 0),
      regW64(Reg.IRTA, IRT + 0x1000),
      regR32(Reg.GSTS),
      regR32(Reg.FSTS, 0),
    ];
    const r = await diffTranscripts(
      ['-machine', 'q35', '-device', 'intel-iommu,aw-bits=39,intremap=on,x-strict=on'],
      steps,
      ['-machine', 'q35', '-device', 'intel-iommu,aw-bits=39,intremap=on'],
    );
    expect(r.difference).toBeNull();
    expect(r.unmet).toEqual([]);
    expect(r.vtemu.length).toBe(steps.length);
  });
});
