#!/usr/bin/env node
// Breaks the sources on purpose, one breakage at a time, in a scratch copy of
// the committed tree (HEAD), and checks that the test suite goes red for each (the
// acceptance list of "tests that can fail").  Not part of npm test: each
// breakage runs the whole suite.
//
//   node scripts/check-breakages.mjs [NAME...]     (default: all; env passes through, e.g. VTEMU_REQUIRE_TOOLS=1)
//
// Prints one line per breakage (RED = the suite failed, as it must; GREEN = a
// breakage the tests did not notice) and exits 1 if any stayed green.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Each breakage: literal replacements that must match exactly once. */
const BREAKAGES = {
  'edu-device-id': [['src/hw/edu/regs.ts', 'DeviceId: 0x11e8,', 'DeviceId: 0x11e9,']],
  'iommu-property-removed': [['src/hw/intel-iommu/props.ts', "  'snoop-control': { kind: 'bool', default: false },\n", '']],
  'multi-unit-disabled': [['src/machine/q35.ts', "this.iommus.length > 0 && !this.multiUnit", 'this.iommus.length > 0']],
  'edu-dma-reversed': [['src/hw/edu/edu.ts', 'const toRam = (cmd & EduDmaCmd.ToRam) !== 0;', 'const toRam = (cmd & EduDmaCmd.ToRam) === 0;']],
  'domain-iotlb-noop': [['src/hw/intel-iommu/invalidation.ts', '      u.iotlb.removeDomain(inv.did);\n', '']],
  'fault-reasons-swapped': [
    ['src/hw/intel-iommu/fault-reasons.ts', '  WRITE: 0x5,', '  WRITE: 0x6,'],
    ['src/hw/intel-iommu/fault-reasons.ts', '  READ: 0x6,', '  READ: 0x5,'],
  ],
};

const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(BREAKAGES);
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
    const r = spawnSync('npx', ['vitest', 'run', '--reporter=dot'], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
    const failed = (r.stdout.match(/Tests\s+.*?(\d+) failed/) ?? [])[1] ?? '?';
    const verdict = r.status !== 0 ? `RED   (${failed} tests failed)` : 'GREEN (nothing noticed)';
    if (r.status === 0) green++;
    console.log(`${name.padEnd(24)} ${verdict}  ${Math.round((Date.now() - t0) / 1000)} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(green ? 1 : 0);
