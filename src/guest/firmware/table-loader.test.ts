import { describe, expect, it } from 'vitest';
import { GuestAllocator } from '../alloc.js';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import type { FwCfgGuest } from './fw-cfg.js';
import { LoaderCmd, LoaderZone, runTableLoader } from './table-loader.js';
import { byteSum } from './acpi.js';

function name56(s: string): number[] {
  const b = new Array<number>(56).fill(0);
  [...s].forEach((c, i) => (b[i] = c.charCodeAt(0)));
  return b;
}
const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
function entry(fields: number[]): number[] {
  const e = new Array<number>(128).fill(0);
  fields.forEach((v, i) => (e[i] = v));
  return e;
}

describe('runTableLoader', () => {
  it('allocates, patches pointers, fixes checksums and writes files to guest RAM', async () => {
    const tables = new Uint8Array(64).fill(1);
    tables[10] = 0; // checksum byte
    tables.set(u32(0x10), 20); // pointer field: offset 0x10 into the rsdp file
    const rsdp = new Uint8Array(20);
    const script = [
      ...entry([...u32(LoaderCmd.Allocate), ...name56('etc/acpi/rsdp'), ...u32(16), LoaderZone.FSeg]),
      ...entry([...u32(LoaderCmd.Allocate), ...name56('etc/acpi/tables'), ...u32(64), LoaderZone.High]),
      ...entry([...u32(LoaderCmd.AddPointer), ...name56('etc/acpi/tables'), ...name56('etc/acpi/rsdp'), ...u32(20), 4]),
      ...entry([...u32(LoaderCmd.AddChecksum), ...name56('etc/acpi/tables'), ...u32(10), ...u32(0), ...u32(64)]),
      ...entry([...u32(LoaderCmd.WritePointer), ...name56('x'), ...name56('y')]),
      ...entry([...u32(LoaderCmd.Allocate), ...name56('missing'), ...u32(16), LoaderZone.High]),
    ];
    const files: Record<string, Uint8Array> = { 'etc/table-loader': new Uint8Array(script), 'etc/acpi/tables': tables, 'etc/acpi/rsdp': rsdp };
    const fw = { readFile: async (n: string) => files[n]?.slice() } as unknown as FwCfgGuest;
    const p = new FakePlatform();
    const r = await runTableLoader(p, fw, { high: new GuestAllocator(p, 0x100000, 0x200000), fseg: new GuestAllocator(p, 0x90000, 0x9f000) });
    expect(r.skipped).toBe(2);
    const t = r.files.get('etc/acpi/tables')!;
    expect(r.files.get('etc/acpi/rsdp')!.addr).toBe(0x90000);
    expect(t.addr).toBe(0x100000);
    const inRam = await p.readBytes(t.addr, 64);
    expect(new DataView(inRam.buffer).getUint32(20, true)).toBe(0x90000 + 0x10);
    expect(byteSum(inRam)).toBe(0);
  });
});
