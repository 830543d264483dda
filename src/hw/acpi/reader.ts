/**
 * Reads a machine's ACPI tables the way a firmware does: fetch
 * `etc/table-loader`, `etc/acpi/tables` and `etc/acpi/rsdp` through fw_cfg
 * DMA, run the loader commands, optionally copy the results into guest
 * memory, and walk from the RSDP.  Works against our machine and against a
 * live QEMU over qtest (the bus is async-capable).
 */
import { FwCfgClient, type FirmwareBus, type FwCfgFileInfo } from '../fw-cfg/client.js';
import { ACPI_RSDP_FILE, ACPI_TABLES_FILE, TABLE_LOADER_FILE } from './tables.js';
import { collectTables, runTableLoader, type AcpiTableSet, type LoaderLayout, type LoaderRun } from './loader-run.js';

/** What readAcpiTables returns. */
export interface AcpiReadResult extends AcpiTableSet {
  /** The loader run (addresses, patched files, pointer writes). */
  readonly run: LoaderRun;
  /** The fw_cfg directory as read. */
  readonly directory: readonly FwCfgFileInfo[];
}

/** Options of the reader. */
export interface AcpiReadOptions extends LoaderLayout {
  /** Also write every allocated file into guest memory at its address (as SeaBIOS does). */
  readonly install?: boolean;
  /** Scratch addresses for the fw_cfg DMA descriptor and bounce buffer. */
  readonly descAddr?: number;
  readonly bufAddr?: number;
}

/** Fetches, links and walks the ACPI tables through fw_cfg. */
export async function readAcpiTables(bus: FirmwareBus, opts: AcpiReadOptions = {}): Promise<AcpiReadResult> {
  const client = new FwCfgClient(bus, {
    ...(opts.descAddr !== undefined ? { descAddr: opts.descAddr } : {}),
    ...(opts.bufAddr !== undefined ? { bufAddr: opts.bufAddr } : {}),
  });
  const directory = await client.directory();
  const contents = new Map<string, Uint8Array>();
  for (const name of [TABLE_LOADER_FILE, ACPI_TABLES_FILE, ACPI_RSDP_FILE]) {
    const data = await client.readFile(name, directory);
    if (data) contents.set(name, data);
  }
  const loader = contents.get(TABLE_LOADER_FILE) ?? new Uint8Array(0);
  const run = runTableLoader(loader, (n) => contents.get(n), opts);
  if (opts.install) for (const f of run.files.values()) await bus.memWrite(f.addr, f.data);
  const set = collectTables(run);
  const errors = [...(contents.has(TABLE_LOADER_FILE) ? [] : ['no etc/table-loader file']), ...run.errors, ...set.errors];
  return { ...set, errors, run, directory };
}
