/**
 * Inspecting VT-d units through the public views: the same decoded state
 * `info iommu` prints (summary, caches, queue, faults, interrupt remapping,
 * one request's translation path), as data (`inspectIommu`) or text
 * (`formatInspection`, src/monitor/inspect-text.ts).  Reading never
 * changes the machine.
 */
import { IntelIommu } from '../hw/intel-iommu/device.js';
import { inspectIommu as inspectModel, machineUnits as modelUnits, type IommuInspection, type InspectOptions } from '../monitor/inspect.js';
import { modelOf, type Machine } from './machine.js';
import type { VtdUnitRef } from './vtd-unit.js';

/** The VT-d units of `machine`, with their ids and where their register windows are mapped. */
export function machineUnits(machine: Machine): VtdUnitRef[] {
  return modelUnits(modelOf(machine));
}

/**
 * Inspects every unit of `target` (a machine; null: no machine, no unit) or
 * one unit of `machineUnits`.  Throws TypeError for an object vtemu did not make.
 */
export function inspectIommu(target: Machine | VtdUnitRef | null, options: InspectOptions = {}): IommuInspection {
  if (target === null) return inspectModel(null, options);
  if ('unit' in target) {
    const unit = target.unit;
    if (!(unit instanceof IntelIommu)) throw new TypeError('vtemu: not a VT-d unit of a vtemu machine');
    return inspectModel({ unit, id: target.id, base: target.base }, options);
  }
  return inspectModel(modelOf(target), options);
}
