/**
 * The machine options that become fw_cfg items, parsed as QEMU 11.1 does:
 * `-uuid` (FW_CFG_UUID, the 16 bytes in string order; qemu_uuid_parse) and
 * `-boot` (the machine's BootConfiguration: order, once, menu, splash,
 * splash-time, reboot-timeout, strict; several `-boot`s merge, later keys
 * win).  The values end up as FW_CFG_BOOT_MENU (u16), `etc/boot-menu-wait`
 * (le16, only with splash-time) and `etc/boot-fail-wait` (le32, -1 = never
 * reboot), see q35-items.ts.  Errors are QEMU's, in its order: field types
 * (struct order), unknown keys, boot device letters (order, then once),
 * then splash-time and reboot-timeout ranges.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError } from '../../machine/registry.js';
import { parseBool, parseI64, splitOptions } from '../../machine/props.js';

/** Bytes of a UUID. */
export const UUID_SIZE = 16;
/** Positions of the dashes in the 36-character form. */
const UUID_DASHES = new Set([8, 13, 18, 23]);
const UUID_LENGTH = 36;

/** Parses a `-uuid` argument; throws ConfigError (context `-uuid ARG`). */
export function parseUuid(arg: string): Uint8Array {
  let ok = arg.length === UUID_LENGTH;
  for (let i = 0; ok && i < arg.length; i++) ok = UUID_DASHES.has(i) ? arg[i] === '-' : /[0-9a-fA-F]/.test(arg[i]!);
  if (!ok) throw new ConfigError('failed to parse UUID string: wrong format', `-uuid ${arg}`);
  const hex = arg.replace(/-/g, '');
  const out = new Uint8Array(UUID_SIZE);
  for (let i = 0; i < UUID_SIZE; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The resolved `-boot` settings fw_cfg needs. */
export interface BootConfig {
  /** FW_CFG_BOOT_MENU. */
  readonly menu: boolean;
  /** `etc/boot-menu-wait` in ms (absent without splash-time). */
  readonly splashTime?: number;
  /** `etc/boot-fail-wait`: seconds, or -1 (the default) for never. */
  readonly rebootTimeout: number;
  /** A splash image to hand over as `bootsplash.jpg` / `bootsplash.bmp`. */
  readonly splash?: { readonly name: string; readonly data: Uint8Array };
}

/** BootConfiguration fields in QAPI order, with their types. */
const FIELDS: readonly (readonly [string, 'str' | 'bool' | 'int'])[] = [
  ['order', 'str'],
  ['once', 'str'],
  ['menu', 'bool'],
  ['splash', 'str'],
  ['splash-time', 'int'],
  ['reboot-timeout', 'int'],
  ['strict', 'bool'],
];

/** Largest splash-time / reboot-timeout. */
const U16_MAX = 0xffff;
/** Boot device letters: a-b floppy, c-f IDE, g-m machine-specific, n-p network. */
const FIRST_DEVICE = 'a'.charCodeAt(0);
const LAST_DEVICE = 'p'.charCodeAt(0);
/** JPEG files start with FF D8 (else QEMU hands the file over as BMP). */
const JPEG_MAGIC = [0xff, 0xd8] as const;

/** validate_bootdevices: letters a-p, each at most once. */
function validateBootDevices(devices: string): void {
  const seen = new Set<number>();
  for (const ch of devices) {
    const c = ch.charCodeAt(0);
    if (c < FIRST_DEVICE || c > LAST_DEVICE) throw new ConfigError(`Invalid boot device '${ch}'`);
    if (seen.has(c)) throw new ConfigError(`Boot device '${ch}' was given twice`);
    seen.add(c);
  }
}

/**
 * Resolves the raw `-boot` arguments.  Throws ConfigError; `warn` gets
 * QEMU's non-fatal complaints (short-form booleans, a missing splash file).
 */
export function resolveBoot(args: readonly string[], warn?: (line: string) => void): BootConfig {
  const merged = new Map<string, string>();
  for (const arg of args) {
    const split = splitOptions(arg);
    for (const w of split.warnings) warn?.(`-boot ${arg}: ${w}`);
    if (split.implied !== null) merged.set('order', split.implied);
    for (const p of split.pairs) merged.set(p.key, p.value);
  }
  const bools = new Map<string, boolean>();
  const ints = new Map<string, number>();
  for (const [key, type] of FIELDS) {
    const v = merged.get(key);
    if (v === undefined || type === 'str') continue;
    if (type === 'bool') {
      const b = parseBool(v);
      if (b === null) throw new ConfigError(`Parameter 'boot.${key}' expects 'on' or 'off'`);
      bools.set(key, b);
    } else {
      const n = parseI64(v);
      if (n === null) throw new ConfigError(`Parameter 'boot.${key}' expects integer`);
      // Beyond a number's exact range it is out of range below anyway.
      ints.set(key, Number(n));
    }
  }
  for (const key of merged.keys()) {
    if (!FIELDS.some(([f]) => f === key)) throw new ConfigError(`Parameter 'boot.${key}' is unexpected`);
  }
  const order = merged.get('order');
  if (order !== undefined) validateBootDevices(order);
  const once = merged.get('once');
  if (once !== undefined) validateBootDevices(once);

  const splashTime = ints.get('splash-time');
  if (splashTime !== undefined && (splashTime < 0 || splashTime > U16_MAX)) {
    throw new ConfigError('splash-time is invalid,it should be a value between 0 and 65535');
  }
  const splashFile = merged.get('splash');
  let splash: BootConfig['splash'];
  if (splashFile !== undefined) {
    if (!existsSync(splashFile)) warn?.(`failed to find file '${splashFile}'`);
    else {
      const data = new Uint8Array(readFileSync(splashFile));
      const jpeg = data[0] === JPEG_MAGIC[0] && data[1] === JPEG_MAGIC[1];
      splash = { name: jpeg ? 'bootsplash.jpg' : 'bootsplash.bmp', data };
    }
  }
  const rebootTimeout = ints.get('reboot-timeout') ?? -1;
  if (rebootTimeout < -1 || rebootTimeout > U16_MAX) {
    throw new ConfigError('reboot timeout is invalid,it should be a value between -1 and 65535');
  }
  return {
    menu: bools.get('menu') ?? false,
    rebootTimeout,
    ...(splashTime !== undefined ? { splashTime } : {}),
    ...(splash !== undefined ? { splash } : {}),
  };
}
