/**
 * Platforms the demo and the guest tests can run on: the in-process vtemu
 * machine, vtemu through its qtest front door (spawned CLI), or QEMU 7.2.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QtestClient } from '../guest/qtest-client.js';
import type { GuestPlatform } from '../guest/platform.js';
import { loadMachineFile, qemuArgs, type MachineDefinition } from './machine-file.js';
import { InProcessPlatform } from './in-process.js';
import { createMachine, type Machine } from '../machine/q35.js';
import { QtestServer } from '../qtest/server.js';
import { PassThrough } from 'node:stream';

/**
 * Where a guest runs: `in-process` (direct calls), `vtemu-qtest` (the qtest
 * client talking to vtemu's qtest server in this process over streams),
 * `vtemu-cli` (the client driving a spawned `vtemu` process: the package's
 * bin/vtemu.js, which needs `npm run build`, or `opts.cli`), `qemu` (QEMU 7.2 with a halt firmware).
 */
export type PlatformKind = 'in-process' | 'vtemu-qtest' | 'vtemu-cli' | 'qemu';

/** The package root (the directory holding package.json and machines/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Resolves a machine file: as given (relative to cwd), else under the package root. */
export function machinePath(file: string): string {
  if (existsSync(file)) return resolve(file);
  const p = join(packageRoot(), file);
  if (existsSync(p)) return p;
  const m = join(packageRoot(), 'machines', file);
  if (existsSync(m)) return m;
  throw new Error(`machine file not found: ${file}`);
}

/** Variations applied on top of a machine file. */
export interface PlatformOptions {
  /** Appended to every intel-iommu device (e.g. "caching-mode=on"). */
  readonly iommuOptions?: string | undefined;
  /**
   * The script `vtemu-cli` runs with node (default: the package's
   * bin/vtemu.js, which runs the built dist/).  Tests pass a CLI compiled
   * from the current sources.
   */
  readonly cli?: string | undefined;
}

/** Creates a platform of `kind` for the machine in `file`. */
export async function createPlatform(kind: PlatformKind, file: string, opts: PlatformOptions = {}): Promise<GuestPlatform> {
  let path = machinePath(file);
  let def: MachineDefinition = loadMachineFile(path);
  if (opts.iommuOptions) {
    def = { ...def, devices: def.devices.map((d) => (d.startsWith('intel-iommu') ? `${d},${opts.iommuOptions}` : d)) };
    const dir = mkdtempSync(join(tmpdir(), 'vtemu-machine-'));
    path = join(dir, basename(path));
    writeFileSync(path, JSON.stringify(def));
  }
  switch (kind) {
    case 'qemu':
      return QtestClient.spawnQemu(qemuArgs(def));
    case 'vtemu-qtest':
      return createQtestInProcess(def);
    case 'vtemu-cli': {
      const cli = opts.cli ?? join(packageRoot(), 'bin', 'vtemu.js');
      return QtestClient.spawn('qtest vtemu', process.execPath, [cli, '--machine', path, '-accel', 'qtest', '-qtest', 'stdio', '-display', 'none']);
    }
    case 'in-process':
      return createInProcess(def);
  }
}

function buildMachine(def: MachineDefinition): Machine {
  return createMachine({
    machine: [def.machine],
    ...(def.m !== undefined ? { memory: def.m } : {}),
    devices: def.devices,
    qtest: true,
    ...(def.dmar ? { dmar: def.dmar } : {}),
  });
}

/** Builds the machine in this process (qtest clock: guest sleeps step virtual time). */
async function createInProcess(def: MachineDefinition): Promise<GuestPlatform> {
  const machine = buildMachine(def);
  const platform = new InProcessPlatform(machine);
  const close = platform.close.bind(platform);
  platform.close = async () => {
    await close();
    machine.dispose();
  };
  return platform;
}

/**
 * vtemu's qtest server in this process, connected to a QtestClient by
 * streams (the server's `msi_intercept` extension makes MSIs observable).
 */
async function createQtestInProcess(def: MachineDefinition): Promise<GuestPlatform> {
  const machine = buildMachine(def);
  const toClient = new PassThrough();
  const fromClient = new PassThrough();
  const server = new QtestServer(machine, (text) => toClient.write(text));
  fromClient.setEncoding('utf8');
  fromClient.on('data', (chunk: string) => server.feed(chunk));
  fromClient.on('end', () => {
    server.close();
    machine.dispose();
    toClient.end();
  });
  const client = QtestClient.fromStreams('qtest vtemu (in-process server)', toClient, fromClient);
  await client.probe();
  return client;
}
