/**
 * Differential test (QEMU 11.1): what QEMU's tests/qtest/q35-test.c and
 * fw_cfg-test.c check, as qtest transcripts on QEMU and vtemu.
 *
 * MCH SMRAM: SMRAM (0x9D) / ESMRAMC (0x9E) / F_SMBASE (0x9C) writes over
 * CF8/CFC with their read-back, and memory reads/writes across the legacy
 * window 0xA0000, its high mirror 0xFEDA0000, the TSEG at the top of low RAM
 * (1/2/8 MiB and the extended size, with `-global mch.extended-tseg-mbytes`)
 * and SMBASE 0x30000, before and after D_LCK / the F_SMBASE lock, and after
 * system_reset.
 *
 * fw_cfg: the numbered items fw_cfg-test.c reads and the files
 * `etc/boot-fail-wait` / `etc/boot-menu-wait` (byte reads of 0x511 after a
 * selector write to 0x510), under `-uuid`, `-boot menu/reboot-timeout/
 * splash-time` and `-smp`, against QEMU's q35 and against QEMU's default
 * machine (pc-i440fx-11.1, what fw_cfg-test.c starts): their numbered items
 * and those files are the same (measured); the file directories differ
 * (pc has no etc/smi/*), so directory entries are compared with q35 only.
 * Known differences of vtemu's directory (SMBIOS tables are a placeholder,
 * no genroms/kvmvapic.bin) are left out of the comparison.
 *
 * vtemu runs in-process with the new MachineOptions fields (uuid, boot,
 * globals, smp), whatever the CLI does with the flags.  The TSEG size
 * cases run `-machine pc-q35-7.2` on both sides (its extended TSEG default
 * is 16 MiB); `q35` and `pc-q35-11.1` default to QEMU 11.1's 64 MiB, checked
 * too.
 */
import { describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { buildMachine, parseCli } from '../../src/cli.js';
import type { Machine, MachineOptions } from '../../src/machine/q35.js';
import { QtestServer } from '../../src/qtest/server.js';
import { makeHaltFirmware } from '../../src/guest/qtest-client.js';
import { ConfigError } from '../../src/machine/registry.js';
import { createMachine } from '../../src/machine/q35.js';
import { needQemu, qemuOracle, hex, LineSplitter, QemuRunner, runTranscript, firstDifference, type QtestRunner, type Step } from '../harness/index.js';
import { spawn } from 'node:child_process';

const haveQemu = needQemu('11.1', 'test/diff/q35-smram-fwcfg.test.ts');

/** vtemu in-process from QEMU-style arguments, the new options taken out as MachineOptions fields. */
class LocalVtemu implements QtestRunner {
  readonly name = 'vtemu';
  private readonly lines = new LineSplitter();
  private readonly server: QtestServer;
  readonly warnings: string[] = [];
  readonly machine: Machine;

  constructor(args: readonly string[]) {
    const rest: string[] = [];
    const globals: string[] = [];
    const boot: string[] = [];
    let uuid: string | undefined;
    let smp: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      const v = args[i + 1]!;
      if (a === '-global') globals.push(v);
      else if (a === '-boot') boot.push(v);
      else if (a === '-uuid') uuid = v;
      else if (a === '-smp') smp = v;
      else {
        rest.push(a);
        continue;
      }
      i++;
    }
    const [dir, bios] = makeHaltFirmware();
    try {
      const parsed = parseCli(['-accel', 'qtest', '-bios', bios, ...rest]);
      if (parsed.kind !== 'run') throw new Error(parsed.stderr);
      const machine: MachineOptions = { ...parsed.config.machine, globals, boot, ...(uuid !== undefined ? { uuid } : {}), ...(smp !== undefined ? { smp } : {}) };
      const errs: string[] = [];
      const m = buildMachine({ ...parsed.config, machine }, (l) => errs.push(l));
      if (!m) throw new Error(errs.join('\n'));
      this.warnings.push(...errs);
      this.machine = m;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    this.server = new QtestServer(this.machine, (t) => this.lines.push(t));
  }

  command(line: string): Promise<string> {
    this.server.handleLine(line);
    return this.lines.next(1000);
  }

  takeAsync(): string[] {
    return this.lines.takeAsync();
  }

  async wait(): Promise<void> {}

  async systemReset(): Promise<void> {
    this.machine.reset();
  }

  async close(): Promise<void> {
    this.server.close();
    this.machine.dispose();
  }
}

/** Runs `steps` on QEMU 11.1 (`qemuArgs`) and vtemu (`args`); returns the first difference or null. */
async function diff(args: readonly string[], steps: readonly Step[], qemuArgs: readonly string[] = args): Promise<string | null> {
  const v = new LocalVtemu(args);
  const q = QemuRunner.start(qemuArgs, { qmp: steps.some((s) => typeof s === 'object' && 'reset' in s) });
  try {
    const [tq, tv] = await Promise.all([runTranscript(q, steps), runTranscript(v, steps)]);
    return firstDifference(tq, tv, 3, [q.name, 'vtemu']);
  } finally {
    await Promise.all([q.close(), v.close()]);
  }
}

// ---- MCH config space over CF8/CFC ----

const MCH = { FSmbase: 0x9c, Smram: 0x9d, Esmramc: 0x9e, ExtTseg: 0x50 } as const;
const cfgSel = (reg: number): string => `outl 0xcf8 ${hex((0x8000_0000 | (reg & 0xfc)) >>> 0)}`;
const rb = (reg: number): string[] => [cfgSel(reg), `inb ${hex(0xcfc + (reg & 3))}`];
const rw = (reg: number): string[] => [cfgSel(reg), `inw ${hex(0xcfc + (reg & 2))}`];
const wb = (reg: number, v: number): string[] => [cfgSel(reg), `outb ${hex(0xcfc + (reg & 3))} ${hex(v)}`];
const ww = (reg: number, v: number): string[] => [cfgSel(reg), `outw ${hex(0xcfc + (reg & 2))} ${hex(v)}`];

const MIB = 0x10_0000;
const RAM_MB = 128;
const TOP = RAM_MB * MIB;

/** Writes a marker byte at `a` and reads it back, with wider reads around it. */
const probe = (a: number, v: number): string[] => [`writeb ${hex(a)} ${hex(v)}`, `readb ${hex(a)}`, `readw ${hex(a & ~1)}`, `readl ${hex(a & ~3)}`, `readq ${hex(a & ~7)}`];

/** q35-test.c test_tseg_size, widened: TSEG_SZ field, T_EN, G_SMRAME|D_CLS, D_LCK, probes around the boundary. */
function tsegSteps(tsegSz: number, expectMb: number): Step[] {
  const below = TOP - expectMb * MIB - 1;
  const around = [below, below + 1, TOP - 1, TOP - 2 * MIB, TOP - 8 * MIB - 1, TOP - 8 * MIB, TOP - 16 * MIB];
  return [
    ...rb(MCH.Smram),
    ...rb(MCH.Esmramc),
    ...rw(MCH.ExtTseg),
    ...around.flatMap((a, i) => [`writeb ${hex(a)} ${hex(0x40 + i)}`]),
    ...wb(MCH.Esmramc, 0x38 | (tsegSz << 1) | 0x01),
    ...rb(MCH.Esmramc),
    ...around.map((a) => `readb ${hex(a)}`),
    ...wb(MCH.Smram, 0x08 | 0x20 | 0x02),
    ...rb(MCH.Smram),
    ...around.flatMap((a, i) => probe(a, 0x80 + i)),
    `read ${hex(below - 2)} 6`,
    ...wb(MCH.Smram, 0x08 | 0x20 | 0x10 | 0x02),
    ...rb(MCH.Smram),
    // Locked: neither register changes any more.
    ...wb(MCH.Esmramc, 0x00),
    ...wb(MCH.Smram, 0x40),
    ...rb(MCH.Esmramc),
    ...rb(MCH.Smram),
    ...around.flatMap((a, i) => probe(a, 0xc0 + i)),
    // The query value of EXT_TSEG_MBYTES reads back the size.
    ...ww(MCH.ExtTseg, 0x1234),
    ...rw(MCH.ExtTseg),
    ...ww(MCH.ExtTseg, 0xffff),
    ...rw(MCH.ExtTseg),
    { reset: true },
    ...rb(MCH.Smram),
    ...rb(MCH.Esmramc),
    ...rw(MCH.ExtTseg),
    ...around.map((a) => `readb ${hex(a)}`),
  ];
}

/** q35-test.c test_smram_lock plus the memory views of every D_OPEN/H_SMRAME combination. */
const LEGACY_STEPS: Step[] = [
  ...rb(MCH.Smram),
  ...rb(MCH.Esmramc),
  ...probe(0xa0000, 0x11),
  ...probe(0xbfffc, 0x12),
  'readl 0xfeda0000',
  ...wb(MCH.Smram, 0x40),
  ...rb(MCH.Smram),
  ...probe(0xa0000, 0x21),
  'readl 0xfeda0000',
  ...wb(MCH.Esmramc, 0x80),
  ...rb(MCH.Esmramc),
  ...probe(0xa0000, 0x31),
  'readl 0xfeda0000',
  'writeb 0xfeda0001 0x32',
  'readl 0xfeda0000',
  'readl 0xa0000',
  'readb 0xfedbffff',
  'readb 0xfedc0000',
  ...wb(MCH.Smram, 0x00),
  ...probe(0xa0000, 0x41),
  'readl 0xfeda0000',
  // Every SMRAM/ESMRAMC bit, then the lock.
  ...wb(MCH.Smram, 0xff),
  ...rb(MCH.Smram),
  ...wb(MCH.Smram, 0x40),
  ...rb(MCH.Smram),
  ...wb(MCH.Esmramc, 0xff),
  ...rb(MCH.Esmramc),
  ...probe(0xa0000, 0x51),
  'readl 0xfeda0000',
  { reset: true },
  ...rb(MCH.Smram),
  ...rb(MCH.Esmramc),
  'readl 0xa0000',
  ...wb(MCH.Smram, 0x40),
  ...rb(MCH.Smram),
  ...wb(MCH.Smram, 0x00),
  ...rb(MCH.Smram),
];

/** q35-test.c test_smram_smbase_lock (all 256 values before and after the lock, trimmed to a sample here and there). */
const SMBASE = 0x30000;
const SMBASE_VALUES = [0x00, 0x10, 0x7f, 0x80, 0x04, 0x05];
const SMBASE_STEPS: Step[] = [
  ...rb(MCH.FSmbase),
  ...probe(SMBASE, 0x32),
  ...SMBASE_VALUES.flatMap((v) => [...wb(MCH.FSmbase, v), ...rb(MCH.FSmbase)]),
  ...wb(MCH.FSmbase, 0xff),
  ...rb(MCH.FSmbase),
  ...probe(SMBASE + 0x1ffff, 0x33),
  ...wb(MCH.FSmbase, 0x02),
  ...rb(MCH.FSmbase),
  ...probe(SMBASE, 0x34),
  ...probe(SMBASE + 0x1fffc, 0x35),
  ...probe(SMBASE - 4, 0x36),
  ...probe(SMBASE + 0x20000, 0x37),
  `read ${hex(SMBASE - 2)} 4`,
  ...[...SMBASE_VALUES, 0xff].flatMap((v) => [...wb(MCH.FSmbase, v), ...rb(MCH.FSmbase), `writeb ${hex(SMBASE)} 0x32`, `readb ${hex(SMBASE)}`]),
  { reset: true },
  ...rb(MCH.FSmbase),
  `readb ${hex(SMBASE)}`,
  ...probe(SMBASE, 0x23),
  // After reset the negotiation starts over.
  ...wb(MCH.FSmbase, 0x02),
  ...rb(MCH.FSmbase),
  ...wb(MCH.FSmbase, 0xff),
  ...wb(MCH.FSmbase, 0x00),
  ...rb(MCH.FSmbase),
  ...probe(SMBASE, 0x24),
];

/** F_SMBASE values QEMU 11.1 treats differently before the negotiation (0x01 negotiates too; a lock bit locks at once). */
const SMBASE_EARLY: readonly (readonly number[])[] = [[0x01, 0x00, 0x10, 0x03], [0x01, 0xff], [0x02, 0x00], [0xfe], [0x10, 0x00, 0x11, 0x05]];
const SMBASE_EARLY_STEPS: Step[] = SMBASE_EARLY.flatMap((seq) => [
  ...seq.flatMap((v) => [...wb(MCH.FSmbase, v), ...rb(MCH.FSmbase), `readb ${hex(SMBASE)}`]),
  { reset: true } as Step,
  ...rb(MCH.FSmbase),
]);

/** Without the feature (smbase-smram=off) F_SMBASE is a plain register (q35-test.c test_without_smram_base). */
const NO_SMBASE_STEPS: Step[] = [...[0x00, 0x01, 0x02, 0x55, 0xff].flatMap((v) => [...wb(MCH.FSmbase, v), ...rb(MCH.FSmbase), ...probe(SMBASE, v ^ 0x5a)])];

// ---- fw_cfg over ports 0x510/0x511 ----

/** Reads `n` bytes of the current item through the data port. */
async function readItem(r: QtestRunner, key: number, n: number): Promise<string> {
  await r.command(`outw 0x510 ${hex(key)}`);
  let out = '';
  for (let i = 0; i < n; i++) out += Number((await r.command('inb 0x511')).split(' ')[1]).toString(16).padStart(2, '0');
  return out;
}

/** Files whose directory entry vtemu does not model like QEMU (placeholder SMBIOS, no option ROM). */
const UNMODELLED_FILES = new Set(['etc/smbios/smbios-tables', 'genroms/kvmvapic.bin']);

interface FwCfgView {
  readonly items: Record<string, string>;
  readonly dir: string[];
  readonly files: Record<string, string>;
}

/** What fw_cfg-test.c reads, plus the directory (name@selector:size) and the boot files' contents. */
async function fwCfgView(r: QtestRunner): Promise<FwCfgView> {
  const items: Record<string, string> = {};
  for (const [name, key, n] of [
    ['signature', 0x00, 4],
    ['id', 0x01, 4],
    ['uuid', 0x02, 16],
    ['ram_size', 0x03, 8],
    ['nographic', 0x04, 2],
    ['nb_cpus', 0x05, 2],
    ['boot_menu', 0x0e, 2],
    ['max_cpus', 0x0f, 2],
  ] as const) {
    items[name] = await readItem(r, key, n);
  }
  const maxCpus = parseInt(items['max_cpus']!.slice(2, 4) + items['max_cpus']!.slice(0, 2), 16);
  items['numa'] = await readItem(r, 0x0d, 8 * (1 + maxCpus));
  const count = parseInt(await readItem(r, 0x19, 4), 16);
  const raw = (await readItem(r, 0x19, 4 + 64 * count)).slice(8);
  const dir: string[] = [];
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const e = raw.slice(i * 128, (i + 1) * 128);
    const size = parseInt(e.slice(0, 8), 16);
    const select = parseInt(e.slice(8, 12), 16);
    const name = Buffer.from(e.slice(16), 'hex').toString('latin1').replace(/\0.*$/s, '');
    if (!UNMODELLED_FILES.has(name)) dir.push(`${name}@${hex(select)}:${size}`);
    if (name === 'etc/boot-fail-wait' || name === 'etc/boot-menu-wait') files[name] = await readItem(r, select, size);
  }
  return { items, dir, files };
}

async function fwCfgOf(r: QtestRunner): Promise<FwCfgView> {
  try {
    return await fwCfgView(r);
  } finally {
    await r.close();
  }
}

/** fw_cfg scenarios: QEMU-style options. */
const FW_CFG_CASES: readonly (readonly string[])[] = [
  [],
  ['-uuid', '4600cb32-38ec-4b2f-8acb-81c6ea54f2d8'],
  ['-uuid', '4600CB32-38EC-4B2F-8ACB-81C6EA54F2D8'],
  ['-boot', 'menu=on'],
  ['-boot', 'menu=off,splash-time=0'],
  ['-boot', 'reboot-timeout=15'],
  ['-boot', 'reboot-timeout=-1'],
  ['-boot', 'splash-time=12'],
  ['-boot', 'menu=on,reboot-timeout=0x10,splash-time=65535', '-boot', 'reboot-timeout=65535'],
  ['-boot', 'order=cdn,once=d,strict=on'],
  ['-smp', '4'],
  ['-smp', '3,maxcpus=8'],
  ['-smp', '6,sockets=2,cores=3'],
  ['-smp', '8,sockets=2,dies=2,modules=2'],
  ['-smp', '1,maxcpus=40,sockets=2,cores=5,threads=4'],
  ['-m', '1G', '-smp', 'cpus=2'],
];

/** Bad options: QEMU's stderr line(s) and vtemu's ConfigError must agree. */
const ERROR_CASES: readonly (readonly string[])[] = [
  ['-uuid', '4600cb32-38ec-4b2f-8acb-81c6ea54f2d'],
  ['-uuid', '4600cb32x38ec-4b2f-8acb-81c6ea54f2d8'],
  ['-uuid', '4600cb32-38ec-4b2f-8acb-81c6ea54f2dg'],
  ['-boot', 'menu=zz'],
  ['-boot', 'foo=1'],
  ['-boot', 'foo=1,menu=zz'],
  ['-boot', 'reboot-timeout=65536'],
  ['-boot', 'reboot-timeout=-2'],
  ['-boot', 'reboot-timeout=zz'],
  ['-boot', 'reboot-timeout=5 '],
  ['-boot', 'splash-time=-1'],
  ['-boot', 'splash-time=65536'],
  ['-boot', 'reboot-timeout=99999,splash-time=99999'],
  ['-boot', 'order=x'],
  ['-boot', 'cc'],
  ['-boot', 'once=x,order=y'],
  ['-boot', 'menu'],
  ['-boot', 'strict=zz,reboot-timeout=zz'],
  ['-smp', '0'],
  ['-smp', 'maxcpus=0'],
  ['-smp', 'cpus=2,sockets=3'],
  ['-smp', '2,cores=4'],
  ['-smp', '4,maxcpus=2'],
  ['-smp', '5000'],
  ['-smp', '4,clusters=2'],
  ['-smp', '4,drawers=2,books=2'],
  ['-smp', '256'],
  ['-smp', '195,sockets=3,cores=65'],
  ['-machine', 'pc-q35-7.2', '-smp', '1,maxcpus=300'],
  ['-global', 'mch.extended-tseg-mbytes=4096'],
  ['-global', 'mch.extended-tseg-mbytes=65536'],
  ['-global', 'mch.extended-tseg-mbytes=abc'],
  ['-global', 'mch.extended-tseg-mbytes=-1'],
  ['-global', 'mch.foo=1'],
  ['-global', 'mch.smbase-smram=zz'],
  ['-global', 'driver=mch,property=extended-tseg-mbytes,value=zz'],
  ['-global', 'driver=mch,property=x'],
  ['-global', 'driver=mch,property=extended-tseg-mbytes,value=32,foo=2'],
  ['-global', 'mch.=1'],
  ['-global', 'noequals'],
  ['-global', 'mch.extended-tseg-mbytes=5000', '-global', 'mch.foo=1'],
  ['-global', 'mch.extended-tseg-mbytes=32,,x', '-global', 'mch.extended-tseg-mbytes=32'],
  ['-global', 'edu.dma_mask=zz', '-device', 'edu'],
  ['-global', 'edu.dma_mask=5 ', '-device', 'edu,dma_mask=5'],
  ['-global', 'edu.foo=1', '-device', 'edu,id=e1'],
  ['-global', 'intel-iommu.aw-bits=50', '-device', 'intel-iommu'],
  ['-global', 'intel-iommu.aw-bits=256', '-device', 'intel-iommu'],
  ['-global', 'intel-iommu.caching-mode=1', '-device', 'intel-iommu'],
  ['-global', 'intel-iommu.eim=zz', '-device', 'intel-iommu'],
];

/** Options that run, with the warnings both print. */
const WARNING_CASES: readonly (readonly string[])[] = [
  ['-global', 'intel-iommu.aw-bits=48'],
  ['-global', 'intel-iommu.aw-bits=48', '-device', 'intel-iommu,aw-bits=39'],
  ['-global', 'edu.dma_mask=zz'],
  ['-global', 'mch.extended-tseg-mbytes=32', '-global', 'ICH9-LPC.disable_s3=1'],
  ['-smp', '2,threads=2'],
];

/**
 * Known differences: a global for a type name vtemu does not know is
 * accepted silently (QEMU knows every QOM type and warns about names that
 * are none; vtemu cannot tell `foo` from a real type it does not model),
 * and the properties of the ICH9 functions are not checked (QEMU refuses
 * an unknown one when it creates the device).
 */
const DIFFERENCES: readonly { readonly args: readonly string[]; readonly qemu: string }[] = [
  { args: ['-global', 'foo.bar=zz'], qemu: 'PROG: warning: global foo.bar has invalid class name\n' },
  { args: ['-global', 'ICH9-LPC.foo=1'], qemu: "PROG: can't apply global ICH9-LPC.foo=1: Property 'ICH9-LPC.foo' not found\n" },
];

/** QEMU 11.1's stderr for `args` (qtest log off) and whether it ran (answered a qtest command; then it is stopped). */
function qemuStderr(args: readonly string[]): Promise<{ ran: boolean; stderr: string }> {
  const o = qemuOracle('11.1')!;
  const hasMachine = args.includes('-machine');
  const child = spawn(o.command, [...o.prefix, ...(hasMachine ? [] : ['-machine', 'q35']), '-accel', 'qtest', '-qtest', 'stdio', '-qtest-log', '/dev/null', '-display', 'none', '-nodefaults', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  let ran = false;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    if (!ran && d.includes('OK')) {
      ran = true;
      child.kill('SIGTERM');
    }
  });
  child.stdin.on('error', () => {});
  child.stdin.write('endianness\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ ran, stderr: err.replaceAll('qemu-system-x86_64:', 'PROG:') });
    }),
  );
}

/** vtemu's outcome for `args`: the CLI's error lines or its warnings, program name as PROG. */
function vtemuStderr(args: readonly string[]): { ran: boolean; stderr: string } {
  const text = (lines: readonly string[]): string => lines.map((l) => l + '\n').join('').replaceAll('vtemu:', 'PROG:');
  try {
    const v = new LocalVtemu(args);
    void v.close();
    return { ran: true, stderr: text(v.warnings) };
  } catch (e) {
    return { ran: false, stderr: text([(e as Error).message]) };
  }
}

describe('q35 MCH SMRAM / TSEG / SMBASE views against QEMU 11.1', () => {
  const sizes: readonly [string, number, number, string[]][] = [
    ['1 MiB', 0, 1, []],
    ['2 MiB', 1, 2, []],
    ['8 MiB', 2, 8, []],
    ['extended, pc-q35-7.2 default 16 MiB', 3, 16, []],
    ['extended, 8 MiB', 3, 8, ['-global', 'mch.extended-tseg-mbytes=8']],
    ['extended, 1 MiB (driver= form)', 3, 1, ['-global', 'driver=mch,property=extended-tseg-mbytes,value=1']],
    ['extended, 0 (none)', 3, 0, ['-global', 'mch.extended-tseg-mbytes=0']],
    ['extended, 32 MiB (later global wins)', 3, 32, ['-global', 'mch.extended-tseg-mbytes=4', '-global', 'mch.extended-tseg-mbytes=0x20']],
  ];
  for (const [label, field, mb, extra] of sizes) {
    it.skipIf(!haveQemu)(`TSEG ${label}: black hole, lock and reset as QEMU 11.1`, async () => {
      const args = ['-machine', 'pc-q35-7.2', '-m', `${RAM_MB}M`, ...extra];
      expect(await diff(args, tsegSteps(field, mb))).toBeNull();
    });
  }

  it.skipIf(!haveQemu)('TSEG extended on -machine pc-q35-11.1 and q35: 64 MiB', async () => {
    for (const machine of ['pc-q35-11.1', 'q35']) {
      const args = ['-machine', machine, '-m', `${RAM_MB}M`];
      expect(await diff(args, tsegSteps(3, 64)), machine).toBeNull();
    }
  });

  it.skipIf(!haveQemu)('TSEG with RAM split around the PCI hole (-m 4G): at the top of the 2 GiB below 4 GiB', async () => {
    const below = 0x8000_0000;
    const steps: Step[] = [
      ...probe(below - MIB - 1, 0x61),
      ...wb(MCH.Esmramc, 0x38 | 0x01),
      ...wb(MCH.Smram, 0x0a),
      ...probe(below - MIB - 1, 0x62),
      ...probe(below - MIB, 0x63),
      ...probe(below - 1, 0x64),
      ...probe(0x1_0000_0000, 0x65),
    ];
    expect(await diff(['-m', '4G'], steps)).toBeNull();
  });

  it.skipIf(!haveQemu)('legacy SMRAM window: open, closed, high mirror, lock, reset', async () => {
    expect(await diff([], LEGACY_STEPS)).toBeNull();
  });

  it.skipIf(!haveQemu)('the closed window shows the PCI view over RAM: an edu BAR at 0xA0000', async () => {
    const edu = 0x08;
    const eduCfg = (reg: number): string => `outl 0xcf8 ${hex((0x8000_0000 | (edu << 8) | reg) >>> 0)}`;
    const steps: Step[] = [
      ...probe(0xa0000, 0x71),
      eduCfg(0x10),
      'outl 0xcfc 0xa0000',
      eduCfg(0x04),
      'outw 0xcfc 0x2',
      'readl 0xa0000',
      'readl 0xa0004',
      ...wb(MCH.Smram, 0x40),
      'readl 0xa0000',
      ...wb(MCH.Esmramc, 0x80),
      'readl 0xa0000',
      'readl 0xfeda0000',
    ];
    expect(await diff(['-device', 'edu'], steps)).toBeNull();
  });

  it.skipIf(!haveQemu)('SMBASE: negotiation, lock, black hole at 0x30000, reset', async () => {
    expect(await diff([], SMBASE_STEPS)).toBeNull();
  });

  it.skipIf(!haveQemu)('SMBASE: values written before the negotiation', async () => {
    expect(await diff([], SMBASE_EARLY_STEPS)).toBeNull();
  });

  it.skipIf(!haveQemu)('smbase-smram=off: F_SMBASE is a plain register, RAM stays visible', async () => {
    expect(await diff(['-global', 'mch.smbase-smram=off'], NO_SMBASE_STEPS)).toBeNull();
  });
});

describe('fw_cfg items of -uuid / -boot / -smp against QEMU 11.1', () => {
  for (const opts of FW_CFG_CASES) {
    it.skipIf(!haveQemu)(`${opts.join(' ') || '(no options)'}: items as QEMU q35 and QEMU's default machine`, async () => {
      const mem = opts.includes('-m') ? [] : ['-m', '128M'];
      const [v, q35, pc] = await Promise.all([fwCfgOf(new LocalVtemu([...mem, ...opts])), fwCfgOf(QemuRunner.start([...mem, ...opts])), fwCfgOf(QemuRunner.start(['-machine', 'pc', ...mem, ...opts]))]);
      expect(v.items).toEqual(q35.items);
      expect(v.items).toEqual(pc.items);
      expect(v.files).toEqual(q35.files);
      expect(v.files).toEqual(pc.files);
      expect(v.dir).toEqual(q35.dir);
    });
  }
});

describe('option errors and warnings against QEMU 11.1', () => {
  it.skipIf(!haveQemu)('bad -uuid / -boot / -smp / -global: the same message as QEMU 11.1', async () => {
    const mismatches: string[] = [];
    for (const args of ERROR_CASES) {
      const q = await qemuStderr(args);
      const v = vtemuStderr(args);
      if (q.ran || v.ran || q.stderr !== v.stderr) mismatches.push(`${args.join(' ')}\n  qemu:  ${q.ran ? '(runs)' : q.stderr}  vtemu: ${v.ran ? '(runs)' : v.stderr}`);
    }
    expect(mismatches).toEqual([]);
  });

  it.skipIf(!haveQemu)('options that run: the same warnings as QEMU 11.1', async () => {
    const mismatches: string[] = [];
    for (const args of WARNING_CASES) {
      const q = await qemuStderr(args);
      const v = vtemuStderr(args);
      if (!q.ran || !v.ran || q.stderr !== v.stderr) mismatches.push(`${args.join(' ')}\n  qemu:  ${q.ran ? q.stderr : '(refused) ' + q.stderr}  vtemu: ${v.ran ? v.stderr : '(refused) ' + v.stderr}`);
    }
    expect(mismatches).toEqual([]);
  });
});

describe('documented differences', () => {
  it('vtemu accepts globals for types it does not know, silently', () => {
    for (const d of DIFFERENCES) expect(vtemuStderr(d.args)).toEqual({ ran: true, stderr: '' });
  });

  it.skipIf(!haveQemu)('QEMU 11.1 still answers them as documented', async () => {
    for (const d of DIFFERENCES) expect((await qemuStderr(d.args)).stderr).toBe(d.qemu);
  });
});

describe('option errors without the oracle (always run)', () => {
  it('createMachine throws ConfigError with QEMU 11.1 wording', () => {
    const cases: [MachineOptions, string][] = [
      [{ uuid: 'x' }, '-uuid x: failed to parse UUID string: wrong format'],
      [{ boot: ['menu=zz'] }, "Parameter 'boot.menu' expects 'on' or 'off'"],
      [{ smp: '256' }, 'APIC ID 255 requires x2APIC feature in CPU\nTry x2apic=on in -cpu.'],
      [{ globals: ['mch.extended-tseg-mbytes=4096'] }, 'invalid extended-tseg-mbytes value: 4096'],
      [{ globals: ['edu.foo=1'], devices: ['edu'] }, "-device edu: can't apply global edu.foo=1: Property 'edu.foo' not found"],
    ];
    for (const [o, line] of cases) {
      let err: unknown;
      try {
        createMachine({ ramBackend: 'ts', ...o }).dispose();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).line).toBe(line);
    }
  });
});
