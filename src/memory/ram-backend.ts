/**
 * Picks a guest-RAM backend: the native addon when it was built, the pure
 * TypeScript one otherwise.  VTEMU_RAM=ts|native forces one (native then
 * fails loudly when the addon is missing).  The addon is loaded lazily and
 * synchronously on the first `createRam`, so importing this module costs
 * nothing and never fails.
 */
import { ChunkedRam } from './ram.js';
import { createNativeRam, nativeRamAvailable, nativeRamLoadError } from './ram-native.js';
import { createTsRam } from './ram-ts.js';

/** Names of the backends. */
export type RamBackendName = 'ts' | 'native';

/** Every backend this code knows, in order of preference (native first). */
export const RAM_BACKENDS: readonly RamBackendName[] = ['native', 'ts'];

/** The backends usable in this process (tests iterate over these). */
export function availableRamBackends(): RamBackendName[] {
  return RAM_BACKENDS.filter((b) => b === 'ts' || nativeRamAvailable());
}

export { nativeRamAvailable };

/** The backend `createRam` picks without an explicit choice. */
export function defaultRamBackend(): RamBackendName {
  const env = process.env['VTEMU_RAM'];
  if (env === 'ts' || env === 'native') return env;
  if (env !== undefined && env !== '') {
    throw new Error(`vtemu: VTEMU_RAM=${env}: expected 'ts' or 'native'`);
  }
  return nativeRamAvailable() ? 'native' : 'ts';
}

/**
 * Creates guest RAM of `size` bytes (a positive multiple of 4 KiB) with the
 * given backend, or the default one (VTEMU_RAM, else native when built).
 */
export function createRam(size: number, backend?: RamBackendName): ChunkedRam {
  const want = backend ?? defaultRamBackend();
  if (want === 'ts') return createTsRam(size);
  if (!nativeRamAvailable()) {
    throw new Error(`vtemu: the native guest RAM addon is not available (${nativeRamLoadError()})`);
  }
  return createNativeRam(size);
}
