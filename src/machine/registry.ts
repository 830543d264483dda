/**
 * The device registry: device types by name, `-device TYPE,k=v,...` parsing
 * against their property definitions with QEMU 7.2's error messages, and
 * the `-device help` / `-device TYPE,help` listings in QEMU's format.
 *
 * Besides a type's own properties the machine understands the qdev/PCI
 * common ones: `id=` and `bus=` for every device, and for PCI devices
 * `addr=slot[.fn]`, `multifunction=` and the PCIDevice properties QEMU lists
 * (accepted and ignored: rombar, romfile, ...).
 */
import { DEVICE_CATEGORIES, type DeviceType, type PropValue, type PropValues } from './device-type.js';
import { boolDefaultText, pciCommonProps } from './pci-common-props.js';
import { parsePropValue, propHelpLine, splitOptions } from './props.js';

const types = new Map<string, DeviceType>();

/** Registers a device type; throws when the name is taken. */
export function registerDeviceType(type: DeviceType): void {
  if (types.has(type.name)) throw new Error(`device type '${type.name}' is already registered`);
  types.set(type.name, type);
}

/** The device type called `name`, or undefined. */
export function getDeviceType(name: string): DeviceType | undefined {
  return types.get(name);
}

/** Every registered device type, sorted by name (case-insensitive, as QEMU lists them). */
export function listDeviceTypes(): DeviceType[] {
  return [...types.values()].sort((a, b) => compareNames(a.name, b.name));
}

function compareNames(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A fully parsed `-device` argument. */
export interface DeviceSpec {
  /** The argument as given (for error messages: `vtemu: -device SPEC: ...`). */
  readonly arg: string;
  readonly type: DeviceType;
  /** The type's own properties: explicit values over defaults. */
  readonly props: PropValues;
  /** The names given explicitly. */
  readonly explicit: ReadonlySet<string>;
  readonly id?: string;
  /** `bus=` id of the bus to plug into (PCI). */
  readonly bus?: string;
  /** `addr=` as a devfn (PCI). */
  readonly devfn?: number;
  readonly multifunction: boolean;
  /** Warnings to print before going on (deprecated short forms, deprecated property names). */
  readonly warnings: readonly string[];
}

/** The outcome of parsing a `-device` argument. */
export type DeviceArg = { readonly kind: 'device'; readonly spec: DeviceSpec } | { readonly kind: 'help'; readonly text: string; readonly warnings: readonly string[] };

/** A configuration error with QEMU's wording; the CLI prints `vtemu: -device ARG: MESSAGE`. */
export class ConfigError extends Error {
  constructor(
    message: string,
    /** The option and argument it is about (e.g. `-device edu,foo=1`), if any. */
    readonly context?: string,
    /** Warning lines printed before the error (deprecated short forms and property names). */
    readonly preamble: readonly string[] = [],
  ) {
    super(message);
  }
  /** The line to print (without the program name). */
  get line(): string {
    return this.context ? `${this.context}: ${this.message}` : this.message;
  }

  /** Every line to print, each prefixed with `prog: `. */
  lines(prog: string): string {
    return [...this.preamble, this.line].map((l) => `${prog}: ${l}\n`).join('');
  }
}

const ADDR_RE = /^\s*\+?(?:0[xX])?([0-9a-fA-F]+)(?:\.\s*\+?(?:0[xX])?([0-9a-fA-F]+))?$/;
const SLOT_LAST = 0x1f;
const FUNC_LAST = 7;

/** Parses a PCI `addr=` value (`slot[.fn]`, hex): devfn or null (QEMU set_pci_devfn). */
export function parsePciAddr(s: string): number | null {
  const m = ADDR_RE.exec(s);
  if (!m) return null;
  const slot = parseInt(m[1]!, 16);
  const fn = m[2] === undefined ? 0 : parseInt(m[2], 16);
  if (slot > SLOT_LAST || fn > FUNC_LAST) return null;
  return (slot << 3) | fn;
}

/**
 * Parses a `-device` argument.  Throws ConfigError (context `-device ARG`)
 * for an unknown type or property or a bad value.  `local` holds types known
 * to one machine only (MachineOptions.deviceTypes), looked up before the
 * registered ones.
 */
export function parseDeviceArg(arg: string, local?: ReadonlyMap<string, DeviceType>): DeviceArg {
  const ctx = `-device ${arg}`;
  const split = splitOptions(arg);
  const warnings = split.warnings.map((w) => `${ctx}: ${w}`);
  try {
    return parseSplitDevice(arg, split, warnings, local);
  } catch (e) {
    if (e instanceof ConfigError && warnings.length) throw new ConfigError(e.message, e.context, warnings);
    throw e;
  }
}

function parseSplitDevice(arg: string, split: ReturnType<typeof splitOptions>, warnings: string[], local?: ReadonlyMap<string, DeviceType>): DeviceArg {
  const ctx = `-device ${arg}`;
  if (split.help && split.implied === null) return { kind: 'help', text: deviceListHelp(), warnings };
  const driver = split.implied ?? split.pairs.find((p) => p.key === 'driver')?.value;
  if (driver === undefined) throw new ConfigError(`Parameter 'driver' is missing`, ctx);
  const type = local?.get(driver) ?? types.get(driver);
  if (!type) throw new ConfigError(`'${driver}' is not a valid device model name`, ctx);
  if (split.help) return { kind: 'help', text: deviceHelp(type), warnings };

  const props: Record<string, PropValue> = {};
  for (const [name, def] of Object.entries(type.props)) if (def.default !== undefined) props[name] = def.default;
  const explicit = new Set<string>();
  let id: string | undefined;
  let bus: string | undefined;
  let devfn: number | undefined;
  let multifunction = false;
  let refuseAtRealize: string | undefined;
  const isPci = type.bus === 'pci';
  const commonProps = pciCommonProps(type.qemuRelease);
  for (const { key, value } of split.pairs) {
    if (key === 'driver') continue;
    if (key === 'id') {
      id = value;
      continue;
    }
    if (key === 'bus') {
      bus = value;
      continue;
    }
    const own = Object.prototype.hasOwnProperty.call(type.props, key) ? type.props[key]! : undefined;
    const old = !own && type.deprecatedProps && Object.prototype.hasOwnProperty.call(type.deprecatedProps, key) ? type.deprecatedProps[key]! : undefined;
    if (old) {
      const parsed = parsePropValue(key, old.def, value);
      if ('error' in parsed) throw new ConfigError(parsed.error, ctx);
      warnings.push(`${ctx}: warning: ${old.warning(parsed.value)}`);
      const [name, v] = old.replacement?.(parsed.value) ?? [key, parsed.value];
      props[name] = v;
      explicit.add(name);
      continue;
    }
    const common = isPci && !own && Object.prototype.hasOwnProperty.call(commonProps, key) ? commonProps[key]! : undefined;
    if (!own && !common) throw new ConfigError(`Property '${type.name}.${key}' not found`, ctx);
    if (common?.refuse !== undefined) {
      const message = common.refuse.replace('%s', type.name);
      if (!common.refuseAtRealize) throw new ConfigError(message, ctx);
      refuseAtRealize ??= message;
    }
    if (common && key === 'addr') {
      const d = parsePciAddr(value);
      if (d === null) throw new ConfigError(`Property '${type.name}.addr' doesn't take value '${value}'`, ctx);
      devfn = d;
      continue;
    }
    const parsed = parsePropValue(key, own ?? common!.def, value);
    if ('error' in parsed) throw new ConfigError(parsed.error, ctx);
    if (common) {
      if (key === 'multifunction') multifunction = parsed.value === true;
      continue;
    }
    props[key] = parsed.value;
    explicit.add(key);
  }
  if (refuseAtRealize !== undefined) throw new ConfigError(refuseAtRealize, ctx);
  const spec: DeviceSpec = {
    arg,
    type,
    props,
    explicit,
    multifunction,
    warnings,
    ...(id !== undefined ? { id } : {}),
    ...(bus !== undefined ? { bus } : {}),
    ...(devfn !== undefined ? { devfn } : {}),
  };
  return { kind: 'device', spec };
}

/** A help line whose default is printed as given (`off`, not `"off"`). */
function helpLineWithText(name: string, typeLabel: string, description: string | undefined, defaultText: string | undefined): string {
  if (defaultText === undefined) return propHelpLine(name, typeLabel, description, undefined);
  return `${propHelpLine(name, typeLabel, description ?? '', undefined)} (default: ${defaultText})`;
}

/** `-device TYPE,help`: the properties, sorted, one line each (the layout of the type's QEMU release). */
export function deviceHelp(type: DeviceType): string {
  const release = type.qemuRelease ?? '7.2';
  const lines: [string, string][] = [];
  // After QEMU 7.2 (checked with 11.1) a boolean property describes itself as
  // `on/off` and an enum default is printed bare (`auto`; 7.2: `"auto"`).
  const later = release !== '7.2';
  for (const [name, def] of Object.entries(type.props)) {
    const implicit = def.kind === 'OnOffAuto' ? 'on/off/auto' : def.kind === 'bool' && later ? 'on/off' : def.default !== undefined ? '' : undefined;
    const description = def.help ?? implicit;
    const line =
      typeof def.default === 'boolean'
        ? helpLineWithText(name, def.kind, description, boolDefaultText(release, def.default))
        : typeof def.default === 'string' && later
          ? helpLineWithText(name, def.kind, description, def.default)
          : propHelpLine(name, def.kind, description, def.default);
    lines.push([name, line]);
  }
  if (type.bus === 'pci') {
    for (const [name, p] of Object.entries(pciCommonProps(release))) {
      if (!Object.prototype.hasOwnProperty.call(type.props, name)) lines.push([name, helpLineWithText(name, p.typeLabel, p.description, p.defaultText)]);
    }
  }
  if (lines.length === 0) return `There are no options for ${type.name}.\n`;
  lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return `${type.name} options:\n${lines.map((l) => l[1] + '\n').join('')}`;
}

/** `-device help`: device types grouped by category, as QEMU prints them. */
export function deviceListHelp(): string {
  const groups: string[] = [];
  for (const cat of DEVICE_CATEGORIES) {
    const members = listDeviceTypes().filter((t) => (t.category ?? 'Misc') === cat);
    if (members.length === 0) continue;
    const lines = members.map((t) => `name "${t.name}", bus ${t.bus === 'pci' ? 'PCI' : 'System'}${t.description ? `, desc "${t.description}"` : ''}\n`);
    groups.push(`${cat} devices:\n${lines.join('')}`);
  }
  return groups.join('\n');
}
