/** The CLI's `-inspect ARGS`: parsed, and the inspector's text printed to stderr when the run ends. */
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, parseCli } from '../cli.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('vtemu -inspect', () => {
  it('takes the info iommu arguments as one word', () => {
    const p = parseCli(['-machine', 'q35', '-inspect', '-f -q']);
    expect(p.kind === 'run' && p.config.inspect).toBe('-f -q');
    const none = parseCli(['-machine', 'q35']);
    expect(none.kind === 'run' && none.config.inspect).toBeUndefined();
  });

  it('prints the inspector view at exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-inspect-'));
    dirs.push(dir);
    const path = join(dir, 'qtest.sock');
    // vtemu connects to our socket (-qtest unix:PATH); closing it ends the run.
    const server = createServer((sock) => sock.end());
    await new Promise<void>((r) => server.listen(path, r));
    let err = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((t: string | Uint8Array) => {
      err += String(t);
      return true;
    });
    const code = await main(['-machine', 'q35', '-accel', 'qtest', '-device', 'intel-iommu,id=vtd', '-qtest', `unix:${path}`, '-inspect', '-f']);
    server.close();
    expect(code).toBe(0);
    expect(err).toContain('intel-iommu "vtd" at 0x00000000fed90000: legacy mode, translation off\n');
    expect(err).toContain('  faults: FSTS 0x0 [] FRI 0, FECTL IM=1 IP=0, 0 of 1 records pending\n');
  });
});
