/**
 * `-machine q35[,k=v,...]` parsing: the machine type (q35 and its versioned
 * alias) and the machine properties that matter here, with QEMU 7.2's
 * wording for errors.  Other properties QEMU's q35 has are accepted and
 * ignored so that command lines written for QEMU work unchanged.
 */
import { parseBool } from './props.js';
import { splitOptions } from './props.js';
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

/** The QOM type name QEMU 7.2 reports in machine property errors. */
const Q35_QOM_TYPE = 'pc-q35-7.2-machine';

/** Names `-machine` accepts for our one machine type. */
const Q35_NAMES = new Set(['q35', 'pc-q35-7.2', 'pc-q35']);

/** q35 properties accepted and ignored (QEMU 7.2 `-machine q35,help`). */
const IGNORED = new Set([
  'acpi',
  'append',
  'boot',
  'dtb',
  'dump-guest-core',
  'firmware',
  'graphics',
  'hmat',
  'initrd',
  'kernel',
  'max-ram-below-4g',
  'mem-merge',
  'memory-backend',
  'memory-encryption',
  'nvdimm',
  'pit',
  'sata',
  'smbus',
  'smm',
  'suppress-vmdesc',
  'usb',
  'vmport',
  'x-oem-id',
  'x-oem-table-id',
  'sgx-epc',
  'i8042',
  'hpet',
]);

/** Parsing state that accumulates over several `-machine` options. */
export interface MachineArgs {
  type?: string;
  kernelIrqchip?: KernelIrqchipMode;
  accel?: AccelName;
  defaultBusBypassIommu?: boolean;
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
      case 'kernel_irqchip': {
        const b = parseBool(value);
        if (value === 'split') into.kernelIrqchip = 'split';
        else if (b !== null) into.kernelIrqchip = b ? 'on' : 'off';
        else throw new ConfigError(`Parameter 'kernel-irqchip' does not accept value '${value}'`);
        break;
      }
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
        if (!IGNORED.has(key)) throw new ConfigError(`Property '${Q35_QOM_TYPE}.${key}' not found`);
    }
  }
}

/** Parses an accelerator name (`-accel NAME` or `accel=`). */
export function parseAccel(name: string): AccelName {
  const first = name.split(':')[0]!;
  if (first === 'qtest' || first === 'tcg' || first === 'kvm') return first;
  throw new ConfigError(`invalid accelerator ${name}`);
}

/** Final machine properties; throws for an unsupported machine type. */
export function resolveMachineArgs(a: MachineArgs): MachineProps {
  const type = a.type ?? 'q35';
  if (!Q35_NAMES.has(type)) throw new ConfigError('unsupported machine type\nUse -machine help to list supported machines');
  return {
    type: 'q35',
    defaultBusBypassIommu: a.defaultBusBypassIommu ?? false,
    ...(a.kernelIrqchip !== undefined ? { kernelIrqchip: a.kernelIrqchip } : {}),
    ...(a.accel !== undefined ? { accel: a.accel } : {}),
  };
}
