/**
 * The invalidation sanitizer through the front door: a spawned vtemu with
 * `-device intel-iommu,x-sanitize=on`, driven over `-qtest stdio` by the
 * broken 'iotlb-page' driver variant, prints the `vtd_sanitizer_report`
 * trace line (`-trace`) at the stale DMA and the summary at exit; the
 * correct variant gives no trace line and a zero summary.  QMP
 * `x-vtemu-query-sanitizer` lists the report with its fields.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { PROBES } from '../../src/guest/invalidation-probes.js';
import { QtestClient } from '../../src/guest/qtest-client.js';
import { createMachine } from '../../src/machine/q35.js';
import { InProcessPlatform } from '../../src/demo/in-process.js';
import { QmpSession } from '../../src/qtest/qmp.js';
import { buildCli } from '../harness/index.js';

const ARGS = ['-machine', 'q35', '-m', '512M', '-device', 'intel-iommu,intremap=on,x-sanitize=on', '-device', 'edu', '-display', 'none'];
const probe = PROBES.find((p) => p.name === 'iotlb-page')!;

async function runCli(broken: boolean): Promise<string> {
  const child = spawn(process.execPath, [buildCli(), ...ARGS, '-accel', 'qtest', '-qtest', 'stdio', '-qtest-log', 'none', '-trace', 'vtd_sanitizer_report'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const client = QtestClient.fromStreams('vtemu', child.stdout, child.stdin);
  await client.probe();
  await probe.run(client, broken);
  child.stdin.end();
  expect(await exited).toBe(0);
  return stderr;
}

describe('strict checks through the CLI and QMP', () => {
  it('TE before any SRTP: one trace line, the exit summary, and x-vtemu-query-strict', async () => {
    const child = spawn(process.execPath, [buildCli(), '-machine', 'q35', '-device', 'intel-iommu,x-strict=on', '-display', 'none', '-accel', 'qtest',
      '-qtest', 'stdio', '-qtest-log', 'none', '-trace', 'vtd_strict_warning'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    child.stdin.end('writel 0xfed90018 0x80000000\n');
    expect(await exited).toBe(0);
    expect(stderr.match(/vtd_strict_warning /g)?.length).toBe(1);
    expect(stderr).toContain('intel-iommu strict: 1 warning\n');
    expect(stderr).toMatch(/GCMD.*TE.*SRTP/);

    const m = createMachine({ machine: ['q35'], devices: ['intel-iommu,x-strict=on'], qtest: true });
    m.memory.write(0xfed9_0018, 4, 0x8000_0000);
    const out: string[] = [];
    const q = new QmpSession({ machine: m, reset: () => m.reset(), quit: () => {} }, (t) => out.push(t));
    q.feed(Buffer.from('{"execute":"qmp_capabilities"}\n{"execute":"x-vtemu-query-strict"}\n'));
    const reply = out.join('').split('\n').filter((l) => l.startsWith('{"return"'))[1]!;
    const r = JSON.parse(reply) as { return: { units: { enabled: boolean; total: number; warnings: { rule: string; section: string }[] }[] } };
    expect(r.return.units.map((u) => [u.enabled, u.total, u.warnings.map((w) => w.rule)])).toEqual([[true, 1, ['te-before-srtp']]]);
    m.dispose();
  });
});

describe('sanitizer through the CLI and QMP', () => {
  it('a stale DMA: one trace line, and the exit summary names the missing invalidation', async () => {
    const bad = await runCli(true);
    expect(bad.match(/vtd_sanitizer_report /g)?.length).toBe(1);
    expect(bad).toMatch(/vtd_sanitizer_report sid=0x8 .*cache=iotlb entry=L1 .*type=0x2/);
    expect(bad).toContain('intel-iommu sanitizer: 1 report\n');
    expect(bad).toMatch(/1 x 00:01\.0 iotlb: L1 changed without IOTLB invalidation \(type 2\)/);
    const good = await runCli(false);
    expect(good).not.toContain('vtd_sanitizer_report');
    expect(good).toContain('intel-iommu sanitizer: 0 reports\n');
  });

  it('x-vtemu-query-sanitizer lists the reports of every unit', async () => {
    const m = createMachine({ machine: ['q35'], memory: '512M', devices: ['intel-iommu,intremap=on,x-sanitize=on', 'edu'], qtest: true });
    const p = new InProcessPlatform(m);
    await probe.run(p, true);
    const out: string[] = [];
    const q = new QmpSession({ machine: m, reset: () => m.reset(), quit: () => {} }, (t) => out.push(t));
    q.feed(Buffer.from('{"execute":"qmp_capabilities"}\n{"execute":"x-vtemu-query-sanitizer"}\n{"execute":"x-vtemu-query-sanitizer","arguments":{"x":1}}\n'));
    const replies = out.join('').split('\n').filter((l) => l.startsWith('{"return"') || l.startsWith('{"error"'));
    const r = JSON.parse(replies[1]!) as { return: { units: { id: string; enabled: boolean; total: number; reports: { device: string; cache: string; structure: { kind: string }; required: { type: number; granularity: string } }[] }[] } };
    expect(r.return.units).toHaveLength(1);
    const u = r.return.units[0]!;
    expect([u.enabled, u.total]).toEqual([true, 1]);
    expect(u.reports.map((x) => [x.device, x.cache, x.structure.kind, x.required.type, x.required.granularity])).toEqual([['00:01.0', 'iotlb', 'L1', 2, 'page-selective']]);
    expect(replies[2]).toContain('"class": "GenericError"');
    await p.close();
    m.dispose();
  });
});
