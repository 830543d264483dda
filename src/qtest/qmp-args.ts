/**
 * A QMP command's outcome and the checks QEMU's QAPI input visitor makes on
 * its `arguments` before the command runs: every member of the command's
 * schema in schema order (a missing mandatory one, then a member of the
 * wrong JSON type), then the first member the schema does not know, in
 * QDict order.  Messages are QEMU 11.1's (qapi/qobject-input-visitor.c).
 */
import { isQNum, QDict, type QNum, type QValue } from './qmp-qobject.js';

/** QAPI error classes QMP replies use. */
export const ErrorClass = {
  Generic: 'GenericError',
  CommandNotFound: 'CommandNotFound',
  DeviceNotFound: 'DeviceNotFound',
} as const;

/** A command's outcome: a return value, or an error (class, description). */
export type Outcome = { readonly ret: QValue } | { readonly errClass: string; readonly desc: string };

/** A successful outcome (`{}` when no value is given). */
export const ok = (ret: QValue = new QDict()): Outcome => ({ ret });

/** A GenericError outcome. */
export const generic = (desc: string): Outcome => ({ errClass: ErrorClass.Generic, desc });

/** True for an error outcome. */
export function isError(o: Outcome): o is { readonly errClass: string; readonly desc: string } {
  return 'errClass' in o;
}

/** QAPI member types the commands here take. */
export type ArgType = 'str' | 'bool' | 'int' | 'any';

/** One member of a command's argument schema. */
export interface ArgSpec {
  readonly name: string;
  readonly type: ArgType;
  readonly optional?: boolean;
}

/** Checked arguments: strings, booleans, int64 bigints and raw values, by name. */
export type Args = ReadonlyMap<string, string | boolean | bigint | QValue>;

/** How QEMU names a member type in `expected: ...`. */
const EXPECTED: Readonly<Record<Exclude<ArgType, 'any'>, string>> = { str: 'string', bool: 'boolean', int: 'integer' };

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** A QNum as int64 (qobject_get_try_int): integers in range only, never doubles. */
export function qnumToInt64(v: QNum): bigint | null {
  if (v.kind === 'double') return null;
  return v.value >= INT64_MIN && v.value <= INT64_MAX ? v.value : null;
}

/** Visits `args` against `schema`: the values, or QEMU's error. */
export function checkArgs(args: QDict, schema: readonly ArgSpec[]): Args | Outcome {
  const out = new Map<string, string | boolean | bigint | QValue>();
  for (const m of schema) {
    const v = args.get(m.name);
    if (v === undefined) {
      if (m.optional) continue;
      return generic(`Parameter '${m.name}' is missing`);
    }
    const bad = generic(`Invalid parameter type for '${m.name}', expected: ${m.type === 'any' ? '' : EXPECTED[m.type]}`);
    switch (m.type) {
      case 'str':
        if (typeof v !== 'string') return bad;
        out.set(m.name, v);
        break;
      case 'bool':
        if (typeof v !== 'boolean') return bad;
        out.set(m.name, v);
        break;
      case 'int': {
        const n = v !== null && isQNum(v) ? qnumToInt64(v) : null;
        if (n === null) return bad;
        out.set(m.name, n);
        break;
      }
      case 'any':
        out.set(m.name, v);
        break;
    }
  }
  const known = new Set(schema.map((m) => m.name));
  const extra = args.keys().find((k) => !known.has(k));
  if (extra !== undefined) return generic(`Parameter '${extra}' is unexpected`);
  return out;
}

/** True when checkArgs failed. */
export function argsFailed(a: Args | Outcome): a is Outcome {
  return !(a instanceof Map);
}
