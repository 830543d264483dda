/**
 * Assembles a q35 machine's ACPI tables like QEMU 7.2's acpi_build: one
 * `etc/acpi/tables` blob (FACS, DSDT, FADT, MADT, [HPET], [MCFG], [DMAR],
 * WAET, extra tables, RSDT or XSDT), the RSDP in `etc/acpi/rsdp`, and the
 * `etc/table-loader` commands that let the firmware place them and fix up
 * pointers and checksums.  `installAcpi` publishes the three files through
 * fw_cfg.
 */
import { AcpiHeader, ByteWriter, beginTable, QEMU_OEM, readU32, tableSignature } from './table.js';
import { BiosLinker, LoaderZone } from './linker.js';
import {
  ACPI_RSDP_FILE,
  ACPI_TABLES_FILE,
  TABLE_LOADER_FILE,
  appendTable,
  buildDsdt,
  buildFacs,
  buildFadt,
  buildHpet,
  buildMadt,
  buildMcfg,
  buildWaet,
  endTable,
  type BlobContext,
  type McfgConfig,
} from './tables.js';
import { buildDmar, type DmarOptions } from './dmar.js';
import type { FwCfg } from '../fw-cfg/fw-cfg.js';

/** QEMU pads the tables blob to 128 KiB (ACPI_BUILD_TABLE_SIZE) so it can grow across reboots. */
export const ACPI_TABLES_BLOB_SIZE = 0x2_0000;
/** The tables blob is allocated 64-byte aligned (the FACS needs it) in high memory. */
export const ACPI_TABLES_ALIGN = 64;
/** The RSDP is allocated 16-byte aligned in the F-segment (where OSes scan for it). */
export const RSDP_ALIGN = 16;
/** ICH9 PMBASE as SeaBIOS programs it. */
export const DEFAULT_PM_BASE = 0x600;
/** Local APIC base. */
export const LAPIC_BASE = 0xfee0_0000;
/** The q35 IOAPIC: id 0 at 0xFEC00000, GSI base 0. */
export const Q35_IOAPIC = { id: 0, address: 0xfec0_0000, gsiBase: 0 } as const;
/** The tables blob is grown in steps of this size when it outgrows ACPI_TABLES_BLOB_SIZE. */
const BLOB_GROW_STEP = 0x1000;

/** RSDP layout (ACPI 6.5 5.2.5.3). */
export const RsdpOff = {
  SIGNATURE: 0,
  CHECKSUM: 8,
  OEM_ID: 9,
  REVISION: 15,
  RSDT_ADDRESS: 16,
  /** End of the ACPI 1.0 structure (checksum range). */
  V1_SIZE: 20,
  LENGTH: 20,
  XSDT_ADDRESS: 24,
  EXT_CHECKSUM: 32,
  V2_SIZE: 36,
} as const;

/** The machine's ACPI configuration. */
export interface AcpiConfig {
  readonly cpus?: number;
  /** ICH9 PMBASE (SeaBIOS programs 0x600; QEMU without firmware reports 0). */
  readonly pmBase?: number;
  readonly lapicAddress?: number;
  readonly ioapic?: { readonly id: number; readonly address: number; readonly gsiBase: number };
  /** Add the HPET table (only when the machine has an HPET). */
  readonly hpet?: boolean;
  /** ECAM window; null for none. Default 0xB0000000, buses 0-255. */
  readonly mcfg?: McfgConfig | null;
  /** DMAR contents, or null without an IOMMU. */
  readonly dmar?: DmarOptions | null;
  /** More finished tables to list (user -acpitable). */
  readonly extraTables?: readonly Uint8Array[];
  /** 0: RSDP 1.0 + RSDT (QEMU 7.2 q35); 2: RSDP 2.0 + XSDT. */
  readonly rsdpRevision?: 0 | 2;
}

/** Where each table landed in the blob. */
export interface TableLocation {
  readonly signature: string;
  readonly offset: number;
  readonly length: number;
}

/** The three fw_cfg files and an index of the blob. */
export interface AcpiBuild {
  readonly tables: Uint8Array;
  readonly rsdp: Uint8Array;
  readonly loader: Uint8Array;
  readonly index: readonly TableLocation[];
}

/** Default ECAM window of our q35 (PCIEXBAR as SeaBIOS programs it). */
export const Q35_MCFG: McfgConfig = { base: 0xb000_0000, segment: 0, startBus: 0, endBus: 0xff };

function buildRootTable(ctx: BlobContext, xsdt: boolean, entries: readonly number[]): number {
  const at = beginTable(ctx.w, xsdt ? 'XSDT' : 'RSDT', 1);
  const size = xsdt ? 8 : 4;
  for (const e of entries) {
    const field = xsdt ? ctx.w.u64(e) : ctx.w.u32(e);
    ctx.linker.addPointer(ACPI_TABLES_FILE, field, size, ACPI_TABLES_FILE);
  }
  endTable(ctx, at);
  return at;
}

function buildRsdp(linker: BiosLinker, revision: 0 | 2, root: number): Uint8Array {
  const w = new ByteWriter();
  w.ascii('RSD PTR ', 8);
  w.u8(0); // checksum
  w.ascii(QEMU_OEM.OEM_ID, 6);
  w.u8(revision);
  w.u32(revision === 0 ? root : 0);
  if (revision === 2) {
    w.u32(RsdpOff.V2_SIZE);
    w.u64(root);
    w.u8(0); // extended checksum
    w.zeros(3);
  }
  if (revision === 0) linker.addPointer(ACPI_RSDP_FILE, RsdpOff.RSDT_ADDRESS, 4, ACPI_TABLES_FILE);
  else linker.addPointer(ACPI_RSDP_FILE, RsdpOff.XSDT_ADDRESS, 8, ACPI_TABLES_FILE);
  linker.addChecksum(ACPI_RSDP_FILE, 0, RsdpOff.V1_SIZE, RsdpOff.CHECKSUM);
  if (revision === 2) linker.addChecksum(ACPI_RSDP_FILE, 0, RsdpOff.V2_SIZE, RsdpOff.EXT_CHECKSUM);
  return w.toBytes();
}

/** Builds the tables, RSDP and loader commands. */
export function buildAcpi(cfg: AcpiConfig = {}): AcpiBuild {
  const ctx: BlobContext = { w: new ByteWriter(), linker: new BiosLinker() };
  const rev = cfg.rsdpRevision ?? 0;
  ctx.linker.allocate(ACPI_TABLES_FILE, ACPI_TABLES_ALIGN, LoaderZone.HIGH);
  const facs = buildFacs(ctx);
  const dsdt = buildDsdt(ctx);
  const listed: number[] = [];
  listed.push(buildFadt(ctx, facs, dsdt, cfg.pmBase ?? DEFAULT_PM_BASE));
  const io = cfg.ioapic ?? Q35_IOAPIC;
  listed.push(
    buildMadt(ctx, {
      cpus: cfg.cpus ?? 1,
      lapicAddress: cfg.lapicAddress ?? LAPIC_BASE,
      ioapicId: io.id,
      ioapicAddress: io.address,
      ioapicGsiBase: io.gsiBase,
    }),
  );
  if (cfg.hpet) listed.push(buildHpet(ctx));
  const mcfg = cfg.mcfg === undefined ? Q35_MCFG : cfg.mcfg;
  if (mcfg) listed.push(buildMcfg(ctx, mcfg));
  if (cfg.dmar) listed.push(appendTable(ctx, buildDmar(cfg.dmar)));
  listed.push(buildWaet(ctx));
  for (const t of cfg.extraTables ?? []) listed.push(appendTable(ctx, t));
  const root = buildRootTable(ctx, rev === 2, listed);
  const used = ctx.w.toBytes();
  const tables = new Uint8Array(Math.max(ACPI_TABLES_BLOB_SIZE, Math.ceil(used.length / BLOB_GROW_STEP) * BLOB_GROW_STEP));
  tables.set(used);
  // The RSDP is allocated separately in the F-segment (QEMU allocates it last, so it is listed first).
  ctx.linker.allocate(ACPI_RSDP_FILE, RSDP_ALIGN, LoaderZone.FSEG);
  const rsdp = buildRsdp(ctx.linker, rev, root);
  return { tables, rsdp, loader: ctx.linker.toBytes(), index: indexBlob(used) };
}

/** Lists the tables in a blob laid out like ours/QEMU's (FACS at 0, then back-to-back tables). */
export function indexBlob(blob: Uint8Array): TableLocation[] {
  const out: TableLocation[] = [];
  let at = 0;
  while (at + 8 <= blob.length) {
    const len = readU32(blob, at + AcpiHeader.LENGTH);
    if (len < 8 || at + len > blob.length || blob[at] === 0) break;
    out.push({ signature: tableSignature(blob, at), offset: at, length: len });
    at += len;
  }
  return out;
}

/** Publishes the build through fw_cfg (etc/acpi/rsdp, etc/acpi/tables, etc/table-loader). */
export function installAcpi(fw: FwCfg, build: AcpiBuild): void {
  fw.addFile(ACPI_RSDP_FILE, build.rsdp);
  fw.addFile(ACPI_TABLES_FILE, build.tables);
  fw.addFile(TABLE_LOADER_FILE, build.loader);
}
