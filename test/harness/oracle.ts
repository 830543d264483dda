/**
 * The external tools the tests compare against or feed (QEMU 7.2, QEMU 11.1,
 * iasl) and the one rule for their absence: a test may skip only because an
 * external tool is missing, it says so loudly, and with VTEMU_REQUIRE_TOOLS=1
 * (CI) a missing tool fails the test file instead.
 *
 * QEMU 11.1 runs from the Debian sid chroot that scripts/qemu-11-oracle.sh
 * builds (VTEMU_QEMU11_ROOT, default /opt/vtemu/qemu-11-sid), or from a host
 * binary named by VTEMU_QEMU11.  QEMU 7.2 is the host's qemu-system-x86_64
 * (Debian 12), or VTEMU_QEMU.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { iaslAvailable } from '../support/iasl.js';

/** The QEMU releases the suite uses as oracles. */
export type QemuVersion = '7.2' | '11.1';

/**
 * The oracle a differential run uses unless it names one: QEMU 11.1.  Suites
 * whose point is 7.2-only behaviour (or whose q35 devices changed between
 * the releases) pass `'7.2'` and say why.
 */
export const DEFAULT_ORACLE: QemuVersion = '11.1';

/** How to start one QEMU release. */
export interface QemuOracle {
  readonly version: QemuVersion;
  /** The program to spawn and the arguments before QEMU's own (`chroot ROOT qemu-system-x86_64`). */
  readonly command: string;
  readonly prefix: readonly string[];
  /** The chroot QEMU runs in (files it opens must live inside), or null. */
  readonly root: string | null;
  /** Whether it has the qtest accelerator (virtual time; 11.1 yes, 7.2 no). */
  readonly qtestAccel: boolean;
}

/** True when CI asked for every external tool to be present. */
export const REQUIRE_TOOLS = process.env['VTEMU_REQUIRE_TOOLS'] === '1';

/** Default location of the QEMU 11.1 sid chroot. */
export const QEMU11_DEFAULT_ROOT = '/opt/vtemu/qemu-11-sid';

function candidate(version: QemuVersion): QemuOracle {
  if (version === '7.2') {
    return { version, command: process.env['VTEMU_QEMU'] ?? 'qemu-system-x86_64', prefix: [], root: null, qtestAccel: false };
  }
  const binary = process.env['VTEMU_QEMU11'];
  if (binary) return { version, command: binary, prefix: [], root: null, qtestAccel: true };
  const root = process.env['VTEMU_QEMU11_ROOT'] ?? QEMU11_DEFAULT_ROOT;
  return { version, command: 'chroot', prefix: [root, 'qemu-system-x86_64'], root, qtestAccel: true };
}

const found = new Map<QemuVersion, QemuOracle | null>();

/** The QEMU release `version` if it runs here and says it is that release (cached), else null. */
export function qemuOracle(version: QemuVersion): QemuOracle | null {
  if (found.has(version)) return found.get(version)!;
  const c = candidate(version);
  let ok = false;
  if (c.root === null || existsSync(c.root)) {
    try {
      const r = spawnSync(c.command, [...c.prefix, '--version'], { encoding: 'utf8', timeout: 10_000 });
      ok = r.status === 0 && new RegExp(`version ${version.replace('.', '\\.')}\\.`).test(r.stdout);
    } catch {
      ok = false;
    }
  }
  found.set(version, ok ? c : null);
  return found.get(version)!;
}

/**
 * The gate every test that needs an external tool goes through: true when it
 * is here; otherwise a loud `SKIPPED:` line and false, or, under
 * VTEMU_REQUIRE_TOOLS=1, an error that fails the test file.
 */
export function toolGate(tool: string, available: boolean, suite: string): boolean {
  if (available) return true;
  const what = `${tool} not found (${suite})`;
  if (REQUIRE_TOOLS) throw new Error(`VTEMU_REQUIRE_TOOLS=1 and ${what}`);
  console.warn(`SKIPPED: ${what}`);
  return false;
}

/** toolGate for a QEMU release. */
export function needQemu(version: QemuVersion, suite: string): boolean {
  return toolGate(`QEMU ${version}`, qemuOracle(version) !== null, suite);
}

/** toolGate for iasl (acpica-tools). */
export function needIasl(suite: string): boolean {
  return toolGate('iasl', iaslAvailable(), suite);
}
