import { describe, expect, it } from 'vitest';
import { CLOCK_MAX_NS, VirtualClock, nsFromNumber } from './clock.js';

describe('VirtualClock: int64 nanoseconds end to end', () => {
  it('number offsets saturate at the int64 bounds and never throw', () => {
    expect(nsFromNumber(1.9)).toBe(1n);
    expect(nsFromNumber(-1.9)).toBe(-1n);
    expect(nsFromNumber(Number.NaN)).toBe(0n);
    expect(nsFromNumber(Infinity)).toBe(CLOCK_MAX_NS);
    expect(nsFromNumber(2 ** 63)).toBe(CLOCK_MAX_NS);
    expect(nsFromNumber(-Infinity)).toBe(-(1n << 63n));
  });

  it('keeps exact time past 2^53 and stops at INT64_MAX', () => {
    const c = new VirtualClock('qtest');
    expect(c.advanceTo((1n << 53n) + 1n)).toBe((1n << 53n) + 1n);
    expect(c.nowNs()).toBe(9007199254740993n);
    c.step(2 ** 63);
    expect(c.nowNs()).toBe(CLOCK_MAX_NS);
    expect(c.advanceTo(CLOCK_MAX_NS + 5n)).toBe(CLOCK_MAX_NS);
    expect(c.advanceTo(0n)).toBe(CLOCK_MAX_NS); // never backwards
  });

  it('timers: deadlines clamp to the clock range, fire in order, exact beyond 2^53', () => {
    const c = new VirtualClock('qtest');
    const fired: string[] = [];
    const far = c.timer(() => fired.push('far'));
    const near = c.timer(() => fired.push('near'));
    const big = c.timer(() => fired.push('big'));
    far.armIn(Infinity);
    near.armIn(-5);
    big.armAtNs((1n << 53n) + 1n);
    expect([far.deadlineNs, near.deadlineNs, big.deadline]).toEqual([CLOCK_MAX_NS, 0n, 2 ** 53]);
    expect(c.nextDeadline()).toBe(0n);
    c.advanceTo(1n << 53n);
    expect(fired).toEqual(['near']);
    c.advanceTo((1n << 53n) + 1n);
    expect(fired).toEqual(['near', 'big']);
    expect(c.step()).toBe(Number(CLOCK_MAX_NS));
    expect(fired).toEqual(['near', 'big', 'far']);
    expect([far.pending, c.nextDeadline()]).toEqual([false, -1n]);
  });

  it('equal deadlines fire first-armed first; overdue timers fire on the next advance', () => {
    const c = new VirtualClock('qtest');
    const fired: number[] = [];
    for (let i = 0; i < 3; i++) c.timer(() => fired.push(i)).arm(100);
    c.set(100);
    expect(fired).toEqual([0, 1, 2]);
    c.timer(() => fired.push(9)).arm(50); // in the past
    expect(c.advanceTo(100n)).toBe(100n);
    expect(fired).toEqual([0, 1, 2, 9]);
  });
});
