/**
 * Hostile QMP messages for fuzzers: valid requests with wrong member types,
 * unexpected members and ids of every type; malformed JSON (truncated,
 * mis-nested, bad escapes, stray bytes); deep nesting around the limit;
 * large strings; and raw random bytes (NUL, CR, invalid UTF-8, 0xFF).
 * Deterministic from the caller's Rng, so a seed replays a run; shared by
 * src/qtest/qmp.fuzz.test.ts and long fuzz drivers.
 */
import type { Rng } from './prng.js';

/** After any message, this brings QEMU's (and vtemu's) reader back to a clean state. */
export const QMP_RESYNC = Uint8Array.from([0xff, 0x0a]);

const COMMANDS = ['qmp_capabilities', 'query-status', 'system_reset', 'quit', 'nope', '', 'quit\u0000', 'query-status '];
const MEMBERS = ['execute', 'exec-oob', 'arguments', 'id', 'foo', 'Execute', 'execute\u0000'];

/**
 * The commands libqtest-based tests use (issue 11), with the arguments they
 * take, sent well-formed but with hostile values: wrong types, unknown
 * paths, types and properties, odd HMP command lines.  `quit` is left out
 * (it ends the session; the other generator covers it).
 */
const TOOL_COMMANDS: Readonly<Record<string, readonly string[]>> = {
  'query-version': [],
  'query-machines': ['compat-props'],
  'qom-list-types': ['implements', 'abstract'],
  'device-list-properties': ['typename'],
  'qom-list': ['path'],
  'qom-get': ['path', 'property'],
  'qom-set': ['path', 'property', 'value'],
  'human-monitor-command': ['command-line', 'cpu-index'],
  'system_reset': [],
  'query-status': [],
  'query-cpus-fast': [],
};
const TOOL_STRINGS = [
  'intel-iommu', 'edu', 'iommu-testdev', 'pci-device', 'device', 'x86_64-cpu', 'bogus', '', 'q35-pcihost',
  '/machine', '/machine/peripheral-anon/device[0]', '/machine/peripheral/iommu', '/machine/q35/mch', '/', '//', '/machine/..',
  'realized', 'aw-bits', 'caching-mode', 'type', 'child<x>', 'addr', 'x-buggy-eim',
  'info pci', 'info mtree', 'info mtree -f', 'info qtree', 'info iommu', 'info', 'info foo', 'help', 'q', 'system_reset', '   ', 'info pci extra',
];
const TOOL_VALUES = ['true', 'false', '0', '-1', '48', '39', '4294967296', 'null', '[]', '{}', '"on"', '"0x10"', '1.5'];

/** A tool command with random arguments (names it takes, plus sometimes one it does not). */
function toolCommand(r: Rng): string {
  const name = r.pick(Object.keys(TOOL_COMMANDS));
  const args: string[] = [];
  for (const key of TOOL_COMMANDS[name]!) {
    if (r.chance(0.2)) continue;
    const v = r.chance(0.7) ? JSON.stringify(r.pick(TOOL_STRINGS)) : r.pick(TOOL_VALUES);
    args.push(`${JSON.stringify(key)}: ${v}`);
  }
  if (r.chance(0.15)) args.push(`${JSON.stringify(r.pick(['foo', 'typename', 'path', 'value']))}: ${r.pick(TOOL_VALUES)}`);
  const id = r.chance(0.3) ? `, "id": ${value(r, 1)}` : '';
  return `{"execute": "${name}", "arguments": {${args.join(', ')}}${id}}`;
}
const SCALARS = ['null', 'true', 'false', '0', '-0', '1.5', '-1e400', '18446744073709551616', '"s"', "'q'", '"\\u0000"', '"\\uD83D\\uDE00"', '""'];
const BAD_TOKENS = ['@', '%d', 'nul', 'tru', '01', '-', '1.', '1e', '"\\q"', '"\\uD800"', '"\\u12"', '"\\uFFFE"', '}', ']', ':', ',', '\u00e9'];

/** A JSON value of bounded size built from the lists above. */
function value(r: Rng, depth: number): string {
  if (depth <= 0 || r.chance(0.5)) return r.pick(SCALARS);
  const n = r.int(4);
  const items: string[] = [];
  if (r.chance(0.5)) {
    for (let i = 0; i < n; i++) items.push(value(r, depth - 1));
    return `[${items.join(', ')}]`;
  }
  for (let i = 0; i < n; i++) items.push(`${JSON.stringify(r.pick(MEMBERS))}: ${value(r, depth - 1)}`);
  return `{${items.join(', ')}}`;
}

/** A request-shaped object with random member types. */
function request(r: Rng): string {
  const members: string[] = [];
  const n = r.int(5);
  for (let i = 0; i < n; i++) {
    const key = r.pick(MEMBERS);
    const v = r.chance(0.6) && (key === 'execute' || key === 'exec-oob') ? JSON.stringify(r.pick(COMMANDS)) : value(r, 2);
    members.push(`${JSON.stringify(key)}: ${v}`);
  }
  return `{${members.join(r.pick([', ', ',', ',\n', ' ,\r\n']))}}`;
}

/** Corrupts a message: truncation, an inserted bad token, or swapped brackets. */
function mangle(r: Rng, text: string): string {
  const at = r.int(text.length + 1);
  switch (r.int(3)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + r.pick(BAD_TOKENS) + text.slice(at);
    default:
      return text.replace(r.pick(['{', '[', '}', ']']), r.pick(['[', ']', '}', '{']));
  }
}

/** One hostile message as bytes (may be incomplete: callers follow it with QMP_RESYNC). */
export function qmpFuzzMessage(r: Rng): Uint8Array {
  const kind = r.weighted([
    [30, 'request'],
    [25, 'tool'],
    [20, 'mangled'],
    [10, 'value'],
    [8, 'deep'],
    [5, 'big'],
    [15, 'bytes'],
    [12, 'mixed'],
  ] as const);
  let text: string;
  switch (kind) {
    case 'request':
      text = request(r);
      break;
    case 'tool':
      text = r.chance(0.85) ? toolCommand(r) : mangle(r, toolCommand(r));
      break;
    case 'mangled':
      text = mangle(r, request(r));
      break;
    case 'value':
      text = value(r, 3);
      break;
    case 'deep': {
      const d = r.pick([1023, 1024, 1025, 5000]);
      const open = r.chance(0.5) ? '[' : '{"a":';
      text = `{"execute": "query-status", "id": ${open.repeat(d)}1${(open === '[' ? ']' : '}').repeat(d)}}`;
      break;
    }
    case 'big':
      text = `{"execute": "${'x'.repeat(r.range(1, 1 << 16))}", "id": "${'\\u00e9'.repeat(r.int(1000))}"}`;
      break;
    case 'bytes':
      return r.bytes(r.range(1, 64));
    default: {
      const raw = r.bytes(r.range(1, 8));
      const head = new TextEncoder().encode(request(r));
      const out = new Uint8Array(head.length + raw.length);
      const at = r.int(head.length + 1);
      out.set(head.subarray(0, at));
      out.set(raw, at);
      out.set(head.subarray(at), at + raw.length);
      return out;
    }
  }
  return new TextEncoder().encode(text + (r.chance(0.8) ? '\n' : ''));
}
