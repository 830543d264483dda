/**
 * A VT-d unit's snapshot section (QEMU vtd_vmstate in spirit): every
 * guest-visible register (so the fault records, their status, the
 * invalidation-queue and page-request registers come with it), the state
 * record (TE, root table, SMT, next fault record), the invalidation queue's
 * latched base, size and indexes, the interrupt-remapping table latched by
 * SIRTP, and the address-space switches (pass-through decisions and each
 * requester's bypass).
 *
 * Caches are not saved (IOTLB, context and PASID entries, the interrupt
 * entry cache; device-TLBs are the devices'): loading drops them, as QEMU's
 * vtd_post_load does, and they refill from the guest's tables.  Posted
 * interrupts and the page-request queue keep no state outside the registers.
 * Requesters are named by the machine (`RequesterNames`), which knows the
 * PCI topology the unit does not.
 */
import { NO_PASID, type DmaRequester } from '../../memory/iommu.js';
import { SnapshotError, u32ToB64, type SectionReader, type SnapshotSection } from '../../core/snapshot-state.js';
import type { Iotlb } from './iotlb.js';
import type { InterruptRemapper } from './interrupt-remap.js';
import type { VtdNotifiers } from './notifiers.js';
import type { PassThroughSwitch } from './pass-through.js';
import type { IommuConfig } from './props.js';
import type { InvalidationQueue } from './queue.js';
import type { RegisterFile } from './registers.js';
import type { VtdState } from './state.js';
import type { VtdTranslator } from './translator.js';

/** What saving and loading need of a unit (IntelIommu implements it). */
export interface SnapshotUnit {
  readonly config: Pick<IommuConfig, 'nfr'>;
  readonly regs: Pick<RegisterFile, 'size' | 'saveWords' | 'loadWords'>;
  readonly state: Pick<VtdState, 'saveState' | 'loadState'>;
  readonly queue: Pick<InvalidationQueue, 'saveState' | 'loadState'>;
  readonly remapper: Pick<InterruptRemapper, 'saveState' | 'loadState'>;
  readonly passThrough: Pick<PassThroughSwitch, 'saveState' | 'loadState'>;
  readonly iotlb: Pick<Iotlb, 'clear'>;
  readonly notifiers: Pick<VtdNotifiers, 'cachesReset'>;
  translators(): readonly VtdTranslator[];
  translatorFor(requester: DmaRequester): VtdTranslator;
  bumpContextGeneration(): void;
}

/** How the machine names requesters in a saved state, and finds them again. */
export interface RequesterNames {
  /** A stable name for `req` (its function's place in the PCI topology), or null for one the machine does not know. */
  nameOf(req: DmaRequester): string | null;
  /** The requester of that name in this machine, or null. */
  find(name: string): DmaRequester | null;
}

/** The unit's section. */
export function saveVtdState(u: SnapshotUnit, names: RequesterNames): SnapshotSection {
  const bypass: string[] = [];
  for (const t of u.translators()) {
    if (t.pasid !== NO_PASID || !t.bypassed) continue;
    const name = names.nameOf(t.requester);
    if (name !== null) bypass.push(name);
  }
  return {
    regs: u32ToB64(u.regs.saveWords()),
    state: u.state.saveState(),
    queue: u.queue.saveState(),
    remapper: u.remapper.saveState(),
    passThrough: u.passThrough.saveState(),
    bypass,
  };
}

/** Loads a section saved by saveVtdState into `u`, then drops every cache. */
export function loadVtdState(u: SnapshotUnit, r: SectionReader, names: RequesterNames): void {
  const words = r.words('regs', u.regs.size / 4);
  const state = r.sub('state');
  const queue = r.sub('queue');
  const remapper = r.sub('remapper');
  const pt = r.array('passThrough');
  const bypass = r.array('bypass').map((n) => {
    const req = typeof n === 'string' ? names.find(n) : null;
    if (req === null) throw new SnapshotError(`snapshot: ${r.where}.bypass: unknown requester ${JSON.stringify(n)}`);
    return req;
  });
  u.regs.loadWords(words);
  u.state.loadState(state, u.config.nfr);
  u.queue.loadState(queue);
  u.remapper.loadState(remapper);
  u.passThrough.loadState(pt, `${r.where}.passThrough`);
  const on = new Set(bypass.map((req) => req.key));
  for (const req of bypass) u.translatorFor(req);
  for (const t of u.translators()) t.loadBypass(t.pasid === NO_PASID && on.has(t.requester.key));
  // QEMU vtd_post_load: caches are gone; entries are read again from memory.
  u.iotlb.clear();
  u.bumpContextGeneration();
  u.notifiers.cachesReset();
}
