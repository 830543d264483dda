/**
 * The typed event emitter the public views hand out: Node's EventEmitter
 * typed by an event map (the typed-emitter package), so `on('fault', (e)
 * => ...)` knows the listener's argument.  The objects behind it are plain
 * `EventEmitter`s.
 */
import type TypedEmitterModule from 'typed-emitter';

/** An event map: event name to listener signature. */
export type EventMap = TypedEmitterModule.EventMap;

/**
 * A Node `EventEmitter` whose `on` / `once` / `off` / `emit` are typed by
 * the event map `E` (typed-emitter's interface; a CommonJS package, hence
 * the `default` member under nodenext).
 */
export type TypedEmitter<E extends EventMap> = TypedEmitterModule.default<E>;
