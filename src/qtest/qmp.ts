/**
 * A minimal QMP server (what libqtest uses): the greeting,
 * `qmp_capabilities`, `system_reset` (with the RESET event), `quit`,
 * `query-status`; anything else answers CommandNotFound.  One JSON object
 * per line in each direction.
 */

/** What QMP commands act on. */
export interface QmpTarget {
  reset(): void;
  quit(): void;
}

/** The greeting QEMU 7.2 sends on connect. */
export const QMP_GREETING = { QMP: { version: { qemu: { micro: 0, minor: 2, major: 7 }, package: 'vtemu' }, capabilities: ['oob'] } };

function timestamp(): { seconds: number; microseconds: number } {
  const now = Date.now();
  return { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 };
}

/** One QMP session. */
export class QmpSession {
  private buffer = '';
  private negotiated = false;

  constructor(
    private readonly target: QmpTarget,
    private readonly send: (text: string) => void,
  ) {}

  /** Sends the greeting (call once the channel is open). */
  greet(): void {
    this.emit(QMP_GREETING);
  }

  /** Feeds raw input; each complete JSON line is executed. */
  feed(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.indexOf('\n');
      if (nl < 0) break;
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.execute(line);
    }
  }

  private emit(obj: unknown): void {
    this.send(JSON.stringify(obj) + '\r\n');
  }

  private execute(line: string): void {
    let req: { execute?: unknown; id?: unknown };
    try {
      req = JSON.parse(line) as { execute?: unknown; id?: unknown };
    } catch {
      this.emit({ error: { class: 'GenericError', desc: 'JSON parse error' } });
      return;
    }
    const id = req.id !== undefined ? { id: req.id } : {};
    const cmd = typeof req.execute === 'string' ? req.execute : '';
    if (!this.negotiated && cmd !== 'qmp_capabilities') {
      this.emit({ error: { class: 'CommandNotFound', desc: `Expecting capabilities negotiation with 'qmp_capabilities'` }, ...id });
      return;
    }
    switch (cmd) {
      case 'qmp_capabilities':
        this.negotiated = true;
        this.emit({ return: {}, ...id });
        return;
      case 'system_reset':
        this.target.reset();
        this.emit({ return: {}, ...id });
        this.emit({ timestamp: timestamp(), event: 'RESET', data: { guest: false, reason: 'host-qmp-system-reset' } });
        return;
      case 'query-status':
        this.emit({ return: { status: 'running', singlestep: false, running: true }, ...id });
        return;
      case 'quit':
        this.emit({ return: {}, ...id });
        this.emit({ timestamp: timestamp(), event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' } });
        this.target.quit();
        return;
      default:
        this.emit({ error: { class: 'CommandNotFound', desc: `The command ${cmd} has not been found` }, ...id });
    }
  }
}
