/**
 * vtemu's public API: build a q35 machine (optionally with an Intel VT-d
 * IOMMU), drive it through the qtest front door or directly, and register
 * third-party device types.  Everything exported as a value exists at run
 * time (constants are objects, not const enums); the command line is the
 * `vtemu` binary, not part of this API.
 */
export { createMachine, Machine, type MachineOptions, type MachineDevice, type MachineEvents } from './machine/q35.js';
export { machineFromState, encodeState, decodeState, saveStateFile, readStateFile, type RestoreHost } from './machine/snapshot-file.js';
export { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type MachineState, type SnapshotConfig } from './machine/snapshot.js';
export { SnapshotError } from './core/snapshot-state.js';
export {
  registerDeviceType,
  getDeviceType,
  listDeviceTypes,
  parseDeviceArg,
  deviceHelp,
  deviceListHelp,
  ConfigError,
  type DeviceSpec,
  type DeviceArg,
} from './machine/registry.js';
export type { DeviceType, DeviceContext, Device, DeprecatedProp, PropDef, PropKind, PropValue, PropValues, Tracer, DeviceCategory } from './machine/device-type.js';
export { PatternTracer, NULL_TRACER } from './machine/tracer.js';
export { loadMachineFile, checkMachineFile, type MachineFile } from './machine/machine-file.js';
export { QtestServer, type QtestTarget } from './qtest/server.js';
export { QmpSession, type QmpTarget } from './qtest/qmp.js';
export { openChannel, parseChardev, type Channel, type ChardevSpec } from './qtest/transport.js';
export { AddressSpace, MemTx } from './memory/address-space.js';
export { MmioRegion, RamRegion, AliasRegion, ContainerRegion, type MmioOps, type AccessRules } from './memory/region.js';
export { createRam, type RamBackendName } from './memory/ram-backend.js';
export { VirtualClock, Timer, type ClockMode } from './core/clock.js';
export type { DmaIommu, DmaTranslator, DmaRequester, IotlbEntry } from './memory/iommu.js';
export {
  ALL_PASIDS,
  AtsStatus,
  DmaAccess,
  IommuPerm,
  DmaRequestKind,
  NO_PASID,
  newAtsCompletion,
  type AtsCompletion,
  type AtsEndpoint,
  type AtsInvalidationResult,
  type AtsPort,
  type DevicePageRequest,
  type PageRequestStatus,
} from './memory/iommu.js';
export type { DmaMemory } from './memory/dma-space.js';
export { IntelIommu } from './hw/intel-iommu/device.js';
export { EduDevice } from './hw/edu/index.js';
export { IommuTestdev } from './hw/iommu-testdev/index.js';
export { SvaTestdev } from './hw/sva-testdev/index.js';
export { MsiSink, type MsiDelivery } from './hw/intc/msi-sink.js';
export { Ioapic } from './hw/intc/ioapic.js';
export { PciDevice, type PciDeviceInit } from './pci/device.js';
export { DmaSpace } from './memory/dma-space.js';
export {
  IOVA_SPACE_END,
  IommuNotifier,
  IommuNotifierError,
  IommuNotifierFlag,
  IommuNotifierList,
  flagOf,
  type IommuEvent,
  type IommuEventType,
  type IommuNotifierEvents,
  type IommuNotifierSource,
  type IommuNotifierSpace,
  type IovaWindow,
} from './memory/iommu-notifier.js';
export { inspectIommu, machineUnits, type IommuInspection, type InspectOptions } from './monitor/inspect.js';
export { formatInspection } from './monitor/inspect-text.js';
