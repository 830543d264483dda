#!/usr/bin/env node
/**
 * Compares `npm run bench` figures of the working tree with those of another
 * commit, measured in the same session: builds REF in a temporary git
 * worktree (sharing node_modules and the native addon's build/), then runs
 * the two benches alternately ROUNDS times and prints, per figure, the
 * median of each side and the ratio now/ref as one JSON object.
 *
 *   node scripts/bench-compare.mjs REF [ROUNDS=3] [module filter...]
 *
 * Used to check that code which is off by default (the sanitizer, x-strict)
 * costs nothing: every ratio should be within noise (about ±5%).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [ref, roundsArg, ...filter] = process.argv.slice(2);
if (!ref) {
  process.stderr.write('usage: node scripts/bench-compare.mjs REF [ROUNDS] [module...]\n');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 3);
const here = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'vtemu-bench-ref-'));
const sh = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
try {
  sh('git', ['worktree', 'add', '--detach', dir, ref], here);
  symlinkSync(join(here, 'node_modules'), join(dir, 'node_modules'));
  if (existsSync(join(here, 'build'))) symlinkSync(join(here, 'build'), join(dir, 'build'));
  for (const d of [here, dir]) sh(process.execPath, [join(here, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], d);
  const runs = { ref: [], now: [] };
  for (let i = 0; i < rounds; i++) {
    for (const [side, d] of [['ref', dir], ['now', here]]) {
      process.stderr.write(`round ${i + 1}/${rounds}: ${side}\n`);
      runs[side].push(JSON.parse(sh(process.execPath, ['dist/bench/index.js', ...filter], d)));
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = {};
  for (const k of Object.keys(runs.now[0])) {
    if (!(k in runs.ref[0])) continue;
    const now = median(runs.now.map((r) => r[k].value));
    const was = median(runs.ref.map((r) => r[k].value));
    out[k] = { ref: was, now, ratio: Number((now / was).toFixed(3)), unit: runs.now[0][k].unit };
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
} finally {
  sh('git', ['worktree', 'remove', '--force', dir], here);
  rmSync(dir, { recursive: true, force: true });
}
