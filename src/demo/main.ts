/**
 * `npm start [-- --machine FILE] [--kut] [--pt] [--no-qi] [--qemu | --qtest]`
 *
 * Boots a machine definition in-process (by default machines/q35-vtd.json,
 * machines/q35-rmrr.json, then machines/q35-vtd-sm.json in scalable mode with
 * second-stage and again with first-stage tables), runs
 * the Linux-like guest and prints a readable log: the DMAR decoded, each
 * VT-d bring-up step with register values, IOMMU groups and domains, edu
 * DMA verified byte for byte, a contiguous IOVA range over scattered pages,
 * two devices kept apart at the same IOVA, a fault decoded, and on
 * machines/q35-rmrr.json the RMRR refusal; on the scalable-mode machine the
 * PASID tables, 256-bit invalidation queue and first-stage faults; on
 * machines/q35-sva.json (any machine with an sva-testdev) the shared virtual
 * addressing flow instead: bind, DMA by process virtual address, a page
 * fault served through the page-request queue, unmap with its PASID-IOTLB
 * and device-TLB invalidations, unbind.  Exits 0 only if every check passed.
 */
import { createPlatform, machinePath, type PlatformKind } from './platforms.js';
import { loadMachineFile } from './machine-file.js';
import { runDemo, runKutDemo, runSvaDemo } from './report.js';

const USAGE = 'usage: npm start -- [--machine FILE.json] [--kut] [--pt] [--no-qi] [--qemu | --qtest]';

/** One stop of the tour: a machine file, optionally with extra intel-iommu options. */
interface TourStop {
  readonly file: string;
  readonly iommuOptions?: string;
  /** Scalable mode: `--qemu` (QEMU 7.2, which spells it x-scalable-mode) cannot build it. */
  readonly scalable?: boolean;
}

/** Parsed command line. */
interface DemoArgs {
  machines: TourStop[];
  kind: PlatformKind;
  kut: boolean;
  passThrough: boolean;
  noQi: boolean;
}

function parseArgs(argv: readonly string[]): DemoArgs {
  const a: DemoArgs = { machines: [], kind: 'in-process', kut: false, passThrough: false, noQi: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--machine' || x === '-machine-file') {
      const v = argv[++i];
      if (!v) throw new Error(`${x} needs a file`);
      a.machines.push({ file: v });
    } else if (x.startsWith('--machine=')) a.machines.push({ file: x.slice('--machine='.length) });
    else if (x === '--kut') a.kut = true;
    else if (x === '--pt') a.passThrough = true;
    else if (x === '--no-qi') a.noQi = true;
    else if (x === '--qemu') a.kind = 'qemu';
    else if (x === '--qtest') a.kind = 'vtemu-qtest';
    else if (x === '--help' || x === '-h') { console.log(USAGE); process.exit(0); }
    else throw new Error(`unknown argument ${x}\n${USAGE}`);
  }
  if (a.machines.length === 0) a.machines.push(...DEFAULT_TOUR);
  return a;
}

/**
 * What `npm start` shows with no --machine: the main machine, the RMRR
 * refusal, then scalable mode (second-stage DMA domains, then first-stage
 * ones with `fsts=on`), then shared virtual addressing.
 */
const DEFAULT_TOUR: readonly TourStop[] = [
  { file: 'machines/q35-vtd.json' },
  { file: 'machines/q35-rmrr.json' },
  { file: 'machines/q35-vtd-sm.json', scalable: true },
  { file: 'machines/q35-vtd-sm.json', iommuOptions: 'fsts=on', scalable: true },
  { file: 'machines/q35-sva.json', scalable: true },
];

/** The device whose machines get the SVA flow instead of the DMA-API guest (a vtemu extension QEMU lacks). */
const SVA_DEVICE = 'sva-testdev';

/** True when the machine file has an sva-testdev. */
function hasSvaDevice(file: string): boolean {
  return loadMachineFile(machinePath(file)).devices.some((d) => d.split(',')[0] === SVA_DEVICE);
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const print = (l: string): void => console.log(l);
  let ok = true;
  for (const machine of args.machines) {
    if (args.kind === 'qemu' && hasSvaDevice(machine.file)) {
      print(`vtemu demo: ${machine.file}: skipped with --qemu (QEMU has no ${SVA_DEVICE}; the SVA flow runs on vtemu only)`);
      continue;
    }
    if (machine.scalable && args.kind === 'qemu') {
      print(`vtemu demo: ${machine.file}${machine.iommuOptions ? ` + intel-iommu ${machine.iommuOptions}` : ''}: skipped with --qemu ` +
        '(QEMU 7.2 has no scalable-mode property; test/guests/linux-vtd-sm.test.ts runs it on QEMU 11.1)');
      continue;
    }
    ok = (await runMachine(machine, args, print)) && ok;
  }
  print(ok ? 'RESULT: PASS' : 'RESULT: FAIL');
  return ok ? 0 : 1;
}

/** Runs the demo (and the kvm-unit-tests-like guest with --kut) on one machine file. */
async function runMachine(stop: TourStop, args: DemoArgs, print: (l: string) => void): Promise<boolean> {
  const { file, iommuOptions } = stop;
  print(`vtemu demo: ${file}${iommuOptions ? ` + intel-iommu ${iommuOptions}` : ''} (${args.kind})`);
  const p = await createPlatform(args.kind, file, { iommuOptions });
  let ok: boolean;
  const driver = { passThrough: args.passThrough, noQi: args.noQi };
  try {
    ok = (hasSvaDevice(file) ? await runSvaDemo(p, print, { driver }) : await runDemo(p, print, driver)).passed;
  } finally {
    await p.close();
  }
  if (args.kut) {
    const q = await createPlatform(args.kind, file, { iommuOptions });
    try {
      ok = (await runKutDemo(q, print)).passed && ok;
    } finally {
      await q.close();
    }
  }
  print('');
  return ok;
}

main().then((code) => process.exit(code), (e: unknown) => {
  console.error(`vtemu demo: ${(e as Error).message ?? String(e)}`);
  process.exit(1);
});
