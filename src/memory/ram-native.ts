/**
 * Native guest-RAM backend: one anonymous MAP_NORESERVE mapping made by the
 * `vtemu_ram` addon (native/vtemu_ram.cc), seen as 1 GiB external
 * ArrayBuffers for 1/2/4-byte accesses, with bulk copies, fills and compares
 * done in one native call each.  Pages cost memory only once written.
 *
 * The addon is loaded synchronously, on first use, from
 * `build/Release/vtemu_ram.node` under the package root (found by walking up
 * from this module, so it works from `src/` under vitest and from
 * `dist/src/` after tsc).  Nothing here is imported by devices: they see
 * `ChunkedRam` through the memory layer only.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BulkOps, type ChunkSource, ChunkedRam } from './ram.js';

/** The chunk size the addon hands out: 1 GiB. */
export const NATIVE_CHUNK_SHIFT = 30;

/** Where the addon lives, relative to the package root. */
const ADDON_PATH = join('build', 'Release', 'vtemu_ram.node');

/** One mapping, as the addon exposes it. */
export interface NativeRamObject extends BulkOps {
  readonly size: number;
  readonly chunkCount: number;
  chunk(index: number): ArrayBuffer;
}

/** The addon's exports. */
export interface NativeRamAddon {
  readonly NativeRam: new (size: number) => NativeRamObject;
  readonly chunkShift: number;
}

let addon: NativeRamAddon | null | undefined;
let loadError = '';

/** The package root: the nearest ancestor of this module holding package.json. */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Absolute path of the addon file (whether or not it exists), or null outside a package. */
export function nativeAddonPath(): string | null {
  const root = packageRoot();
  return root ? join(root, ADDON_PATH) : null;
}

/**
 * The raw addon, for tests and benchmarks that exercise its own checks;
 * null when unavailable.  Everything else goes through `createNativeRam`.
 */
export function loadNativeRamAddon(): NativeRamAddon | null {
  return loadAddon();
}

/** Loads the addon once; null when it is not built or does not load. */
function loadAddon(): NativeRamAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  const file = nativeAddonPath();
  if (!file || !existsSync(file)) {
    loadError = `${ADDON_PATH} not found (npm install builds it)`;
    return addon;
  }
  try {
    const mod = createRequire(import.meta.url)(file) as NativeRamAddon;
    if (mod.chunkShift !== NATIVE_CHUNK_SHIFT) {
      loadError = `${file}: chunk shift ${mod.chunkShift}, expected ${NATIVE_CHUNK_SHIFT} (rebuild it)`;
    } else {
      addon = mod;
    }
  } catch (e) {
    loadError = `${file}: ${(e as Error).message}`;
  }
  return addon;
}

/** True when the native addon is built and loads. */
export function nativeRamAvailable(): boolean {
  return loadAddon() !== null;
}

/** Why the native addon is unavailable ('' when it is available or untried). */
export function nativeRamLoadError(): string {
  loadAddon();
  return loadError;
}

/** The chunks of one native mapping, each fetched from the addon once. */
class NativeChunks implements ChunkSource {
  readonly chunkShift = NATIVE_CHUNK_SHIFT;
  readonly size: number;
  private readonly buffers: (ArrayBuffer | null)[];

  constructor(private readonly mapping: NativeRamObject) {
    this.size = mapping.size;
    this.buffers = new Array<ArrayBuffer | null>(mapping.chunkCount).fill(null);
  }

  /** Always answers a buffer: untouched pages of the mapping read as zeros for free. */
  chunk(index: number): ArrayBuffer {
    return (this.buffers[index] ??= this.mapping.chunk(index));
  }
}

/**
 * Creates native RAM of `size` bytes (a positive multiple of 4 KiB).  Throws
 * when the addon is not available or the address space cannot be reserved.
 */
export function createNativeRam(size: number): ChunkedRam {
  if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0) {
    throw new RangeError(`guest RAM: size ${size} must be a positive multiple of 4096`);
  }
  const mod = loadAddon();
  if (!mod) throw new Error(`vtemu: the native guest RAM addon is unavailable: ${loadError}`);
  const mapping = new mod.NativeRam(size);
  return new ChunkedRam(new NativeChunks(mapping), 'native', mapping);
}
