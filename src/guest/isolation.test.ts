/**
 * Guest isolation: src/guest may import only src/guest (plus Node built-ins
 * in the transport, and vitest in tests).  The guest's unit tests may also
 * use the fakes of test/support/guest-fakes (a fake platform, PCI functions
 * and a fake VT-d unit, test-only and so kept out of src/), which themselves
 * import only src/guest.  Checked twice: by scanning import specifiers, and
 * by compiling src/guest/tsconfig.json (the guest's own modules) whose
 * rootDir turns an escaping import into a compile error.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const GUEST_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(GUEST_DIR, '../..');
/** The guest's test fakes (test-only, outside src/). */
const FAKES_DIR = join(REPO, 'test', 'support', 'guest-fakes');
/** Files allowed to use Node built-ins (the transports). */
const NODE_ALLOWED = new Set(['qtest-client.ts']);
const SPECIFIER = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Import specifiers of a source text. */
export function specifiers(text: string): string[] {
  return [...text.matchAll(SPECIFIER)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** Violations of the guest import rule for one file. */
export function violations(file: string, text: string): string[] {
  const out: string[] = [];
  const base = file.split(sep).pop()!;
  const isTest = base.endsWith('.test.ts');
  const inside = (dir: string, target: string): boolean => !relative(dir, target).startsWith('..');
  for (const s of specifiers(text)) {
    if (s.startsWith('.')) {
      const target = resolve(dirname(file), s);
      const allowed = inside(GUEST_DIR, target) || ((isTest || inside(FAKES_DIR, file)) && inside(FAKES_DIR, target));
      if (!allowed) out.push(`${relative(REPO, file)} imports ${s} (outside src/guest)`);
    } else if (s.startsWith('node:')) {
      if (!isTest && !NODE_ALLOWED.has(base)) out.push(`${relative(REPO, file)} imports ${s} (Node built-ins only in transports)`);
    } else if (!(isTest && s === 'vitest')) {
      out.push(`${relative(REPO, file)} imports package ${s}`);
    }
  }
  return out;
}

describe('guest isolation', () => {
  it('finds specifiers of every import form', () => {
    expect(specifiers(`import { a } from './a.js';\nexport * from "../b.js";\nimport './c.js';\nconst d = await import('./d.js');`))
      .toEqual(['./a.js', '../b.js', './c.js', './d.js']);
  });

  it('flags imports that leave src/guest', () => {
    const f = join(GUEST_DIR, 'linux-vtd', 'x.ts');
    expect(violations(f, `import { X } from '../../memory/address.js';`)).toHaveLength(1);
    expect(violations(f, `import { X } from '../platform.js';`)).toHaveLength(0);
    expect(violations(f, `import { spawn } from 'node:child_process';`)).toHaveLength(1);
    expect(violations(f, `import TypedEmitter from 'typed-emitter';`)).toHaveLength(1);
    // The test fakes: for the guest's tests only.
    expect(violations(f, `import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';`)).toHaveLength(1);
    const t = join(GUEST_DIR, 'linux-vtd', 'x.test.ts');
    expect(violations(t, `import { FakePlatform } from '../../../test/support/guest-fakes/fake-platform.js';`)).toHaveLength(0);
    expect(violations(t, `import { X } from '../../../test/support/prng.js';`)).toHaveLength(1);
    const fake = join(FAKES_DIR, 'fake-x.ts');
    expect(violations(fake, `import { VtdUnit } from '../../../src/guest/linux-vtd/unit.js';`)).toHaveLength(0);
    expect(violations(fake, `import { X } from '../../../src/memory/address.js';`)).toHaveLength(1);
  });

  it('no file in src/guest imports anything outside src/guest', () => {
    const self = fileURLToPath(import.meta.url); // its string fixtures are not imports
    const all = [...tsFiles(GUEST_DIR), ...tsFiles(FAKES_DIR)].filter((f) => f !== self).flatMap((f) => violations(f, readFileSync(f, 'utf8')));
    expect(all).toEqual([]);
  });

  it('src/guest compiles on its own with rootDir = src/guest', () => {
    const tsc = join(REPO, 'node_modules', '.bin', 'tsc');
    const r = spawnSync(tsc, ['-p', join(GUEST_DIR, 'tsconfig.json')], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
