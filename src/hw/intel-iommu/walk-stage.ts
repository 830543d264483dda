/**
 * The walk stage of DMA translation: a resolved translation config and an
 * IOVA to a leaf translation or a fault reason, by PGTT:
 *   second stage   walkSecondStage (legacy mode and scalable PGTT=2)
 *   first stage    walkFirstStage (PGTT=1)
 *   nested         walkFirstStage with every first-stage table address and
 *                  the output address translated by the second stage
 *                  (PGTT=3, vtemu's x-nested); faults of either stage are
 *                  reported with that stage's reason.
 * Pass-through (PGTT=4) never reaches this stage.
 *
 * On a unit with scalable-mode=on a second-stage output in the interrupt
 * window is fault 0x87 instead of legacy 0x0E, whatever the root table's
 * mode (QEMU 11.1 chooses by the property).  Nothing here allocates.
 */
import type { AddressSpace } from '../../memory/address-space.js';
import { VtdFault } from './fault-reasons.js';
import { walkFirstStage, type FsWalkRules, type NestedSecondStage } from './first-stage-walk.js';
import { walkSecondStage, type WalkResult, type WalkRules } from './page-walk.js';
import type { TranslationConfig } from './resolve.js';
import { Pgtt } from './scalable-context.js';

/** Adjusted guest address width of AW: 30 + 9 * AW. */
const AGAW_BASE = 30;
const AGAW_PER_AW = 9;

/** The walk rules of one unit. */
export interface WalkStageRules {
  readonly ss: WalkRules;
  readonly fs: FsWalkRules;
}

/** The second stage of a nested translation, for the first-stage walk to call. */
class NestedStage implements NestedSecondStage {
  mem: AddressSpace | null = null;
  rules: WalkRules | null = null;
  root = 0;
  levels = 0;
  agaw = 0;

  translate(gpa: number, isWrite: boolean, out: WalkResult): number {
    const r = walkSecondStage(this.mem!, this.rules!, this.root, this.levels, this.agaw, gpa, isWrite, out);
    return r === VtdFault.INTERRUPT_ADDR ? VtdFault.SM_INTERRUPT_ADDR : r;
  }
}

const nested = new NestedStage();

/**
 * Walks the tables `cfg` names for `iova`.  Returns 0 and fills `out`, or a
 * fault reason.  `scalableUnit`: the unit has scalable-mode=on.
 */
export function walkTranslation(
  mem: AddressSpace,
  rules: WalkStageRules,
  cfg: TranslationConfig,
  scalableUnit: boolean,
  iova: number,
  isWrite: boolean,
  out: WalkResult,
): number {
  const agaw = AGAW_BASE + AGAW_PER_AW * cfg.aw;
  switch (cfg.pgtt) {
    case Pgtt.FirstStage:
      return walkFirstStage(mem, rules.fs, cfg.fsRoot, cfg.fsLevels, cfg.aw, iova, isWrite, out);
    case Pgtt.Nested:
      nested.mem = mem;
      nested.rules = rules.ss;
      nested.root = cfg.ssRoot;
      nested.levels = cfg.ssLevels;
      nested.agaw = agaw;
      return walkFirstStage(mem, rules.fs, cfg.fsRoot, cfg.fsLevels, cfg.aw, iova, isWrite, out, nested);
    default: {
      const r = walkSecondStage(mem, rules.ss, cfg.ssRoot, cfg.ssLevels, agaw, iova, isWrite, out);
      return scalableUnit && r === VtdFault.INTERRUPT_ADDR ? VtdFault.SM_INTERRUPT_ADDR : r;
    }
  }
}
