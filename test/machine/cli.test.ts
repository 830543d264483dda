/**
 * The `vtemu` command line, spawned: QEMU-worded errors with exit code 1
 * (intel-iommu's validation compared with QEMU 11.1's, message by message),
 * the deprecated intel-iommu property names (one warning line each),
 * `-device help` / `-device TYPE,help` (intel-iommu identical to QEMU 11.1
 * but for vtemu's extensions; edu identical to QEMU 7.2, whose PCIDevice
 * property set it lists), machine files, -trace output, and the in-process
 * parser.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseCli } from '../../src/cli.js';
import { listDeviceTypes } from '../../src/machine/registry.js';
import '../../src/machine/builtins.js';
import { needQemu, qemuOracle, REPO_ROOT, runCli, VtemuCliRunner, type QemuVersion } from '../harness/index.js';

const qemu = needQemu('11.1', 'test/machine/cli.test.ts');
const qemu72 = needQemu('7.2', 'test/machine/cli.test.ts (edu help: QEMU 7.2 only)');

/** Runs QEMU `version` with `args` (no machine started: help, or a refused configuration). */
function runQemu(version: QemuVersion, args: readonly string[]): { code: number; stdout: string; stderr: string } {
  const o = qemuOracle(version)!;
  const r = spawnSync(o.command, [...o.prefix, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** intel-iommu configurations QEMU 11.1 refuses, each with its message (checked against 11.1 below). */
const IOMMU_REFUSED: [string, string][] = [
  ['intel-iommu,aw-bits=40', 'Legacy mode: supported values for aw-bits are: 39, 48'],
  ['intel-iommu,aw-bits=0', 'Legacy mode: supported values for aw-bits are: 39, 48'],
  ['intel-iommu,aw-bits=300', "Parameter 'aw-bits' expects uint8_t"],
  ['intel-iommu,eim=x', "Parameter 'eim' does not accept value 'x'"],
  ['intel-iommu,intremap=off,eim=on', 'eim=on cannot be selected without intremap=on'],
  ['intel-iommu,fsts=on', 'fsts is only available in scalable mode'],
  ['intel-iommu,fsts=maybe', "Parameter 'fsts' expects 'on' or 'off'"],
  ['intel-iommu,scalable-mode=on,aw-bits=57', 'Scalable mode(fsts=off): supported values for aw-bits are: 39, 48'],
  ['intel-iommu,scalable-mode=on,fsts=on,aw-bits=39', 'Scalable mode(fsts=on): supported value for aw-bits is: 48'],
  ['intel-iommu,pasid-bits=8', 'Need to set scalable mode for PASID'],
  ['intel-iommu,pasid-bits=256', "Parameter 'pasid-bits' expects uint8_t"],
  ['intel-iommu,scalable-mode=on,pasid-bits=21', 'PASID width 21 exceeds Max PASID Width 20 allowed in PCI spec'],
  ['intel-iommu,svm=on', 'Need to set device IOTLB for svm'],
  ['intel-iommu,svm=on,device-iotlb=on', 'Need to set fsts for svm'],
  ['intel-iommu,svm=on,device-iotlb=on,dma-translation=off', 'Need to set fsts for svm'],
  ['intel-iommu,svm=on,device-iotlb=on,scalable-mode=on,fsts=on,dma-translation=off', 'Need to set dma-translation for svm'],
  ['intel-iommu,svm=on,device-iotlb=on,scalable-mode=on,fsts=on', 'Need to set PASID support for svm'],
  ['intel-iommu,nosuch=1', "Property 'intel-iommu.nosuch' not found"],
];

const ERRORS: [string[], string][] = [
  [['-foo'], 'vtemu: -foo: invalid option\n'],
  [['-m'], 'vtemu: -m: requires an argument\n'],
  [['-device'], 'vtemu: -device: requires an argument\n'],
  [['-device', 'edu,foo=1'], "vtemu: -device edu,foo=1: Property 'edu.foo' not found\n"],
  [['-device', 'nosuch'], "vtemu: -device nosuch: 'nosuch' is not a valid device model name\n"],
  [['-device', 'edu,addr=zz'], "vtemu: -device edu,addr=zz: Property 'edu.addr' doesn't take value 'zz'\n"],
  [['-device', 'edu,multifunction=maybe'], "vtemu: -device edu,multifunction=maybe: Parameter 'multifunction' expects 'on' or 'off'\n"],
  [['-device', 'edu,dma_mask=abc'], "vtemu: -device edu,dma_mask=abc: Parameter 'dma_mask' expects integer\n"],
  ...IOMMU_REFUSED.map(([arg, message]): [string[], string] => [['-device', arg], `vtemu: -device ${arg}: ${message}\n`]),
  [['-device', 'intel-iommu,x-pasid-mode=on'], "vtemu: -device intel-iommu,x-pasid-mode=on: warning: intel-iommu property 'x-pasid-mode' is deprecated (QEMU 11.1 name: 'pasid-bits'); use pasid-bits=8\nvtemu: -device intel-iommu,x-pasid-mode=on: Need to set scalable mode for PASID\n"],
  [['-device', 'intel-iommu,x-pasid-mode=maybe'], "vtemu: -device intel-iommu,x-pasid-mode=maybe: Parameter 'x-pasid-mode' expects 'on' or 'off'\n"],
  [['-device', 'intel-iommu', '-device', 'intel-iommu'], 'vtemu: -device intel-iommu: QEMU does not support multiple vIOMMUs for x86 yet.\n'],
  [['-device', 'edu,id=a', '-device', 'edu,id=a'], "vtemu: -device edu,id=a: Duplicate ID 'a' for device\n"],
  [['-device', 'edu,bus=nope'], "vtemu: -device edu,bus=nope: Bus 'nope' not found\n"],
  [['-machine', 'q35,foo=1'], "vtemu: Property 'pc-q35-11.1-machine.foo' not found\n"],
  [['-machine', 'pc'], 'vtemu: machine type "pc" is not modelled (vtemu models q35 only)\n'],
  [['-accel', 'hax'], 'vtemu: -accel hax: invalid accelerator hax\n'],
  [['-qtest', 'tcp:1234'], "vtemu: -qtest tcp:1234: 'tcp:1234' is not a supported chardev (use stdio or unix:PATH[,server])\n"],
  [['disk.img'], "vtemu: disk.img: Could not open 'disk.img': No such file or directory\n"],
  [['-bios', '/nonexistent.bin'], "vtemu: could not load PC BIOS '/nonexistent.bin'\n"],
];

describe('vtemu CLI errors (spawned)', () => {
  it.each(ERRORS)('%j', (args, stderr) => {
    const r = runCli(args);
    expect(r.stderr).toBe(stderr);
    expect(r.code).toBe(1);
  });

  it('warns about short-form booleans before the error, like QEMU', () => {
    const r = runCli(['-device', 'edu,foo']);
    expect(r.stderr).toBe(
      "vtemu: -device edu,foo: warning: short-form boolean option 'foo' deprecated\nPlease use foo=on instead\nvtemu: -device edu,foo: Property 'edu.foo' not found\n",
    );
    expect(r.code).toBe(1);
  });

  it.skipIf(!qemu)('intel-iommu: every refusal is QEMU 11.1\'s, word for word', () => {
    for (const [arg] of IOMMU_REFUSED) {
      const q = runQemu('11.1', ['-machine', 'q35', '-accel', 'qtest', '-display', 'none', '-nodefaults', '-device', arg]);
      const v = runCli(['-device', arg]);
      expect(q.code, arg).toBe(1);
      expect(v.code, arg).toBe(1);
      expect(v.stderr.replace(/^vtemu: /gm, ''), arg).toBe(q.stderr.replace(/^qemu-system-x86_64: /gm, ''));
    }
  });

  it('the names QEMU 11.1 dropped still work, with one warning line each', () => {
    const args = ['-device', 'intel-iommu,x-scalable-mode=off,x-flts=off,x-pasid-mode=off,pt=off,dma-drain=off,x-buggy-eim=on', '-qtest', 'stdio', '-qtest-log', 'none'];
    const r = runCli(args, 'readq 0xfed90008\nreadq 0xfed90010\n');
    expect(r.code).toBe(0);
    // CAP without DRD/DWD, ECAP without PT and with EIM: the 7.2 meanings of dma-drain=off, pt=off, x-buggy-eim=on.
    expect(r.stdout).toBe('OK 0x8012008c222f0606\nOK 0x0000000000f00f1a\n');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.map((l) => /property '([^']+)' is deprecated/.exec(l)?.[1])).toEqual(['x-scalable-mode', 'x-flts', 'x-pasid-mode', 'pt', 'dma-drain', 'x-buggy-eim']);
    for (const l of lines) expect(l).toMatch(/^vtemu: -device intel-iommu,x-scalable-mode=off,[^ ]*: warning: intel-iommu property '[^']+' is deprecated \(QEMU 11\.1 /);
    // QEMU 11.1 itself rejects them.
    if (!qemu) return;
    for (const name of ['x-scalable-mode', 'x-flts', 'x-pasid-mode', 'pt', 'dma-drain', 'x-buggy-eim']) {
      const q = runQemu('11.1', ['-machine', 'q35', '-accel', 'qtest', '-display', 'none', '-nodefaults', '-device', `intel-iommu,${name}=off`]);
      expect(q.stderr, name).toBe(`qemu-system-x86_64: -device intel-iommu,${name}=off: Property 'intel-iommu.${name}' not found\n`);
    }
  });

  it('QEMU-only options are accepted and ignored', () => {
    const r = runCli(['-display', 'none', '-nodefaults', '-S', '-no-reboot', '-serial', 'none', '-monitor', 'none', '-qtest', 'stdio'], 'endianness\n');
    expect(r.stdout).toBe('OK little\n');
    expect(r.code).toBe(0);
  });
});

describe('-device help', () => {
  // edu lists QEMU 7.2's PCIDevice properties (src/machine/pci-common-props.ts): QEMU 11.1 changed
  // that set (busnr, sriov-pf, x-max-bounce-buffer-size, ...) and its bool layout, outside the VT-d oracle.
  it('-device edu,help matches QEMU 7.2 byte for byte (QEMU 7.2 only: PCIDevice properties)', () => {
    const ours = runCli(['-device', 'edu,help']);
    expect(ours.code).toBe(0);
    expect(ours.stdout.split('\n')[0]).toBe('edu options:');
    expect(ours.stdout).toContain('  addr=<int32>           - Slot and optional function number, example: 06.0 or 06 (default: -1)\n');
    if (!qemu72) return;
    expect(ours.stdout).toBe(runQemu('7.2', ['-device', 'edu,help']).stdout);
  });

  it('-device intel-iommu,help is QEMU 11.1\'s, plus vtemu\'s extensions marked beyond QEMU', () => {
    const ours = runCli(['-device', 'intel-iommu,?']).stdout;
    const lines = ours.split('\n');
    expect(lines[0]).toBe('intel-iommu options:');
    const extensions = lines.filter((l) => l.includes('(beyond QEMU)'));
    expect(extensions.map((l) => l.trim().split('=')[0])).toEqual(['nfr', 'x-cfi', 'x-devtlb-error-sid', 'x-devtlb-timeout-sid', 'x-fs5lp', 'x-iqer', 'x-nested', 'x-pi', 'x-sanitize', 'x-smpwc', 'x-strict']);
    // The deprecated names are accepted but not listed.
    for (const name of ['x-scalable-mode', 'x-flts', 'x-pasid-mode', 'pt', 'dma-drain', 'x-buggy-eim']) expect(ours).not.toContain(`  ${name}=`);
    expect(lines).toContain('  aw-bits=<uint8>        -  (default: 48)');
    expect(lines).toContain('  caching-mode=<bool>    - on/off (default: off)');
    expect(lines).toContain('  eim=<OnOffAuto>        - on/off/auto (default: auto)');
    if (!qemu) return;
    expect(lines.filter((l) => !l.includes('(beyond QEMU)')).join('\n')).toBe(runQemu('11.1', ['-device', 'intel-iommu,help']).stdout);
  });

  it('-device help groups types by category', () => {
    const r = runCli(['-device', 'help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Misc devices:\n/m);
    expect(r.stdout).toContain('name "edu", bus PCI\n');
    expect(r.stdout).toContain('name "intel-iommu", bus System, desc "Intel IOMMU (VT-d) DMA Remapping device"\n');
    // Every type we list, including the types QEMU 7.2 lacks (iommu-testdev), is listed the same
    // way, under the same category, by QEMU 11.1.
    expect(listDeviceTypes().some((t) => t.qemuRelease === '11.1' && t.name !== 'intel-iommu')).toBe(true);
    if (!qemu) return;
    const theirs = runQemu('11.1', ['-device', 'help']).stdout;
    const categoryOf = (text: string, line: string): string | undefined =>
      text.split('\n\n').find((block) => block.split('\n').includes(line))?.split('\n')[0];
    const ours = r.stdout.split('\n').filter((l) => l.startsWith('name '));
    expect(ours.length).toBe(listDeviceTypes().length);
    // vtemu's own types (sva-testdev) say so in their description; QEMU lists none of them.
    const extensions = ours.filter((l) => l.includes('(vtemu extension, not in QEMU)'));
    expect(extensions).toEqual(['name "sva-testdev", bus PCI, desc "SVA test device: PASID, ATS, PRI (vtemu extension, not in QEMU)"']);
    for (const line of extensions) expect(theirs.split('\n')).not.toContain(line);
    for (const line of ours.filter((l) => !extensions.includes(l))) {
      expect(theirs.split('\n'), line).toContain(line);
      expect(categoryOf(theirs, line), line).toBe(categoryOf(r.stdout, line));
    }
  });
});

describe('in-process argument parsing', () => {
  it('collects machine options; machine files first, command line on top', () => {
    const p = parseCli(['--machine', join(REPO_ROOT, 'machines', 'q35-vtd.json'), '-m', '256M', '-device', 'edu,id=extra', '-machine', 'kernel-irqchip=off', '-trace', 'vtd_*']);
    expect(p.kind).toBe('run');
    if (p.kind !== 'run') return;
    expect(p.config.machine.memory).toBe('256M');
    expect(p.config.machine.machine).toEqual(['q35,kernel-irqchip=split', 'kernel-irqchip=off']);
    expect(p.config.machine.devices?.at(-1)).toBe('edu,id=extra');
    expect(p.config.trace).toEqual(['vtd_*']);
    expect(parseCli(['--machine', '/nonexistent.json'])).toMatchObject({ kind: 'exit', code: 1, stderr: "vtemu: Could not open '/nonexistent.json': No such file or directory\n" });
  });
});

describe('machine files and traces (spawned)', () => {
  it('--machine machines/q35-vtd.json builds the IOMMU and both edu devices', async () => {
    const v = VtemuCliRunner.start(['--machine', join(REPO_ROOT, 'machines', 'q35-vtd.json'), '-accel', 'qtest']);
    try {
      expect(await v.command('readl 0xfed90000')).toBe('OK 0x0000000000000010');
    } finally {
      await v.close();
    }
  });

  it('-trace vtd_reg_* prints matching events to stderr', async () => {
    const v = VtemuCliRunner.start(['-device', 'intel-iommu', '-trace', 'vtd_reg_read', '-accel', 'qtest']);
    try {
      expect(await v.command('readl 0xfed90000')).toBe('OK 0x0000000000000010');
      expect(await v.command('endianness')).toBe('OK little');
    } finally {
      await v.close();
    }
    expect(v.stderr).toMatch(/^vtd_reg_read addr=0x0 size=0x4$/m);
  });
});
