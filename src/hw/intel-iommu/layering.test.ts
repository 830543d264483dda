/**
 * The unit's layering, checked on the source: device.ts assembles the unit
 * and nothing of the directory imports it back (only index.ts re-exports
 * it, and tests use it); the directory's modules import each other without
 * a cycle (type imports included); and the status bits that mirror a
 * component's state are written by that component alone, so each fact
 * lives in one place (state.ts, queue.ts, interrupt-remap.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const DIR = dirname(fileURLToPath(import.meta.url));
/** The directory's modules (tests excluded), by name without `.ts`. */
const MODULES = readdirSync(DIR)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => f.slice(0, -'.ts'.length));
const SOURCE = new Map(MODULES.map((m) => [m, readFileSync(join(DIR, `${m}.ts`), 'utf8')]));

/** Same-directory modules `source` imports or re-exports (`import type` included). */
function localImports(source: string): string[] {
  return [...source.matchAll(/(?:from|import)\s+'\.\/([\w-]+)\.js'/g)].map((m) => m[1]!);
}

const GRAPH = new Map(MODULES.map((m) => [m, localImports(SOURCE.get(m)!)]));

/** A cycle of the graph as a path (first = last), or null. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (m: string): string[] | null => {
    state.set(m, 'open');
    path.push(m);
    for (const d of graph.get(m) ?? []) {
      if (state.get(d) === 'open') return [...path.slice(path.indexOf(d)), d];
      if (state.get(d) === undefined) {
        const c = visit(d);
        if (c) return c;
      }
    }
    path.pop();
    state.set(m, 'done');
    return null;
  };
  for (const m of graph.keys()) {
    if (state.get(m) === undefined) {
      const c = visit(m);
      if (c) return c;
    }
  }
  return null;
}

/** The modules whose source matches `pattern`. */
function modulesMatching(pattern: RegExp): string[] {
  return MODULES.filter((m) => pattern.test(SOURCE.get(m)!)).sort();
}

describe('imports', () => {
  it('reads the directory (the check cannot pass vacuously)', () => {
    expect(MODULES).toEqual(expect.arrayContaining(['device', 'index', 'queue', 'interrupt-remap', 'gcmd', 'faults', 'mmio', 'roles', 'state']));
    expect(GRAPH.get('device')).toEqual(expect.arrayContaining(['queue', 'interrupt-remap', 'roles', 'state', 'mmio']));
    expect(localImports("import type { X } from './a.js';\nimport {\n  Y,\n} from './b-c.js';\nexport * from './d.js';\nimport './e.js';")).toEqual(['a', 'b-c', 'd', 'e']);
  });

  it('device.ts is imported by no module of the directory but index.ts', () => {
    expect(MODULES.filter((m) => GRAPH.get(m)!.includes('device'))).toEqual(['index']);
  });

  it('the modules import each other without a cycle', () => {
    expect(findCycle(GRAPH)).toBeNull();
    // The detector itself finds one.
    expect(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]))).toEqual(['a', 'b', 'c', 'a']);
  });
});

describe('one writer per mirrored fact', () => {
  it('GSTS.TES: only the state record (its translation flag is the truth)', () => {
    expect(modulesMatching(/Gsts\.TES/)).toEqual(['state']);
  });

  it('GSTS.QIES and the latched queue base: only the queue', () => {
    expect(modulesMatching(/Gsts\.QIES/)).toEqual(['queue']);
    expect(modulesMatching(/get32\(Reg\.IQA/)).toEqual(['queue']);
    expect(modulesMatching(/iqBase/)).toEqual([]);
  });

  it('GSTS.IRES, IRTPS and CFIS: only the interrupt remapper', () => {
    expect(modulesMatching(/Gsts\.(IRES|IRTPS|CFIS)/)).toEqual(['interrupt-remap']);
  });
});
