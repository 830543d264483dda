/**
 * Interrupt controllers: the IOAPIC and the APIC bus (MSI sink).
 */
export * from './ioapic.js';
export * from './msi-sink.js';
