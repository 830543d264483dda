import { describe, expect, it } from 'vitest';
import { checkAudioOption, checkNetOption, parseRunWith } from './process-options.js';

const msg = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
};

describe('-audio', () => {
  it('accepts the none driver in both spellings, with an id', () => {
    expect(msg(() => checkAudioOption('none'))).toBe('accepted');
    expect(msg(() => checkAudioOption('driver=none'))).toBe('accepted');
    expect(msg(() => checkAudioOption('none,id=x'))).toBe('accepted');
  });
  it("refuses an unknown driver with QEMU's message and a real one with vtemu's", () => {
    expect(msg(() => checkAudioOption('foo'))).toBe("Parameter 'driver' does not accept value 'foo'");
    expect(msg(() => checkAudioOption('pa'))).toMatch(/^audio driver 'pa' is not supported/);
  });
});

describe('-run-with', () => {
  it('reads exit-with-parent', () => {
    expect(parseRunWith('exit-with-parent=on')).toBe(true);
    expect(parseRunWith('exit-with-parent=off')).toBe(false);
    expect(parseRunWith('async-teardown=on')).toBe(null);
  });
  it("refuses what QEMU 11.1 refuses, with its messages", () => {
    expect(msg(() => parseRunWith('foo=bar'))).toBe("Invalid parameter 'foo'");
    expect(msg(() => parseRunWith('exit-with-parent=maybe'))).toBe("Parameter 'exit-with-parent' expects 'on' or 'off'");
    expect(msg(() => parseRunWith('chroot=/x'))).toMatch(/not supported/);
  });
});

describe('-net', () => {
  it('accepts none and refuses unknown types as QEMU does', () => {
    expect(msg(() => checkNetOption('none'))).toBe('accepted');
    expect(msg(() => checkNetOption('foo'))).toBe("Parameter 'type' does not accept value 'foo'");
    expect(msg(() => checkNetOption('user'))).toMatch(/^network type 'user' is not supported/);
  });
});
