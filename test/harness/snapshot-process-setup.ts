/**
 * Global setup of `npm run test:snapshot-process`
 * (vitest.snapshot-process.config.ts): hands the workers a log file
 * (`snapshotProcessLog`, one JSON line per scenario from
 * snapshot-process.ts), and when the run ends prints how many scenarios,
 * cuts, identical and cache-sensitive transcripts and problems it saw.  A run
 * that checked no scenario fails: the switch did not reach diff.ts.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { TestProject } from 'vitest/node';

/** One logged scenario. */
interface Entry {
  readonly file: string;
  readonly test: string;
  readonly steps: number;
  readonly cuts: number;
  readonly cacheSensitive: boolean;
  readonly problem: string | null;
  /** Wall time of the round trip. */
  readonly ms: number;
}

/** The counts of a log, as one line. */
export function summarize(entries: readonly Entry[]): string {
  const withCuts = entries.filter((e) => e.cuts > 0);
  const files = new Set(entries.map((e) => e.file)).size;
  const cuts = withCuts.reduce((n, e) => n + e.cuts, 0);
  const sensitive = withCuts.filter((e) => e.problem === null && e.cacheSensitive).length;
  const problems = entries.filter((e) => e.problem !== null).length;
  const identical = withCuts.filter((e) => e.problem === null && !e.cacheSensitive).length;
  return `snapshot into a fresh process: ${entries.length} scenarios in ${files} files (${entries.length - withCuts.length} too short to cut), ${cuts} cuts; ${identical} identical, ${sensitive} cache-sensitive, ${problems} with a problem; ${(entries.reduce((t, e) => t + e.ms, 0) / 1000).toFixed(1)} s in round trips`;
}

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'vtemu-snapproc-log-'));
  const log = join(dir, 'scenarios.jsonl');
  project.provide('snapshotProcessLog', log);
  return () => {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    const entries = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Entry);
    console.info(summarize(entries));
    // The cache-sensitive ones by name: a save that leaves a field out looks like one too (see the README), so a grown list deserves a look.
    for (const e of entries.filter((x) => x.problem === null && x.cacheSensitive)) console.info(`  cache-sensitive: ${relative(process.cwd(), e.file)} > ${e.test}`);
    for (const e of entries.filter((x) => x.problem !== null)) console.info(`  problem: ${relative(process.cwd(), e.file)} > ${e.test}: ${e.problem}`);
    if (entries.length === 0) throw new Error('snapshot into a fresh process: no scenario was checked (VTEMU_SNAPSHOT_PROCESS did not reach test/harness/diff.ts)');
  };
}
