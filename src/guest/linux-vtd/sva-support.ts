/**
 * Which of ATS, PASID and PRI the driver will use for a device, decided
 * once when the device is probed, as Linux's intel_iommu_probe_device
 * fills info->ats_supported / pasid_supported / pri_supported (facts only;
 * Linux drivers/iommu/intel/iommu.c, drivers/pci/ats.c):
 *
 *  - ATS: the unit has ECAP.DT, the function has an ATS capability, and
 *    the platform lets it use ATS (dmar_ats_supported): a device the DMAR
 *    names in a SATC structure may (unless that structure demands ATC while
 *    the unit runs in legacy mode); otherwise walking up from the device,
 *    a root-bus (integrated) device may, a conventional-PCI or
 *    PCIe-to-PCI bridge on the way forbids it, and below a root port the
 *    port must be in an ATSR's scope, or an ATSR with ALL_PORTS exist;
 *  - PASID: the unit runs in scalable mode with ECAP.PASID and the
 *    function has a PASID capability;
 *  - PRI: scalable mode, ATS supported, ECAP.PRS and ECAP.PDS (the drain
 *    needs it), and the function has a PRI capability.
 *
 * The scalable context entry carries the result (pasid.ts: DTE, PASIDE,
 * PRE).  Only PCI Express functions have the extended capabilities these
 * live in: a conventional function (edu) supports none of them.
 */
import { resolveScope } from '../firmware/boot.js';
import { AtsrFlag, DmarType, type Atsr, type DmarStructure, type Satc } from '../firmware/dmar.js';
import type { PciFunction, PciTopology } from '../firmware/pci-enum.js';
import { PcieType } from '../firmware/pci-config.js';
import type { SvaCapabilities } from './pcie-caps.js';
import type { VtdUnit } from './unit.js';

/** What the driver decided at probe (Linux info->ats_supported / pasid_supported / pri_supported). */
export interface DeviceSvaSupport {
  readonly ats: boolean;
  readonly pasid: boolean;
  readonly pri: boolean;
}

/** A device that supports none of them (every conventional PCI function). */
export const NO_SVA_SUPPORT: DeviceSvaSupport = { ats: false, pasid: false, pri: false };

/** SATC flags: ATC_REQUIRED (bit 0), the device needs its ATC enabled. */
const SATC_ATC_REQUIRED = 1 << 0;

/** The decision for a function with `caps` on `unit`; `platformAts` is dmarAtsSupported's answer. */
export function decideSvaSupport(unit: VtdUnit, caps: SvaCapabilities, platformAts: boolean): DeviceSvaSupport {
  const ats = unit.ecapf('DT') === 1 && caps.ats !== undefined && platformAts;
  const pasid = unit.scalable && unit.ecapf('PASID') === 1 && caps.pasid !== undefined;
  const pri = unit.scalable && ats && unit.ecapf('PRS') === 1 && unit.ecapf('PDS') === 1 && caps.pri !== undefined;
  return { ats, pasid, pri };
}

/** Linux dmar_ats_supported: whether the platform lets `f` use ATS (segment 0 only, as the guest's firmware). */
export function dmarAtsSupported(f: PciFunction, dmar: readonly DmarStructure[], pci: PciTopology, scalable: boolean): boolean {
  const satc = dmar.filter((s): s is Satc => s.type === DmarType.Satc).find((s) => names(s, f, pci));
  if (satc) return !(satc.flags & SATC_ATC_REQUIRED) || scalable;
  let bridge = f.parent;
  for (; bridge; bridge = bridge.parent) {
    if (bridge.pcieType === undefined || bridge.pcieType === PcieType.PcieToPciBridge) return false;
    if (bridge.pcieType === PcieType.RootPort) break;
  }
  if (!bridge) return true; // reached the root bus: an integrated device
  const port = bridge;
  return dmar.filter((s): s is Atsr => s.type === DmarType.Atsr).some((a) => a.flags & AtsrFlag.AllPorts || names(a, port, pci));
}

/** True when one of `s`'s device scopes is `f` itself (Linux for_each_dev_scope compares devices). */
function names(s: Atsr | Satc, f: PciFunction, pci: PciTopology): boolean {
  return s.scopes.some((scope) => resolveScope(scope, pci) === f);
}

/** "ATS PASID PRI" / "none", for logs. */
export function describeSvaSupport(s: DeviceSvaSupport): string {
  const on: string[] = [];
  if (s.ats) on.push('ATS');
  if (s.pasid) on.push('PASID');
  if (s.pri) on.push('PRI');
  return on.length ? on.join(' ') : 'none';
}
