/**
 * Field decoders of the VT-d structures the inspector shows (spec 9.1-9.6):
 * legacy and scalable root and context entries, PASID directory and table
 * entries, as `NAME=value` records with the reserved bits each has by the
 * unit's own masks; and the small formatters they share (PGTT names,
 * permissions, page sizes, table indexes).  Pure functions of the qwords.
 */
import type { Qword } from '../hw/intel-iommu/guest-mem.js';
import { Entry } from '../hw/intel-iommu/root-context.js';
import { PasidDir, PasidEntry, SmContext, SmRoot } from '../hw/intel-iommu/scalable-context.js';
import { IommuPerm } from '../memory/iommu.js';
import { hexShort, joinHalves, reservedMask } from './inspect-common.js';

const TT_NAMES = ['multi-level', 'device-TLB', 'pass-through', 'reserved'];
const PGTT_NAMES = ['reserved(0)', 'first-stage', 'second-stage', 'nested', 'pass-through', 'reserved(5)', 'reserved(6)', 'reserved(7)'];
const ALL = 0xffff_ffff;

/** The PGTT name of a value. */
export function pgttName(pgtt: number): string {
  return PGTT_NAMES[pgtt & 7]!;
}

/** `RW`, `R-`, `-W` or `--`. */
export function permText(perm: number): string {
  return `${perm & IommuPerm.Read ? 'R' : '-'}${perm & IommuPerm.Write ? 'W' : '-'}`;
}

/** Bytes mapped by a leaf at `level`, as text. */
export function sizeText(size: number): string {
  return size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : size >= 2 ** 20 ? `${size / 2 ** 20} MiB` : `${size / 1024} KiB`;
}

/** The address field of a qword: its low dword under `loMask`, its high dword under `hiMask`. */
export const addrOf = (q: Qword, loMask: number, hiMask: number = ALL): number => joinHalves(q.lo & loMask, q.hi & hiMask);
/** Whether any of `b` is set in `v`. */
export const bit = (v: number, b: number): boolean => (v & b) !== 0;

/** Legacy root entry fields (spec 9.1). */
export function legacyRootFields(q: readonly Qword[], hawHiMask: number): { fields: Record<string, boolean | string>; reserved: string[] } {
  return {
    fields: { P: bit(q[0]!.lo, Entry.P), CTP: hexShort(addrOf(q[0]!, Entry.ADDR_LO)) },
    reserved: [reservedMask(q[0]!, Entry.ROOT_RSVD_LO, ~hawHiMask), reservedMask(q[1]!, ALL, ALL)],
  };
}

/** Legacy context entry fields (spec 9.3). */
export function legacyContextFields(q: readonly Qword[], hawHiMask: number): { fields: Record<string, boolean | number | string>; reserved: string[] } {
  const [lo, hi] = [q[0]!, q[1]!];
  const tt = (lo.lo >>> Entry.TT_SHIFT) & Entry.TT_MASK;
  const aw = hi.lo & Entry.AW_MASK;
  return {
    fields: {
      P: bit(lo.lo, Entry.P),
      FPD: bit(lo.lo, Entry.FPD),
      TT: `${tt} (${TT_NAMES[tt]})`,
      SSPTPTR: hexShort(addrOf(lo, Entry.ADDR_LO)),
      AW: `${aw} (${aw + 2}-level, ${30 + 9 * aw}-bit)`,
      DID: (hi.lo >>> Entry.DID_SHIFT) & Entry.DID_MASK,
    },
    reserved: [reservedMask(lo, Entry.CTX_RSVD_LO, ~hawHiMask), reservedMask(hi, Entry.CTX_RSVD_HI_LO, ALL)],
  };
}

/** Scalable-mode root entry fields (spec 9.2). */
export function smRootFields(q: readonly Qword[], hawHiMask: number): { fields: Record<string, boolean | string>; reserved: string[] } {
  return {
    fields: {
      LP: bit(q[0]!.lo, SmRoot.P),
      LCTP: hexShort(addrOf(q[0]!, SmRoot.ADDR_LO)),
      UP: bit(q[1]!.lo, SmRoot.P),
      UCTP: hexShort(addrOf(q[1]!, SmRoot.ADDR_LO)),
    },
    reserved: [reservedMask(q[0]!, SmRoot.RSVD_LO, ~hawHiMask), reservedMask(q[1]!, SmRoot.RSVD_LO, ~hawHiMask)],
  };
}

/** Scalable-mode context entry fields (spec 9.4). */
export function smContextFields(q: readonly Qword[], hawHiMask: number): { fields: Record<string, boolean | number | string>; reserved: string[] } {
  const v0 = q[0]!.lo;
  return {
    fields: {
      P: bit(v0, SmContext.P),
      FPD: bit(v0, SmContext.FPD),
      DTE: bit(v0, 1 << 2),
      PASIDE: bit(v0, 1 << 3),
      PRE: bit(v0, SmContext.PRE),
      PDTS: (v0 >>> 9) & 7,
      PASIDDIRPTR: hexShort(addrOf(q[0]!, SmContext.ADDR_LO)),
      RID_PASID: q[1]!.lo & 0xf_ffff,
      RID_PRIV: bit(q[1]!.lo, 1 << 20),
    },
    reserved: [
      reservedMask(q[0]!, SmContext.RSVD0_LO, ~hawHiMask),
      reservedMask(q[1]!, SmContext.RSVD1_LO, ALL),
      reservedMask(q[2]!, ALL, ALL),
      reservedMask(q[3]!, ALL, ALL),
    ],
  };
}

/** PASID directory entry fields (spec 9.5). */
export function pasidDirFields(q: readonly Qword[]): Record<string, boolean | string> {
  return { P: bit(q[0]!.lo, PasidDir.P), FPD: bit(q[0]!.lo, PasidDir.FPD), PASIDTPTR: hexShort(addrOf(q[0]!, PasidDir.ADDR_LO)) };
}

/** PASID table entry fields (spec 9.6). */
export function pasidEntryFields(q: readonly Qword[]): Record<string, boolean | number | string> {
  const q0 = q[0]!.lo;
  const q2 = q[2]!.lo;
  const aw = (q0 >>> PasidEntry.AW_SHIFT) & PasidEntry.AW_MASK;
  const pgtt = (q0 >>> PasidEntry.PGTT_SHIFT) & PasidEntry.PGTT_MASK;
  const fspm = (q2 >>> PasidEntry.FSPM_SHIFT) & PasidEntry.FSPM_MASK;
  return {
    P: bit(q0, PasidEntry.P),
    FPD: bit(q0, PasidEntry.FPD),
    AW: `${aw} (${aw + 2}-level, ${30 + 9 * aw}-bit)`,
    PGTT: `${pgtt} (${pgttName(pgtt)})`,
    SSPTPTR: hexShort(addrOf(q[0]!, PasidEntry.ADDR_LO)),
    DID: q[1]!.lo & PasidEntry.DID_MASK,
    SRE: bit(q2, PasidEntry.SRE),
    FSPM: `${fspm} (${fspm + 4}-level)`,
    WPE: bit(q2, PasidEntry.WPE),
    EAFE: bit(q2, PasidEntry.EAFE),
    FSPTPTR: hexShort(addrOf(q[2]!, PasidEntry.ADDR_LO)),
  };
}

/** Index of `iova` in a table at `level` (bits 12 + 9 * (level - 1) and up, 9 of them). */
export function tableIndex(iova: number, level: number): number {
  return Math.floor(iova / 2 ** (12 + 9 * (level - 1))) % 512;
}
