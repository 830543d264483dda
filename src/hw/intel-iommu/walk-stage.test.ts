/**
 * The walk stage (walk-stage.ts) on its own: walkTranslation over tables a
 * VtdBench writes in guest RAM, with the unit's walk rules.  The point here
 * is which interrupt-window fault each PGTT reports: a second-stage output
 * in 0xFEE00000-0xFEEFFFFF is 0x0E in legacy mode and 0x87 on a unit with
 * scalable-mode=on, and a nested translation reports 0x87 for its second
 * stage whether it translated a first-stage table address or the output.
 */
import { describe, expect, it } from 'vitest';
import { VtdBench } from '../../../test/support/vtd-bench.js';
import { MSI_ADDRESS_BASE } from '../../core/irq.js';
import { VtdFault } from './fault-reasons.js';
import { newWalkResult } from './page-walk.js';
import { newTranslationConfig } from './resolve.js';
import { Pgtt } from './scalable-context.js';
import { walkTranslation } from './walk-stage.js';

/** AW 2: 4-level second stage (AGAW 48) and 4-level first stage. */
const AW_4_LEVEL = 2;
const LEVELS = 4;
/** Guest-physical address of the first-stage root (translated by the second stage when nested). */
const FS_ROOT_GPA = 0x40_0000;
const IOVA = 0x5000;

function bench(): VtdBench {
  return new VtdBench({ props: { 'scalable-mode': true, fsts: true, 'x-nested': true } });
}

describe('interrupt-window faults by PGTT', () => {
  it('second stage: 0x87 on a scalable-mode unit, 0x0E otherwise', () => {
    const b = bench();
    const ss = b.allocPage();
    b.map(ss, LEVELS, IOVA, MSI_ADDRESS_BASE);
    const cfg = newTranslationConfig();
    Object.assign(cfg, { pgtt: Pgtt.SecondStage, aw: AW_4_LEVEL, ssRoot: ss, ssLevels: LEVELS });
    const rules = b.iommu.walkStageRules;
    expect(walkTranslation(b.memory, rules, cfg, true, IOVA, false, newWalkResult())).toBe(VtdFault.SM_INTERRUPT_ADDR);
    expect(walkTranslation(b.memory, rules, cfg, false, IOVA, false, newWalkResult())).toBe(VtdFault.INTERRUPT_ADDR);
  });

  it('nested: a first-stage table address the second stage puts in the window is 0x87, whatever the unit', () => {
    const b = bench();
    const ss = b.allocPage();
    b.map(ss, LEVELS, FS_ROOT_GPA, MSI_ADDRESS_BASE);
    const cfg = newTranslationConfig();
    Object.assign(cfg, { pgtt: Pgtt.Nested, aw: AW_4_LEVEL, ssRoot: ss, ssLevels: LEVELS, fsRoot: FS_ROOT_GPA, fsLevels: LEVELS });
    const rules = b.iommu.walkStageRules;
    expect(walkTranslation(b.memory, rules, cfg, true, IOVA, false, newWalkResult())).toBe(VtdFault.SM_INTERRUPT_ADDR);
    expect(walkTranslation(b.memory, rules, cfg, false, IOVA, false, newWalkResult())).toBe(VtdFault.SM_INTERRUPT_ADDR);
  });

  it('nested: an output the second stage puts in the window is 0x87', () => {
    const b = bench();
    const ss = b.allocPage();
    // First-stage tables at GPAs mapped 1:1 by the second stage; the data page's GPA goes to the window.
    const fsTop = b.allocPage();
    const tables = [fsTop, b.allocPage(), b.allocPage(), b.allocPage()];
    for (const t of tables) b.map(ss, LEVELS, t, t);
    const dataGpa = 0x50_0000;
    for (let level = LEVELS; level > 1; level--) b.poke64(tables[LEVELS - level]!, BigInt(tables[LEVELS - level + 1]!) | 7n);
    b.poke64(tables[LEVELS - 1]! + (IOVA >>> 12) * 8, BigInt(dataGpa) | 7n);
    b.map(ss, LEVELS, dataGpa, MSI_ADDRESS_BASE);
    const cfg = newTranslationConfig();
    Object.assign(cfg, { pgtt: Pgtt.Nested, aw: AW_4_LEVEL, ssRoot: ss, ssLevels: LEVELS, fsRoot: fsTop, fsLevels: LEVELS });
    const rules = b.iommu.walkStageRules;
    expect(walkTranslation(b.memory, rules, cfg, true, IOVA, false, newWalkResult())).toBe(VtdFault.SM_INTERRUPT_ADDR);
    // The same tables with the data page elsewhere translate.
    b.map(ss, LEVELS, dataGpa, 0x60_0000);
    const out = newWalkResult();
    expect(walkTranslation(b.memory, rules, cfg, true, IOVA, false, out)).toBe(0);
    expect(out.translated).toBe(0x60_0000);
  });
});
