#!/usr/bin/env node
// Breaks the sources on purpose, one breakage at a time, in a scratch copy of
// the committed tree (HEAD), and checks that the test suite goes red for each (the
// acceptance list of "tests that can fail").  Not part of npm test: each
// breakage runs the whole suite.
//
//   node scripts/check-breakages.mjs [--quick] [NAME...]
//     default: every breakage, each against the whole suite; --quick runs only
//     the test files named for it in QUICK (they are part of npm test, so red
//     there is red for npm test).  The environment passes through, e.g.
//     VTEMU_REQUIRE_TOOLS=1.
//
// Prints one line per breakage (RED = the suite failed, as it must; GREEN = a
// breakage the tests did not notice) and exits 1 if any stayed green.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Test files that must notice each breakage, for --quick (a failure there is a
 * failure of npm test, which runs them; the full suite is the default).
 */
const QUICK = {
  'edu-device-id': ['src/hw/edu', 'test/diff/pci-config.test.ts'],
  'iommu-property-removed': ['src/hw/intel-iommu/props.test.ts', 'test/machine/cli.test.ts'],
  'multi-unit-disabled': ['test/machine/machine-files.test.ts', 'test/guests/vtemu-guests.test.ts', 'src/machine'],
  'edu-dma-reversed': ['src/hw/edu', 'test/diff/edu.test.ts'],
  'domain-iotlb-noop': ['src/hw/intel-iommu/invalidation.test.ts', 'test/diff/intel-iommu-qi.test.ts'],
  'fault-reasons-swapped': ['src/hw/intel-iommu/fault-reasons.test.ts', 'test/diff/intel-iommu-dma.test.ts'],
};

/** Each breakage: literal replacements that must match exactly once. */
const BREAKAGES = {
  'edu-device-id': [['src/hw/edu/regs.ts', 'DeviceId: 0x11e8,', 'DeviceId: 0x11e9,']],
  'iommu-property-removed': [['src/hw/intel-iommu/props.ts', "  'snoop-control': { kind: 'bool', default: false },\n", '']],
  'multi-unit-disabled': [['src/machine/q35.ts', "this.iommus.length > 0 && !this.multiUnit", 'this.iommus.length > 0 && (!this.multiUnit || true)']],
  'edu-dma-reversed': [['src/hw/edu/edu.ts', 'const toRam = (cmd & EduDmaCmd.ToRam) !== 0;', 'const toRam = (cmd & EduDmaCmd.ToRam) === 0;']],
  'domain-iotlb-noop': [['src/hw/intel-iommu/invalidation.ts', '      u.iotlb.removeDomain(inv.did);\n', '']],
  'fault-reasons-swapped': [
    ['src/hw/intel-iommu/fault-reasons.ts', '  WRITE: 0x5,', '  WRITE: 0x6,'],
    ['src/hw/intel-iommu/fault-reasons.ts', '  READ: 0x6,', '  READ: 0x5,'],
  ],
};

const quick = process.argv.includes('--quick');
const given = process.argv.slice(2).filter((a) => a !== '--quick');
const names = given.length ? given : Object.keys(BREAKAGES);
let green = 0;
for (const name of names) {
  const edits = BREAKAGES[name];
  if (!edits) {
    console.error(`unknown breakage ${name}; known: ${Object.keys(BREAKAGES).join(', ')}`);
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), `vtemu-break-${name}-`));
  try {
    // The committed tree (HEAD), not the working tree: what CI would test.
    const archive = spawnSync('sh', ['-c', `git -C "${ROOT}" archive HEAD | tar -x -C "${dir}"`], { encoding: 'utf8' });
    if (archive.status !== 0) throw new Error(`git archive failed: ${archive.stderr}`);
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    if (existsSync(join(ROOT, 'build'))) symlinkSync(join(ROOT, 'build'), join(dir, 'build'));
    for (const [file, from, to] of edits) {
      const path = join(dir, file);
      const text = readFileSync(path, 'utf8');
      if (text.split(from).length !== 2) throw new Error(`${name}: '${from.trim()}' does not occur exactly once in ${file}`);
      writeFileSync(path, text.replace(from, to));
    }
    const t0 = Date.now();
    const r = spawnSync('npx', ['vitest', 'run', '--reporter=dot', ...(quick ? QUICK[name] : [])], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
    const failed = (r.stdout.match(/Tests\s+.*?(\d+) failed/) ?? [])[1] ?? '?';
    const verdict = r.status !== 0 ? `RED   (${failed} tests failed)` : 'GREEN (nothing noticed)';
    if (r.status === 0) green++;
    console.log(`${name.padEnd(24)} ${verdict}  ${Math.round((Date.now() - t0) / 1000)} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(green ? 1 : 0);
