/**
 * Command-line options that QEMU's test tooling passes and that concern the
 * process rather than the modelled machine: `-audio`, `-run-with`, `-net`.
 * vtemu has no audio and no network; what QEMU 11.1 accepts for "none of it"
 * is accepted, what QEMU refuses is refused with its message, and a real
 * backend vtemu cannot provide gets one line of vtemu's own.
 */
import { parseBool, splitOptions } from './props.js';
import { ConfigError } from './registry.js';

/** Audio drivers of Debian's QEMU 11.1 build (`-audio help`). */
const AUDIO_DRIVERS = new Set(['none', 'alsa', 'dbus', 'jack', 'oss', 'pa', 'pipewire', 'sdl', 'spice', 'wav']);

/** `-audio [driver=]DRIVER[,model=M][,id=ID][,...]`: only `none` runs here. */
export function checkAudioOption(arg: string): void {
  const split = splitOptions(arg);
  let driver = split.implied;
  for (const { key, value } of split.pairs) if (key === 'driver') driver = value;
  if (driver === null || !AUDIO_DRIVERS.has(driver)) throw new ConfigError(`Parameter 'driver' does not accept value '${driver ?? ''}'`);
  if (driver !== 'none') throw new ConfigError(`audio driver '${driver}' is not supported (vtemu models no sound devices; use -audio none)`);
}

/** `-run-with` keys of QEMU 11.1 on Linux. */
const RUN_WITH_BOOLS = new Set(['exit-with-parent', 'async-teardown']);

/**
 * `-run-with exit-with-parent=on|off[,async-teardown=on|off]`: the
 * exit-with-parent setting, or null when the argument does not set it.
 * `chroot=` and `user=` are refused (vtemu does not change its root or user).
 */
export function parseRunWith(arg: string): boolean | null {
  const split = splitOptions(arg);
  const pairs = split.implied !== null ? [{ key: split.implied, value: '' }, ...split.pairs] : split.pairs;
  let exitWithParent: boolean | null = null;
  for (const { key, value } of pairs) {
    if (RUN_WITH_BOOLS.has(key)) {
      const b = parseBool(value);
      if (b === null) throw new ConfigError(`Parameter '${key}' expects 'on' or 'off'`);
      if (key === 'exit-with-parent') exitWithParent = b;
    } else if (key === 'chroot' || key === 'user') {
      throw new ConfigError(`-run-with ${key}= is not supported by vtemu`);
    } else {
      throw new ConfigError(`Invalid parameter '${key}'`);
    }
  }
  return exitWithParent;
}

/** `-net` types of QEMU 11.1 (NetClientDriver plus `nic`). */
const NET_TYPES = new Set([
  'none', 'nic', 'user', 'tap', 'l2tpv3', 'socket', 'stream', 'dgram', 'vde', 'bridge', 'hubport', 'netmap',
  'vhost-user', 'vhost-vdpa', 'af-xdp', 'passt',
]);

/** `-net TYPE[,...]`: `none` is accepted (vtemu has no NIC); QEMU's types are refused by name. */
export function checkNetOption(arg: string): void {
  const split = splitOptions(arg);
  let type = split.implied;
  for (const { key, value } of split.pairs) if (key === 'type') type = value;
  if (type === null || !NET_TYPES.has(type)) throw new ConfigError(`Parameter 'type' does not accept value '${type ?? ''}'`);
  if (type !== 'none') throw new ConfigError(`network type '${type}' is not supported (vtemu models no network devices; use -net none)`);
}

/** `-machine help`: the machines vtemu has, in QEMU 11.1's format. */
export const MACHINE_HELP = `Supported machines are:
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-11.1)
pc-q35-11.1          Standard PC (Q35 + ICH9, 2009)
none                 empty machine
`;
