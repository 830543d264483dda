/**
 * The common shape of a qtest target the differential harness drives:
 * QEMU 11.1 or 7.2 (a child process) or vtemu (in-process or the spawned CLI).
 * Replies come back one per command; asynchronous `IRQ raise/lower N`
 * lines are kept apart and handed out in arrival order.
 */

/** A qtest target. */
export interface QtestRunner {
  readonly name: string;
  /** Sends one command line and resolves with its reply (OK/FAIL/ERR line). */
  command(line: string): Promise<string>;
  /** Asynchronous lines (IRQ ...) received since the last call, oldest first. */
  takeAsync(): string[];
  /**
   * Lets guest time pass: QEMU 11.1 (`-accel qtest`) and vtemu step their
   * virtual clocks by `virtualNs`; QEMU 7.2 (no qtest accelerator) sleeps
   * `ms` of wall time.
   */
  wait(ms: number, virtualNs: number): Promise<void>;
  /** system_reset (QMP on QEMU; the machine's reset in-process). */
  systemReset?(): Promise<void>;
  /** Stops the target. */
  close(): Promise<void>;
}

/** A line-oriented reader over a text stream: replies vs asynchronous lines. */
export class LineSplitter {
  private buffer = '';
  private readonly replies: string[] = [];
  private readonly asyncLines: string[] = [];
  private waiters: ((line: string) => void)[] = [];
  private failure: Error | null = null;

  /** Feeds stream text. */
  push(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.startsWith('IRQ ')) {
        this.asyncLines.push(line);
        continue;
      }
      const w = this.waiters.shift();
      if (w) w(line);
      else this.replies.push(line);
    }
  }

  /** The stream ended or failed: pending and later reads reject. */
  fail(e: Error): void {
    this.failure = e;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w(`<${e.message}>`);
  }

  /** The next reply line. */
  next(timeoutMs = 10_000): Promise<string> {
    const r = this.replies.shift();
    if (r !== undefined) return Promise.resolve(r);
    if (this.failure) return Promise.resolve(`<${this.failure.message}>`);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve('<timeout>');
      }, timeoutMs);
      const done = (line: string): void => {
        clearTimeout(t);
        resolve(line);
      };
      this.waiters.push(done);
    });
  }

  /** Takes the asynchronous lines seen so far. */
  takeAsync(): string[] {
    return this.asyncLines.splice(0);
  }
}
