/**
 * The fw_cfg items and files QEMU 7.2's q35 machine provides besides the
 * ACPI ones (read back from `qemu-system-x86_64 -machine q35 -nodefaults`
 * through fw_cfg): the numbered x86 items and the small files, so that the
 * directory (sorted, selectors from 0x20) lists the same names at the same
 * selectors as QEMU's.  SMBIOS and option ROM contents are not modelled:
 * `etc/smbios/*` are minimal valid placeholders of the sizes the directory
 * needs, and genroms/kvmvapic.bin is left out (it is the last entry, so no
 * selector moves).
 *
 * The items QEMU's tests/qtest/fw_cfg-test.c reads are filled as QEMU 11.1
 * fills them (measured on `-machine q35` and on its default machine,
 * pc-i440fx-11.1, whose numbered items are the same): UUID from `-uuid`,
 * NB_CPUS = -smp cpus, MAX_CPUS = the APIC ID limit of maxcpus, NUMA =
 * (1 + MAX_CPUS) zero u64s without -numa, BOOT_MENU from `-boot menu=`,
 * `etc/boot-fail-wait` (le32, -1 unless `-boot reboot-timeout=`) and
 * `etc/boot-menu-wait` (le16, only with `-boot splash-time=`).
 */
import { FwCfg, FwCfgKey } from './fw-cfg.js';
import type { BootConfig } from './boot-options.js';
import { numaFwCfgItem, type NumaConfig } from './numa-item.js';

/** e820 entry types (ACPI 6.5 table 15.312). */
export const E820Type = {
  RAM: 1,
  RESERVED: 2,
} as const;

/** Size of one `etc/e820` entry: u64 address, u64 length, u32 type. */
export const E820_ENTRY_SIZE = 20;

/** QEMU >= 7.1 reserves the AMD HyperTransport hole 0xFD_0000_0000..0xFF_FFFF_FFFF in e820. */
export const HT_HOLE = { BASE: 0xfd_0000_0000, SIZE: 0x3_0000_0000 } as const;

/** HPET fw_cfg item (struct hpet_fw_config): count, then {u32 block id, u64 address, u16 min tick, u8 page prot}. */
export const HpetFwCfg = {
  ENTRIES: 8,
  ENTRY_SIZE: 15,
  BLOCK_ID: 0x8086_a201,
  ADDRESS: 0xfed0_0000,
} as const;

/** ACPI system-states file: S3 and S4 enabled bytes as QEMU writes them (0x80 | type). */
const SYSTEM_STATES = Uint8Array.of(0x80, 0x00, 0x00, 0x81, 0x82, 0x80);
/** SMI features QEMU's ICH9 advertises: broadcast, CPU hotplug, CPU hot-unplug. */
const SMI_SUPPORTED_FEATURES = 0x7;

/** Machine facts the items carry. */
export interface Q35FwCfgConfig {
  /** RAM below 4 GiB in bytes (QEMU: min(ram, lowmem)). */
  readonly ramBelow4g: number;
  /** Total RAM (FW_CFG_RAM_SIZE). */
  readonly ramSize?: number;
  /** CPUs the ACPI tables describe (and the fw_cfg counts, without `smp`). */
  readonly cpus?: number;
  /** `-smp`: FW_CFG_NB_CPUS and FW_CFG_MAX_CPUS (the APIC ID limit). */
  readonly smp?: { readonly cpus: number; readonly apicIdLimit: number };
  /** 16 bytes; default all zero (no -uuid). */
  readonly uuid?: Uint8Array;
  /** `-numa` nodes (null or absent: none). */
  readonly numa?: NumaConfig | null;
  /** `-boot` settings; default: no menu, no splash-time, never reboot. */
  readonly boot?: BootConfig;
}

function le(size: number, v: number | bigint): Uint8Array {
  const b = new Uint8Array(size);
  let x = BigInt.asUintN(size * 8, BigInt(v));
  for (let i = 0; i < size; i++, x >>= 8n) b[i] = Number(x & 0xffn);
  return b;
}

/** The `etc/e820` file: the HT hole reserved, then RAM below 4 GiB. */
export function e820File(ramBelow4g: number): Uint8Array {
  const out = new Uint8Array(2 * E820_ENTRY_SIZE);
  out.set(le(8, HT_HOLE.BASE), 0);
  out.set(le(8, HT_HOLE.SIZE), 8);
  out.set(le(4, E820Type.RESERVED), 16);
  out.set(le(8, 0), E820_ENTRY_SIZE);
  out.set(le(8, ramBelow4g), E820_ENTRY_SIZE + 8);
  out.set(le(4, E820Type.RAM), E820_ENTRY_SIZE + 16);
  return out;
}

function hpetItem(): Uint8Array {
  const out = new Uint8Array(1 + HpetFwCfg.ENTRIES * HpetFwCfg.ENTRY_SIZE);
  out[0] = 1;
  out.set(le(4, HpetFwCfg.BLOCK_ID), 1);
  out.set(le(8, HpetFwCfg.ADDRESS), 5);
  return out;
}

/** Minimal SMBIOS 2.8 structures: a type 127 end-of-table marker (placeholder for QEMU's type 0/1/3/4/16/17/19/32). */
function smbiosTables(): Uint8Array {
  // type 127, length 4, handle 0x7f00, then the double NUL terminator
  return Uint8Array.of(127, 4, 0x00, 0x7f, 0, 0);
}

/** SMBIOS 2.1 entry point (31 bytes), as QEMU's "_SM_" anchor; table address patched by firmware. */
function smbiosAnchor(tables: Uint8Array): Uint8Array {
  const a = new Uint8Array(31);
  a.set([0x5f, 0x53, 0x4d, 0x5f], 0); // "_SM_"
  a[5] = 31; // entry point length
  a[6] = 2; // major
  a[7] = 8; // minor
  a.set(le(2, 0), 8); // max structure size
  a.set([0x5f, 0x44, 0x4d, 0x49, 0x5f], 16); // "_DMI_"
  a.set(le(2, tables.length), 22);
  a.set(le(2, 1), 28); // number of structures
  a[30] = 0x28; // BCD revision 2.8
  let sum = 0;
  for (let i = 16; i < 31; i++) sum += a[i]!;
  a[21] = (0x100 - (sum & 0xff)) & 0xff;
  sum = 0;
  for (let i = 0; i < 16; i++) sum += a[i]!;
  a[4] = (0x100 - (sum & 0xff)) & 0xff;
  return a;
}

/** Adds QEMU 7.2 q35's numbered items and non-ACPI files. */
export function addQ35Items(fw: FwCfg, cfg: Q35FwCfgConfig): void {
  const cpus = cfg.smp?.cpus ?? cfg.cpus ?? 1;
  const apicIdLimit = cfg.smp?.apicIdLimit ?? cfg.cpus ?? 1;
  const boot = cfg.boot;
  fw.addBytes(FwCfgKey.UUID, cfg.uuid ?? new Uint8Array(16));
  fw.addI64(FwCfgKey.RAM_SIZE, cfg.ramSize ?? cfg.ramBelow4g);
  fw.addI16(FwCfgKey.NOGRAPHIC, 0);
  fw.addI16(FwCfgKey.NB_CPUS, cpus);
  fw.addBytes(FwCfgKey.NUMA, numaFwCfgItem(cfg.numa ?? null, apicIdLimit));
  fw.addI16(FwCfgKey.BOOT_MENU, boot?.menu ? 1 : 0);
  fw.addI16(FwCfgKey.MAX_CPUS, apicIdLimit);
  fw.addI16(FwCfgKey.X86_ACPI_TABLES, 0);
  fw.addBytes(FwCfgKey.X86_SMBIOS_ENTRIES, le(2, 0));
  fw.addI32(FwCfgKey.X86_IRQ0_OVERRIDE, 1);
  fw.addI32(FwCfgKey.X86_E820_TABLE, 0);
  fw.addBytes(FwCfgKey.X86_HPET, hpetItem());

  fw.addFile('bios-geometry', new Uint8Array(0));
  fw.addFile('bootorder', new Uint8Array(0));
  fw.addFile('etc/boot-fail-wait', le(4, boot?.rebootTimeout ?? -1));
  if (boot?.splashTime !== undefined) fw.addFile('etc/boot-menu-wait', le(2, boot.splashTime));
  if (boot?.splash) fw.addFile(boot.splash.name, boot.splash.data);
  fw.addFile('etc/e820', e820File(cfg.ramBelow4g));
  const tables = smbiosTables();
  fw.addFile('etc/smbios/smbios-anchor', smbiosAnchor(tables));
  fw.addFile('etc/smbios/smbios-tables', tables);
  const requested = new Uint8Array(8);
  const featuresOk = new Uint8Array(1);
  fw.addFile('etc/smi/supported-features', le(8, SMI_SUPPORTED_FEATURES));
  fw.addFile('etc/smi/requested-features', requested, { writable: true });
  // QEMU 7.2 reports 1 here once the firmware negotiated; its initial content is what the guest reads back.
  featuresOk[0] = 1;
  fw.addFile('etc/smi/features-ok', featuresOk);
  fw.addFile('etc/system-states', SYSTEM_STATES.slice());
  fw.addFile('etc/tpm/log', new Uint8Array(0));
}
