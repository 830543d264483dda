import { describe, expect, it } from 'vitest';
import { QmpSession } from './qmp.js';

describe('QmpSession', () => {
  it('greets, negotiates, resets and quits', () => {
    const out: string[] = [];
    let resets = 0;
    let quit = false;
    const q = new QmpSession({ reset: () => resets++, quit: () => (quit = true) }, (t) => out.push(t));
    q.greet();
    expect(JSON.parse(out[0]!).QMP.version.qemu).toEqual({ micro: 0, minor: 2, major: 7 });
    q.feed('{"execute": "system_reset"}\n');
    expect(JSON.parse(out[1]!).error.class).toBe('CommandNotFound');
    expect(resets).toBe(0);
    q.feed('{"execute": "qmp_capabilities", "id": 1}\n{"execute": "system_reset"}\n');
    expect(JSON.parse(out[2]!)).toEqual({ return: {}, id: 1 });
    expect(JSON.parse(out[3]!)).toEqual({ return: {} });
    expect(JSON.parse(out[4]!).event).toBe('RESET');
    expect(resets).toBe(1);
    q.feed('{"execute": "nope"}\nnot json\n');
    expect(JSON.parse(out[5]!).error.desc).toBe('The command nope has not been found');
    expect(JSON.parse(out[6]!).error.class).toBe('GenericError');
    q.feed('{"execute": "quit"}\n');
    expect(quit).toBe(true);
  });
});
