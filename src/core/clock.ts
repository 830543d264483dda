/**
 * The virtual clock (QEMU_CLOCK_VIRTUAL) with timers.  Under `-accel qtest`
 * it moves only on `step`/`set`, firing due timers in deadline order; in real
 * mode it follows host time and timers fire from the Node event loop.
 */

/** A one-shot timer on the virtual clock. */
export class Timer {
  /** Deadline in ns, or -1 when not armed. */
  deadline = -1;
  /** Insertion order, to fire equal deadlines first-armed first. */
  seq = 0;
  constructor(
    private readonly clock: VirtualClock,
    readonly callback: () => void,
  ) {}
  /** Arms (or re-arms) the timer for absolute time `ns`. */
  arm(ns: number): void {
    this.clock.arm(this, ns);
  }
  /** Arms the timer `ns` from now. */
  armIn(ns: number): void {
    this.clock.arm(this, this.clock.now() + ns);
  }
  cancel(): void {
    this.clock.cancel(this);
  }
  get pending(): boolean {
    return this.deadline >= 0;
  }
}

/** Clock modes: 'qtest' moves only when told; 'real' follows host time. */
export type ClockMode = 'qtest' | 'real';

export class VirtualClock {
  private nowNs = 0;
  private readonly timers = new Set<Timer>();
  private seq = 0;
  private readonly hostStart = process.hrtime.bigint();
  private hostTimer: NodeJS.Timeout | null = null;

  constructor(readonly mode: ClockMode) {}

  /** Current virtual time in ns. */
  now(): number {
    if (this.mode === 'real') this.nowNs = Math.max(this.nowNs, Number(process.hrtime.bigint() - this.hostStart));
    return this.nowNs;
  }

  /** Creates a timer that runs `callback` when it expires. */
  timer(callback: () => void): Timer {
    return new Timer(this, callback);
  }

  /** Earliest deadline of an armed timer, or -1. */
  nextDeadline(): number {
    let best: Timer | null = null;
    for (const t of this.timers) if (!best || t.deadline < best.deadline || (t.deadline === best.deadline && t.seq < best.seq)) best = t;
    return best ? best.deadline : -1;
  }

  /** qtest clock_step: advance by ns, or to the next deadline when omitted. Returns the new time. */
  step(ns?: number): number {
    const target = ns === undefined ? this.nextDeadline() : this.nowNs + ns;
    if (target < 0) return this.nowNs;
    return this.runUntil(target);
  }

  /** qtest clock_set: advance to ns (never backwards). Returns the new time. */
  set(ns: number): number {
    return this.runUntil(Math.max(ns, this.nowNs));
  }

  /** Fires every timer due up to `target` in order and leaves the clock at target. */
  private runUntil(target: number): number {
    for (;;) {
      const d = this.nextDeadline();
      if (d < 0 || d > target) break;
      this.nowNs = Math.max(this.nowNs, d);
      this.fire(d);
    }
    this.nowNs = Math.max(this.nowNs, target);
    return this.nowNs;
  }

  private fire(deadline: number): void {
    for (const t of [...this.timers].sort((a, b) => a.seq - b.seq)) {
      if (t.deadline === deadline) {
        this.timers.delete(t);
        t.deadline = -1;
        t.callback();
        return;
      }
    }
  }

  /** @internal used by Timer. */
  arm(t: Timer, ns: number): void {
    t.deadline = Math.max(0, ns);
    t.seq = this.seq++;
    this.timers.add(t);
    if (this.mode === 'real') this.scheduleHost();
  }

  /** @internal used by Timer. */
  cancel(t: Timer): void {
    this.timers.delete(t);
    t.deadline = -1;
  }

  /** Real mode: fire due timers now and schedule the next wake-up. */
  poll(): void {
    this.runUntil(this.now());
    this.scheduleHost();
  }

  private scheduleHost(): void {
    if (this.hostTimer) clearTimeout(this.hostTimer);
    this.hostTimer = null;
    const d = this.nextDeadline();
    if (d < 0) return;
    const ms = Math.max(0, (d - this.now()) / 1e6);
    this.hostTimer = setTimeout(() => this.poll(), Math.ceil(ms));
    this.hostTimer.unref?.();
  }

  /** Stops host scheduling (machine shutdown). */
  dispose(): void {
    if (this.hostTimer) clearTimeout(this.hostTimer);
    this.hostTimer = null;
  }
}
