/**
 * Runs every benchmark module and prints ONE JSON object to stdout:
 * `{"<module>.<metric>": {"value": n, "unit": "..."}, ...}`.  Progress goes
 * to stderr.  `node dist/bench/index.js ram` runs only modules whose name
 * contains one of the arguments.
 */
import { pathToFileURL } from 'node:url';
import type { Bench, Figures } from './bench.js';
import { ramBench } from './ram.js';
import { iommuBench } from './iommu.js';
import { eduBench } from './edu.js';

/** Every benchmark module; add yours here. */
export const benches: Bench[] = [ramBench, iommuBench, eduBench];

/** Runs the selected modules and returns all figures, keys prefixed by module name. */
export async function runBenches(filter: readonly string[] = []): Promise<Figures> {
  const all: Figures = {};
  for (const b of benches) {
    if (filter.length && !filter.some((f) => b.name.includes(f))) continue;
    process.stderr.write(`bench: ${b.name}...\n`);
    const figures = await b.run();
    for (const [k, v] of Object.entries(figures)) all[`${b.name}.${k}`] = v;
  }
  return all;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await runBenches(process.argv.slice(2));
  process.stdout.write(JSON.stringify(figures) + '\n');
}
