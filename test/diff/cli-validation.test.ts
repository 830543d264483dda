/**
 * Command-line validation against QEMU 11.1 (issue 13): a corpus of command
 * lines around what vtemu models (`-m` forms, `-machine` properties,
 * `-accel`, `-smp`, `-device` values, unknown options, missing arguments)
 * run on QEMU 11.1 and on vtemu.  Both must agree on the outcome (runs, or
 * exits 1) and print the same stderr, program name aside.
 *
 * Each line runs as `PROG [-machine q35] [-accel qtest] -qtest stdio
 * -display none -nodefaults ARGS` (`-machine q35` unless ARGS pick a machine,
 * `-accel qtest` unless the case is about accelerator choice).  QEMU "runs"
 * when it answers a qtest `endianness`; it is then stopped.  vtemu runs
 * in-process through the CLI's own parser and machine builder (the spawned
 * program is checked on a few lines at the end).
 *
 * The documented differences (vtemu models less than QEMU) are listed in
 * DIFFERENCES, each with its reason, and checked as such: QEMU's outcome is
 * asserted too, so a difference that disappears fails the test.
 *
 * `-m` sizes QEMU cannot allocate depend on the host (Linux's overcommit
 * policy); vtemu applies the same policy (cli.ts hostRamLimit), so `-m 1T`
 * and `-m 100G` agree on this host whichever way it goes.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { buildMachine, parseCli } from '../../src/cli.js';
import { needQemu, qemuOracle, runCli } from '../harness/index.js';

const haveQemu = needQemu('11.1', 'command-line validation against QEMU 11.1');

/** One command line of the corpus. */
interface Case {
  readonly args: readonly string[];
  /** Leave out the base `-accel qtest` (the case is about choosing the accelerator). */
  readonly noAccel?: boolean;
}

/** What a program did with a command line. */
interface Outcome {
  readonly runs: boolean;
  /** stderr without qtest log lines, program name replaced by PROG. */
  readonly stderr: string;
}

const c = (...args: string[]): Case => ({ args });
const noAccel = (...args: string[]): Case => ({ args, noAccel: true });

/** Command lines where vtemu must do exactly what QEMU 11.1 does. */
const CORPUS: readonly Case[] = [
  // -m forms
  c('-m', '512'),
  c('-m', '512M'),
  c('-m', '1G'),
  c('-m', '1T'),
  c('-m', '100G'),
  c('-m', '8E'),
  c('-m', '0'),
  c('-m', ''),
  c('-m', '-1'),
  c('-m', '-1G'),
  c('-m', '1x'),
  c('-m', '1.5'),
  c('-m', '1.5G'),
  c('-m', 'size=256M'),
  c('-m', '256M,slots=2,maxmem=1G'),
  c('-m', '256M,maxmem=1G'),
  c('-m', '256M,maxmem=128M'),
  c('-m', '256M,slots=2'),
  c('-m', 'slots=0'),
  c('-m', '256M,slots=x'),
  c('-m', '256M,slots=2,maxmem=256M'),
  c('-m', '256M,slots=300,maxmem=2G'),
  c('-m', '256M,maxmem=16E'),
  c('-m', '99999999999999999999'),
  c('-m', '16E'),
  c('-m', '256M,foo=1'),
  c('-m', '512,512'),
  c('-m', '0x10'),
  c('-m', '0x10M'),
  c('-m', 'size=0x10'),
  // -machine
  c('-machine', 'q35,foo=1'),
  c('-machine', 'pc-q35-7.2,foo=1'),
  c('-machine', 'nosuch'),
  c('-machine', 'pc-q35'),
  c('-machine', 'pc-q35-11.1'),
  c('-machine', 'pc-q35-7.2'),
  c('-machine', 'q35', '-machine', 'q35,smm=off'),
  c('-machine', 'q35,smm=bogus'),
  c('-machine', 'q35,acpi=x'),
  c('-machine', 'q35,graphics=x'),
  c('-machine', 'q35,hpet=off'),
  c('-machine', 'q35,max-ram-below-4g=x'),
  c('-machine', 'q35,kernel-irqchip=bogus'),
  c('-machine', 'q35,kernel-irqchip=split'),
  c('-machine', 'q35,default-bus-bypass-iommu=maybe'),
  c('-machine', 'q35,accel=tcg'),
  noAccel('-machine', 'q35,accel=qtest'),
  noAccel('-machine', 'q35,accel=nope'),
  noAccel('-machine', 'q35,accel=nope:qtest'),
  // -accel
  noAccel('-accel', 'qtest'),
  noAccel('-accel', 'tcg'),
  noAccel('-accel', 'hax'),
  noAccel('-accel', 'nope', '-accel', 'qtest'),
  noAccel('-accel', 'nope', '-accel', 'nope2'),
  noAccel('-accel', 'qtest,foo=1'),
  noAccel('-accel', 'tcg,foo=1'),
  noAccel('-accel', 'tcg,thread=bogus'),
  noAccel('-accel', 'qtest,foo=1', '-accel', 'tcg'),
  c('-enable-kvm'),
  // -smp
  c('-smp', '1'),
  c('-smp', '2'),
  c('-smp', 'x'),
  c('-smp', '2,sockets=x'),
  c('-smp', '2,foo=1'),
  c('-smp', '0'),
  // -device
  c('-device', 'edu', '-device', 'edu'),
  c('-device', 'edu,id=a', '-device', 'edu,id=a'),
  c('-device', 'nosuch'),
  c('-device', 'intel-iommu,aw-bits=40'),
  c('-device', 'intel-iommu,caching-mode=maybe'),
  c('-device', 'intel-iommu,intremap=x'),
  c('-device', 'intel-iommu,device-iotlb=2'),
  c('-device', 'intel-iommu', '-device', 'intel-iommu'),
  c('-device', 'edu,addr=zz'),
  // other options
  c('-foo'),
  c('-m'),
  c('-device'),
  c('-display'),
  c('-no-hpet'),
  c('/nonexistent/disk.img'),
  c('-nographic'),
  c('-cpu', 'max'),
];

/** A documented difference: what QEMU 11.1 does, what vtemu does instead, and why. */
interface Difference {
  readonly line: Case;
  readonly qemu: Outcome;
  readonly vtemu: Outcome;
  readonly why: string;
}

const RUNS: Outcome = { runs: true, stderr: '' };
const refused = (stderr: string): Outcome => ({ runs: false, stderr });

/** Where vtemu supports less than QEMU 11.1 (or the host decides for QEMU). */
const DIFFERENCES: readonly Difference[] = [
  {
    line: c('-machine', 'pc'),
    qemu: RUNS,
    vtemu: refused('PROG: machine type "pc" is not modelled (vtemu models q35 only)\n'),
    why: 'vtemu models the q35 chipset only; i440fx (pc), isapc, microvm, nitro, none and x-remote are refused with one line',
  },
  {
    line: c('-machine', 'pc-q35-10.0'),
    qemu: RUNS,
    vtemu: refused('PROG: machine type "pc-q35-10.0" is not modelled (vtemu models q35 only)\n'),
    why: "older versioned q35 machines carry compat properties vtemu does not model; only q35 = pc-q35-11.1 (and vtemu's historical pc-q35-7.2) are accepted",
  },
  {
    line: c('-qtest', 'tcp:127.0.0.1:1'),
    qemu: refused('PROG: Failed to connect to \'127.0.0.1:1\': Connection refused\nPROG: Failed to initialize device for qtest: "tcp:127.0.0.1:1"\n'),
    vtemu: refused("PROG: -qtest tcp:127.0.0.1:1: 'tcp:127.0.0.1:1' is not a supported chardev (use stdio or unix:PATH[,server])\n"),
    why: 'vtemu front doors are stdio and unix sockets only',
  },
  {
    line: c('-device', 'e1000'),
    qemu: RUNS,
    vtemu: refused("PROG: -device e1000: 'e1000' is not a valid device model name\n"),
    why: 'vtemu models edu, intel-iommu and the test devices only (-device help lists them)',
  },
];

/** Host-dependent in QEMU (KVM access): vtemu runs without KVM either way. */
const KVM_LINES: readonly Case[] = [noAccel('-enable-kvm'), noAccel('-accel', 'kvm')];

/** The base arguments both programs get before the case's own. */
function baseArgs(k: Case): string[] {
  const hasMachine = k.args.includes('-machine') || k.args.includes('-M');
  return [...(hasMachine ? [] : ['-machine', 'q35']), ...(k.noAccel ? [] : ['-accel', 'qtest']), '-qtest', 'stdio', '-display', 'none', '-nodefaults'];
}

/** stderr as compared: qtest log lines dropped, the program name as PROG. */
function normalize(stderr: string, prog: string): string {
  return stderr
    .split('\n')
    .filter((l) => !/^\[[IRS] [+0-9.]+\]/.test(l))
    .join('\n')
    .replaceAll(`${prog}:`, 'PROG:');
}

/** Runs QEMU 11.1 on a command line: does it answer qtest, or exit? */
function runQemu(k: Case): Promise<Outcome> {
  const o = qemuOracle('11.1')!;
  return new Promise((resolve) => {
    const child = spawn(o.command, [...o.prefix, ...baseArgs(k), ...k.args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let runs = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (!runs && out.includes('\n')) {
        runs = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (d: string) => {
      err += d;
    });
    child.stdin.on('error', () => {});
    child.stdin.write('endianness\n');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ runs, stderr: runs ? '' : normalize(err, 'qemu-system-x86_64') });
    });
  });
}

/** Runs vtemu's command line in-process (parser, then machine builder), as the CLI does. */
function runVtemu(k: Case): Outcome {
  const parsed = parseCli([...baseArgs(k), ...k.args]);
  if (parsed.kind === 'exit') return { runs: false, stderr: normalize(parsed.stderr, 'vtemu') };
  const errs: string[] = [];
  const machine = buildMachine(parsed.config, (l) => errs.push(l));
  machine?.dispose();
  const stderr = errs.length ? normalize(errs.join('\n') + '\n', 'vtemu') : '';
  return machine ? { runs: true, stderr: '' } : { runs: false, stderr };
}

/** Runs `tasks` with at most `width` at once, keeping their order. */
async function pooled<T>(tasks: readonly (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

const label = (k: Case): string => `${k.noAccel ? '' : '[-accel qtest] '}${k.args.map((a) => (a === '' ? "''" : a)).join(' ')}`;

describe('command-line validation: vtemu accepts and refuses what QEMU 11.1 does', () => {
  it('the corpus has at least 40 lines, each distinct', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CORPUS.map(label)).size).toBe(CORPUS.length);
  });

  it.skipIf(!haveQemu)('every corpus line: same outcome and same stderr as QEMU 11.1 (program name aside)', async () => {
    const qemu = await pooled(CORPUS.map((k) => () => runQemu(k)), 4);
    const mismatches: string[] = [];
    CORPUS.forEach((k, i) => {
      const v = runVtemu(k);
      const q = qemu[i]!;
      if (v.runs !== q.runs || v.stderr !== q.stderr) {
        mismatches.push(`${label(k)}\n  qemu:  ${q.runs ? 'runs' : JSON.stringify(q.stderr)}\n  vtemu: ${v.runs ? 'runs' : JSON.stringify(v.stderr)}`);
      }
    });
    expect(mismatches.join('\n')).toBe('');
    // Both sides were exercised: some lines run, some are refused.
    expect(qemu.filter((o) => o.runs).length).toBeGreaterThan(10);
    expect(qemu.filter((o) => !o.runs).length).toBeGreaterThan(20);
  }, 120_000);

  it.skipIf(!haveQemu)('documented differences: QEMU 11.1 does what is written, vtemu refuses with one line', async () => {
    const qemu = await pooled(DIFFERENCES.map((d) => () => runQemu(d.line)), 4);
    DIFFERENCES.forEach((d, i) => {
      expect(qemu[i], `QEMU, ${label(d.line)} (${d.why})`).toEqual(d.qemu);
      expect(runVtemu(d.line), `vtemu, ${label(d.line)} (${d.why})`).toEqual(d.vtemu);
      expect(d.vtemu.stderr.trimEnd().split('\n'), 'one line').toHaveLength(1);
    });
  }, 60_000);

  it('KVM: vtemu runs without it (QEMU needs host KVM access, so its outcome depends on the host)', async () => {
    for (const k of KVM_LINES) expect(runVtemu(k), label(k)).toEqual(RUNS);
    if (!haveQemu) return;
    for (const k of KVM_LINES) {
      const q = await runQemu(k);
      // Either it runs (a KVM host) or it says why it cannot: never a parse error.
      if (!q.runs) expect(q.stderr, label(k)).toMatch(/KVM/);
    }
  });

  it('the spawned CLI gives the same answers as the in-process parser', () => {
    for (const k of [c('-m', '-1'), c('-smp', 'x'), c('-machine', 'q35,smm=bogus'), noAccel('-accel', 'nope', '-accel', 'nope2'), c('-m', '512,512')]) {
      const r = runCli([...baseArgs(k), ...k.args]);
      expect(r.code, label(k)).toBe(1);
      expect(normalize(r.stderr, 'vtemu'), label(k)).toBe(runVtemu(k).stderr);
    }
    const ok = runCli([...baseArgs(c('-m', '1.5G')), '-m', '1.5G'], 'endianness\n');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('OK little\n');
  });
});
