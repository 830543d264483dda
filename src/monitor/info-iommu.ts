/**
 * `info iommu` (vtemu only; QEMU has no such command): per Intel VT-d unit
 * its register window, mode, the main registers (VT-d 4.1 §11.4) with the
 * status bits decoded, and the requesters that have an address space with
 * what their DMA gets now (translated, passed through, untranslated).
 *
 *     intel-iommu "vtd0" at 0x00000000fed90000: legacy mode, translation off
 *       VER 0x00000010 (1.0)  CAP 0x...  ECAP 0x...
 *       GSTS 0x00000000 []  FSTS 0x00000000 []
 *       RTADDR 0x0000000000000000
 *       IQ head 0x... tail 0x... addr 0x...
 *       address spaces: 00:01.0 translated, 00:1f.2 translated pasid 5
 */
import type { IntelIommu } from '../hw/intel-iommu/device.js';
import { Fsts, Gsts, Reg, Rtaddr } from '../hw/intel-iommu/reg-layout.js';
import { NO_PASID } from '../memory/iommu.js';
import { hex } from './info-pci.js';

/** GSTS bits by name, high to low. */
const GSTS_BITS: readonly (readonly [string, number])[] = [
  ['TES', Gsts.TES],
  ['RTPS', Gsts.RTPS],
  ['FLS', Gsts.FLS],
  ['AFLS', Gsts.AFLS],
  ['WBFS', Gsts.WBFS],
  ['QIES', Gsts.QIES],
  ['IRES', Gsts.IRES],
  ['IRTPS', Gsts.IRTPS],
  ['CFIS', Gsts.CFIS],
];

/** FSTS status bits by name (FRI is printed as a number). */
const FSTS_BITS: readonly (readonly [string, number])[] = [
  ['PRO', Fsts.PRO],
  ['ITE', Fsts.ITE],
  ['ICE', Fsts.ICE],
  ['IQE', Fsts.IQE],
  ['APF', Fsts.APF],
  ['AFO', Fsts.AFO],
  ['PPF', Fsts.PPF],
  ['PFO', Fsts.PFO],
];

/** Names of the bits of `value` set in `bits`, as `[A B]`. */
export function bitNames(value: number, bits: readonly (readonly [string, number])[]): string {
  return `[${bits.filter(([, b]) => (value & b) !== 0).map(([n]) => n).join(' ')}]`;
}

const h64 = (v: bigint): string => `0x${hex(v, 16)}`;
const h32 = (v: number): string => `0x${hex(v >>> 0, 8)}`;

/** One unit as `info iommu` shows it; `base` is where its window is mapped (null: not mapped). */
export function iommuUnitLines(u: IntelIommu, id: string, base: number | null): string[] {
  const r = u.regs;
  const gsts = r.get32(Reg.GSTS);
  const fsts = r.get32(Reg.FSTS);
  const ver = r.get32(Reg.VER);
  const rtaddr = r.get64(Reg.RTADDR);
  const where = base === null ? 'not mapped' : `at ${h64(BigInt(base))}`;
  const mode = (rtaddr & BigInt(Rtaddr.SMT)) !== 0n ? 'scalable' : 'legacy';
  const latched = u.scalable ? 'scalable' : 'legacy';
  const out = [
    `intel-iommu "${id}" ${where}: ${latched} mode${latched === mode ? '' : ` (RTADDR says ${mode})`}, translation ${u.dmarEnabled ? 'on' : 'off'}`,
    `  VER ${h32(ver)} (${(ver >>> 4) & 0xf}.${ver & 0xf})  CAP ${h64(u.capability)}  ECAP ${h64(u.extendedCapability)}`,
    `  GSTS ${h32(gsts)} ${bitNames(gsts, GSTS_BITS)}  FSTS ${h32(fsts)} ${bitNames(fsts, FSTS_BITS)} FRI ${(fsts & Fsts.FRI_MASK) >>> Fsts.FRI_SHIFT}`,
    `  RTADDR ${h64(rtaddr)}`,
    `  IQ head ${h64(r.get64(Reg.IQH))} tail ${h64(r.get64(Reg.IQT))} addr ${h64(r.get64(Reg.IQA))}`,
  ];
  const spaces = u.translators().map((t) => {
    const sid = ((t.requester.busNumber() & 0xff) << 8) | (t.requester.devfn & 0xff);
    const bdf = `${hex(sid >>> 8, 2)}:${hex((sid >>> 3) & 0x1f, 2)}.${sid & 7}`;
    const what = !u.dmarEnabled ? 'untranslated' : t.pasid === NO_PASID && u.passThrough.isPassThrough(sid) ? 'pass-through' : 'translated';
    return `${bdf} ${what}${t.pasid === NO_PASID ? '' : ` pasid ${t.pasid}`}`;
  });
  out.push(`  address spaces: ${spaces.length ? spaces.join(', ') : 'none'}`);
  return out;
}

/** The text of `info iommu` for the units in `units` (each with its id and window base).  Lines end in '\n'. */
export function infoIommu(units: readonly { unit: IntelIommu; id: string; base: number | null }[]): string {
  if (units.length === 0) return 'No IOMMU\n';
  return units.flatMap((x) => iommuUnitLines(x.unit, x.id, x.base)).map((l) => l + '\n').join('');
}
