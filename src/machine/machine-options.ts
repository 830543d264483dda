/**
 * `-machine q35[,k=v,...]` parsing: the machine type (q35 and its versioned
 * alias) and the machine properties that matter here, with QEMU 7.2's
 * wording for errors.  Other properties QEMU's q35 has are accepted and
 * ignored so that command lines written for QEMU work unchanged.
 */
import { parseBool, splitOptions } from './props.js';
import { parseSize } from '../memory/ram-layout.js';
import { ConfigError } from './registry.js';

/** `kernel-irqchip` values. */
export type KernelIrqchipMode = 'on' | 'off' | 'split';

/** Accelerators we accept (qtest: the clock moves only on clock_step). */
export type AccelName = 'qtest' | 'tcg' | 'kvm';

/** The machine properties after parsing. */
export interface MachineProps {
  readonly type: 'q35';
  readonly kernelIrqchip?: KernelIrqchipMode;
  readonly accel?: AccelName;
  /** default-bus-bypass-iommu=on: devices on the root bus bypass the IOMMU. */
  readonly defaultBusBypassIommu: boolean;
}

/** The versioned machine QEMU 11.1's `q35` is an alias of. */
const Q35_ALIAS_OF = 'pc-q35-11.1';

/** The QOM type name QEMU 11.1 reports in machine property errors for machine type `type`. */
function qomTypeName(type: string | undefined): string {
  return `${type === undefined || type === 'q35' ? Q35_ALIAS_OF : type}-machine`;
}

/** Names `-machine` accepts for our one machine type (7.2's name kept for older command lines). */
const Q35_NAMES = new Set(['q35', Q35_ALIAS_OF, 'pc-q35-7.2']);

/**
 * Machine types QEMU 11.1 has that vtemu does not model (`-machine help`):
 * refused with one line of vtemu's own instead of QEMU's "unsupported".
 */
const UNMODELLED_MACHINE = /^(?:pc|pc-i440fx-\d+\.\d+|pc-q35-\d+\.\d+|isapc|microvm|nitro|none|x-remote)$/;

/** q35 properties that are booleans in QEMU 11.1 (a bad value: "expects 'on' or 'off'"); accepted and ignored. */
const BOOL_PROPS = new Set(['dump-guest-core', 'graphics', 'hpet', 'i8042', 'mem-merge', 'nvdimm', 'sata', 'smbus', 'suppress-vmdesc', 'usb', 'fd-bootindex']);

/** q35 properties that are OnOffAuto in QEMU 11.1 (a bad value: "does not accept value"); accepted and ignored. */
const ON_OFF_AUTO_PROPS = new Set(['acpi', 'pit', 'smm', 'vmport']);

/** q35 properties that are sizes in QEMU 11.1; accepted and ignored. */
const SIZE_PROPS = new Set(['max-ram-below-4g']);

/** OnOffAuto words (qapi OnOffAuto). */
const ON_OFF_AUTO = new Set(['on', 'off', 'auto']);

/** Other q35 properties QEMU 11.1 has (string-valued here): accepted and ignored. */
const IGNORED = new Set([
  'append',
  'boot',
  'dtb',
  'firmware',
  'hmat',
  'initrd',
  'kernel',
  'memory-backend',
  'memory-encryption',
  'x-oem-id',
  'x-oem-table-id',
  'sgx-epc',
  'bus-lock-ratelimit',
  'smp-cache',
  'confidential-guest-support',
  'shim',
]);

/** Parsing state that accumulates over several `-machine` options. */
export interface MachineArgs {
  type?: string;
  /** kernel-irqchip as written (QEMU applies it to the KVM accelerator only). */
  kernelIrqchip?: string;
  accel?: AccelName;
  defaultBusBypassIommu?: boolean;
}

/** Checks a value of an ignored q35 property as QEMU 11.1 types it; throws ConfigError. */
function checkIgnoredProp(key: string, value: string, type: string | undefined): void {
  if (BOOL_PROPS.has(key)) {
    if (parseBool(value) === null) throw new ConfigError(`Parameter '${key}' expects 'on' or 'off'`);
  } else if (ON_OFF_AUTO_PROPS.has(key)) {
    if (!ON_OFF_AUTO.has(value)) throw new ConfigError(`Parameter '${key}' does not accept value '${value}'`);
  } else if (SIZE_PROPS.has(key)) {
    if (typeof parseSize(value) !== 'bigint') throw new ConfigError(`Parameter '${key}' expects size`);
  } else if (!IGNORED.has(key)) {
    throw new ConfigError(`Property '${qomTypeName(type)}.${key}' not found`);
  }
}

/** Applies one `-machine` argument to `into`; throws ConfigError. */
export function applyMachineArg(arg: string, into: MachineArgs): void {
  const split = splitOptions(arg);
  if (split.implied !== null) into.type = split.implied;
  for (const { key, value } of split.pairs) {
    switch (key) {
      case 'type':
        into.type = value;
        break;
      case 'kernel-irqchip':
      case 'kernel_irqchip':
        into.kernelIrqchip = value;
        break;
      case 'accel':
        into.accel = parseAccel(value);
        break;
      case 'default-bus-bypass-iommu': {
        const b = parseBool(value);
        if (b === null) throw new ConfigError(`Parameter 'default-bus-bypass-iommu' expects 'on' or 'off'`);
        into.defaultBusBypassIommu = b;
        break;
      }
      default:
        checkIgnoredProp(key, value, into.type);
    }
  }
}

/** True when `-machine` arguments set `accel=` (QEMU refuses that together with `-accel`). */
export function machineArgsSetAccel(args: readonly string[]): boolean {
  return args.some((a) => splitOptions(a).pairs.some((p) => p.key === 'accel'));
}

/** Parses `accel=` of `-machine`: a `:`-separated list, the first known name wins. */
export function parseAccel(name: string): AccelName {
  for (const n of name.split(':')) if (isAccelName(n)) return n;
  throw new ConfigError(`invalid accelerator ${name}`);
}

function isAccelName(n: string): n is AccelName {
  return n === 'qtest' || n === 'tcg' || n === 'kvm';
}

/** TCG's `thread=` values. */
const TCG_THREAD = new Set(['single', 'multi']);
/** TCG accelerator properties other than `thread` (accepted and ignored). */
const TCG_PROPS = new Set(['tb-size', 'one-insn-per-tb', 'split-wx']);

/**
 * One `-accel NAME[,prop=value...]`: the accelerator, or null when the name
 * is unknown (QEMU then tries the next `-accel`).  Throws ConfigError for a
 * bad property of a known accelerator (fatal in QEMU 11.1).  KVM's
 * properties are not checked (vtemu runs no KVM).
 */
export function parseAccelOption(arg: string): AccelName | null {
  const split = splitOptions(arg);
  const name = split.implied ?? '';
  if (!isAccelName(name)) return null;
  for (const { key, value } of split.pairs) {
    if (name === 'tcg' && key === 'thread') {
      if (!TCG_THREAD.has(value)) throw new ConfigError(`Invalid 'thread' setting ${value}`);
    } else if (name === 'qtest' || (name === 'tcg' && !TCG_PROPS.has(key))) {
      throw new ConfigError(`Property '${name}-accel.${key}' not found`);
    }
  }
  return name;
}

/** Final machine properties; throws for an unsupported machine type. */
export function resolveMachineArgs(a: MachineArgs): MachineProps {
  const type = a.type ?? 'q35';
  if (!Q35_NAMES.has(type)) {
    if (UNMODELLED_MACHINE.test(type)) throw new ConfigError(`machine type "${type}" is not modelled (vtemu models q35 only)`);
    throw new ConfigError(`unsupported machine type: "${type}"\nUse -machine help to list supported machines`);
  }
  return {
    type: 'q35',
    defaultBusBypassIommu: a.defaultBusBypassIommu ?? false,
    ...(a.kernelIrqchip !== undefined ? { kernelIrqchip: kernelIrqchipMode(a.kernelIrqchip, a.accel) } : {}),
    ...(a.accel !== undefined ? { accel: a.accel } : {}),
  };
}

/**
 * kernel-irqchip belongs to the KVM accelerator in QEMU 11.1: under kvm a bad
 * value is an error; under qtest and tcg QEMU never parses it, so a bad
 * value is ignored ('off').
 */
function kernelIrqchipMode(value: string, accel: AccelName | undefined): KernelIrqchipMode {
  const b = parseBool(value);
  const mode: KernelIrqchipMode | null = value === 'split' ? 'split' : b === null ? null : b ? 'on' : 'off';
  if (mode !== null) return mode;
  if (accel === 'kvm') throw new ConfigError(`Parameter 'kernel-irqchip' does not accept value '${value}'`);
  return 'off';
}

// ---- -m (QEMU 11.1 vl.c parse_memory_options, hw/core/machine.c machine_set_mem) ----

const SIZE_HINT = 'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.';

/** Keys `-m` has. */
const MEM_KEYS = new Set(['size', 'slots', 'maxmem']);

/** Most memory slots a q35 machine has (QEMU ACPI_MAX_RAM_SLOTS). */
export const MAX_RAM_SLOTS = 256;

/** QEMU's message when the host cannot give guest RAM its size. */
export const RAM_ALLOC_ERROR = "cannot set up guest memory 'pc.ram': Cannot allocate memory";

/** `-m` split into its values (the first element without `=` is `size`). */
interface MemOption {
  readonly size?: string;
  readonly slots?: string;
  readonly maxmem?: string;
}

/** Splits `-m` as QemuOpts does, with QEMU's short-form warnings and key errors; throws ConfigError. */
function splitMemOption(optarg: string): MemOption {
  const where = `-m ${optarg}`;
  const warnings: string[] = [];
  const values: Record<string, string> = {};
  const parts = optarg === '' ? [] : optarg.split(',');
  parts.forEach((part, i) => {
    const eq = part.indexOf('=');
    let key = eq < 0 ? 'size' : part.slice(0, eq);
    let value = eq < 0 ? part : part.slice(eq + 1);
    if (eq < 0 && i > 0) {
      warnings.push(`${where}: warning: short-form boolean option '${part}' deprecated\nPlease use ${part}=on instead`);
      key = part;
      value = 'on';
    }
    if (!MEM_KEYS.has(key)) throw new ConfigError(`Invalid parameter '${key}'`, where, warnings);
    values[key] = value;
    checkMemValue(where, key, value, warnings);
  });
  return values;
}

/** A size QEMU 11.1 refuses at option-parsing time: negative, or hex with a suffix (7.2 only warned). */
function checkMemValue(where: string, key: string, value: string, warnings: readonly string[]): void {
  if (key === 'slots') {
    if (!/^\s*\+?(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(value)) throw new ConfigError(`Parameter 'slots' expects a number`, where, warnings);
    return;
  }
  if (/^\s*-(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(value)) {
    throw new ConfigError(`Value '${value}' is out of range for parameter '${key}'`, where, warnings);
  }
  const hexWithSuffix = /^\s*\+?0[xX][0-9a-fA-F]*[^0-9a-fA-F]/.test(value);
  const r = parseSize(value);
  if (r === 'range') throw new ConfigError(`Value '${value}' is out of range for parameter '${key}'`, where, warnings);
  if (r === 'invalid' || hexWithSuffix) {
    throw new ConfigError(`Parameter '${key}' expects a non-negative number below 2^64\n${SIZE_HINT}`, where, warnings);
  }
}

/**
 * Checks `-m` as QEMU 11.1 parses it, before the size is used: the option
 * syntax, negative and hex-with-suffix sizes, and the legacy MiB form of a
 * hex number (`-m 0x10` means `0x10M`, which 11.1 no longer takes).  Throws
 * ConfigError with QEMU's message (and warning lines).
 */
export function checkMemoryOption(optarg: string): void {
  const o = splitMemOption(optarg);
  const size = o.size;
  if (size !== undefined && /[0-9]$/.test(size) && /^\s*\+?0[xX]/.test(size)) {
    throw new ConfigError(`Parameter 'memory.size' expects size`);
  }
}

/** Formats a byte count as QEMU's `0x%" PRIx64` does. */
function hex(n: bigint): string {
  return `0x${n.toString(16)}`;
}

/**
 * The machine-level checks of `-m` (after checkMemoryOption): `slots` needs
 * `maxmem`, `maxmem` is at least the size (and above it when slots are
 * asked for), at most MAX_RAM_SLOTS slots, and guest RAM no larger than the
 * host can allocate (`hostLimit` bytes; QEMU fails to allocate it).
 * `sizeBytes` is the size as the machine will use it (rounded, 0 resolved).
 */
export function checkMemoryConfig(optarg: string, sizeBytes: number | null, hostLimit: number): void {
  const o = splitMemOption(optarg);
  const size = sizeBytes === null ? null : BigInt(sizeBytes);
  if (o.maxmem !== undefined && size !== null) {
    const max = parseSize(o.maxmem);
    const slots = o.slots === undefined ? 0n : BigInt(o.slots.trim());
    if (typeof max === 'bigint' && max < size) {
      throw new ConfigError(`invalid value of maxmem: maximum memory size (${hex(max)}) must be at least the initial memory size (${hex(size)})`);
    }
    if (typeof max === 'bigint' && max === size && slots !== 0n) {
      throw new ConfigError(`invalid value of maxmem: memory slots were specified but maximum memory size (${hex(max)}) is equal to the initial memory size (${hex(size)})`);
    }
  } else if (o.slots !== undefined) {
    throw new ConfigError('slots specified but no max-size');
  }
  if (size === null || Number(size) > hostLimit) throw new ConfigError(RAM_ALLOC_ERROR);
  const slots = o.slots === undefined ? 0 : Number(o.slots.trim());
  if (slots > MAX_RAM_SLOTS) throw new ConfigError(`unsupported amount of memory slots: ${slots}`);
}

// ---- -smp (QEMU 11.1 machine smp property) ----

/** The `-smp` keys QEMU 11.1 has (the first element without `=` is `cpus`). */
const SMP_KEYS = new Set(['cpus', 'drawers', 'books', 'sockets', 'dies', 'clusters', 'modules', 'cores', 'threads', 'maxcpus']);

/**
 * Checks `-smp` as QEMU 11.1 parses it (vtemu runs no CPU, so the topology
 * is otherwise ignored); throws ConfigError with QEMU's message.
 */
export function checkSmpOption(arg: string): void {
  const split = splitOptions(arg);
  const pairs = split.implied !== null ? [{ key: 'cpus', value: split.implied }, ...split.pairs] : split.pairs;
  for (const { key, value } of pairs) {
    if (!SMP_KEYS.has(key)) throw new ConfigError(`Parameter 'smp.${key}' is unexpected`);
    if (!/^[0-9]+$/.test(value)) throw new ConfigError(`Parameter 'smp.${key}' expects integer`);
  }
  if (pairs.some((p) => Number(p.value) === 0 && p.key !== 'maxcpus')) {
    throw new ConfigError('Invalid CPU topology: CPU topology parameters must be greater than zero');
  }
}

/** The machine type `-machine` arguments name (q35 when none does); throws ConfigError for a bad property. */
export function machineType(args: readonly string[]): string {
  const margs: MachineArgs = {};
  for (const m of args) applyMachineArg(m, margs);
  return margs.type ?? 'q35';
}
