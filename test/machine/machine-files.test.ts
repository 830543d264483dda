/**
 * Every machine definition in machines/ builds, publishes a DMAR that the
 * ACPI parser accepts, and answers through qtest; a file naming a device
 * type that is not registered fails.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadMachineFile } from '../../src/machine/machine-file.js';
import { getDeviceType } from '../../src/machine/registry.js';
import '../../src/machine/builtins.js';
import { parseDmar } from '../../src/hw/acpi/dmar-parse.js';
import { readAcpiTables } from '../../src/hw/acpi/reader.js';
import { addressSpaceBus } from '../../src/hw/fw-cfg/client.js';
import { REPO_ROOT, VtemuRunner } from '../harness/index.js';
import { iaslDisassemble } from '../support/iasl.js';
import { needIasl } from '../harness/oracle.js';

const DIR = join(REPO_ROOT, 'machines');
/** iasl disassembles every machine's DMAR when present (a missing iasl is a loud skip of that part, a failure in CI). */
const iasl = needIasl('iasl -d of the machine files\' DMARs');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

function missingTypes(file: string): string[] {
  const def = loadMachineFile(join(DIR, file));
  return def.devices.map((d) => d.split(',')[0]!).filter((t) => !getDeviceType(t));
}

describe('machines/*.json', () => {
  it('there are machine files', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(`${file} builds and answers qtest`, async () => {
      expect(missingTypes(file)).toEqual([]);
      const v = VtemuRunner.start(['--machine', join(DIR, file)]);
      try {
        expect(await v.command('readl 0xfed90000')).toBe('OK 0x0000000000000010');
        // Through fw_cfg DMA and the table loader, as a firmware reads them.
        const acpi = await readAcpiTables(addressSpaceBus(v.machine.io, v.machine.memory));
        expect(acpi.errors).toEqual([]);
        const dmar = parseDmar(acpi.tables.find((x) => x.signature === 'DMAR')!.bytes);
        expect(dmar.errors).toEqual([]);
        expect(dmar.table).not.toBeNull();
        const def = loadMachineFile(join(DIR, file));
        expect(v.machine.devices.length).toBe(def.devices.length);
        expect(dmar.table!.rmrr.length).toBe(def.dmar?.rmrr?.length ?? 0);
        expect(dmar.table!.units.length).toBe(Math.max(1, def.dmar?.units?.length ?? 0));
        for (const r of def.dmar?.rmrr ?? []) {
          const found = dmar.table!.rmrr.find((x) => x.base === Number(r.base));
          expect(found?.limit).toBe(Number(r.limit));
          const ids = r.devices.map((id) => v.machine.devices.find((d) => d.spec.id === id)!.devfn!);
          expect(found!.scopes.map((s) => (s.path[0]!.dev << 3) | s.path[0]!.fn)).toEqual(ids);
        }
        // RHSA, ANDD and SATC (beyond QEMU) come out as the file asks.
        expect(dmar.table!.rhsa.map((r) => [r.base, r.proximityDomain])).toEqual(
          (def.dmar?.rhsa ?? []).map((r) => [Number(r.base), r.proximityDomain]),
        );
        expect(dmar.table!.andd.map((a) => [a.deviceNumber, a.name])).toEqual((def.dmar?.andd ?? []).map((a) => [a.deviceNumber, a.name]));
        expect(dmar.table!.satc.map((x) => x.scopes.map((s) => (s.path[0]!.dev << 3) | s.path[0]!.fn))).toEqual(
          (def.dmar?.satc ?? []).map((x) => x.devices.map((id) => v.machine.devices.find((d) => d.spec.id === id)!.devfn!)),
        );
      } finally {
        await v.close();
      }
    });

    it.skipIf(!iasl)(`${file}: iasl -d accepts its DMAR`, async () => {
      const v = VtemuRunner.start(['--machine', join(DIR, file)]);
      try {
        const acpi = await readAcpiTables(addressSpaceBus(v.machine.io, v.machine.memory));
        // iasl 20200925 (Debian 12) predates SATC: its complaint about type 5 is the only one tolerated.
        const problems = iaslDisassemble('DMAR', acpi.tables.find((x) => x.signature === 'DMAR')!.bytes).problems;
        expect(problems.filter((l) => !/Subtable Type : 0005 \[Unknown Subtable Type\]|Unknown DMAR subtable type 0x5$/.test(l))).toEqual([]);
      } finally {
        await v.close();
      }
    });
  }
});
