/**
 * The firmware run: what a BIOS does before handing over to an OS, reduced
 * to what the VT-d guests need.  fw_cfg -> table loader -> ACPI -> DMAR,
 * and PCI enumeration with resources assigned.
 */
import { GuestAllocator } from '../alloc.js';
import type { GuestPlatform } from '../platform.js';
import { discoverAcpi, type AcpiInfo } from './acpi.js';
import { parseDmar, ScopeType, type DeviceScope, type Dmar } from './dmar.js';
import { FwCfgGuest } from './fw-cfg.js';
import { enumeratePci, type PciFunction, type PciTopology, type PciWindows, DEFAULT_WINDOWS } from './pci-enum.js';
import { runTableLoader } from './table-loader.js';

/** Guest RAM layout used by the firmware and the OS-like guests (needs >= 128 MiB). */
export const GuestRamLayout = {
  /** Low memory for the RSDP (the F segment is ROM without PAM programming). */
  lowBase: 0x0009_0000,
  lowLimit: 0x0009_f000,
  /** Firmware scratch and ACPI tables. */
  firmwareBase: 0x0700_0000,
  firmwareLimit: 0x0780_0000,
  /** Memory the OS-like guest allocates from (IOMMU structures, DMA buffers). */
  osBase: 0x0100_0000,
  osLimit: 0x0700_0000,
} as const;

/** What the firmware hands over. */
export interface FirmwareInfo {
  readonly fwCfgFiles: readonly string[];
  readonly acpi: AcpiInfo | undefined;
  /** The parsed DMAR (undefined when the machine has no IOMMU). */
  readonly dmar: Dmar | undefined;
  readonly pci: PciTopology;
  /** Steps taken, for logs. */
  readonly log: readonly string[];
}

/** Options of the firmware run. */
export interface FirmwareOptions {
  readonly windows?: PciWindows;
}

/** Runs the firmware on `platform`. */
export async function runFirmware(platform: GuestPlatform, opts: FirmwareOptions = {}): Promise<FirmwareInfo> {
  const log: string[] = [];
  const scratch = new GuestAllocator(platform, GuestRamLayout.firmwareBase, GuestRamLayout.firmwareLimit);
  const low = new GuestAllocator(platform, GuestRamLayout.lowBase, GuestRamLayout.lowLimit);
  const fw = new FwCfgGuest(platform, scratch);
  let acpi: AcpiInfo | undefined;
  if (await fw.init()) {
    log.push(`fw_cfg: signature ${fw.signature}, features 0x${fw.features.toString(16)}, ${fw.files.length} files`);
    const loaded = await runTableLoader(platform, fw, { high: scratch, fseg: low });
    log.push(`table-loader: ${loaded.files.size} files placed, ${loaded.skipped} commands skipped`);
    const rsdp = loaded.files.get('etc/acpi/rsdp');
    acpi = await discoverAcpi(platform, rsdp?.addr);
    if (acpi) {
      log.push(`ACPI: RSDP rev ${acpi.rsdpRevision} at 0x${acpi.rsdpAddr.toString(16)}, ${acpi.rootSignature} at 0x${acpi.rootAddr.toString(16)}: ` +
        acpi.tables.map((t) => t.signature + (t.checksumOk ? '' : '(bad checksum)')).join(' '));
    }
  } else {
    log.push('fw_cfg: not present');
  }
  const dmarTable = acpi?.tables.find((t) => t.signature === 'DMAR');
  const dmar = dmarTable ? parseDmar(dmarTable.bytes) : undefined;
  const pci = await enumeratePci(platform, opts.windows ?? DEFAULT_WINDOWS);
  for (const f of pci.functions) {
    const bars = f.bars.filter((b) => b.address).map((b) => `BAR${b.index}=0x${b.address.toString(16)}/${b.size.toString(16)}`).join(' ');
    const bus = f.isBridge ? ` buses ${f.secondaryBus}-${f.subordinateBus}` : '';
    log.push(`PCI ${f.name} ${hex4(f.vendorId)}:${hex4(f.deviceId)} class ${f.classCode.toString(16).padStart(6, '0')}${bus} ${bars}`.trimEnd());
  }
  return { fwCfgFiles: fw.files.map((f) => f.name), acpi, dmar, pci, log };
}

function hex4(v: number): string {
  return v.toString(16).padStart(4, '0');
}

/** Resolves a DMAR device scope to the function it names (walking bridges by their secondary bus). */
export function resolveScope(scope: DeviceScope, pci: PciTopology): PciFunction | undefined {
  if (scope.type !== ScopeType.PciEndpoint && scope.type !== ScopeType.PciSubHierarchy) return undefined;
  let bus = scope.startBus;
  let f: PciFunction | undefined;
  for (const [dev, fn] of scope.path) {
    f = pci.at(bus, dev, fn);
    if (!f) return undefined;
    bus = f.secondaryBus;
  }
  return f;
}

/** True when `f` is `scope` or sits below it (sub-hierarchy scopes cover children). */
export function scopeCovers(scopeFn: PciFunction, f: PciFunction): boolean {
  for (let p: PciFunction | undefined = f; p; p = p.parent) if (p === scopeFn) return true;
  return false;
}
