/**
 * Test helper: disassembles ACPI tables with the host's `iasl -d` (acpica-tools)
 * and reports what it complained about.  Used by the unit tests of every
 * table and by the differential test; not part of the emulator.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** True when `iasl` can be run. */
export function iaslAvailable(): boolean {
  try {
    execFileSync('iasl', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What `iasl -d` made of one table. */
export interface IaslResult {
  /** The disassembly (.dsl). */
  readonly dsl: string;
  /** iasl's console output. */
  readonly output: string;
  /** Lines that indicate a problem (errors, bad checksum, bad lengths, unknown fields). */
  readonly problems: string[];
}

const PROBLEM = /error|warning|incorrect|invalid|unknown|\*\*\*\*|terminates|exceeds|too (long|short)|reserved value|could not/i;
/** iasl prints these harmless lines on every run. */
const BENIGN = /^(Intel ACPI Component|ASL\+ Optimizing|Copyright|Compiler\/Disassembler|Input file|Acpi table|File appears|Binary file|Disassembly completed|Parsing completed|Hex dump|\s*$)/i;

/** Disassembles one table (bytes with a valid header) and collects problems. */
export function iaslDisassemble(name: string, table: Uint8Array): IaslResult {
  const dir = mkdtempSync(join(tmpdir(), 'vtemu-iasl-'));
  try {
    const dat = join(dir, `${name}.dat`);
    writeFileSync(dat, table);
    const run = spawnSync('iasl', ['-d', dat], { encoding: 'utf8', cwd: dir });
    const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
    let dsl = '';
    try {
      dsl = readFileSync(join(dir, `${name}.dsl`), 'utf8');
    } catch {
      dsl = '';
    }
    const problems: string[] = [];
    if (run.status !== 0) problems.push(`iasl exit status ${run.status}`);
    if (!dsl) problems.push('no disassembly produced');
    for (const line of output.split('\n')) if (PROBLEM.test(line) && !BENIGN.test(line)) problems.push(`iasl: ${line.trim()}`);
    // Skip the banner comment at the top of the .dsl; look at the body.
    const body = dsl.replace(/^\/\*[\s\S]*?\*\//, '');
    for (const line of body.split('\n')) if (PROBLEM.test(line)) problems.push(`dsl: ${line.trim()}`);
    return { dsl, output, problems };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
