/**
 * The binaries the libqtest suite (test/libqtest/) runs against, as
 * QTEST_QEMU_BINARY values: QEMU 11.1 (its sid chroot: `chroot ROOT
 * qemu-system-x86_64`, or a host binary from VTEMU_QEMU11) and vtemu (the
 * `vtemu-system-x86_64` wrapper global-setup.ts builds from the current
 * sources).  A missing QEMU is a loud skip, or a failure under
 * VTEMU_REQUIRE_TOOLS=1 (needQemu).
 */
import { inject } from 'vitest';
import { needQemu, qemuOracle } from './oracle.js';
import type { LibQtestBinary } from './libqtest.js';

/** A named target of the suite; `binary` is null when it is not here (the suite skips it). */
export interface LibQtestTarget {
  readonly name: 'qemu-11.1' | 'vtemu';
  readonly binary: LibQtestBinary | null;
}

/** QEMU 11.1 as a libqtest binary, or null (after the needQemu gate said why). */
export function qemu11Binary(suite: string): LibQtestBinary | null {
  if (!needQemu('11.1', suite)) return null;
  const o = qemuOracle('11.1')!;
  return { command: [o.command, ...o.prefix].join(' '), root: o.root };
}

/** vtemu's system binary, compiled from the current sources for this run. */
export function vtemuBinary(): LibQtestBinary {
  const bin = inject('vtemuSystemBinary');
  if (typeof bin !== 'string') throw new Error('vtemuSystemBinary not provided: run with vitest.config.ts (its globalSetup builds it)');
  return { command: bin, root: null };
}

/** Both targets, for `describe.each`. */
export function libqtestTargets(suite: string): LibQtestTarget[] {
  return [
    { name: 'qemu-11.1', binary: qemu11Binary(suite) },
    { name: 'vtemu', binary: vtemuBinary() },
  ];
}
