/**
 * `-smp` as QEMU 11.1's q35 resolves it (hw/core/machine-smp.c
 * machine_parse_smp_config, prefer-cores rule of machine types >= 6.2) and
 * the x86 APIC IDs of the CPUs (include/hw/i386/topology.h): the numbers
 * fw_cfg hands the firmware (FW_CFG_NB_CPUS = cpus, FW_CFG_MAX_CPUS = the
 * APIC ID limit).  vtemu runs no CPU, so nothing else uses the topology.
 *
 * The x86 hierarchy is sockets > dies > modules > cores > threads; drawers,
 * books and clusters above 1 are refused.  Errors are QEMU's, in its order.
 */
import { checkSmpOption } from './machine-options.js';
import { splitOptions } from './props.js';
import { ConfigError } from './registry.js';

/** A resolved topology. */
export interface SmpTopology {
  readonly cpus: number;
  readonly maxCpus: number;
  readonly sockets: number;
  readonly dies: number;
  readonly modules: number;
  readonly cores: number;
  readonly threads: number;
  /** One more than the highest APIC ID of a possible CPU (FW_CFG_MAX_CPUS). */
  readonly apicIdLimit: number;
}

/** The default: one CPU. */
export const SINGLE_CPU: SmpTopology = { cpus: 1, maxCpus: 1, sockets: 1, dies: 1, modules: 1, cores: 1, threads: 1, apicIdLimit: 1 };

/** The machine type's name and CPU limit (QEMU MachineClass name/max_cpus). */
export interface SmpMachine {
  readonly name: string;
  readonly maxCpus: number;
}

/** APIC IDs at or above this need x2APIC, which QEMU's default CPU lacks. */
const XAPIC_ID_LIMIT = 255;
/** Levels x86 does not have. */
const UNSUPPORTED = ['clusters', 'books', 'drawers'] as const;

/** Bits needed for `count` IDs (apicid_bitwidth_for_count). */
function bitWidth(count: number): number {
  return count <= 1 ? 0 : 32 - Math.clz32(count - 1);
}

/** The APIC ID of CPU index `i` (x86_apicid_from_topo_ids over x86_topo_ids_from_idx). */
export function apicIdOf(t: Pick<SmpTopology, 'dies' | 'modules' | 'cores' | 'threads'>, i: number): number {
  const smt = i % t.threads;
  const core = Math.floor(i / t.threads) % t.cores;
  const module = Math.floor(i / (t.threads * t.cores)) % t.modules;
  const die = Math.floor(i / (t.threads * t.cores * t.modules)) % t.dies;
  const pkg = Math.floor(i / (t.threads * t.cores * t.modules * t.dies));
  const coreOff = bitWidth(t.threads);
  const moduleOff = coreOff + bitWidth(t.cores);
  const dieOff = moduleOff + bitWidth(t.modules);
  const pkgOff = dieOff + bitWidth(t.dies);
  return pkg * 2 ** pkgOff + die * 2 ** dieOff + module * 2 ** moduleOff + core * 2 ** coreOff + smt;
}

/**
 * Resolves a raw `-smp` argument (undefined: one CPU).  Throws ConfigError;
 * `warn` gets QEMU's hyperthreading warning for its default (AMD) CPU model.
 */
export function resolveSmp(arg: string | undefined, machine: SmpMachine, warn?: (line: string) => void): SmpTopology {
  if (arg === undefined) return SINGLE_CPU;
  checkSmpOption(arg);
  const split = splitOptions(arg);
  const given: Record<string, number> = {};
  if (split.implied !== null) given['cpus'] = Number(split.implied);
  for (const p of split.pairs) given[p.key] = Number(p.value);
  if (given['maxcpus'] === 0) throw new ConfigError('Invalid CPU topology: CPU topology parameters must be greater than zero');
  for (const level of UNSUPPORTED) {
    if ((given[level] ?? 0) > 1) throw new ConfigError(`${level} > 1 not supported by this machine's CPU topology`);
  }
  let cpus = given['cpus'] ?? 0;
  let maxcpus = given['maxcpus'] ?? 0;
  let sockets = given['sockets'] ?? 0;
  let cores = given['cores'] ?? 0;
  let threads = given['threads'] ?? 0;
  const dies = given['dies'] ?? 1;
  const modules = given['modules'] ?? 1;
  if (cpus === 0 && maxcpus === 0) {
    sockets ||= 1;
    cores ||= 1;
    threads ||= 1;
  } else {
    maxcpus ||= cpus;
    if (cores === 0) {
      sockets ||= 1;
      threads ||= 1;
      cores = Math.floor(maxcpus / (sockets * dies * modules * threads));
    } else if (sockets === 0) {
      threads ||= 1;
      sockets = Math.floor(maxcpus / (dies * modules * cores * threads));
    }
    if (threads === 0) threads = Math.floor(maxcpus / (sockets * dies * modules * cores));
  }
  const total = sockets * dies * modules * cores * threads;
  maxcpus ||= total;
  cpus ||= maxcpus;
  const hierarchy = `sockets (${sockets}) * dies (${dies}) * modules (${modules}) * cores (${cores}) * threads (${threads})`;
  if (total !== maxcpus) {
    throw new ConfigError(`Invalid CPU topology: product of the hierarchy must match maxcpus: ${hierarchy} != maxcpus (${maxcpus})`);
  }
  if (maxcpus < cpus) {
    throw new ConfigError(`Invalid CPU topology: maxcpus must be equal to or greater than smp: ${hierarchy} == maxcpus (${maxcpus}) < smp_cpus (${cpus})`);
  }
  if (maxcpus > machine.maxCpus) {
    throw new ConfigError(`Invalid SMP CPUs ${maxcpus}. The max CPUs supported by machine '${machine.name}' is ${machine.maxCpus}`);
  }
  const topo = { sockets, dies, modules, cores, threads };
  if (threads > 1) {
    warn?.(`warning: This family of AMD CPU doesn't support hyperthreading(${threads}). Please configure -smp options properly or try enabling topoext feature.`);
  }
  for (let i = 0; i < cpus; i++) {
    const id = apicIdOf(topo, i);
    if (id >= XAPIC_ID_LIMIT) throw new ConfigError(`APIC ID ${id} requires x2APIC feature in CPU\nTry x2apic=on in -cpu.`);
  }
  return { cpus, maxCpus: maxcpus, ...topo, apicIdLimit: apicIdOf(topo, maxcpus - 1) + 1 };
}
