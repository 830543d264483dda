/**
 * The FW_CFG_NUMA item QEMU's x86 machines give the firmware: le64 node
 * count, then the node of each APIC ID below the APIC ID limit, then each
 * node's memory size (the table SeaBIOS reads).  What the nodes are is the
 * machine's business (src/machine/numa.ts).
 */

/** What the NUMA options resolve to. */
export interface NumaConfig {
  /** Memory of each node, by node ID. */
  readonly nodeSizes: readonly number[];
  /** The node of each APIC ID below the topology's APIC ID limit (0 for IDs no CPU has). */
  readonly apicNodes: readonly number[];
}

/** The FW_CFG_NUMA item: le64 node count, the node of each APIC ID, each node's size. */
export function numaFwCfgItem(numa: NumaConfig | null, apicIdLimit: number): Uint8Array {
  const nodes = numa?.nodeSizes ?? [];
  const out = new Uint8Array(8 * (1 + apicIdLimit + nodes.length));
  const v = new DataView(out.buffer);
  v.setBigUint64(0, BigInt(nodes.length), true);
  if (numa) numa.apicNodes.forEach((n, i) => v.setBigUint64(8 * (1 + i), BigInt(n), true));
  nodes.forEach((size, i) => v.setBigUint64(8 * (1 + apicIdLimit + i), BigInt(size), true));
  return out;
}
