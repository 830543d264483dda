/**
 * How QEMU's human monitor reads a command line (monitor/hmp.c): the command
 * name runs to a blank or a '/', `info` takes a sub-command name the same
 * way, and flag arguments (`-f`) are matched in the order the command
 * declares them.  Every mistake becomes the text QEMU prints for it; nothing
 * here throws.
 */

/** A parsed line: a command to run with its flags, or the text to answer with. */
export type HmpParse =
  | { readonly kind: 'run'; readonly name: string; readonly flags: ReadonlySet<string>; readonly args?: string }
  | { readonly kind: 'text'; readonly text: string };

/** What the parser needs to know about one `info` sub-command. */
export interface HmpInfoSpec {
  /** The flag letters it accepts, in QEMU's declaration order (`['f', 'd', 'o', 'D']`). */
  readonly flags: readonly string[];
  /** vtemu's own commands only: the rest of the line after the flags is its argument text, not an error. */
  readonly args?: boolean;
}

const isSpace = (ch: string | undefined): boolean => ch !== undefined && /[ \t\n\v\f\r]/.test(ch);

/** Index of the first non-blank at or after `p`. */
function skipSpaces(line: string, p: number): number {
  while (isSpace(line[p])) p++;
  return p;
}

/** QEMU get_command_name: [start, end) of the name at `p` (after blanks), or null at the end of the line. */
function commandName(line: string, p: number): { start: number; end: number } | null {
  const start = skipSpaces(line, p);
  if (start >= line.length) return null;
  let end = start;
  while (end < line.length && line[end] !== '/' && !isSpace(line[end])) end++;
  return { start, end };
}

/** The `Try "help ..."` line after an argument error: the line up to the command name, blanks trimmed. */
function tryHelp(line: string, end: number): string {
  return `Try "help ${line.slice(0, end).replace(/[ \t\n\v\f\r]+$/, '')}" for more information\n`;
}

/**
 * Parses `flags` as QEMU's '-' argument type does: each declared flag in
 * turn looks at the next word; `-x` for a later declared flag is left for
 * it, `-x` for no remaining flag is an error.  Returns the flags given, or
 * the error line.
 */
function parseFlags(name: string, line: string, p: number, flags: readonly string[], args: boolean): { set: Set<string>; rest: string } | { error: string } {
  const set = new Set<string>();
  for (let i = 0; i < flags.length; i++) {
    const c = flags[i]!;
    p = skipSpaces(line, p);
    if (line[p] !== '-') continue;
    const ch = line[p + 1];
    if (ch === c) {
      set.add(c);
      p += 2;
      continue;
    }
    // QEMU prints the NUL after a final '-' (once no later flag is left to match it, which
    // gives the same text): the line ends there, its newline lost.
    if (ch === undefined) return { error: `${name}: unsupported option -` };
    if (flags.slice(i + 1).includes(ch) || args) continue;
    return { error: `${name}: unsupported option -${ch}\n` };
  }
  p = skipSpaces(line, p);
  if (p < line.length && !args) return { error: `${name}: extraneous characters at the end of line\n` };
  return { set, rest: line.slice(p) };
}

/**
 * Parses an HMP command line against the commands vtemu has: `info` with
 * the sub-commands in `info`.  `helpText` is what `info` alone prints.
 * Lines end in '\n' here; the caller turns them into CRLF.
 */
export function parseHmpLine(line: string, info: ReadonlyMap<string, HmpInfoSpec>, helpText: string): HmpParse {
  const top = commandName(line, 0);
  if (!top) return { kind: 'text', text: '' };
  if (line.slice(top.start, top.end) !== 'info') return { kind: 'text', text: `unknown command: '${line.slice(0, top.end)}'\n` };
  const sub = commandName(line, top.end);
  if (!sub) return { kind: 'text', text: helpText };
  const name = line.slice(sub.start, sub.end);
  const spec = info.get(name);
  if (!spec) return { kind: 'text', text: `unknown command: '${line.slice(0, sub.end)}'\n` };
  const r = parseFlags(name, line, sub.end, spec.flags, spec.args === true);
  if ('error' in r) return { kind: 'text', text: r.error + tryHelp(line, sub.end) };
  return spec.args === true ? { kind: 'run', name, flags: r.set, args: r.rest } : { kind: 'run', name, flags: r.set };
}
