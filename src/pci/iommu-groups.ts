/**
 * IOMMU groups the way Linux forms them (drivers/iommu/iommu.c
 * pci_device_group, drivers/pci/pci.c pci_acs_enabled / pci_acs_path_enabled,
 * drivers/pci/search.c pci_for_each_dma_alias), as a pure function of the PCI
 * topology: which functions an IOMMU cannot tell apart or keep from talking
 * to each other, and so must share one translation domain.
 *
 * Linux probes the functions in the order it added them (every function of
 * a bus in devfn order, then the buses below, recursively) and puts each one
 * in the first existing group one of these rules names, else in a new group
 * (numbered from 0 in allocation order, as /sys/kernel/iommu_groups on a
 * fresh boot):
 *
 *  1. DMA aliases.  Walking up from the function, the first bridge that
 *     takes over its requester ID: a PCIe-to-PCI bridge (type 7) or
 *     PCI-to-PCIe bridge (type 8), or any conventional (non-PCIe) bridge.
 *     Everything behind such a bridge joins the bridge's group.  Root ports
 *     and switch ports keep requester IDs apart.  (Without Linux's DMA-alias
 *     quirks rule 2 alone reaches the same groups, since none of these
 *     bridges ever has ACS enabled; the rule is kept so the checks run in
 *     Linux's order.)
 *  2. ACS on the path.  A function below a bridge joins that bridge's group
 *     unless ACS is "enabled" on the bridge and on every bridge above it up
 *     to the root bus, for Source Validation, Request Redirect, Completion
 *     Redirect and Upstream Forwarding (REQ_ACS_FLAGS).
 *  3. Multi-function devices.  A function with the multi-function header bit
 *     and without ACS enabled joins the group of the first already-probed
 *     function in the same slot that also lacks ACS.
 *
 * "ACS enabled" on one function (pci_acs_enabled, without device quirks):
 *  - conventional PCI functions, PCIe-to-PCI / PCI-to-PCIe bridges and root
 *    complex event collectors: never;
 *  - root ports and switch downstream ports: only through their ACS
 *    capability;
 *  - endpoints, legacy endpoints, integrated endpoints and switch upstream
 *    ports: always when single-function, else through their ACS capability;
 *  - anything else: always.
 * Through the ACS capability, every required control must be set in the
 * control register, except controls the capability register does not offer
 * (those count as hard-wired on); a function without the capability has
 * none of them enabled.
 *
 * Left out: Linux's per-device ACS quirks and DMA-alias quirks (no emulated
 * device needs them) and bridges marked as translation roots.
 */
import { PciHeaderType, PciReg } from './config.js';
import { PciBridge } from './bridge.js';
import { pciFunc, pciSlot, type PciBus } from './bus.js';
import type { PciDevice } from './device.js';
import { PcieType, pcieType } from './pcie-cap.js';
import { AcsBit, LINUX_REQUIRED_ACS, readAcs } from './pcie-ext-caps.js';

/** PCIe device/port types beyond pcie-cap.ts PcieType (PCIe Base 6.0 §7.5.3.2). */
export const PcieTypeExtra = {
  LegacyEndpoint: 0x1,
  PciToPcieBridge: 0x8,
  RcIntegratedEndpoint: 0x9,
  RcEventCollector: 0xa,
} as const;

/** One PCI function as grouping sees it. */
export interface TopologyFunction {
  readonly devfn: number;
  /** PCIe device/port type (capability bits 7:4), or null for a conventional PCI function. */
  readonly pcieType: number | null;
  /** Header type bit 7. */
  readonly multifunction: boolean;
  /** The ACS capability and control registers, or null without an ACS capability. */
  readonly acs: { readonly cap: number; readonly ctrl: number } | null;
  /** The secondary bus of a bridge. */
  readonly secondary?: TopologyBus;
  /** A label for reports, e.g. `00:1f.2`. */
  readonly name?: string;
}

/** One bus and the functions on it. */
export interface TopologyBus {
  readonly number: number;
  readonly functions: readonly TopologyFunction[];
}

/** One IOMMU group. */
export interface IommuGroup {
  /** Allocation order, from 0. */
  readonly id: number;
  /** Members in probe order. */
  readonly members: readonly TopologyFunction[];
}

/** The groups of a topology. */
export interface IommuGroups {
  readonly groups: readonly IommuGroup[];
  readonly groupOf: ReadonlyMap<TopologyFunction, IommuGroup>;
}

/** A function in probe order with its place in the tree. */
interface Node {
  readonly fn: TopologyFunction;
  readonly bus: TopologyBus;
  /** The bridge whose secondary bus holds this function; null on the root bus. */
  readonly parent: Node | null;
  group: { id: number; members: TopologyFunction[] } | null;
}

/** Linux's probe order: a bus's functions by devfn, then each bridge's bus below, recursively. */
function probeOrder(bus: TopologyBus, parent: Node | null, out: Node[]): void {
  const fns = [...bus.functions].sort((a, b) => a.devfn - b.devfn);
  const nodes = fns.map((fn): Node => ({ fn, bus, parent, group: null }));
  out.push(...nodes);
  for (const n of nodes) if (n.fn.secondary) probeOrder(n.fn.secondary, n, out);
}

/** Every flag in `flags` is on in the ACS control register, or hard-wired (not offered). */
function acsFlagsEnabled(fn: TopologyFunction, flags: number): boolean {
  if (!fn.acs) return false;
  const needed = flags & (fn.acs.cap | AcsBit.EgressControl);
  return (fn.acs.ctrl & needed) === needed;
}

/** Linux pci_acs_enabled without quirks (see the module comment). */
export function acsEnabled(fn: TopologyFunction, flags: number = LINUX_REQUIRED_ACS): boolean {
  switch (fn.pcieType) {
    case null:
    case PcieType.PcieToPciBridge:
    case PcieTypeExtra.PciToPcieBridge:
    case PcieTypeExtra.RcEventCollector:
      return false;
    case PcieType.RootPort:
    case PcieType.Downstream:
      return acsFlagsEnabled(fn, flags);
    case PcieType.Endpoint:
    case PcieType.Upstream:
    case PcieTypeExtra.LegacyEndpoint:
    case PcieTypeExtra.RcIntegratedEndpoint:
      return fn.multifunction ? acsFlagsEnabled(fn, flags) : true;
    default:
      return true;
  }
}

/** ACS enabled on `bridge` and every bridge above it (pci_acs_path_enabled to the root). */
function acsPathEnabled(bridge: Node): boolean {
  for (let n: Node | null = bridge; n; n = n.parent) if (!acsEnabled(n.fn)) return false;
  return true;
}

/** A bridge that tags the requests from below with its own requester ID (pci_for_each_dma_alias). */
function aliasesRequesters(bridge: TopologyFunction): boolean {
  const t = bridge.pcieType;
  return t === null || t === PcieType.PcieToPciBridge || t === PcieTypeExtra.PciToPcieBridge;
}

/** The existing group rule 1, 2 or 3 puts `node` in, or null; `probed` nodes of `order` have groups. */
function existingGroup(node: Node, order: readonly Node[], probed: number): Node['group'] {
  for (let b = node.parent; b; b = b.parent) if (aliasesRequesters(b.fn)) return b.group;
  if (node.parent && !acsPathEnabled(node.parent)) return node.parent.group;
  if (!node.fn.multifunction || acsEnabled(node.fn)) return null;
  const slot = pciSlot(node.fn.devfn);
  for (let i = 0; i < probed; i++) {
    const other = order[i]!;
    if (other.bus === node.bus && pciSlot(other.fn.devfn) === slot && !acsEnabled(other.fn)) return other.group;
  }
  return null;
}

/** The IOMMU groups of the topology below `root` (see the module comment for the rules). */
export function computeIommuGroups(root: TopologyBus): IommuGroups {
  const order: Node[] = [];
  probeOrder(root, null, order);
  const groups: { id: number; members: TopologyFunction[] }[] = [];
  const groupOf = new Map<TopologyFunction, IommuGroup>();
  for (let i = 0; i < order.length; i++) {
    const node = order[i]!;
    let group = existingGroup(node, order, i);
    if (!group) {
      group = { id: groups.length, members: [] };
      groups.push(group);
    }
    group.members.push(node.fn);
    node.group = group;
    groupOf.set(node.fn, group);
  }
  return { groups, groupOf };
}

// ---- from a live bus ---------------------------------------------------------

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/** `bb:dd.f` */
export function functionLabel(busNumber: number, devfn: number): string {
  return `${hex2(busNumber)}:${hex2(pciSlot(devfn))}.${pciFunc(devfn)}`;
}

function describeFunction(bus: PciBus, devfn: number, device: PciDevice): TopologyFunction {
  const type = pcieType(device);
  const secondary = device instanceof PciBridge ? describePciTopology(device.secondaryBus) : undefined;
  return {
    devfn,
    pcieType: type < 0 ? null : type,
    multifunction: (device.config.getByte(PciReg.HeaderType) & PciHeaderType.MultiFunction) !== 0,
    acs: readAcs(device),
    ...(secondary ? { secondary } : {}),
    name: functionLabel(bus.busNumber(), devfn),
  };
}

/**
 * The topology below `bus` as its configuration space shows it now: PCIe
 * types, multi-function bits, ACS registers (as the guest programmed them)
 * and bus numbers (the bridges' secondary bus registers; 0 until set).
 */
export function describePciTopology(bus: PciBus): TopologyBus {
  return {
    number: bus.busNumber(),
    functions: bus.devices().map((e) => describeFunction(bus, e.devfn, e.device)),
  };
}
