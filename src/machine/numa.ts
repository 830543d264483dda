/**
 * `-object memory-backend-*` and `-numa` as QEMU 11.1's q35 takes them, for
 * what a firmware-less machine shows of them: the FW_CFG_NUMA item (le64
 * node count, then the node of each APIC ID below the APIC ID limit, then
 * each node's memory size).  Errors are QEMU's, with its option context.
 *
 * - `-object memory-backend-ram|memory-backend-memfd,id=ID,size=SIZE`:
 *   the only objects vtemu has (guest RAM stays one block; a backend only
 *   gives its node a size).
 * - `-numa node[,nodeid=N][,memdev=ID][,cpus=A[-B]]...`: a node takes the
 *   next free ID unless given one; `mem=` is refused as on QEMU's current
 *   machine types.
 * - `-numa cpu,node-id=N[,socket-id=S][,die-id=D][,module-id=M][,core-id=C][,thread-id=T]`:
 *   every possible CPU matching the given IDs goes to node N.
 * - `-numa dist,...`: accepted (it only feeds ACPI SLIT, which vtemu's
 *   tables leave out).
 * After all options: IDs must be contiguous, the nodes' memory must add up
 * to the RAM size; CPUs no option placed go to socket % nodes when no CPU
 * was placed explicitly, otherwise to node 0 (QEMU's rules).
 */
import { parseSize } from '../memory/ram-layout.js';
import { parseBool, splitOptions } from './props.js';
import { ConfigError } from './registry.js';
import { apicIdOf, type SmpTopology } from './smp.js';
import type { NumaConfig } from '../hw/fw-cfg/numa-item.js';

export type { NumaConfig };

/** QEMU MAX_NODES. */
const MAX_NODES = 128;

/** The user-creatable object types of QEMU 11.1 (`-object help`). */
const QEMU_OBJECT_TYPES = new Set([
  'acpi-generic-initiator', 'acpi-generic-port', 'authz-list', 'authz-list-file', 'authz-simple', 'can-bus',
  'can-host-socketcan', 'colo-compare', 'cryptodev-backend', 'cryptodev-backend-builtin',
  'cryptodev-vhost-user', 'dbus-vmstate', 'filter-buffer', 'filter-dump', 'filter-mirror', 'filter-redirector',
  'filter-replay', 'filter-rewriter', 'input-barrier', 'input-linux', 'iommufd', 'iothread', 'main-loop',
  'memory-backend-file', 'memory-backend-memfd', 'memory-backend-ram', 'memory-backend-shm', 'monitor-hmp',
  'monitor-qmp', 'pr-manager-helper', 'qtest', 'rng-builtin', 'rng-egd', 'rng-random', 'secret',
  'secret_keyring', 'sev-guest', 'sev-snp-guest', 'tdx-guest', 'thread-context', 'throttle-group',
  'tls-cipher-suites', 'tls-creds-anon', 'tls-creds-psk', 'tls-creds-x509', 'x-remote-object',
]);

/** QOM types of `-object` vtemu models. */
const MEMORY_BACKENDS = new Set(['memory-backend-ram', 'memory-backend-memfd']);
/** Memory-backend properties besides id and size (accepted; they change nothing here). */
const BACKEND_BOOLS = new Set(['share', 'merge', 'dump', 'prealloc', 'reserve', 'x-use-canonical-path-for-ramblock-id', 'hugetlb', 'seal']);
const BACKEND_OTHER = new Set(['policy', 'host-nodes', 'prealloc-threads', 'prealloc-context', 'hugetlbsize']);


/** One possible CPU: its topology IDs and where it ended up. */
interface CpuSlot {
  readonly index: number;
  readonly ids: Readonly<Record<string, number>>;
  node: number | null;
}

/** `-object` arguments: the memory backends by id, with their sizes. Throws ConfigError. */
export function parseObjects(args: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const arg of args) {
    const where = `-object ${arg}`;
    const split = splitOptions(arg);
    let type = split.implied;
    let id: string | undefined;
    let size: number | undefined;
    for (const { key, value } of split.pairs) {
      if (key === 'qom-type') type = value;
      else if (key === 'id') id = value;
      else if (key === 'size') {
        const s = parseSize(value);
        if (typeof s !== 'bigint') throw new ConfigError(`Parameter 'size' expects a non-negative number below 2^64`, where);
        size = Number(s);
      } else if (BACKEND_BOOLS.has(key)) {
        if (parseBool(value) === null) throw new ConfigError(`Parameter '${key}' expects 'on' or 'off'`, where);
      } else if (!BACKEND_OTHER.has(key) || !MEMORY_BACKENDS.has(type ?? '')) {
        if (MEMORY_BACKENDS.has(type ?? '')) throw new ConfigError(`Invalid parameter '${key}'`, where);
      }
    }
    if (type === null || type === undefined) throw new ConfigError(`Parameter 'qom-type' is missing`, where);
    if (!QEMU_OBJECT_TYPES.has(type)) throw new ConfigError(`Parameter 'qom-type' does not accept value '${type}'`, where);
    if (!MEMORY_BACKENDS.has(type)) throw new ConfigError(`object type '${type}' is not supported by vtemu (it has memory-backend-ram and memory-backend-memfd)`, where);
    if (id === undefined) throw new ConfigError(`Parameter 'id' is missing`, where);
    if (size === undefined) throw new ConfigError(`Parameter 'size' is missing`, where);
    if (out.has(id)) throw new ConfigError(`Duplicate ID '${id}' for object`, where);
    out.set(id, size);
  }
  return out;
}

/** A `cpus=` list element: `A` or `A-B`. */
function cpuRange(value: string, where: string): [number, number] {
  const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(value);
  if (!m) throw new ConfigError(`Parameter 'cpus' expects an int64 value or range`, where);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (last < first) throw new ConfigError(`Parameter 'cpus' expects an int64 value or range`, where);
  return [first, last];
}

function integer(key: string, value: string, where: string): number {
  if (!/^[0-9]+$/.test(value)) throw new ConfigError(`Parameter '${key}' expects uint${key === 'nodeid' ? 16 : 32}`, where);
  return Number(value);
}

/**
 * Resolves `-numa` options against the memory backends, the CPU topology
 * and the RAM size; null without any `-numa`.  Throws ConfigError.
 */
export function resolveNuma(numaArgs: readonly string[], objects: ReadonlyMap<string, number>, topo: SmpTopology, ramSize: number): NumaConfig | null {
  if (numaArgs.length === 0) return null;
  const sizes = new Map<number, number>();
  const slots: CpuSlot[] = [];
  for (let i = 0; i < topo.maxCpus; i++) {
    const t = i;
    const thread = t % topo.threads;
    const core = Math.floor(t / topo.threads) % topo.cores;
    const module = Math.floor(t / (topo.threads * topo.cores)) % topo.modules;
    const die = Math.floor(t / (topo.threads * topo.cores * topo.modules)) % topo.dies;
    const socket = Math.floor(t / (topo.threads * topo.cores * topo.modules * topo.dies));
    slots.push({ index: i, ids: { 'socket-id': socket, 'die-id': die, 'module-id': module, 'core-id': core, 'thread-id': thread }, node: null });
  }
  const assign = (slot: CpuSlot, node: number, where: string): void => {
    if (slot.node !== null && slot.node !== node) throw new ConfigError(`CPU is already assigned to node-id: ${slot.node}`, where);
    slot.node = node;
  };
  for (const arg of numaArgs) {
    const where = `-numa ${arg}`;
    const split = splitOptions(arg);
    let type = split.implied;
    const pairs = split.pairs.filter((p) => {
      if (p.key !== 'type') return true;
      type = p.value;
      return false;
    });
    if (type === 'node') {
      let nodeid: number | null = null;
      let memdev: string | null = null;
      const cpus: [number, number][] = [];
      for (const { key, value } of pairs) {
        if (key === 'nodeid') nodeid = integer(key, value, where);
        else if (key === 'memdev') memdev = value;
        else if (key === 'cpus') cpus.push(cpuRange(value, where));
        else if (key === 'mem') throw new ConfigError('Parameter -numa node,mem is not supported by this machine type\nUse -numa node,memdev instead', where);
        else if (key !== 'initiator') throw new ConfigError(`Invalid parameter '${key}'`, where);
      }
      nodeid ??= sizes.size;
      if (nodeid >= MAX_NODES) throw new ConfigError(`Max number of NUMA nodes reached: ${nodeid}`, where);
      if (sizes.has(nodeid)) throw new ConfigError(`Duplicate NUMA nodeid: ${nodeid}`, where);
      for (const [first, last] of cpus) {
        if (last >= topo.maxCpus) throw new ConfigError(`CPU index (${last}) should be smaller than maxcpus (${topo.maxCpus})`, where);
        for (let i = first; i <= last; i++) assign(slots[i]!, nodeid, where);
      }
      let size = 0;
      if (memdev !== null) {
        const s = objects.get(memdev);
        // QEMU's path lookup reports a missing object this way.
        if (s === undefined) throw new ConfigError(`memdev=${memdev} is ambiguous`, where);
        size = s;
      }
      sizes.set(nodeid, size);
    } else if (type === 'cpu') {
      let node: number | null = null;
      const want: Record<string, number> = {};
      for (const { key, value } of pairs) {
        if (key === 'node-id') node = integer(key, value, where);
        else if (key in slots[0]!.ids) want[key] = integer(key, value, where);
        else throw new ConfigError(`Invalid parameter '${key}'`, where);
      }
      if (node === null) throw new ConfigError('Missing mandatory node-id property', where);
      if (!sizes.has(node)) {
        throw new ConfigError(`Invalid node-id=${node}, NUMA node must be defined with -numa node,nodeid=ID before it's used with -numa cpu,node-id=ID`, where);
      }
      const matching = slots.filter((s) => Object.entries(want).every(([k, v]) => s.ids[k] === v));
      if (matching.length === 0) throw new ConfigError('no match found', where);
      for (const s of matching) assign(s, node, where);
    } else if (type === 'dist') {
      const v: Record<string, number> = {};
      for (const { key, value } of pairs) {
        if (key !== 'src' && key !== 'dst' && key !== 'val') throw new ConfigError(`Invalid parameter '${key}'`, where);
        v[key] = integer(key, value, where);
      }
      if (!sizes.has(v['src'] ?? -1) || !sizes.has(v['dst'] ?? -1)) {
        throw new ConfigError("Source/Destination NUMA node is missing. Please use '-numa node' option to declare it first.", where);
      }
    } else {
      throw new ConfigError(`Parameter 'type' does not accept value '${type ?? ''}'`, where);
    }
  }
  if (sizes.size === 0) return null; // only `dist` options: no node
  const count = Math.max(...sizes.keys()) + 1;
  // QEMU reports the largest missing ID first.
  for (let i = count - 1; i >= 0; i--) if (!sizes.has(i)) throw new ConfigError(`numa: Node ID missing: ${i}`);
  const nodeSizes = [...Array(count).keys()].map((i) => sizes.get(i)!);
  const total = nodeSizes.reduce((a, b) => a + b, 0);
  if (total !== ramSize) throw new ConfigError(`total memory for NUMA nodes (0x${total.toString(16)}) should equal RAM size (0x${ramSize.toString(16)})`);
  const explicit = slots.some((s) => s.node !== null);
  const apicNodes = new Array<number>(topo.apicIdLimit).fill(0);
  for (const s of slots) apicNodes[apicIdOf(topo, s.index)] = s.node ?? (explicit ? 0 : s.ids['socket-id']! % count);
  return { nodeSizes, apicNodes };
}
