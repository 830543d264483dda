/**
 * vtemu as an embedder gets it: the packed package (npm pack) installed into
 * a scratch project as a dependency (npm then skips its install script, so
 * the addon is not built and guest RAM uses the pure-TS backend), used from
 * JavaScript and from TypeScript under `tsc --strict`; the README's API
 * examples compiled and run there exactly as written; every value name the
 * entry point exports exists at run time; the tarball holds no test, CI or
 * test-only file.
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../harness/index.js';

const NPM = 'npm';
let scratch = '';
let packed: string[] = [];

/** Value names src/index.ts exports (not `type` ones): each must exist at run time. */
function exportedValueNames(): string[] {
  const src = readFileSync(join(REPO_ROOT, 'src', 'index.ts'), 'utf8');
  const names: string[] = [];
  for (const m of src.matchAll(/export\s+(type\s+)?\{([^}]*)\}\s+from/g)) {
    if (m[1]) continue;
    for (const part of m[2]!.split(',')) {
      const name = part.trim();
      if (name === '' || name.startsWith('type ')) continue;
      names.push(name.split(/\s+as\s+/).pop()!);
    }
  }
  return names;
}

/** The ```ts blocks of the README that import from 'vtemu'. */
function readmeExamples(): string[] {
  const text = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((code) => /from 'vtemu'/.test(code));
}

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 240_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'vtemu-consumer-'));
  // Pack (prepare builds dist/ from a clean slate); the list of files is the dry run's.
  const out = run(NPM, ['pack', '--json', '--pack-destination', scratch], REPO_ROOT);
  const info = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  packed = info[0]!.files.map((f) => f.path);
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  // --ignore-scripts: the state npm 11 leaves a dependency in until `npm install-scripts approve vtemu`.
  run(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', join(scratch, info[0]!.filename)], scratch);
  // TypeScript 7 adds no @types implicitly: the consumer's tsconfig names node; its types come from this repo.
  symlinkSync(join(REPO_ROOT, 'node_modules', '@types'), join(scratch, 'node_modules', '@types'));
}, 300_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the build, the bins, the addon sources and the machines, and no test, CI or test-only file', () => {
    expect(packed).toContain('dist/src/index.js');
    expect(packed).toContain('dist/src/index.d.ts');
    expect(packed).toContain('bin/vtemu.js');
    expect(packed).toContain('bin/vtemu-system-x86_64');
    expect(packed).toContain('binding.gyp');
    expect(packed).toContain('native/vtemu_ram.cc');
    expect(packed).toContain('machines/q35-vtd.json');
    const bad = packed.filter((p) => /(^|\/)(test|tests|\.ci|\.github|bench|reports)\/|\.test\.|(^|\/)stryker|vitest|tsconfig|guest-fakes|fake-/.test(p));
    expect(bad).toEqual([]);
  });

  it('installed as a dependency (install script skipped) works on the pure-TS RAM backend, from JavaScript', () => {
    const pkg = join(scratch, 'node_modules', 'vtemu');
    expect(existsSync(join(pkg, 'build'))).toBe(false);
    const names = exportedValueNames();
    expect(names.length).toBeGreaterThan(20);
    writeFileSync(join(scratch, 'check.mjs'), `
import * as vtemu from 'vtemu';
import { createMachine, MemTx, DmaAccess, IommuPerm } from 'vtemu';
const names = ${JSON.stringify(names)};
const missing = names.filter((n) => vtemu[n] === undefined);
const m = createMachine({ accel: 'qtest', devices: ['intel-iommu', 'edu'] });
const cap = m.memory.read64(0xfed90008);
const backend = m.ram.backend;
m.dispose();
// The model's classes are not values of the package: a unit or machine is reached through its view.
const hidden = ['IntelIommu', 'EduDevice', 'IommuTestdev', 'SvaTestdev', 'MsiSink', 'Ioapic'].filter((n) => n in vtemu);
let deep = 'refused';
try { await import('vtemu/dist/src/cli.js'); deep = 'allowed'; } catch (e) { deep = e.code; }
console.log(JSON.stringify({ missing, hidden, memTx: MemTx, dma: DmaAccess, perm: IommuPerm, cap: cap.toString(16), backend, deep }));
`);
    const r = JSON.parse(run(process.execPath, ['check.mjs'], scratch)) as Record<string, unknown>;
    expect(r).toEqual({
      missing: [],
      hidden: [],
      memTx: { Ok: 0, DecodeError: 1 },
      dma: { Read: 1, Write: 2 },
      perm: { None: 0, Read: 1, Write: 2, ReadWrite: 3 },
      cap: expect.stringMatching(/^[0-9a-f]+$/),
      backend: 'ts',
      deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
  });

  it('installs the vtemu and vtemu-system-x86_64 commands (the latter is what QTEST_QEMU_BINARY names)', () => {
    for (const bin of ['vtemu', 'vtemu-system-x86_64']) {
      const out = run(join(scratch, 'node_modules', '.bin', bin), ['-machine', 'help'], scratch);
      expect(out, bin).toMatch(/^q35 +Standard PC \(Q35 \+ ICH9, 2009\) \(alias of pc-q35-11\.1\)$/m);
    }
    const r = spawnSync(join(scratch, 'node_modules', '.bin', 'vtemu-system-x86_64'), ['-machine', 'q35', '-accel', 'qtest', '-qtest', 'stdio', '-qtest-log', 'none'], {
      cwd: scratch, input: 'readl 0xfed90000\nendianness\n', encoding: 'utf8', timeout: 60_000,
    });
    expect(r.stdout).toBe('OK 0x0000000000000000\nOK little\n');
  });

  it('type-checks under tsc --strict and runs, with the README examples exactly as written', () => {
    const examples = readmeExamples();
    expect(examples.length).toBeGreaterThanOrEqual(2);
    examples.forEach((code, i) => writeFileSync(join(scratch, `readme-${i}.ts`), code));
    writeFileSync(join(scratch, 'typed.ts'), `
import { createMachine, inspectIommu, machineUnits, MemTx, IommuPerm, type FaultEvent, type Machine, type MsiDelivery, type IotlbEntry, type VtdUnit } from 'vtemu';
const m: Machine = createMachine({ accel: 'qtest', devices: ['intel-iommu,caching-mode=on,id=vtd0', 'edu'] });
const seen: MsiDelivery[] = [];
m.events.on('interrupt', (irq) => seen.push(irq));
const tx: MemTx = MemTx.Ok;
const e: Pick<IotlbEntry, 'perm'> = { perm: IommuPerm.ReadWrite };
const unit: VtdUnit = m.iommus[0]!;
const faults: FaultEvent[] = [];
unit.events.on('fault', (f) => faults.push(f));
const units = machineUnits(m).map((u) => ({ id: u.id, base: u.base, same: u.unit === unit }));
const ins = inspectIommu(m, { views: ['caches'] });
// The public views keep the model's internals out of reach: each access below must fail to compile
// (never called: the checks are the compiler's; readonly is a compile-time promise only).
function outOfReach(m: Machine, unit: VtdUnit): void {
  // @ts-expect-error the unit's IOTLB is not part of VtdUnit
  unit.iotlb;
  // @ts-expect-error nor its register file
  unit.regs.get32(0);
  // @ts-expect-error nor its invalidation queue
  unit.queue;
  // @ts-expect-error config is read-only data
  unit.config.cachingMode = false;
  // @ts-expect-error the machine's PCI wiring is not part of Machine
  m.pci;
  // @ts-expect-error nor its IOAPIC
  m.ioapic;
  // @ts-expect-error iommus is a read-only list
  m.iommus.push(unit);
  // @ts-expect-error the model's unit class is not exported
  type Hidden = import('vtemu').IntelIommu;
}
void outOfReach;
console.log(JSON.stringify({
  cm: (m.memory.read64(0xfed90008) >> 7n) & 1n ? 1 : 0, tx, perm: e.perm, seen: seen.length,
  config: unit.config.cachingMode, capCm: Number((unit.capability >> 7n) & 1n), units, inspected: ins.units.map((u) => u.id), faults: faults.length,
}));
m.dispose();
`);
    writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, types: ['node'], outDir: 'out', skipLibCheck: false },
      include: ['*.ts'],
    }));
    run(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], scratch);
    writeFileSync(join(scratch, 'out', 'package.json'), JSON.stringify({ type: 'module' }));
    expect(JSON.parse(run(process.execPath, [join('out', 'typed.js')], scratch))).toEqual({
      cm: 1, tx: 0, perm: 3, seen: 0,
      config: true, capCm: 1, units: [{ id: 'vtd0', base: 0xfed9_0000, same: true }], inspected: ['vtd0'], faults: 0,
    });
    for (const f of readdirSync(join(scratch, 'out')).filter((n) => n.startsWith('readme-'))) {
      run(process.execPath, [join('out', f)], scratch);
    }
  });
});
