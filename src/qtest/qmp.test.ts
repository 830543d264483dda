import { describe, expect, it } from 'vitest';
import { QmpSession } from './qmp.js';

/** A session with its output lines and target calls. */
function session() {
  const out: string[] = [];
  const calls = { resets: 0, quits: 0 };
  const q = new QmpSession({ machine: null, reset: () => calls.resets++, quit: () => calls.quits++ }, (t) => {
    expect(t.endsWith('\r\n')).toBe(true);
    out.push(t.slice(0, -2));
  });
  return { q, out, calls };
}

describe('QmpSession', () => {
  it('greets, negotiates, resets and quits as QEMU 11.1 orders it', () => {
    const { q, out, calls } = session();
    q.greet();
    expect(out[0]).toBe('{"QMP": {"version": {"qemu": {"micro": 3, "minor": 1, "major": 11}, "package": "vtemu 0.1.0"}, "capabilities": ["oob"]}}');
    q.feed('{"execute": "system_reset"}\n');
    expect(out[1]).toBe(`{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}`);
    expect(calls.resets).toBe(0);
    q.feed('{"execute": "qmp_capabilities", "id": 1}\n{"execute": "system_reset"}\n');
    expect(out[2]).toBe('{"return": {}, "id": 1}');
    expect(JSON.parse(out[3]!).event).toBe('RESET'); // the event precedes the reply
    expect(out[4]).toBe('{"return": {}}');
    expect(calls.resets).toBe(1);
    q.feed('{"execute": "nope"}\n{"execute": "quit"}\n{"execute": "query-status"}\n');
    expect(out[5]).toBe('{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}');
    expect(JSON.parse(out[6]!).event).toBe('SHUTDOWN');
    expect(out[7]).toBe('{"return": {}}');
    expect(calls.quits).toBe(1);
    expect(out).toHaveLength(8); // nothing is read after quit
  });

  it('answers non-objects, bad members and deep input with GenericError and keeps running', () => {
    const { q, out } = session();
    q.feed('{"execute": "qmp_capabilities"}\nnull [1] "x"\n');
    q.feed('{"execute": 1, "id": {"b": 2, "a": 1}}\n{"execute": "query-status", "arguments": []}\n{"execute": "query-status", "foo": 1}\n{"id": null}\n');
    q.feed('['.repeat(100_000) + '\n');
    // 0xFF forces a lexical error: it ends the recovery from the nesting error (silently, as in QEMU).
    q.feed(Uint8Array.from([0xff]));
    q.feed('{"execute": "query-status", "id": 5}\n');
    expect(out.slice(1)).toEqual([
      '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}',
      '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}',
      '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}',
      `{"id": {"a": 1, "b": 2}, "error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}}`,
      `{"error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}`,
      `{"error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}`,
      `{"id": null, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`,
      '{"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}',
      '{"return": {"status": "running", "running": true}, "id": 5}',
    ]);
  });

  it('checks exec-oob only once out-of-band is enabled (in-process: QEMU may reorder oob replies)', () => {
    const { q, out } = session();
    q.feed('{"exec-oob": "query-status"}\n');
    q.feed('{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}\n');
    q.feed('{"exec-oob": "query-status", "id": 1}\n{"exec-oob": 1}\n{"execute": "a", "exec-oob": "b"}\n{"exec-oob": "nope"}\n');
    expect(out).toEqual([
      `{"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}}`,
      '{"return": {}}',
      '{"id": 1, "error": {"class": "GenericError", "desc": "The command query-status does not support OOB"}}',
      `{"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' must be a string"}}`,
      `{"error": {"class": "GenericError", "desc": "QMP input member 'execute' clashes with 'exec-oob'"}}`,
      '{"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}',
    ]);
  });
});
