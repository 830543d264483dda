/**
 * Guest RAM throughput, per backend: 4-byte accesses and 16-byte copies
 * through ChunkedRam (the page-walk hot path), bulk copies of 4 KiB and 1 MiB in and out (DMA),
 * copyWithin, compared with Buffer.copy between plain Buffers.
 */
import { availableRamBackends, createRam } from '../src/memory/ram-backend.js';
import type { ChunkedRam } from '../src/memory/ram.js';
import { type Bench, type Figures, perSecond, round3 } from './bench.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** RAM size of the benchmark guest: crosses a 1 GiB native chunk. */
const RAM_SIZE = 2048 * MiB;
/** Working set of the 4-byte access loops. */
const WORKING_SET = 16 * MiB;
/** Accesses per timed call of the 4-byte loops. */
const ACCESSES = 1 << 16;
/** Bytes per megabyte in MB/s figures (decimal, as dd and fio print). */
const MB = 1e6;

/** Sums 4-byte reads over the working set, in a stride that visits many pages. */
function readLoop(ram: ChunkedRam, base: number): () => number {
  let at = 0;
  return () => {
    let sum = 0;
    for (let i = 0; i < ACCESSES; i++) {
      sum = (sum + ram.readU32(base + at)) | 0;
      at = (at + 4100) & (WORKING_SET - 4);
    }
    return sum;
  };
}

/** 4-byte writes over the working set. */
function writeLoop(ram: ChunkedRam, base: number): () => number {
  let at = 0;
  return () => {
    for (let i = 0; i < ACCESSES; i++) {
      ram.writeU32(base + at, i);
      at = (at + 4100) & (WORKING_SET - 4);
    }
    return at;
  };
}

/** 16-byte copies out of RAM (context entries, descriptors), in Mops/s. */
function smallCopyLoop(ram: ChunkedRam, base: number): () => number {
  const buf = new Uint8Array(16);
  let at = 0;
  return () => {
    for (let i = 0; i < ACCESSES; i++) {
      ram.copyOut(base + at, buf);
      at = (at + 4112) & (WORKING_SET - 16);
    }
    return buf[0]!;
  };
}

function bulk(ram: ChunkedRam, size: number, base: number): Figures {
  const buf = new Uint8Array(size).fill(0x5a);
  const mbps = (n: number) => ({ value: round3(n / MB), unit: 'MB/s' });
  const label = size >= MiB ? `${size / MiB}M` : `${size / KiB}K`;
  return {
    [`copyIn${label}`]: mbps(perSecond(() => (ram.copyIn(base, buf), 0), size)),
    [`copyOut${label}`]: mbps(perSecond(() => (ram.copyOut(base, buf), buf[0]!), size)),
  };
}

function backendFigures(ram: ChunkedRam): Figures {
  // Straddle the 1 GiB boundary so both chunks are in play.
  const base = 1024 * MiB - WORKING_SET / 2;
  ram.fill(base, WORKING_SET, 1);
  const mops = (n: number) => ({ value: round3(n / 1e6), unit: 'Mops/s' });
  return {
    readU32: mops(perSecond(readLoop(ram, base), ACCESSES)),
    writeU32: mops(perSecond(writeLoop(ram, base), ACCESSES)),
    copyOut16: mops(perSecond(smallCopyLoop(ram, base), ACCESSES)),
    ...bulk(ram, 4 * KiB, base + 4 * KiB),
    ...bulk(ram, MiB, base + MiB),
    copyWithin1M: {
      value: round3(perSecond(() => (ram.copyWithin(base, base + 2 * MiB, MiB), 0), MiB) / MB),
      unit: 'MB/s',
    },
  };
}

/** Buffer.copy between two plain Buffers: the ceiling for bulk copies. */
function baseline(): Figures {
  const out: Figures = {};
  for (const size of [4 * KiB, MiB]) {
    const a = Buffer.alloc(size, 1);
    const b = Buffer.alloc(size);
    const label = size >= MiB ? `${size / MiB}M` : `${size / KiB}K`;
    out[`bufferCopy${label}`] = { value: round3(perSecond(() => a.copy(b), size) / MB), unit: 'MB/s' };
  }
  return out;
}

/** The RAM benchmark module. */
export const ramBench: Bench = {
  name: 'ram',
  run(): Figures {
    const figures: Figures = {};
    for (const backend of availableRamBackends()) {
      const f = backendFigures(createRam(RAM_SIZE, backend));
      for (const [k, v] of Object.entries(f)) figures[`${backend}.${k}`] = v;
    }
    for (const [k, v] of Object.entries(baseline())) figures[`baseline.${k}`] = v;
    return figures;
  },
};
