/**
 * The demo's readable log: runs the Linux-like guest (and optionally the
 * kvm-unit-tests-like guest) on a platform and prints sections with every
 * check's verdict.
 */
import type { GuestPlatform } from '../guest/platform.js';
import { runLinuxGuest, type Check } from '../guest/linux-guest.js';
import { runKvmUnitTests } from '../guest/kvm-unit-tests/intel-iommu.js';
import type { DriverOptions } from '../guest/linux-vtd/driver.js';
import { runSvaFlow, type SvaFlowOptions } from '../guest/sva-flow.js';

/** Where the demo writes. */
export type Printer = (line: string) => void;

/** Outcome of a demo run. */
export interface DemoOutcome {
  readonly checks: readonly Check[];
  readonly passed: boolean;
}

/** Line patterns and their section; `null`: the line stays in the current section (domain attach details). */
const SECTION_OF: ReadonlyArray<readonly [RegExp, string | null]> = [
  [/^ {2}\S+ (SID 0x[0-9a-f]+|PASID \d+): /, null],
  [/^DMAR: \[/, 'fault handler'],
  [/^fw_cfg|^table-loader|^ACPI/, 'firmware'],
  [/^PCI /, 'PCI enumeration'],
  [/^DMAR: Host|^ {2}(DRHD|RMRR|ATSR|RHSA|ANDD|SATC|scope|unknown|problem)|^ {4}scope/, 'DMAR (decoded)'],
  [/^unit |^ {2}/, 'VT-d bring-up'],
  [/^iommu group|^si_domain|RMRR 0x.* identity-mapped/, 'IOMMU groups and default domains'],
];

/** Runs the guests on `p` and prints the log; returns whether every check passed. */
export async function runDemo(p: GuestPlatform, print: Printer, driver: DriverOptions = {}): Promise<DemoOutcome> {
  print(`platform: ${p.name} (time: ${p.timeMode}, MSI observable: ${p.interrupts.msi}, INTx observable: ${p.interrupts.intx})`);
  const r = await runLinuxGuest(p, driver);
  let section = '';
  for (const line of r.log) {
    const found = SECTION_OF.find(([re]) => re.test(line));
    let s = found ? found[1] ?? section : line.startsWith('[') ? 'checks' : 'guest';
    // The guest's own lines after a fault-handler interlude belong to the checks again.
    if (s === 'guest' && section === 'fault handler') s = 'checks';
    if (s !== section && !(s === 'guest' && section === 'checks') && !(s === 'checks' && section === 'guest')) {
      section = s;
      print('');
      print(`== ${s} ==`);
    }
    print(line);
  }
  return summarize(r.checks, print);
}

/**
 * Runs the shared-virtual-addressing flow (machines/q35-sva.json) and prints
 * it step by step: bind, DMA by virtual address, a fault with its page
 * request, response and retry, unmap with its invalidations, unbind.
 */
export async function runSvaDemo(p: GuestPlatform, print: Printer, opts: SvaFlowOptions = {}): Promise<DemoOutcome> {
  print(`platform: ${p.name} (time: ${p.timeMode}, MSI observable: ${p.interrupts.msi}, INTx observable: ${p.interrupts.intx})`);
  const r = await runSvaFlow(p, opts);
  r.steps.forEach((step, i) => {
    print('');
    print(`== SVA ${i + 1}. ${step.title} ==`);
    for (const line of step.lines) print(line);
  });
  return summarize(r.checks, print);
}

/** Runs the kvm-unit-tests-like guest on a fresh platform and prints its reports. */
export async function runKutDemo(p: GuestPlatform, print: Printer): Promise<DemoOutcome> {
  print('');
  print('== kvm-unit-tests-like guest (x86/intel-iommu) ==');
  const checks: Check[] = [];
  for (const rep of await runKvmUnitTests(p)) {
    print(`${rep.result.toUpperCase()}: ${rep.name}${rep.detail ? ` (${rep.detail})` : ''}`);
    if (rep.result !== 'skip') checks.push({ name: `kut: ${rep.name}`, ok: rep.result === 'pass', detail: rep.detail });
  }
  return summarize(checks, print);
}

function summarize(checks: readonly Check[], print: Printer): DemoOutcome {
  const failed = checks.filter((c) => !c.ok);
  print('');
  print(`== summary: ${checks.length - failed.length}/${checks.length} checks passed ==`);
  for (const f of failed) print(`FAILED: ${f.name}: ${f.detail}`);
  return { checks, passed: checks.length > 0 && failed.length === 0 };
}
