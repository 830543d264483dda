/** ACPI tables for a q35 machine: builder, DMAR builder/parser, table-loader and a firmware-style reader. */
export * from './table.js';
export * from './dmar.js';
export * from './dmar-parse.js';
export * from './linker.js';
export * from './tables.js';
export * from './build.js';
export * from './loader-run.js';
export * from './reader.js';
export * from './install.js';
