import { describe, expect, it } from 'vitest';
import { readTimerState, VirtualClock } from './clock.js';
import { SectionReader } from './snapshot-state.js';

describe('clock snapshot', () => {
  it('a loaded clock fires re-armed timers at their deadlines, equal deadlines in the saved arming order', () => {
    const a = new VirtualClock('qtest');
    const fired: string[] = [];
    const ta = [a.timer(() => fired.push('x')), a.timer(() => fired.push('y')), a.timer(() => fired.push('z'))];
    a.step(500);
    ta[1]!.arm(2000);
    ta[0]!.arm(2000);
    ta[2]!.arm(1500);
    const clock = a.saveState();
    const timers = ta.map((t) => t.saveState());
    expect(clock.time).toBe('500');

    const b = new VirtualClock('qtest');
    const got: string[] = [];
    const tb = [b.timer(() => got.push('x')), b.timer(() => got.push('y')), b.timer(() => got.push('z'))];
    tb[0]!.arm(100); // armed before the load: forgotten
    b.loadState(clock);
    // Re-armed in another order than saved: the saved order still wins.
    for (const i of [2, 0, 1]) tb[i]!.loadState(readTimerState(SectionReader.of({ t: timers[i] as never }, 's'), 't'));
    expect(b.now()).toBe(500);
    a.step(10_000);
    b.step(10_000);
    expect(got).toEqual(fired);
    expect(got).toEqual(['z', 'y', 'x']);
    expect(b.saveState()).toEqual(a.saveState());
  });

  it('an unarmed timer saves as null and loading null cancels', () => {
    const c = new VirtualClock('qtest');
    const t = c.timer(() => {});
    expect(t.saveState()).toBeNull();
    t.arm(5);
    t.loadState(null);
    expect(t.pending).toBe(false);
    expect(c.nextDeadline()).toBe(-1n);
  });

  it('a real-mode clock goes on from the saved time', () => {
    const c = new VirtualClock('real');
    c.loadState({ time: '5000000000000', seq: 0 });
    expect(c.now()).toBeGreaterThanOrEqual(5_000_000_000_000);
    expect(c.now()).toBeLessThan(5_010_000_000_000);
    c.dispose();
  });
});
