/**
 * Guest programs and the guest interface.  Everything here is written
 * against `GuestPlatform` only and imports nothing outside src/guest
 * (enforced by isolation.test.ts and src/guest/tsconfig.json).
 *
 *  - platform.ts: the guest interface; qtest-client.ts: it, over qtest;
 *  - firmware/: fw_cfg, table loader, ACPI, DMAR parser, PCI enumeration;
 *  - linux-vtd/: the Linux-like VT-d driver; linux-guest.ts: its checks;
 *  - kvm-unit-tests/: the kvm-unit-tests x86/intel-iommu equivalent;
 *  - edu.ts: the edu driver both guests use.
 */
export type { AccessWidth, GuestInterrupt, GuestPlatform, InterruptCapabilities, InterruptHandler, TimeMode } from './platform.js';
export { QtestClient, QtestError } from './qtest-client.js';
export { GuestAllocator, PAGE_SIZE } from './alloc.js';
export { runFirmware, resolveScope, GuestRamLayout, type FirmwareInfo } from './firmware/boot.js';
export { parseDmar, formatDmar, type Dmar, type DmarStructure, type DeviceScope } from './firmware/dmar.js';
export { enumeratePci, type PciFunction, type PciTopology } from './firmware/pci-enum.js';
export { LinuxVtd, RMRR_REFUSAL, type DriverOptions, type AttachResult } from './linux-vtd/driver.js';
export { Domain, type DomainType, type DeviceHandle } from './linux-vtd/domain.js';
export type { InvalidationSite } from './linux-vtd/unit.js';
export { formatFault, faultReasonName, type FaultRecord } from './linux-vtd/faults.js';
export { runLinuxGuest, domainSwitchProbe, type Check, type LinuxGuestResult, type SwitchProbe } from './linux-guest.js';
export { runKvmUnitTests, KvmUnitTestsIntelIommu, type KutReport } from './kvm-unit-tests/intel-iommu.js';
export { EduDriver } from './edu.js';
