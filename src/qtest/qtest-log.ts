/**
 * The qtest log QEMU 11.1 keeps of a session (`-qtest-log FILE`; stderr when
 * the option is absent, nothing for `-qtest-log none`): one line per event,
 * stamped with the wall-clock seconds since the session opened.
 *
 *   [I 0.000000] OPENED
 *   [R +0.021054] readl 0x1000        a command line as received
 *   [S +0.021248] OK 0x0000000000000000   each line sent (replies and async IRQ/MSI lines)
 *   [R +0.021450]                     an empty line
 *   [I +0.021471] CLOSED
 *
 * QEMU logs the words of a line joined by single spaces, which is the line
 * itself (it splits on single spaces); an empty line has no words.
 */

/** Where log lines go (a line without its newline). */
export type LogSink = (line: string) => void;

/** A clock in seconds (fractional); wall time by default, as QEMU uses. */
export type SecondsClock = () => number;

const wallSeconds: SecondsClock = () => Number(process.hrtime.bigint()) / 1e9;

/** One session's log. */
export class QtestLog {
  private start = 0;

  constructor(
    private readonly sink: LogSink,
    private readonly now: SecondsClock = wallSeconds,
  ) {}

  /** Seconds since OPENED as QEMU prints them (six decimals). */
  private stamp(): string {
    return (this.now() - this.start).toFixed(6);
  }

  opened(): void {
    this.start = this.now();
    this.sink('[I 0.000000] OPENED');
  }

  /** A command line (without its newline); null for one over the length limit. */
  received(line: string | null): void {
    const text = line === null ? ' <command line too long>' : line === '' ? '' : ` ${line}`;
    this.sink(`[R +${this.stamp()}]${text}`);
  }

  /** Protocol text sent (one or more lines, each ending in a newline). */
  sent(text: string): void {
    const stamp = this.stamp();
    for (const line of text.split('\n')) if (line !== '') this.sink(`[S +${stamp}] ${line}`);
  }

  closed(): void {
    this.sink(`[I +${this.stamp()}] CLOSED`);
  }
}
