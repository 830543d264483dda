/**
 * Public surface of the intel-iommu device (VT-d).
 */
export { IntelIommu, intelIommuDeviceType, type DmarConfig, type IntelIommuHost } from './device.js';
export { resolveIommuConfig, INTEL_IOMMU_PROPS, type IommuConfig, type KernelIrqchip } from './props.js';
export { capValue, ecapValue, Cap, Ecap } from './caps.js';
export * from './requests.js';
export type * from './roles.js';
export type { RegisterAccess } from './registers.js';
export { VtdState } from './state.js';
export * from './reg-layout.js';
export { VtdFault, isQualifiedFault } from './fault-reasons.js';
export type { FaultEvent, TranslateEvent, InvalidateEvent, IommuEventMap, IommuEmitter } from './events.js';
export { VtdTranslator, sourceId } from './translator.js';
