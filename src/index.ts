/**
 * vtemu's public API: build a q35 machine (optionally with Intel VT-d
 * IOMMUs), drive it through the qtest / QMP front doors or directly, follow
 * the guest's IOMMU mappings, save and restore it, and register third-party
 * device types.  Machines and VT-d units are handed out as narrow views
 * (`Machine`, `VtdUnit`, src/api/) that the model's classes satisfy; the
 * classes themselves, with their caches and register files, are not part of
 * the package.  Everything exported as a value exists at run time
 * (constants are objects, not const enums); the command line is the
 * `vtemu` binary, not part of this API.
 */

// The machine and its snapshots.
export { createMachine, machineFromState, saveStateFile, type Machine, type GuestRam, type ApicBus } from './api/machine.js';
export type { MachineOptions, MachineDevice, MachineEvents } from './machine/q35.js';
export type { DmarExtras, DrhdExtra, RmrrExtra, RhsaExtra, AnddExtra, SatcExtra } from './machine/dmar-wiring.js';
export { encodeState, decodeState, readStateFile, type RestoreHost } from './machine/snapshot-file.js';
export { SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type MachineState, type SnapshotConfig, type RamRun } from './machine/snapshot.js';
export { SnapshotError, SectionReader, type SnapshotSection, type SnapshotValue } from './core/snapshot-state.js';
export { loadMachineFile, checkMachineFile, type MachineFile } from './machine/machine-file.js';

// VT-d units.
export type {
  VtdUnit,
  VtdUnitRef,
  VtdConfig,
  VtdEventMap,
  FaultEvent,
  TranslateEvent,
  InvalidateEvent,
  PageGroupResponse,
  RegisterWriteEvent,
  InterruptRemapEvent,
  SanitizerReport,
  StrictWarning,
} from './api/vtd-unit.js';
export { inspectIommu, machineUnits } from './api/inspect.js';
export type { IommuInspection, InspectOptions, InspectView, UnitInspection, SummaryView } from './monitor/inspect.js';
export type { PathQuery, PathInspection, ConfigView, StageView, PathResult, IotlbHitView } from './monitor/inspect-path.js';
export type {
  CachesView,
  QueueView,
  FaultsView,
  IrView,
  IotlbEntryView,
  ContextCacheView,
  IrteView,
  PidView,
  DescriptorView,
  FaultRecordView,
} from './monitor/inspect-state.js';
export type { EntryView, FieldValue } from './monitor/inspect-common.js';
export { formatInspection } from './monitor/inspect-text.js';
export type { TypedEmitter, EventMap } from './api/emitter.js';

// Devices: types, properties, the registry.
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
export { DEVICE_CATEGORIES } from './machine/device-type.js';
export { PatternTracer, NULL_TRACER } from './machine/tracer.js';
export { PciDevice, type PciDeviceInit, type PciBar, type BarType } from './pci/device.js';
export type { PciConfig } from './pci/config.js';
export type { MsiCap } from './pci/msi.js';
export type { PciBus, PciBusHost, PciBusEntry, PlugOptions } from './pci/bus.js';
export type { MsiDelivery, MsiSinkEvents } from './hw/intc/msi-sink.js';
export type { MsiTarget, InterruptOrigin } from './core/irq.js';

// Protocol servers.
export { QtestServer, QmpSession, type QmpTarget } from './api/servers.js';
export { openChannel, parseChardev, type Channel, type ChardevSpec, type ChannelEncoding } from './qtest/transport.js';

// Memory.
export { AddressSpace, MemTx, type AddressSpaceOptions, type FlatRange } from './memory/address-space.js';
export { iova, type Iova, type AccessSize } from './memory/address.js';
export {
  MmioRegion,
  RamRegion,
  AliasRegion,
  ContainerRegion,
  type Region,
  type LeafRegion,
  type MemoryTracer,
  type Subregion,
  type Topology,
  type ReentrancyGuard,
  type MmioOps,
  type AccessRules,
} from './memory/region.js';
export type { ChunkedRam, RamWriteWatcher, U32Pair } from './memory/ram.js';
export { createRam, type RamBackendName } from './memory/ram-backend.js';
export { VirtualClock, Timer, type ClockMode, type ClockState, type TimerState } from './core/clock.js';

// The DMA / IOMMU contract (for devices, and for third-party IOMMUs).
export type { DmaIommu, DmaTranslator, DmaRequester, DmaWindow, IotlbEntry } from './memory/iommu.js';
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
export { DmaSpace, type DmaMemory } from './memory/dma-space.js';
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
