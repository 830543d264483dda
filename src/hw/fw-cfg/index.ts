/** fw_cfg: the item store (fw-cfg.ts), its x86 ports (ports.ts), QEMU q35's items (q35-items.ts) with the -uuid/-boot options (boot-options.ts) and a firmware-side client. */
export * from './fw-cfg.js';
export * from './ports.js';
export * from './q35-items.js';
export * from './client.js';
export * from './boot-options.js';
