import { describe, expect, it } from 'vitest';
import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';
import { byteSum, discoverAcpi } from './acpi.js';

function sdt(sig: string, body: number[]): Uint8Array {
  const b = new Uint8Array(36 + body.length);
  [...sig].forEach((c, i) => (b[i] = c.charCodeAt(0)));
  new DataView(b.buffer).setUint32(4, b.length, true);
  b[8] = 1;
  b.set(body, 36);
  b[9] = (256 - byteSum(b)) & 0xff;
  return b;
}
const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];

describe('discoverAcpi', () => {
  async function machine(corrupt = false): Promise<FakePlatform> {
    const p = new FakePlatform();
    const dmar = sdt('DMAR', [38, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    if (corrupt) dmar[40] = 0x55;
    await p.writeBytes(0x200000, dmar);
    await p.writeBytes(0x201000, sdt('RSDT', u32(0x200000)));
    const rsdp = new Uint8Array(20);
    rsdp.set([...'RSD PTR '].map((c) => c.charCodeAt(0)));
    rsdp.set(u32(0x201000), 16);
    rsdp[8] = (256 - byteSum(rsdp)) & 0xff;
    await p.writeBytes(0xf5a30, rsdp);
    return p;
  }
  it('finds the RSDP by scanning and follows the RSDT', async () => {
    const info = (await discoverAcpi(await machine()))!;
    expect(info.rsdpAddr).toBe(0xf5a30);
    expect(info.rootSignature).toBe('RSDT');
    expect(info.tables.map((t) => [t.signature, t.checksumOk])).toEqual([['DMAR', true]]);
  });
  it('flags a bad checksum and returns undefined without an RSDP', async () => {
    const info = (await discoverAcpi(await machine(true), 0xf5a30))!;
    expect(info.tables[0]!.checksumOk).toBe(false);
    expect(await discoverAcpi(new FakePlatform())).toBeUndefined();
  });
});
