/**
 * One call for a machine: fw_cfg on its ports with QEMU 7.2 q35's items and
 * the ACPI files.  QEMU builds the tables when the machine is done (all
 * -device plugged) and rebuilds them when the firmware first reads them;
 * here the machine calls `update` whenever what the tables describe changed
 * (e.g. after plugging devices, so the DMAR lists the root bus).
 */
import type { DeviceContext } from '../../machine/device-type.js';
import type { FwCfg } from '../fw-cfg/fw-cfg.js';
import { createFwCfg } from '../fw-cfg/ports.js';
import { addQ35Items, type Q35FwCfgConfig } from '../fw-cfg/q35-items.js';
import { buildAcpi, installAcpi, type AcpiBuild, type AcpiConfig } from './build.js';
import { ACPI_RSDP_FILE, ACPI_TABLES_FILE, TABLE_LOADER_FILE } from './tables.js';

/** The machine's fw_cfg and a way to refresh its ACPI tables. */
export interface Q35Firmware {
  readonly fwCfg: FwCfg;
  /** The current build (what the firmware will read). */
  readonly acpi: AcpiBuild;
  /** Rebuilds the tables from a new configuration (same fw_cfg selectors). */
  update(cfg: AcpiConfig): void;
}

/** Creates fw_cfg at 0x510/0x514 with q35 items and ACPI files built from `acpi`. */
export function createQ35Firmware(ctx: Pick<DeviceContext, 'ioSpace' | 'memory'>, items: Q35FwCfgConfig, acpi: AcpiConfig = {}): Q35Firmware {
  const fwCfg = createFwCfg(ctx);
  addQ35Items(fwCfg, items);
  let build = buildAcpi({ cpus: items.cpus ?? 1, ...acpi });
  installAcpi(fwCfg, build);
  return {
    fwCfg,
    get acpi() {
      return build;
    },
    update(cfg: AcpiConfig) {
      build = buildAcpi({ cpus: items.cpus ?? 1, ...cfg });
      fwCfg.modifyFile(ACPI_RSDP_FILE, build.rsdp);
      fwCfg.modifyFile(ACPI_TABLES_FILE, build.tables);
      fwCfg.modifyFile(TABLE_LOADER_FILE, build.loader);
    },
  };
}
