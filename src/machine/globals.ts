/**
 * `-global DRIVER.PROP=VALUE` (and `-global driver=D,property=P,value=V`):
 * property defaults for every device of a type, as QEMU 11.1 has them
 * (qemu_global_option, object_apply_global_props, qdev_prop_check_globals).
 *
 * - Parsing: `D.P=V` takes everything after the first `=` as the value,
 *   commas included; anything else is a QemuOpts string with the keys
 *   driver/property/value only (errors carry the `-global ARG` context).
 * - Applying: globals are applied in command-line order when a device of
 *   the type is created, before its explicit properties, which win; a bad
 *   value or unknown property is fatal then: `can't apply global D.P=V: ...`
 *   (a `-device` gets its `-device ARG` context).
 * - Afterwards: a global for a type that is not hotpluggable (vtemu: a
 *   system-bus type) and that no device used is reported with
 *   `warning: global D.P=V not used`.  Globals for types vtemu does not know
 *   are accepted silently (QEMU knows far more types; it warns about names
 *   that are no type at all, which vtemu cannot tell apart).
 */
import type { PropDef, PropValue } from './device-type.js';
import { pciCommonProps } from './pci-common-props.js';
import { parsePropValue, splitCommas } from './props.js';
import { ConfigError, getDeviceType, type DeviceSpec } from './registry.js';
import type { MchProps } from '../pci/ich9.js';

/** One `-global`. */
export interface GlobalProp {
  readonly driver: string;
  readonly property: string;
  readonly value: string;
}

/** `-global help` output (QEMU 11.1). */
export const GLOBAL_HELP_TEXT = 'global options:\n  driver=<str>\n  property=<str>\n  value=<str>\n';

/** True for `-global help` / `-global ?`. */
export function isGlobalHelp(arg: string): boolean {
  return arg === 'help' || arg === '?';
}

/** `D.P=V`: driver without `.`/`=` (1-63 chars), property without `=` (1-63 chars), then `=` (sscanf "%63[^.=].%63[^=]%n"). */
const DOTTED = /^([^.=]{1,63})\.([^=]{1,63})=/s;
const KEYS = new Set(['driver', 'property', 'value']);

/**
 * Parses one `-global` argument.  Returns the global and the warnings QEMU
 * prints (deprecated short-form booleans); throws ConfigError.
 */
export function parseGlobalArg(arg: string): { global: GlobalProp; warnings: string[] } {
  const ctx = `-global ${arg}`;
  const m = DOTTED.exec(arg);
  if (m) return { global: { driver: m[1]!, property: m[2]!, value: arg.slice(m[0].length) }, warnings: [] };
  const warnings: string[] = [];
  const got: Record<string, string> = {};
  for (const part of splitCommas(arg)) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    let key: string;
    if (eq < 0) {
      const off = part.startsWith('no') && part.length > 2;
      key = off ? part.slice(2) : part;
      warnings.push(`${ctx}: warning: short-form boolean option '${part}' deprecated\nPlease use ${key}=${off ? 'off' : 'on'} instead`);
      got[key] = off ? 'off' : 'on';
    } else {
      key = part.slice(0, eq);
      got[key] = part.slice(eq + 1);
    }
    if (!KEYS.has(key)) throw new ConfigError(`Invalid parameter '${key}'`, ctx, warnings);
  }
  const { driver, property, value } = got;
  if (driver === undefined || property === undefined || value === undefined) {
    throw new ConfigError("options 'driver', 'property', and 'value' are required", ctx, warnings);
  }
  return { global: { driver, property, value }, warnings };
}

/** How one property of a type takes a global's value. */
export interface GlobalTarget {
  /** The property's definition, or undefined when the type has no such property. */
  def(property: string): PropDef | undefined;
}

/**
 * Parses a global's value as QEMU's string input visitor does: like a
 * `-device` value, but an integer that is no number at all is reported
 * as "expects uint64" (unsigned) / "expects int64" (signed).
 */
export function parseGlobalValue(name: string, def: PropDef, raw: string): { value: PropValue } | { error: string } {
  const r = parsePropValue(name, def, raw);
  if ('error' in r && r.error.endsWith(' expects integer')) {
    return { error: `Parameter '${name}' expects ${def.kind === 'int32' ? 'int64' : 'uint64'}` };
  }
  return r;
}

/** The globals of a machine, with which ones a device used. */
export class Globals {
  private readonly used = new Set<GlobalProp>();

  constructor(readonly list: readonly GlobalProp[]) {}

  /** Parses the raw `-global` arguments; warnings go to `warn`.  Throws ConfigError. */
  static parse(args: readonly string[], warn?: (line: string) => void): Globals {
    const list: GlobalProp[] = [];
    for (const a of args) {
      const { global, warnings } = parseGlobalArg(a);
      for (const w of warnings) warn?.(w);
      list.push(global);
    }
    return new Globals(list);
  }

  /**
   * The values the globals of `driver` give, in order (a later one wins),
   * parsed against `target`; marks them used.  Throws ConfigError
   * `can't apply global D.P=V: ...` with `context`.
   */
  valuesFor(driver: string, target: GlobalTarget, context?: string): Map<string, PropValue> {
    const out = new Map<string, PropValue>();
    for (const g of this.list) {
      if (g.driver !== driver) continue;
      this.used.add(g);
      const fail = (msg: string): never => {
        throw new ConfigError(`can't apply global ${g.driver}.${g.property}=${g.value}: ${msg}`, context);
      };
      const def = target.def(g.property);
      if (!def) fail(`Property '${driver}.${g.property}' not found`);
      const r = parseGlobalValue(g.property, def!, g.value);
      if ('error' in r) fail(r.error);
      else out.set(g.property, r.value);
    }
    return out;
  }

  /** `warning: global D.P=V not used` for the unused globals of registered system-bus (not hotpluggable) types. */
  unusedWarnings(): string[] {
    return this.list
      .filter((g) => !this.used.has(g) && getDeviceType(g.driver)?.bus === 'system')
      .map((g) => `warning: global ${g.driver}.${g.property}=${g.value} not used`);
  }
}

/**
 * How a registered device type takes globals: its own properties, the
 * renamed/removed ones it still accepts, and for PCI types the PCIDevice
 * properties of QEMU 11.1 (accepted and ignored).
 */
export function deviceTypeTarget(typeName: string): GlobalTarget {
  const type = getDeviceType(typeName);
  const own = (p: string): boolean => type !== undefined && Object.prototype.hasOwnProperty.call(type.props, p);
  return {
    def(p) {
      if (!type) return undefined;
      if (own(p)) return type.props[p];
      const old = type.deprecatedProps && Object.prototype.hasOwnProperty.call(type.deprecatedProps, p) ? type.deprecatedProps[p] : undefined;
      if (old) return old.def;
      const common = type.bus === 'pci' ? pciCommonProps('11.1') : {};
      return Object.prototype.hasOwnProperty.call(common, p) ? common[p]!.def : undefined;
    },
  };
}

/**
 * A `-device` spec with the globals of its type applied under its explicit
 * properties (QEMU: globals at instance init, explicit values after).
 * Throws ConfigError with the `-device ARG` context.
 */
export function applyGlobals(spec: DeviceSpec, globals: Globals): DeviceSpec {
  const values = globals.valuesFor(spec.type.name, deviceTypeTarget(spec.type.name), `-device ${spec.arg}`);
  if (values.size === 0) return spec;
  const props: Record<string, PropValue> = { ...spec.props };
  for (const [name, v] of values) {
    const old = spec.type.deprecatedProps?.[name];
    const [to, value] = old ? (old.replacement?.(v) ?? [name, v]) : [name, v];
    const own = Object.prototype.hasOwnProperty.call(spec.type.props, to) || old !== undefined;
    if (own && !spec.explicit.has(to)) props[to] = value;
  }
  return { ...spec, props };
}

/** The MCH's own properties (QEMU 11.1 `-device mch,help`); the PCIDevice ones are accepted and ignored. */
const MCH_PROPS: Readonly<Record<string, PropDef>> = {
  'extended-tseg-mbytes': { kind: 'uint16' },
  'smbase-smram': { kind: 'bool' },
};

/** The MCH properties `-global mch.*` sets.  Throws ConfigError. */
export function mchGlobals(globals: Globals): MchProps {
  const common = pciCommonProps('11.1');
  const values = globals.valuesFor('mch', {
    def: (p) => (Object.prototype.hasOwnProperty.call(MCH_PROPS, p) ? MCH_PROPS[p] : Object.prototype.hasOwnProperty.call(common, p) ? common[p]!.def : undefined),
  });
  const ext = values.get('extended-tseg-mbytes');
  const smbase = values.get('smbase-smram');
  return {
    ...(ext !== undefined ? { extendedTsegMbytes: Number(ext) } : {}),
    ...(smbase !== undefined ? { smbaseSmram: smbase === true } : {}),
  };
}
