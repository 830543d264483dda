/**
 * The virtual clock (QEMU_CLOCK_VIRTUAL) with timers.  Under `-accel qtest`
 * it moves only on `step`/`set`/`advanceTo`, firing due timers in deadline
 * order; in real mode it follows host time and timers fire from the Node
 * event loop.
 *
 * Time is int64 nanoseconds end to end (issue 13): the clock and every timer
 * deadline are bigints in [0, CLOCK_MAX_NS], so no sum of client-supplied
 * steps can leave the integers.  Devices keep a number interface (`now()`,
 * `Timer.arm`/`armIn` with number nanoseconds, `Timer.deadline`), exact
 * below 2^53 ns (104 days) and saturating at the int64 bounds beyond; the
 * qtest front door uses the bigint one (`nowNs`, `advanceTo`,
 * `nextDeadline`) and owns QEMU's reply rules for the limits.
 */
import type { SectionReader } from './snapshot-state.js';

/** The last representable virtual time (INT64_MAX ns); deadlines beyond it are kept here. */
export const CLOCK_MAX_NS = (1n << 63n) - 1n;

/** The first time below zero int64 can hold (a lower bound for number conversions). */
const CLOCK_MIN_NS = -(1n << 63n);

/** The deadline of a timer that is not armed. */
const NOT_ARMED = -1n;

/** 2^63 as a number: numbers at or beyond it saturate when turned into nanoseconds. */
const TWO_POW_63 = 2 ** 63;

const NS_PER_MS = 1e6;

/** Longest delay setTimeout honours (beyond it Node fires after 1 ms); later wake-ups re-arm. */
const MAX_HOST_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * A number of nanoseconds as an int64 bigint: truncated toward zero,
 * saturated at the int64 bounds, NaN as 0.  Never throws.
 */
export function nsFromNumber(ns: number): bigint {
  if (Number.isNaN(ns)) return 0n;
  if (ns >= TWO_POW_63) return CLOCK_MAX_NS;
  if (ns <= -TWO_POW_63) return CLOCK_MIN_NS;
  return BigInt(Math.trunc(ns));
}

/** `ns` limited to the clock's range [0, CLOCK_MAX_NS]. */
function clampNs(ns: bigint): bigint {
  return ns < 0n ? 0n : ns > CLOCK_MAX_NS ? CLOCK_MAX_NS : ns;
}

/** A one-shot timer on the virtual clock. */
export class Timer {
  /** Deadline in ns, or -1n when not armed. */
  deadlineNs = NOT_ARMED;
  /** Insertion order, to fire equal deadlines first-armed first. */
  seq = 0;
  constructor(
    private readonly clock: VirtualClock,
    readonly callback: () => void,
  ) {}
  /** Arms (or re-arms) the timer for absolute time `ns` (a number: truncated, clamped to the clock's range). */
  arm(ns: number): void {
    this.clock.arm(this, nsFromNumber(ns));
  }
  /** Arms (or re-arms) the timer for absolute time `ns` (exact; clamped to the clock's range). */
  armAtNs(ns: bigint): void {
    this.clock.arm(this, ns);
  }
  /** Arms the timer `ns` from now. */
  armIn(ns: number): void {
    this.clock.arm(this, this.clock.nowNs() + nsFromNumber(ns));
  }
  cancel(): void {
    this.clock.cancel(this);
  }
  get pending(): boolean {
    return this.deadlineNs >= 0n;
  }
  /** Deadline in ns as a number (exact below 2^53), or -1 when not armed. */
  get deadline(): number {
    return Number(this.deadlineNs);
  }

  /** Snapshot: the deadline and arming order, or null when not armed. */
  saveState(): TimerState | null {
    return this.deadlineNs < 0n ? null : { deadline: this.deadlineNs.toString(), seq: this.seq };
  }

  /**
   * Snapshot: re-arms (or cancels, for null) exactly as saved, keeping the
   * arming order; the owner calls it from its own loadState, as QEMU's
   * post_load re-arms a device's timers from its saved state.
   */
  loadState(s: TimerState | null): void {
    if (s === null) {
      this.clock.cancel(this);
      return;
    }
    this.clock.restoreTimer(this, clampNs(BigInt(s.deadline)), s.seq);
  }
}

/** A pending timer in a snapshot: deadline (decimal ns) and arming order. */
export interface TimerState {
  readonly deadline: string;
  readonly seq: number;
}

/** The clock in a snapshot: virtual time (decimal ns) and the next arming order. */
export interface ClockState {
  readonly time: string;
  readonly seq: number;
}

/** Reads a TimerState field (null: not armed) from a snapshot section. */
export function readTimerState(r: SectionReader, key: string): TimerState | null {
  const t = r.optSub(key);
  if (t === null) return null;
  return { deadline: t.big('deadline', 0n, CLOCK_MAX_NS).toString(), seq: t.int('seq') };
}

/** Clock modes: 'qtest' moves only when told; 'real' follows host time. */
export type ClockMode = 'qtest' | 'real';

export class VirtualClock {
  private time = 0n;
  private readonly timers = new Set<Timer>();
  private seq = 0;
  private readonly hostStart = process.hrtime.bigint();
  /** Real mode: virtual time at hostStart (a restored clock goes on from its saved time). */
  private hostBase = 0n;
  private hostTimer: NodeJS.Timeout | null = null;

  constructor(readonly mode: ClockMode) {}

  /** Current virtual time in ns (exact below 2^53). */
  now(): number {
    return Number(this.nowNs());
  }

  /** Current virtual time in ns, exact (int64). */
  nowNs(): bigint {
    if (this.mode === 'real') {
      const host = clampNs(process.hrtime.bigint() - this.hostStart + this.hostBase);
      if (host > this.time) this.time = host;
    }
    return this.time;
  }

  /** Creates a timer that runs `callback` when it expires. */
  timer(callback: () => void): Timer {
    return new Timer(this, callback);
  }

  /** Earliest deadline of an armed timer, or -1n when none is armed. */
  nextDeadline(): bigint {
    return this.soonest()?.deadlineNs ?? NOT_ARMED;
  }

  /**
   * Number-interface step (devices, tests): advances by `ns` (truncated,
   * saturating at CLOCK_MAX_NS; negative: no move), or to the next
   * deadline when omitted (none armed: no move).  Returns the new time.
   */
  step(ns?: number): number {
    if (ns === undefined) {
      const d = this.nextDeadline();
      return Number(d < 0n ? this.time : this.advanceTo(d));
    }
    return Number(this.advanceTo(clampNs(this.time + nsFromNumber(ns))));
  }

  /** Number-interface set: advances to `ns` (never backwards). Returns the new time. */
  set(ns: number): number {
    return Number(this.advanceTo(clampNs(nsFromNumber(ns))));
  }

  /**
   * QEMU qemu_clock_advance_virtual_time: fires the timers already due,
   * then, when `dest` is ahead, every timer due up to `dest` in deadline
   * order, and leaves the clock at `dest`.  Never moves backwards and never
   * past CLOCK_MAX_NS.  Returns the new time.
   */
  advanceTo(dest: bigint): bigint {
    return this.runUntil(dest > this.time ? clampNs(dest) : this.time);
  }

  /** The armed timer that fires first (earliest deadline, then first armed), or null. */
  private soonest(): Timer | null {
    let best: Timer | null = null;
    for (const t of this.timers) if (!best || t.deadlineNs < best.deadlineNs || (t.deadlineNs === best.deadlineNs && t.seq < best.seq)) best = t;
    return best;
  }

  /** Fires every timer due up to `target` in order and leaves the clock at target (if ahead). */
  private runUntil(target: bigint): bigint {
    for (;;) {
      const t = this.soonest();
      if (!t || t.deadlineNs > target) break;
      if (t.deadlineNs > this.time) this.time = t.deadlineNs;
      this.timers.delete(t);
      t.deadlineNs = NOT_ARMED;
      t.callback();
    }
    if (target > this.time) this.time = target;
    return this.time;
  }

  /** @internal used by Timer. */
  arm(t: Timer, ns: bigint): void {
    t.deadlineNs = clampNs(ns);
    t.seq = this.seq++;
    this.timers.add(t);
    if (this.mode === 'real') this.scheduleHost();
  }

  /** @internal used by Timer. */
  cancel(t: Timer): void {
    this.timers.delete(t);
    t.deadlineNs = NOT_ARMED;
  }

  /** Real mode: fire due timers now and schedule the next wake-up. */
  poll(): void {
    this.runUntil(this.nowNs());
    this.scheduleHost();
  }

  private scheduleHost(): void {
    if (this.hostTimer) clearTimeout(this.hostTimer);
    this.hostTimer = null;
    const d = this.nextDeadline();
    if (d < 0n) return;
    const ms = Math.min(MAX_HOST_TIMEOUT_MS, Math.max(0, Number(d - this.nowNs()) / NS_PER_MS));
    this.hostTimer = setTimeout(() => this.poll(), Math.ceil(ms));
    this.hostTimer.unref?.();
  }

  /** Snapshot: virtual time and the arming counter (timers are saved by their owners). */
  saveState(): ClockState {
    return { time: this.nowNs().toString(), seq: this.seq };
  }

  /**
   * Snapshot: the clock at the saved time with no timer armed; each owner
   * then re-arms its own timers (Timer.loadState).  In real mode time goes
   * on from the saved instant.
   */
  loadState(s: ClockState): void {
    for (const t of this.timers) t.deadlineNs = NOT_ARMED;
    this.timers.clear();
    this.time = clampNs(BigInt(s.time));
    this.seq = s.seq;
    if (this.mode === 'real') this.hostBase = this.time - (process.hrtime.bigint() - this.hostStart);
    this.scheduleHost();
  }

  /** @internal used by Timer.loadState: arms with a saved arming order. */
  restoreTimer(t: Timer, ns: bigint, seq: number): void {
    t.deadlineNs = ns;
    t.seq = seq;
    this.timers.add(t);
    if (this.mode === 'real') this.scheduleHost();
  }

  /** Stops host scheduling (machine shutdown). */
  dispose(): void {
    if (this.hostTimer) clearTimeout(this.hostTimer);
    this.hostTimer = null;
  }
}
