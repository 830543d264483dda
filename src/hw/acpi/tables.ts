/**
 * The fixed-layout ACPI tables of a q35 machine, written into the shared
 * `etc/acpi/tables` blob the way QEMU 7.2's acpi_build does: checksums left
 * 0 and pointers as offsets inside the blob, both fixed up by the firmware
 * following `etc/table-loader` commands.
 *
 * FACS (ACPI 6.5 5.2.10), FADT rev 3 (5.2.9), MADT (5.2.12), HPET (IA-PC
 * HPET spec 3.2.4), MCFG (PCI Firmware spec 4.1.2), WAET (Microsoft WAET
 * spec), DSDT (5.2.11.1) with a minimal AML body.
 */
import { AcpiHeader, ByteWriter, beginTable, patchTableLength } from './table.js';
import { BiosLinker } from './linker.js';
import { device, eisaId, integer, name, pkg, scope } from './aml.js';

/** Name of the fw_cfg file holding the tables. */
export const ACPI_TABLES_FILE = 'etc/acpi/tables';
/** Name of the fw_cfg file holding the RSDP. */
export const ACPI_RSDP_FILE = 'etc/acpi/rsdp';
/** Name of the fw_cfg file holding the loader commands. */
export const TABLE_LOADER_FILE = 'etc/table-loader';

/** Where tables are being written. */
export interface BlobContext {
  readonly w: ByteWriter;
  readonly linker: BiosLinker;
}

/** Closes a table begun at `at`: patches its length and asks the loader for its checksum. */
export function endTable(ctx: BlobContext, at: number): void {
  patchTableLength(ctx.w, at);
  ctx.linker.addChecksum(ACPI_TABLES_FILE, at, ctx.w.length - at, at + AcpiHeader.CHECKSUM);
}

/** Generic Address Structure address space ids. */
export const GasSpace = { MEMORY: 0, IO: 1 } as const;

function gas(w: ByteWriter, space: number, bitWidth: number, address: number): void {
  w.u8(space);
  w.u8(bitWidth);
  w.u8(0); // bit offset
  w.u8(0); // access size (legacy)
  w.u64(address);
}

/** FACS length (no header checksum; 64 bytes, 64-byte aligned). */
export const FACS_SIZE = 64;

/** Writes the FACS (QEMU build_facs: signature and length only). */
export function buildFacs(ctx: BlobContext): number {
  const at = ctx.w.ascii('FACS', 4);
  ctx.w.u32(FACS_SIZE);
  ctx.w.zeros(FACS_SIZE - 8);
  return at;
}

/** Writes a minimal DSDT: \_SB.PCI0 (PCIe host bridge) and the \_S5 sleep package. */
export function buildDsdt(ctx: BlobContext): number {
  const at = beginTable(ctx.w, 'DSDT', 1);
  const body = [
    ...scope('\\_SB', [
      device('PCI0', [
        name('_HID', eisaId('PNP0A08')),
        name('_CID', eisaId('PNP0A03')),
        name('_ADR', integer(0)),
        name('_UID', integer(0)),
        name('_SEG', integer(0)),
        name('_BBN', integer(0)),
      ]),
    ]),
    ...name('\\_S5', pkg([integer(0), integer(0), integer(0), integer(0)])),
  ];
  ctx.w.bytes(body);
  endTable(ctx, at);
  return at;
}

/** ICH9 power-management block layout, relative to PMBASE (QEMU ich9 / SeaBIOS PMBASE 0x600). */
export const Ich9Pm = {
  PM1_EVT: 0x00,
  PM1_CNT: 0x04,
  PM_TMR: 0x08,
  GPE0: 0x20,
  PM1_EVT_LEN: 4,
  PM1_CNT_LEN: 2,
  PM_TMR_LEN: 4,
  GPE0_LEN: 0x10,
} as const;

/** FADT rev 3 field offsets we patch or test (ACPI 6.5 table 5.9). */
export const FadtOff = {
  FIRMWARE_CTRL: 36,
  DSDT: 40,
  SCI_INT: 46,
  PM1A_EVT_BLK: 56,
  FLAGS: 112,
  RESET_REG: 116,
  X_DSDT: 140,
  /** Length of a revision 3 FADT. */
  SIZE_REV3: 244,
} as const;

/** FADT feature flags QEMU q35 sets: WBINVD, PROC_C1, SLP_BUTTON, RTC_S4, RESET_REG_SUP, USE_PLATFORM_CLOCK. */
export const FADT_Q35_FLAGS = 0x84a5;
/** IAPC_BOOT_ARCH: 8042 present. */
const BOOT_ARCH_8042 = 0x0002;
const SCI_IRQ = 9;
const SMI_CMD_PORT = 0xb2;
const ACPI_ENABLE = 2;
const ACPI_DISABLE = 3;
const C2_C3_LATENCY_DISABLED = 0x0fff;
const RTC_CENTURY_INDEX = 0x32;
const RESET_PORT = 0xcf9;
const RESET_VALUE = 0x0f;
const BITS_PER_BYTE = 8;

/** Writes the FADT (rev 3, 244 bytes) pointing at the FACS and DSDT (offsets in the blob). */
export function buildFadt(ctx: BlobContext, facs: number, dsdt: number, pmBase: number): number {
  const w = ctx.w;
  const at = beginTable(w, 'FACP', 3);
  w.u32(facs);
  w.u32(dsdt);
  w.u8(1); // INT_MODEL (ACPI 1.0 compatibility)
  w.u8(0); // preferred PM profile: unspecified
  w.u16(SCI_IRQ);
  w.u32(SMI_CMD_PORT);
  w.u8(ACPI_ENABLE);
  w.u8(ACPI_DISABLE);
  w.u8(0); // S4BIOS_REQ
  w.u8(0); // PSTATE_CNT
  w.u32(pmBase + Ich9Pm.PM1_EVT);
  w.u32(0); // PM1b event
  w.u32(pmBase + Ich9Pm.PM1_CNT);
  w.u32(0); // PM1b control
  w.u32(0); // PM2 control
  w.u32(pmBase + Ich9Pm.PM_TMR);
  w.u32(pmBase + Ich9Pm.GPE0);
  w.u32(0); // GPE1
  w.u8(Ich9Pm.PM1_EVT_LEN);
  w.u8(Ich9Pm.PM1_CNT_LEN);
  w.u8(0); // PM2 control length
  w.u8(Ich9Pm.PM_TMR_LEN);
  w.u8(Ich9Pm.GPE0_LEN);
  w.u8(0); // GPE1 length
  w.u8(0); // GPE1 base
  w.u8(0); // CST_CNT
  w.u16(C2_C3_LATENCY_DISABLED);
  w.u16(C2_C3_LATENCY_DISABLED);
  w.u16(0); // flush size
  w.u16(0); // flush stride
  w.u8(0); // duty offset
  w.u8(0); // duty width
  w.u8(0); // day alarm
  w.u8(0); // month alarm
  w.u8(RTC_CENTURY_INDEX);
  w.u16(BOOT_ARCH_8042);
  w.u8(0); // reserved
  w.u32(FADT_Q35_FLAGS);
  gas(w, GasSpace.IO, BITS_PER_BYTE, RESET_PORT);
  w.u8(RESET_VALUE);
  w.u16(0); // ARM boot arch
  w.u8(0); // FADT minor revision
  w.u64(0); // X_FIRMWARE_CTRL (the 32-bit field is used)
  w.u64(dsdt); // X_DSDT
  gas(w, GasSpace.IO, Ich9Pm.PM1_EVT_LEN * BITS_PER_BYTE, pmBase + Ich9Pm.PM1_EVT);
  gas(w, GasSpace.MEMORY, 0, 0); // X_PM1b_EVT_BLK
  gas(w, GasSpace.IO, Ich9Pm.PM1_CNT_LEN * BITS_PER_BYTE, pmBase + Ich9Pm.PM1_CNT);
  gas(w, GasSpace.MEMORY, 0, 0); // X_PM1b_CNT_BLK
  gas(w, GasSpace.MEMORY, 0, 0); // X_PM2_CNT_BLK
  gas(w, GasSpace.IO, Ich9Pm.PM_TMR_LEN * BITS_PER_BYTE, pmBase + Ich9Pm.PM_TMR);
  gas(w, GasSpace.IO, Ich9Pm.GPE0_LEN * BITS_PER_BYTE, pmBase + Ich9Pm.GPE0);
  gas(w, GasSpace.MEMORY, 0, 0); // X_GPE1_BLK
  const file = ACPI_TABLES_FILE;
  ctx.linker.addPointer(file, at + FadtOff.FIRMWARE_CTRL, 4, file);
  ctx.linker.addPointer(file, at + FadtOff.DSDT, 4, file);
  ctx.linker.addPointer(file, at + FadtOff.X_DSDT, 8, file);
  endTable(ctx, at);
  return at;
}

/** MADT structure types (ACPI 6.5 table 5.21). */
export const MadtType = { LOCAL_APIC: 0, IO_APIC: 1, INTERRUPT_OVERRIDE: 2, LOCAL_APIC_NMI: 4 } as const;
/** MPS INTI flags: active high (01), level triggered (11 << 2). */
export const MPS_ACTIVE_HIGH_LEVEL = 0x000d;
/** Local APIC flags: enabled. */
const LAPIC_ENABLED = 1;
/** MADT flags: PCAT_COMPAT (dual 8259s). */
const MADT_PCAT_COMPAT = 1;
/** "All processors" ACPI processor UID for the NMI entry. */
const ALL_PROCESSORS = 0xff;
const LINT1 = 1;

/** What the MADT describes. */
export interface MadtConfig {
  readonly cpus: number;
  readonly lapicAddress: number;
  readonly ioapicId: number;
  readonly ioapicAddress: number;
  readonly ioapicGsiBase: number;
}

/** Writes the MADT the way QEMU's pc_madt_cpu_entry/build_madt do for q35. */
export function buildMadt(ctx: BlobContext, cfg: MadtConfig): number {
  const w = ctx.w;
  const at = beginTable(w, 'APIC', 1);
  w.u32(cfg.lapicAddress);
  w.u32(MADT_PCAT_COMPAT);
  for (let cpu = 0; cpu < cfg.cpus; cpu++) {
    w.u8(MadtType.LOCAL_APIC);
    w.u8(8);
    w.u8(cpu); // processor UID
    w.u8(cpu); // APIC id
    w.u32(LAPIC_ENABLED);
  }
  w.u8(MadtType.IO_APIC);
  w.u8(12);
  w.u8(cfg.ioapicId);
  w.u8(0);
  w.u32(cfg.ioapicAddress);
  w.u32(cfg.ioapicGsiBase);
  // IRQ0 -> GSI 2 (edge, bus default), then the PCI-routed ISA IRQs 5, 9, 10, 11 level/active high.
  const overrides: [number, number, number][] = [
    [0, 2, 0],
    [5, 5, MPS_ACTIVE_HIGH_LEVEL],
    [9, 9, MPS_ACTIVE_HIGH_LEVEL],
    [10, 10, MPS_ACTIVE_HIGH_LEVEL],
    [11, 11, MPS_ACTIVE_HIGH_LEVEL],
  ];
  for (const [source, gsi, flags] of overrides) {
    w.u8(MadtType.INTERRUPT_OVERRIDE);
    w.u8(10);
    w.u8(0); // bus: ISA
    w.u8(source);
    w.u32(gsi);
    w.u16(flags);
  }
  w.u8(MadtType.LOCAL_APIC_NMI);
  w.u8(6);
  w.u8(ALL_PROCESSORS);
  w.u16(0);
  w.u8(LINT1);
  endTable(ctx, at);
  return at;
}

/** HPET event timer block id QEMU reports (Intel, rev 1, 3 comparators, 64-bit, legacy replacement). */
export const HPET_BLOCK_ID = 0x8086_a201;
/** HPET MMIO base. */
export const HPET_BASE = 0xfed0_0000;

/** Writes the HPET table. */
export function buildHpet(ctx: BlobContext): number {
  const w = ctx.w;
  const at = beginTable(w, 'HPET', 1);
  w.u32(HPET_BLOCK_ID);
  gas(w, GasSpace.MEMORY, 0, HPET_BASE);
  w.u8(0); // HPET number
  w.u16(0); // minimum tick
  w.u8(0); // page protection
  endTable(ctx, at);
  return at;
}

/** The PCIe ECAM window the MCFG describes. */
export interface McfgConfig {
  readonly base: number;
  readonly segment?: number;
  readonly startBus?: number;
  readonly endBus?: number;
}

/** Writes the MCFG with one allocation. */
export function buildMcfg(ctx: BlobContext, cfg: McfgConfig): number {
  const w = ctx.w;
  const at = beginTable(w, 'MCFG', 1);
  w.zeros(8); // reserved
  w.u64(cfg.base);
  w.u16(cfg.segment ?? 0);
  w.u8(cfg.startBus ?? 0);
  w.u8(cfg.endBus ?? 0xff);
  w.u32(0); // reserved
  endTable(ctx, at);
  return at;
}

/** WAET flags: the ACPI PM timer is reliable (one read suffices). */
const WAET_PM_TIMER_GOOD = 0x2;

/** Writes the Windows ACPI Emulated devices Table. */
export function buildWaet(ctx: BlobContext): number {
  const at = beginTable(ctx.w, 'WAET', 1);
  ctx.w.u32(WAET_PM_TIMER_GOOD);
  endTable(ctx, at);
  return at;
}

/** Copies a finished standalone table (e.g. the DMAR) into the blob; its checksum is redone by the loader. */
export function appendTable(ctx: BlobContext, table: Uint8Array): number {
  const at = ctx.w.bytes(table);
  // QEMU leaves the checksum byte 0 in the blob.
  ctx.w.put(at + AcpiHeader.CHECKSUM, 0, 1);
  endTable(ctx, at);
  return at;
}
