/**
 * The Linux-like VT-d driver: every DRHD of the DMAR brought up in Linux's
 * order (interrupt remapping first when the DMAR asks for it), devices
 * bound to their unit by device scope or INCLUDE_PCI_ALL, IOMMU groups,
 * default domains (identity with iommu=pt, else one DMA domain per group)
 * with RMRR identity maps, then translation on.  On a unit in scalable mode
 * each device gets its PASID table and scalable context entries at probe,
 * and domains are attached through its RID_PASID entry (pasid.ts); a PCI
 * Express function's ATS / PASID / PRI capabilities are read first (through
 * ECAM, as Linux's PCI core does at enumeration) and what the unit will use
 * of them (sva-support.ts) goes into its context entries.
 */
import { GuestAllocator } from '../alloc.js';
import type { GuestPlatform } from '../platform.js';
import type { FirmwareInfo } from '../firmware/boot.js';
import { GuestRamLayout, resolveScope, scopeCovers } from '../firmware/boot.js';
import { DmarFlag, DmarType, DrhdFlag, type Drhd, type Rmrr } from '../firmware/dmar.js';
import type { PciFunction } from '../firmware/pci-enum.js';
import { Domain, clearContext, setContext, type DeviceHandle, type DomainType } from './domain.js';
import { formatFault, type FaultRecord } from './faults.js';
import { buildGroups, dmaAliases, formatGroup, type IommuGroup } from './groups.js';
import { InterruptRemapping } from './irq-remap.js';
import { LARGE_PAGE } from './pagetable.js';
import { setPasidEntry, setupSmContext, tearDownPasidEntry } from './pasid.js';
import { ensureEcam, PcieSvaFunction, type EcamAccess } from './pcie-caps.js';
import { decideSvaSupport, describeSvaSupport, dmarAtsSupported } from './sva-support.js';
import { VtdUnit, type InvalidationSite } from './unit.js';

/** ", scalable mode, first-stage tables" etc. for the group log line. */
function domainStage(domain: Domain, unit: VtdUnit): string {
  if (!unit.scalable) return '';
  if (domain.passThrough(unit)) return ', scalable mode, pass-through';
  return `, scalable mode, ${unit.firstStage ? 'first' : 'second'}-stage tables`;
}

/** Linux's refusal message for RMRR devices and unmanaged domains. */
export const RMRR_REFUSAL = 'Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.';

/** Driver options (kernel command line, in spirit). */
export interface DriverOptions {
  /** iommu=pt: identity default domains. */
  readonly passThrough?: boolean;
  /** intremap=off. */
  readonly noIntremap?: boolean;
  /** Register-based invalidation only (implies legacy mode). */
  readonly noQi?: boolean;
  /** intel_iommu=sm_off: legacy mode even when ECAP.SMTS is set. */
  readonly smOff?: boolean;
  /** Test-only: invalidations to leave out. */
  readonly skip?: ReadonlySet<InvalidationSite>;
  /** RAM identity-mapped by the static identity domain when there is no ECAP.PT. */
  readonly ramSize?: number;
}

/** Result of an attach. */
export type AttachResult = { ok: true } | { ok: false; message: string };

/** The driver after boot. */
export class LinuxVtd {
  readonly units: VtdUnit[] = [];
  readonly ir = new Map<VtdUnit, InterruptRemapping>();
  readonly devices = new Map<PciFunction, DeviceHandle>();
  groups: IommuGroup[] = [];
  readonly log: string[] = [];
  readonly alloc: GuestAllocator;
  private siDomain: Domain | undefined;
  private domainCount = 0;
  /** Extended config space, made reachable when the first PCI Express function is probed. */
  private ecam: EcamAccess | undefined;

  private constructor(readonly p: GuestPlatform, readonly fw: FirmwareInfo, readonly opts: DriverOptions) {
    this.alloc = new GuestAllocator(p, GuestRamLayout.osBase, GuestRamLayout.osLimit);
  }

  /** Brings up every unit and binds every endpoint; throws when the DMAR is missing. */
  static async boot(p: GuestPlatform, fw: FirmwareInfo, opts: DriverOptions = {}): Promise<LinuxVtd> {
    const d = new LinuxVtd(p, fw, opts);
    await d.init();
    return d;
  }

  private drhds(): Drhd[] {
    return (this.fw.dmar?.structures ?? []).filter((s): s is Drhd => s.type === DmarType.Drhd);
  }

  private async init(): Promise<void> {
    const dmar = this.fw.dmar;
    if (!dmar) throw new Error('DMAR: no table, IOMMU not found');
    for (const drhd of this.drhds()) {
      const unit = new VtdUnit(this.p, drhd.base, this.alloc, { noQi: this.opts.noQi, smOff: this.opts.smOff, skip: this.opts.skip });
      if (await unit.probe()) this.units.push(unit);
    }
    // Interrupt remapping first (Linux enable_IR), when the DMAR and the unit allow it.
    const irWanted = (dmar.flags & DmarFlag.IntrRemap) !== 0 && !this.opts.noIntremap;
    for (const unit of this.units) {
      if (!irWanted || !unit.ecapf('IR') || !unit.ecapf('QI') || this.opts.noQi) continue;
      const faults = await unit.clearFaults();
      if (faults.length) unit.log.push(`  cleared ${faults.length} old fault records`);
      await unit.enableQi();
      const ir = new InterruptRemapping(unit);
      await ir.enable();
      this.ir.set(unit, ir);
    }
    for (const unit of this.units) {
      if (!this.ir.has(unit)) await unit.enableQi();
      await unit.initDmar();
    }
    this.flushUnitLogs();
    await this.bindDevices();
    for (const unit of this.units) await unit.enableTranslation();
    this.flushUnitLogs();
  }

  /** The unit whose DRHD covers `f` (scoped first, then INCLUDE_PCI_ALL). */
  unitFor(f: PciFunction): VtdUnit | undefined {
    let all: VtdUnit | undefined;
    for (const drhd of this.drhds()) {
      const unit = this.units.find((u) => u.base === drhd.base);
      if (!unit) continue;
      if (drhd.flags & DrhdFlag.IncludePciAll) { all = unit; continue; }
      for (const s of drhd.scopes) {
        const sf = resolveScope(s, this.fw.pci);
        if (sf && scopeCovers(sf, f)) return unit;
      }
    }
    return all;
  }

  /** RMRR ranges naming `f`. */
  rmrrsFor(f: PciFunction): Array<readonly [number, number]> {
    const out: Array<readonly [number, number]> = [];
    for (const s of this.fw.dmar?.structures ?? []) {
      if (s.type !== DmarType.Rmrr) continue;
      const r = s as Rmrr;
      if (r.scopes.some((sc) => { const sf = resolveScope(sc, this.fw.pci); return sf !== undefined && scopeCovers(sf, f); })) out.push([r.base, r.limit]);
    }
    return out;
  }

  private async bindDevices(): Promise<void> {
    const endpoints = this.fw.pci.functions.filter((f) => !f.isBridge && this.unitFor(f));
    for (const f of endpoints) {
      const unit = this.unitFor(f)!;
      const dev: DeviceHandle = { name: f.name, sids: dmaAliases(f), unit, rmrrs: this.rmrrsFor(f), domain: undefined };
      this.devices.set(f, dev);
      // Linux probe: a scalable-mode unit gets the device's PASID table (and what it uses of ATS / PASID / PRI) into its context entries now.
      if (unit.scalable) {
        await this.probeSva(f, dev);
        await setupSmContext(unit, dev);
      }
    }
    this.groups = buildGroups(endpoints);
    this.flushUnitLogs();
    for (const g of this.groups) {
      const type: DomainType = this.opts.passThrough ? 'identity' : 'dma';
      const domain = type === 'identity' ? await this.identityDomain() : this.newDomain('dma');
      const unit = this.devices.get(g.members[0]!)!.unit;
      this.log.push(`${formatGroup(g)} -> ${domain.name} domain (unit 0x${unit.base.toString(16)}${domainStage(domain, unit)})`);
      for (const f of g.members) {
        const r = await this.attach(this.devices.get(f)!, domain);
        if (!r.ok) this.log.push(`${f.name}: ${r.message}`);
      }
      this.flushUnitLogs();
    }
  }

  /**
   * A PCI Express function's ATS / PASID / PRI capabilities (Linux
   * pci_ats_init / pci_pri_init / pci_pasid_init) and what the unit will use
   * of them (intel_iommu_probe_device).  A conventional function's config
   * space ends at 0x100 (Linux cfg_size 256): nothing is read for it.
   */
  private async probeSva(f: PciFunction, dev: DeviceHandle): Promise<void> {
    if (f.pcieType === undefined) return;
    this.ecam ??= await ensureEcam(this.p);
    const pcie = await PcieSvaFunction.probe(this.ecam, f);
    dev.pcie = pcie;
    dev.svaSupport = decideSvaSupport(dev.unit, pcie.caps, dmarAtsSupported(f, this.fw.dmar?.structures ?? [], this.fw.pci, dev.unit.scalable));
    this.flushUnitLogs();
    this.log.push(...pcie.log.splice(0), `${f.name}: the unit will use ${describeSvaSupport(dev.svaSupport)}`);
  }

  /** A new empty domain. */
  newDomain(type: DomainType, name = `${type}-${this.domainCount}`): Domain {
    this.domainCount++;
    return new Domain(type, name);
  }

  /** The shared identity domain (pass-through contexts, or si_domain tables without ECAP.PT). */
  async identityDomain(): Promise<Domain> {
    if (!this.siDomain) this.siDomain = new Domain('identity', 'identity');
    return this.siDomain;
  }

  /** Handle of a function. */
  device(f: PciFunction): DeviceHandle {
    const h = this.devices.get(f);
    if (!h) throw new Error(`${f.name} is not behind a remapping unit`);
    return h;
  }

  /** The group of a function. */
  groupOf(f: PciFunction): IommuGroup | undefined {
    return this.groups.find((g) => g.members.includes(f));
  }

  /** Attaches a device (all its requester IDs) to `domain`. */
  async attach(dev: DeviceHandle, domain: Domain): Promise<AttachResult> {
    if (domain.type === 'unmanaged' && dev.rmrrs.length > 0) {
      this.log.push(`${dev.name}: ${RMRR_REFUSAL}`);
      return { ok: false, message: RMRR_REFUSAL };
    }
    const unit = dev.unit;
    const old = dev.domain;
    if (old && old.type !== 'blocked') {
      if (unit.scalable) await tearDownPasidEntry(unit, dev);
      else for (const sid of dev.sids) await clearContext(unit, sid, old.did(unit));
      old.devices.delete(dev);
    }
    dev.domain = domain;
    domain.devices.add(dev);
    if (domain.type === 'blocked') return { ok: true };
    if (domain.type === 'identity' && !domain.passThrough(unit)) await this.fillIdentity(domain, unit);
    if (unit.scalable) await setPasidEntry(unit, dev, domain);
    else for (const sid of dev.sids) await setContext(unit, sid, domain);
    if (domain.type === 'dma' || domain.type === 'identity') {
      for (const [base, limit] of dev.rmrrs) {
        if (domain.passThrough(unit)) continue;
        await domain.ensurePageTable(unit);
        await domain.map(base, base, limit - base + 1, { read: true, write: true });
        this.log.push(`${dev.name}: RMRR 0x${base.toString(16)}-0x${limit.toString(16)} identity-mapped in ${domain.name}`);
      }
    }
    return { ok: true };
  }

  /** Attaches every member of a group (vfio-style); refused as a whole if one member has an RMRR. */
  async attachGroup(g: IommuGroup, domain: Domain): Promise<AttachResult> {
    for (const f of g.members) {
      if (domain.type === 'unmanaged' && this.device(f).rmrrs.length) {
        this.log.push(`${f.name}: ${RMRR_REFUSAL}`);
        return { ok: false, message: RMRR_REFUSAL };
      }
    }
    for (const f of g.members) {
      const r = await this.attach(this.device(f), domain);
      if (!r.ok) return r;
    }
    return { ok: true };
  }

  private async fillIdentity(domain: Domain, unit: VtdUnit): Promise<void> {
    if (domain.pageTable) return;
    const pt = await domain.ensurePageTable(unit);
    const ram = this.opts.ramSize ?? GuestRamLayout.osLimit + LARGE_PAGE * 8;
    if (unit.capf('SLLPS') & 1) await pt.mapLarge(0, 0, Math.ceil(ram / LARGE_PAGE) * LARGE_PAGE, { read: true, write: true });
    else await pt.map(0, 0, ram, { read: true, write: true });
    this.log.push(`si_domain: RAM 0-0x${ram.toString(16)} identity-mapped (${pt.tablePages} table pages)`);
  }

  /** Runs the fault handler on every unit; returns the records and logs them like Linux. */
  async handleFaults(): Promise<FaultRecord[]> {
    const out: FaultRecord[] = [];
    for (const u of this.units) {
      const recs = await u.clearFaults();
      for (const r of recs) this.log.push(formatFault(r));
      out.push(...recs);
    }
    return out;
  }

  private flushUnitLogs(): void {
    for (const unit of this.units) this.log.push(...unit.log.splice(0));
  }

  /** Takes the log lines produced since the last call. */
  drainLog(): string[] {
    this.flushUnitLogs();
    return this.log.splice(0);
  }
}
