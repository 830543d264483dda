/**
 * Interrupt bookkeeping shared by platform implementations: handlers by
 * (kind, vector) plus a queue for polling guests.
 */
import type { GuestInterrupt, InterruptHandler } from './platform.js';

/** Most interrupts kept for polling before the oldest are dropped. */
const MAX_QUEUED = 4096;

/** Dispatches observed interrupts to handlers and keeps them for polling. */
export class InterruptHub {
  private readonly handlers = new Map<string, InterruptHandler[]>();
  private queue: GuestInterrupt[] = [];

  /** Registers `handler` for interrupts of this kind and vector / pin. */
  on(kind: 'msi' | 'intx', vector: number, handler: InterruptHandler): void {
    const key = `${kind}:${vector}`;
    const list = this.handlers.get(key);
    if (list) list.push(handler);
    else this.handlers.set(key, [handler]);
  }

  /** Records one interrupt and runs its handlers. */
  deliver(irq: GuestInterrupt): void {
    if (this.queue.length >= MAX_QUEUED) this.queue.shift();
    this.queue.push(irq);
    const list = this.handlers.get(`${irq.kind}:${irq.vector}`);
    if (list) for (const h of list) h(irq);
  }

  /** Returns and forgets the queued interrupts. */
  take(): GuestInterrupt[] {
    const q = this.queue;
    this.queue = [];
    return q;
  }
}
