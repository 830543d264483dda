/**
 * Picks a guest-RAM backend: the native addon when it was built (or when
 * asked for), the pure TypeScript one otherwise.  VTEMU_RAM=ts|native forces one.
 */
import { ChunkedRam } from './ram.js';
import { createTsRam } from './ram-ts.js';

/** Names of the available backends. */
export type RamBackendName = 'ts' | 'native';

type NativeFactory = (size: number) => ChunkedRam;
let nativeFactory: NativeFactory | null | undefined;

/** Registers the native factory (done by ram-native.ts when its addon loads). */
export function registerNativeRam(factory: NativeFactory): void {
  nativeFactory = factory;
}

/** True when the native backend can be used. */
export function nativeRamAvailable(): boolean {
  return !!nativeFactory;
}

/** Creates guest RAM with the chosen (or default) backend. */
export function createRam(size: number, backend?: RamBackendName): ChunkedRam {
  const want = backend ?? (process.env['VTEMU_RAM'] as RamBackendName | undefined);
  if (want === 'ts') return createTsRam(size);
  if (nativeFactory) return nativeFactory(size);
  if (want === 'native') throw new Error('vtemu: the native guest RAM addon is not built (npm install builds it)');
  return createTsRam(size);
}
