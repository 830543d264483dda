/**
 * The per-requester pass-through switch, as QEMU keeps it
 * (vtd_switch_address_space, vtd_pt_enable_fast_path): QEMU reads a
 * device's context entry from memory when the unit refreshes its address
 * spaces (TE change, SRTP, global context invalidation, reset), when a
 * device-selective context invalidation matches the device, and on the
 * device's first pass-through translation.  While translation is enabled and
 * that entry is a valid pass-through (TT=2) entry, the device's DMA goes to
 * the untranslated region and bypasses the IOMMU entirely (IOTLB and context
 * cache included) until the next decision.  Spec-wise this is a cached
 * context entry; tagging the IOTLB by domain, real hardware does not use
 * stale IOTLB entries for a pass-through context either.
 *
 * QEMU decides for every PCI device at a refresh; vtemu creates translators
 * at a device's first DMA, so a refresh records the decision for every
 * source ID (a scan of the present root entries' context tables) and a new
 * translator starts from the recorded decision.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { join64 } from '../../memory/address.js';
import { newQword, readQword } from './guest-mem.js';
import { Entry, ENTRY_SIZE, ctxType, lookupContext, newContextEntry, TranslationType, type ContextRules } from './root-context.js';

/** Number of source IDs (bus << 8 | devfn). */
const SID_COUNT = 0x1_0000;
const BUSES = 256;
const DEVFNS = 256;
const BUS_SHIFT = 8;

/** What the switch reads from its unit. */
export interface PassThroughUnit {
  readonly memory: AddressSpace;
  readonly dmarEnabled: boolean;
  readonly rootTable: number;
  readonly ctxRules: ContextRules;
}

/** Pass-through decisions of one unit, by source ID. */
export class PassThroughSwitch {
  private readonly pt = new Uint8Array(SID_COUNT);
  private readonly ce = newContextEntry();
  private readonly root = newQword();
  private readonly ctxLo = newQword();

  constructor(private readonly u: PassThroughUnit) {}

  /** The recorded decision for `sid`. */
  isPassThrough(sid: number): boolean {
    return this.pt[sid] === 1;
  }

  /** Decides for `sid` from its context entry in memory now, records and returns it. */
  decide(sid: number): boolean {
    const u = this.u;
    const on =
      u.dmarEnabled &&
      lookupContext(u.memory, u.rootTable, sid >>> BUS_SHIFT, sid & (DEVFNS - 1), u.ctxRules, this.ce) === 0 &&
      ctxType(this.ce) === TranslationType.PassThrough;
    this.pt[sid] = on ? 1 : 0;
    return on;
  }

  /** Decides for every source ID (QEMU vtd_address_space_refresh_all). */
  decideAll(): void {
    this.pt.fill(0);
    const u = this.u;
    if (!u.dmarEnabled) return;
    for (let bus = 0; bus < BUSES; bus++) {
      if (!readQword(u.memory, u.rootTable + bus * ENTRY_SIZE, this.root) || (this.root.lo & Entry.P) === 0) continue;
      const table = join64(this.root.lo & Entry.ADDR_LO, this.root.hi);
      for (let devfn = 0; devfn < DEVFNS; devfn++) {
        // Only a present TT=2 entry can be a pass-through one: skip the rest with one read.
        if (!readQword(u.memory, table + devfn * ENTRY_SIZE, this.ctxLo)) continue;
        if ((this.ctxLo.lo & Entry.P) === 0 || ((this.ctxLo.lo >>> Entry.TT_SHIFT) & Entry.TT_MASK) !== TranslationType.PassThrough) continue;
        this.decide((bus << BUS_SHIFT) | devfn);
      }
    }
  }

  /** Decides for the functions of `bus` whose devfn matches `devfn` outside `ignore` bits (device-selective invalidation). */
  decideMatching(bus: number, devfn: number, ignore: number): void {
    for (let f = 0; f < DEVFNS; f++) if ((f & ~ignore) === (devfn & ~ignore)) this.decide((bus << BUS_SHIFT) | f);
  }
}
