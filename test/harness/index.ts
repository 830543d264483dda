/** The differential and qtest harness (see runner.ts, qemu.ts, vtemu.ts, transcript.ts). */
export * from './runner.js';
export * from './qemu.js';
export * from './vtemu.js';
export * from './transcript.js';
export * from './diff.js';
export * from './fw-bus.js';
export * from './oracle.js';
export * from './snapshot.js';
