/**
 * Transcripts: the same qtest steps run on QEMU and on vtemu, and a
 * comparison that reports the first differing line with context.  A step is
 * a command line, a command with a reply mask (bits cleared in `OK 0x...`
 * replies before comparing, e.g. CAP bit 63) and/or the reply it must get
 * (a spec-derived expectation, checked on every target), a wait (QEMU 11.1
 * and vtemu step their virtual clocks by `clock_step`, deterministically;
 * QEMU 7.2 sleeps), a poll, or a reset.
 */
import type { QtestRunner } from './runner.js';

/** A qtest number argument: `0x` and lower-case hex. */
export const hex = (n: number | bigint): string => '0x' + n.toString(16);

/** One transcript step. */
export type Step =
  | string
  | { readonly cmd: string; readonly mask?: bigint; readonly note?: string; readonly expect?: string }
  | { readonly wait: true; readonly ms?: number; readonly ns?: number }
  | PollStep
  | { readonly reset: true };

/**
 * Repeats `poll` until `until(reply)` holds (stepping `stepNs` of virtual
 * time between tries; QEMU 7.2: 2 ms of real time; QEMU's worker threads,
 * e.g. edu's factorial, run in real time on either release) and
 * records only the last reply, so a race with a device thread cannot change
 * the transcript.  On timeout the last reply is recorded, and differs.
 */
export interface PollStep {
  readonly poll: string;
  readonly until: (reply: string) => boolean;
  readonly timeoutMs?: number;
  readonly stepNs?: number;
  /**
   * A wait before the first try (e.g. the 100 ms an edu DMA takes): `ns` of
   * virtual time (QEMU 11.1, vtemu); `ms` of wall time on QEMU 7.2 only
   * (default: as many ms as `ns` is ns of virtual time).
   */
  readonly before?: { readonly ms?: number; readonly ns: number };
  /** Leave the reply out of the transcript (a pure synchronisation step). */
  readonly quiet?: boolean;
}

/** Default poll time-out: generous, for a loaded CI host. */
export const DEFAULT_POLL_TIMEOUT_MS = 20_000;

/** A recorded line: what was sent, what came back, and what the step expected (if it said). */
export interface TranscriptLine {
  readonly step: number;
  readonly cmd: string;
  readonly reply: string;
  readonly expected?: string;
}

/** The lines whose reply is not the one their step expected, as readable strings. */
export function unmetExpectations(t: readonly TranscriptLine[], target = 'target'): string[] {
  return t.filter((l) => l.expected !== undefined && l.reply !== l.expected).map((l) => `${target}: '${l.cmd}' -> '${l.reply}', expected '${l.expected}'`);
}

/** Default wait: QEMU sleeps 500 ms (edu needs 100 ms; slack for a loaded host); vtemu steps 200 ms of virtual time. */
export const DEFAULT_WAIT_MS = 500;
/** Virtual time vtemu steps for a default wait. */
export const DEFAULT_WAIT_NS = 200_000_000;

/** Clears `mask` bits in an `OK 0x<hex>` reply (others unchanged). */
export function maskReply(reply: string, mask: bigint | undefined): string {
  if (!mask) return reply;
  const m = /^OK 0x([0-9a-f]+)$/.exec(reply);
  if (!m) return reply;
  const v = BigInt('0x' + m[1]!) & ~mask;
  return `OK 0x${v.toString(16).padStart(m[1]!.length, '0')}`;
}

/** Options of a transcript run. */
export interface TranscriptOptions {
  /**
   * IOAPIC inputs whose IRQ lines are dropped: by default the ISA inputs
   * 0-15, which QEMU's PIT and RTC toggle in real time (vtemu has neither).
   */
  readonly ignoreIrqs?: (input: number) => boolean;
}

/** The default: drop ISA inputs 0-15. */
export const IGNORE_ISA_IRQS = (input: number): boolean => input < 16;

/**
 * Runs `steps` on `runner`; the result has one line per command reply,
 * preceded by the asynchronous lines (IRQ ...) that arrived before it.
 */
export async function runTranscript(runner: QtestRunner, steps: readonly Step[], options: TranscriptOptions = {}): Promise<TranscriptLine[]> {
  const ignore = options.ignoreIrqs ?? IGNORE_ISA_IRQS;
  const asyncLines = (): string[] => runner.takeAsync().filter((l) => !ignore(Number(l.split(' ')[2])));
  const out: TranscriptLine[] = [];
  for (let i = 0; i < steps.length; i++) {
    const s = steps[i]!;
    if (typeof s === 'object' && 'wait' in s) {
      await runner.wait(s.ms ?? DEFAULT_WAIT_MS, s.ns ?? DEFAULT_WAIT_NS);
      for (const a of asyncLines()) out.push({ step: i, cmd: '<wait>', reply: a });
      continue;
    }
    if (typeof s === 'object' && 'poll' in s) {
      if (s.before) await runner.wait(s.before.ms ?? Math.ceil(s.before.ns / 1e6), s.before.ns);
      const deadline = Date.now() + (s.timeoutMs ?? DEFAULT_POLL_TIMEOUT_MS);
      let reply = await runner.command(s.poll);
      while (!s.until(reply) && Date.now() < deadline) {
        await runner.wait(2, s.stepNs ?? 1_000_000);
        reply = await runner.command(s.poll);
      }
      for (const a of asyncLines()) out.push({ step: i, cmd: `<poll ${s.poll}>`, reply: a });
      if (!s.quiet) out.push({ step: i, cmd: `<poll ${s.poll}>`, reply });
      continue;
    }
    if (typeof s === 'object' && 'reset' in s) {
      if (!runner.systemReset) throw new Error(`${runner.name}: no system_reset (start QEMU with { qmp: true })`);
      await runner.systemReset();
      for (const a of asyncLines()) out.push({ step: i, cmd: '<reset>', reply: a });
      continue;
    }
    const cmd = typeof s === 'string' ? s : s.cmd;
    const reply = await runner.command(cmd);
    for (const a of asyncLines()) out.push({ step: i, cmd, reply: a });
    if (typeof s === 'string') out.push({ step: i, cmd, reply });
    else out.push({ step: i, cmd, reply: maskReply(reply, s.mask), ...(s.expect !== undefined ? { expected: s.expect } : {}) });
  }
  return out;
}

/** The first difference between two transcripts, or null when identical. */
export function firstDifference(a: readonly TranscriptLine[], b: readonly TranscriptLine[], context = 3, names: [string, string] = ['qemu', 'vtemu']): string | null {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x && y && x.cmd === y.cmd && x.reply === y.reply) continue;
    const lines: string[] = [`transcripts differ at line ${i}:`];
    for (let j = Math.max(0, i - context); j < i; j++) lines.push(`    ${a[j]!.cmd} -> ${a[j]!.reply}`);
    lines.push(`  ${names[0]}: ${x ? `${x.cmd} -> ${x.reply}` : '<end>'}`);
    lines.push(`  ${names[1]}: ${y ? `${y.cmd} -> ${y.reply}` : '<end>'}`);
    return lines.join('\n');
  }
  return null;
}
