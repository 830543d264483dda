/**
 * `-trace PATTERN`: trace events whose name matches one of the glob patterns
 * (`*` any run, `?` one character; `enable=PATTERN` also accepted, `-PATTERN`
 * disables) are printed one per line as `event k=v k2=v2`, numbers in hex,
 * like QEMU's log backend without timestamps.
 */
import type { Tracer } from './device-type.js';

/** A tracer that discards everything. */
export const NULL_TRACER: Tracer = { enabled: () => false, trace: () => {} };

/** Converts a glob to an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (const c of glob) {
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/** Formats one field value: numbers as 0x hex, the rest as text. */
export function formatTraceValue(v: number | string | bigint | boolean): string {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? '0x' + v.toString(16) : String(v);
  if (typeof v === 'bigint') return '0x' + BigInt.asUintN(64, v).toString(16);
  if (typeof v === 'boolean') return v ? '1' : '0';
  return v;
}

/** A tracer driven by `-trace` patterns writing lines to `sink`. */
export class PatternTracer implements Tracer {
  private readonly rules: { re: RegExp; on: boolean }[] = [];
  private readonly cache = new Map<string, boolean>();

  constructor(
    patterns: readonly string[],
    private readonly sink: (line: string) => void,
  ) {
    for (const p of patterns) this.add(p);
  }

  /** Adds a pattern (`enable=` prefix optional; a leading `-` disables). */
  add(pattern: string): void {
    let p = pattern.startsWith('enable=') ? pattern.slice('enable='.length) : pattern;
    let on = true;
    if (p.startsWith('-')) {
      on = false;
      p = p.slice(1);
    }
    this.rules.push({ re: globToRegExp(p), on });
    this.cache.clear();
  }

  /** True when some pattern was given. */
  get active(): boolean {
    return this.rules.length > 0;
  }

  enabled(event: string): boolean {
    let v = this.cache.get(event);
    if (v === undefined) {
      v = false;
      for (const r of this.rules) if (r.re.test(event)) v = r.on;
      this.cache.set(event, v);
    }
    return v;
  }

  trace(event: string, fields: Readonly<Record<string, number | string | bigint | boolean>>): void {
    if (!this.enabled(event)) return;
    let line = event;
    for (const [k, v] of Object.entries(fields)) line += ` ${k}=${formatTraceValue(v)}`;
    this.sink(line);
  }
}
