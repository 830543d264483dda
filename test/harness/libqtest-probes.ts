/**
 * libqtest's capability probes (qtest_has_machine, qtest_has_device): a
 * separate process started the libqtest way with `-machine none`, asked
 * `query-machines` (a machine matches by `name` or `alias`) or
 * `qom-list-types` with `{"abstract": false, "implements": "device"}` (a
 * device matches by `name`).  Each binary is asked once; the lists are cached.
 */
import { LibQtest, type LibQtestBinary } from './libqtest.js';

/** One entry of query-machines as the probe reads it. */
export interface MachineInfo {
  readonly name: string;
  readonly alias?: string;
}

const machineLists = new Map<string, Promise<MachineInfo[]>>();
const deviceLists = new Map<string, Promise<string[]>>();

/** Starts `-machine none`, runs one QMP command that must succeed, quits (status 0 required). */
async function ask(binary: LibQtestBinary, command: string, args?: Record<string, unknown>): Promise<unknown> {
  const q = await LibQtest.start(binary, '-machine none');
  try {
    return await q.qmpReturn(command, args);
  } finally {
    await q.quit();
  }
}

function asList(v: unknown, what: string): Record<string, unknown>[] {
  if (!Array.isArray(v)) throw new Error(`${what}: expected a list, got ${JSON.stringify(v)}`);
  return v as Record<string, unknown>[];
}

/** The machines `binary` offers (query-machines). */
export function machines(binary: LibQtestBinary): Promise<MachineInfo[]> {
  let p = machineLists.get(binary.command);
  if (!p) {
    p = ask(binary, 'query-machines').then((v) =>
      asList(v, 'query-machines').map((m) => {
        if (typeof m['name'] !== 'string') throw new Error(`query-machines: entry without a name: ${JSON.stringify(m)}`);
        return typeof m['alias'] === 'string' ? { name: m['name'], alias: m['alias'] } : { name: m['name'] };
      }),
    );
    machineLists.set(binary.command, p);
  }
  return p;
}

/** The concrete device types `binary` offers (qom-list-types). */
export function devices(binary: LibQtestBinary): Promise<string[]> {
  let p = deviceLists.get(binary.command);
  if (!p) {
    p = ask(binary, 'qom-list-types', { abstract: false, implements: 'device' }).then((v) =>
      asList(v, 'qom-list-types').map((t) => {
        if (typeof t['name'] !== 'string') throw new Error(`qom-list-types: entry without a name: ${JSON.stringify(t)}`);
        return t['name'];
      }),
    );
    deviceLists.set(binary.command, p);
  }
  return p;
}

/** qtest_has_machine: a machine of that name or alias exists. */
export async function hasMachine(binary: LibQtestBinary, name: string): Promise<boolean> {
  return (await machines(binary)).some((m) => m.name === name || m.alias === name);
}

/** qtest_has_device: a concrete device type of that name exists. */
export async function hasDevice(binary: LibQtestBinary, name: string): Promise<boolean> {
  return (await devices(binary)).includes(name);
}
