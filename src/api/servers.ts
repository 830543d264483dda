/**
 * The protocol servers over a public machine view: a qtest session (QEMU's
 * qtest line protocol) and a QMP session.  Each wraps the model's server
 * (src/qtest/) and hands it the model object behind the view, so the
 * internals the servers need (IOAPIC intercepts, the QMP command set) stay
 * out of the public types.  How bytes reach them is the caller's choice
 * (a socket, stdio, `openChannel`, or direct calls).
 */
import { QtestServer as ModelQtestServer } from '../qtest/server.js';
import { QmpSession as ModelQmpSession, type QmpTarget as ModelQmpTarget } from '../qtest/qmp.js';
import { modelOf, type Machine } from './machine.js';

/** One qtest session over a machine: replies byte-identical to QEMU 11.1's. */
export class QtestServer {
  readonly #server: ModelQtestServer;

  /** `send` receives protocol text (complete lines, each ending in `\n`). Throws TypeError for a non-vtemu machine. */
  constructor(machine: Machine, send: (text: string) => void) {
    this.#server = new ModelQtestServer(modelOf(machine), send);
  }

  /** Feeds raw input in any chunking; every complete line is answered in order. */
  feed(chunk: string): void {
    this.#server.feed(chunk);
  }

  /** Processes one command line (without its newline) and sends its reply, if any.  Never throws. */
  handleLine(line: string): void {
    this.#server.handleLine(line);
  }

  /** Ends the session: removes its IRQ and MSI intercepts; later lines get no reply. */
  close(): void {
    this.#server.close();
  }
}

/** What a QMP session controls. */
export interface QmpTarget {
  /** The machine (null: `-machine none`). */
  readonly machine: Machine | null;
  /** `system_reset` was asked for. */
  reset(): void;
  /** `quit` was asked for (after its reply is sent). */
  quit(): void;
}

/** One QMP session (QEMU 11.1's greeting, capabilities negotiation and commands). */
export class QmpSession {
  readonly #session: ModelQmpSession;

  /** `send` receives JSON text (each message ends in `\r\n`). Throws TypeError for a non-vtemu machine. */
  constructor(target: QmpTarget, send: (text: string) => void) {
    const model: ModelQmpTarget = {
      machine: target.machine === null ? null : modelOf(target.machine),
      reset: () => target.reset(),
      quit: () => target.quit(),
    };
    this.#session = new ModelQmpSession(model, send);
  }

  /** Sends the greeting (call once the channel is open). */
  greet(): void {
    this.#session.greet();
  }

  /** Feeds raw input (bytes, or text sent as UTF-8); each complete message is answered. */
  feed(chunk: Uint8Array | string): void {
    this.#session.feed(chunk);
  }
}
