/**
 * vitest global setup: compiles the current sources once per test run
 * (tsc -p tsconfig.build.json into a temp dir) so that every spawned vtemu
 * process runs the code under test, never a stale dist/.  The path reaches the
 * test workers through vitest's provide/inject (`vtemuCli`); the directory is
 * removed when the run ends.  A failed compile fails the run.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** cli.js compiled from the current sources for this run. */
    vtemuCli: string;
    /**
     * An executable named `vtemu-system-x86_64` that runs that cli.js: what a
     * libqtest-style harness gets as QTEST_QEMU_BINARY.
     */
    vtemuSystemBinary: string;
  }
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Compiles src/ (and bench/) into a fresh temp dir; returns [dir, cli.js]. */
export function compileSources(): [string, string] {
  const out = mkdtempSync(join(tmpdir(), 'vtemu-cli-'));
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out], { encoding: 'utf8', cwd: ROOT });
  if (r.error || r.status !== 0) {
    rmSync(out, { recursive: true, force: true });
    throw new Error(`compiling the sources for the CLI tests failed:\n${r.error?.message ?? ''}${r.stdout}${r.stderr}`);
  }
  // ESM package marker and machines/ (found next to the nearest package.json), and the native RAM addon.
  symlinkSync(join(ROOT, 'package.json'), join(out, 'package.json'));
  symlinkSync(join(ROOT, 'machines'), join(out, 'machines'));
  if (existsSync(join(ROOT, 'build'))) symlinkSync(join(ROOT, 'build'), join(out, 'build'));
  return [out, join(out, 'src', 'cli.js')];
}

/** Writes `DIR/bin/vtemu-system-x86_64`, a shell script that execs node on `cli`; returns its path. */
export function writeSystemBinary(dir: string, cli: string): string {
  const bin = join(dir, 'bin', 'vtemu-system-x86_64');
  mkdirSync(dirname(bin), { recursive: true });
  writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${cli}' "$@"\n`);
  chmodSync(bin, 0o755);
  return bin;
}

export default function setup(project: TestProject): () => void {
  const [dir, cli] = compileSources();
  project.provide('vtemuCli', cli);
  project.provide('vtemuSystemBinary', writeSystemBinary(dir, cli));
  return () => rmSync(dir, { recursive: true, force: true });
}
