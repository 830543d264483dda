/**
 * Machine definition files (machines/*.json), loaded by `--machine FILE`:
 *
 *     { "description": "...",              optional
 *       "machine": "q35,kernel-irqchip=split",
 *       "m": "128M",                       optional
 *       "devices": ["intel-iommu,intremap=on", "edu,id=edu0"],
 *       "dmar": { "rmrr": [ { "base": "0x7800000", "limit": "0x780ffff", "devices": ["edu0"] } ],
 *                 "units": [ { "iommu": "vtd0", "base": "0xfed90000", "devices": ["rp1"] },
 *                            { "iommu": "vtd1", "base": "0xfed91000", "includePciAll": true } ],
 *                 "rhsa": [ { "base": "0xfed90000", "proximityDomain": 0 } ],
 *                 "andd": [ { "deviceNumber": 1, "name": "\\_SB.PCI0.DMA0" } ],
 *                 "satc": [ { "devices": ["edu0"], "atcRequired": false } ] } }
 *
 * The file is applied first; `-machine`/`-m`/`-device` on the command line
 * come on top (later `-machine` keys win, devices are appended).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './registry.js';
import type { DmarExtras } from './dmar-wiring.js';

/** A parsed machine definition. */
export interface MachineFile {
  readonly description?: string;
  readonly machine: string;
  readonly m?: string;
  readonly devices: readonly string[];
  readonly dmar?: DmarExtras;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Checks the shape of a parsed definition; returns an error message or null. */
export function checkMachineFile(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'expected a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o['machine'] !== 'string') return "'machine' must be a string (e.g. \"q35\")";
  if (o['m'] !== undefined && typeof o['m'] !== 'string') return "'m' must be a string (e.g. \"128M\")";
  if (!isStringArray(o['devices'])) return "'devices' must be an array of -device strings";
  const dmar = o['dmar'];
  if (dmar !== undefined) {
    if (typeof dmar !== 'object' || dmar === null) return "'dmar' must be an object";
    const entries = (key: string, ok: (e: Record<string, unknown>) => boolean, need: string): string | null => {
      const list = (dmar as Record<string, unknown>)[key];
      if (list === undefined) return null;
      if (!Array.isArray(list)) return `'dmar.${key}' must be an array`;
      for (const x of list as unknown[]) {
        if (typeof x !== 'object' || x === null || !ok(x as Record<string, unknown>)) return `'dmar.${key}' entries need ${need}`;
      }
      return null;
    };
    const isNum = (x: unknown): boolean => typeof x === 'number' || typeof x === 'string';
    const rmrrError = entries('rmrr', (e) => isNum(e['base']) && isNum(e['limit']) && isStringArray(e['devices']), 'base, limit and devices (ids)');
    if (rmrrError) return rmrrError;
    const units = (dmar as Record<string, unknown>)['units'];
    if (units !== undefined) {
      if (!Array.isArray(units)) return "'dmar.units' must be an array";
      for (const u of units as unknown[]) {
        const e = u as Record<string, unknown>;
        if (typeof u !== 'object' || u === null || typeof e['iommu'] !== 'string' || !isNum(e['base'])) {
          return "'dmar.units' entries need iommu (an intel-iommu id) and base";
        }
        if (e['devices'] !== undefined && !isStringArray(e['devices'])) return "'dmar.units[].devices' must be an array of ids";
      }
    }
    const extraError =
      entries('rhsa', (e) => isNum(e['base']) && typeof e['proximityDomain'] === 'number', 'base and proximityDomain') ??
      entries('andd', (e) => typeof e['deviceNumber'] === 'number' && typeof e['name'] === 'string', 'deviceNumber and name') ??
      entries('satc', (e) => isStringArray(e['devices']) && (e['atcRequired'] === undefined || typeof e['atcRequired'] === 'boolean'), 'devices (ids) and an optional atcRequired');
    if (extraError) return extraError;
  }
  return null;
}

/** Reads and checks a machine file; throws ConfigError naming the file. */
export function loadMachineFile(path: string): MachineFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`Could not open '${path}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: ${(e as Error).message}`);
  }
  const err = checkMachineFile(v);
  if (err) throw new ConfigError(`${path}: ${err}`);
  return v as MachineFile;
}
