/**
 * The benchmark contract: a bench module is a name and a `run` that returns
 * figures keyed by metric name.  `bench/index.ts` runs every registered
 * module and prints one JSON object of all figures, keys prefixed with the
 * module's name.  To add a module: write `bench/foo.ts` exporting a `Bench`
 * and add it to the list in `bench/index.ts`.
 */

/** One figure: a value and its unit (e.g. "Mops/s", "MB/s", "ns"). */
export interface Figure {
  readonly value: number;
  readonly unit: string;
}

/** Figures of one module, by metric name. */
export type Figures = Record<string, Figure>;

/** A benchmark module. */
export interface Bench {
  /** Prefix of this module's keys in the output ("ram" gives "ram.ts.readU32"). */
  readonly name: string;
  /** Runs the measurements; may be async. */
  run(): Figures | Promise<Figures>;
}

/** Default time spent on one measurement, in milliseconds. */
export const DEFAULT_MEASURE_MS = 250;

/**
 * Calls `fn` repeatedly (after a short warm-up) for about `ms` milliseconds
 * and returns how many `unitsPerCall` units were done per second.  `fn`
 * returns a value that is folded into a sink so the JIT cannot drop the work.
 */
export function perSecond(fn: () => number, unitsPerCall: number, ms = DEFAULT_MEASURE_MS): number {
  let sink = 0;
  const warmEnd = performance.now() + ms / 5;
  while (performance.now() < warmEnd) sink += fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    sink += fn();
    calls++;
    now = performance.now();
  }
  if (sink === Number.NEGATIVE_INFINITY) console.error('unreachable');
  return (calls * unitsPerCall) / ((now - start) / 1000);
}

/** Rounds a figure to 3 significant digits for printing. */
export function round3(value: number): number {
  return Number(value.toPrecision(3));
}
