/**
 * The state record of one VT-d unit: the mutable facts the unit latches from
 * guest commands and the hot path reads, each kept in exactly one place.
 *
 *   translationEnabled  GCMD.TE accepted.  The flag is the truth; GSTS.TES
 *                       is its guest-visible image, written only by
 *                       `setTranslationEnabled` (TE changes and reset), so
 *                       the two never disagree.  Nothing else writes TES.
 *   rootTable, scalable RTADDR (HAW-masked) and RTADDR.SMT latched by SRTP.
 *   nextFrcd            the fault recording register the next fault uses.
 *   contextGeneration   the context cache's generation: a requester's
 *                       cached context entry is valid while equal.
 *   traceHits           whether IOTLB hits are traced (read from the tracer
 *                       at creation and by refreshTracing, so the hit path
 *                       asks a field rather than the tracer).
 *
 * What lives elsewhere, also once: the invalidation queue's latched base,
 * size, head and tail (and GSTS.QIES, which the queue alone writes) in
 * queue.ts; the interrupt remapping table pointer (and GSTS.IRES / IRTPS /
 * CFIS) in interrupt-remap.ts; the register file in registers.ts.
 *
 * Helpers never change the unit object: they are handed this record (or a
 * slice of it) through their role interface (roles.ts).
 */
import type { SectionReader, SnapshotSection } from '../../core/snapshot-state.js';
import type { RegisterAccess } from './registers.js';
import { Gsts, Reg } from './reg-layout.js';

/** Context-cache generation after creation (0 marks an invalid cached entry). */
const FIRST_GENERATION = 1;

/** The mutable architectural state of one unit. */
export class VtdState {
  private te = false;
  /** Root table address latched by SRTP (HAW-masked, 4 KiB aligned). */
  rootTable = 0;
  /** RTADDR.SMT latched by SRTP with scalable-mode=on: the root table is a scalable-mode one. */
  scalable = false;
  /** Next fault recording register to use. */
  nextFrcd = 0;
  /** The context cache's generation (bumped by global / domain context invalidations and cache resets). */
  contextGeneration = FIRST_GENERATION;
  /** Whether IOTLB hits are traced. */
  traceHits = false;

  /** GCMD.TE accepted (GSTS.TES reads the same). */
  get translationEnabled(): boolean {
    return this.te;
  }

  /** The one writer of "translation enabled": the flag, and GSTS.TES from it. */
  setTranslationEnabled(regs: RegisterAccess, on: boolean): void {
    this.te = on;
    regs.setClear32(Reg.GSTS, on ? Gsts.TES : 0, on ? 0 : Gsts.TES);
  }

  /** Snapshot: the latched facts (the context generation and traceHits are not state). */
  saveState(): SnapshotSection {
    return { te: this.te, rootTable: this.rootTable, scalable: this.scalable, nextFrcd: this.nextFrcd };
  }

  /** Loads what saveState saved; GSTS.TES comes with the register file. */
  loadState(r: SectionReader, nfr: number): void {
    const te = r.bool('te');
    const rootTable = r.num('rootTable', 0, 2 ** 64);
    const scalable = r.bool('scalable');
    const nextFrcd = r.int('nextFrcd', 0, Math.max(0, nfr - 1));
    this.te = te;
    this.rootTable = rootTable;
    this.scalable = scalable;
    this.nextFrcd = nextFrcd;
  }

  /**
   * Device reset: translation off (TES cleared with it), no root table, the
   * first fault record next.  The context generation moves on rather than
   * back (cached entries of the old generation must stay invalid) and
   * traceHits follows the tracer, not reset.
   */
  reset(regs: RegisterAccess): void {
    this.setTranslationEnabled(regs, false);
    this.rootTable = 0;
    this.scalable = false;
    this.nextFrcd = 0;
  }
}
