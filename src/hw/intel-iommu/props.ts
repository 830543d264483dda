/**
 * intel-iommu properties: the list `-device intel-iommu,help` prints, their
 * defaults (current QEMU), and the resolution / validation QEMU does at
 * realize (vtd_decide_config, x86_iommu_realize) for a machine without KVM.
 *
 * Beyond QEMU: aw-bits=57 (5-level tables, SAGAW bit 3) and nfr=N fault
 * recording registers.  Scalable mode, PASID, first-stage translation and
 * SVM are refused with a clear message until they are implemented.
 */
import type { PropDef, PropValues } from '../../machine/device-type.js';

/** kernel-irqchip machine property, as the machine resolves it. */
export type KernelIrqchip = 'on' | 'off' | 'split';

/** Host address widths the model accepts. */
export const AW_BITS = { AW39: 39, AW48: 48, AW57: 57 } as const;

/** Largest number of fault recording registers that still fit the 4 KiB register page. */
export const MAX_NFR = (0x1000 - 0x220) / 16;

/** The property definitions, in `-device intel-iommu,help` order. */
export const INTEL_IOMMU_PROPS: Readonly<Record<string, PropDef>> = {
  'aw-bits': { kind: 'uint8', default: 48, help: 'host address width: 39, 48 (or 57, beyond QEMU)' },
  'caching-mode': { kind: 'bool', default: false },
  'device-iotlb': { kind: 'bool', default: false },
  'dma-drain': { kind: 'bool', default: true },
  'dma-translation': { kind: 'bool', default: true },
  eim: { kind: 'OnOffAuto', default: 'auto', help: 'on/off/auto' },
  fs1gp: { kind: 'bool', default: true },
  intremap: { kind: 'OnOffAuto', default: 'auto', help: 'on/off/auto' },
  nfr: { kind: 'uint8', default: 1, help: 'number of fault recording registers (beyond QEMU)' },
  pt: { kind: 'bool', default: true },
  'snoop-control': { kind: 'bool', default: false },
  'stale-tm': { kind: 'bool', default: false },
  svm: { kind: 'bool', default: false },
  version: { kind: 'uint32', default: 0 },
  'x-buggy-eim': { kind: 'bool', default: false },
  'x-flts': { kind: 'bool', default: false },
  'x-pasid-mode': { kind: 'bool', default: false },
  'x-scalable-mode': { kind: 'bool', default: false },
  // Queued invalidation / interrupt remapping extension (queue-ir-extension.ts), beyond QEMU.
  'x-pi': { kind: 'bool', default: false, help: 'posted interrupts (CAP.PI, IRTE IM=1; needs intremap) (beyond QEMU)' },
  'x-cfi': { kind: 'bool', default: false, help: 'GSTS.CFIS follows GCMD.CFI; compatibility-format interrupts are blocked while IRE is on without it (beyond QEMU)' },
  'x-iqer': { kind: 'bool', default: false, help: 'invalidation queue error record register at 0xB0 (beyond QEMU)' },
  'x-devtlb-timeout-sid': { kind: 'uint32', default: 0x10000, help: 'device-TLB invalidations of this SID time out (FSTS.ITE); 65536 = none (beyond QEMU)' },
  'x-devtlb-error-sid': { kind: 'uint32', default: 0x10000, help: 'device-TLB invalidations of this SID fail (FSTS.ICE); 65536 = none (beyond QEMU)' },
};

/** The resolved configuration of one unit. */
export interface IommuConfig {
  /** Host address width (39, 48, 57). */
  readonly awBits: number;
  readonly cachingMode: boolean;
  /** Interrupt remapping supported (ECAP.IR), after auto resolution. */
  readonly intremap: boolean;
  /** Extended interrupt mode (ECAP.EIM), after auto resolution. */
  readonly eim: boolean;
  readonly buggyEim: boolean;
  readonly deviceIotlb: boolean;
  readonly pt: boolean;
  readonly dmaDrain: boolean;
  readonly dmaTranslation: boolean;
  readonly snoopControl: boolean;
  readonly scalableMode: boolean;
  readonly pasidMode: boolean;
  readonly flts: boolean;
  readonly fs1gp: boolean;
  readonly svm: boolean;
  readonly staleTm: boolean;
  readonly version: number;
  /** Number of fault recording registers. */
  readonly nfr: number;
  /** The machine's kernel-irqchip setting used for the resolution. */
  readonly kernelIrqchip: KernelIrqchip;
  /** Every property value as given (defaults filled), for extensions' own properties. */
  readonly raw: PropValues;
}

function boolProp(p: PropValues, name: string): boolean {
  const v = p[name] ?? INTEL_IOMMU_PROPS[name]?.default;
  return v === true || v === 'on';
}

function numProp(p: PropValues, name: string): number {
  const v = p[name] ?? INTEL_IOMMU_PROPS[name]?.default ?? 0;
  return Number(v);
}

function onOffAuto(p: PropValues, name: string): 'on' | 'off' | 'auto' {
  const v = p[name] ?? INTEL_IOMMU_PROPS[name]?.default;
  if (v === true || v === 'on') return 'on';
  if (v === false || v === 'off') return 'off';
  return 'auto';
}

/**
 * Resolves and validates properties as QEMU's realize does.  Throws an
 * Error with QEMU's message for a configuration QEMU refuses (and for the
 * features this model does not implement yet).
 */
export function resolveIommuConfig(props: PropValues, kernelIrqchip: KernelIrqchip = 'off'): IommuConfig {
  const raw: Record<string, PropValues[string]> = {};
  for (const [k, def] of Object.entries(INTEL_IOMMU_PROPS)) if (def.default !== undefined) raw[k] = def.default;
  Object.assign(raw, props);

  // There is no KVM here, so QEMU's kvm_irqchip_in_kernel() is always false:
  // as under TCG, `-machine kernel-irqchip=...` changes nothing (checked
  // against QEMU 7.2 with TCG for on/split/off): intremap auto resolves on,
  // eim auto resolves off, and eim=on needs x-buggy-eim.
  void kernelIrqchip;
  const intremapProp = onOffAuto(raw, 'intremap');
  const intremap = intremapProp !== 'off';

  // vtd_decide_config.
  const buggyEim = boolProp(raw, 'x-buggy-eim');
  const eimProp = onOffAuto(raw, 'eim');
  if (eimProp === 'on' && !intremap) throw new Error('eim=on cannot be selected without intremap=on');
  const eim = eimProp === 'auto' ? buggyEim && intremap : eimProp === 'on';
  if (eim && !buggyEim) throw new Error('eim=on requires accel=kvm,kernel-irqchip=split');

  const awBits = numProp(raw, 'aw-bits');
  if (awBits !== AW_BITS.AW39 && awBits !== AW_BITS.AW48 && awBits !== AW_BITS.AW57) {
    throw new Error(`Supported values for aw-bits are: ${AW_BITS.AW39}, ${AW_BITS.AW48}, ${AW_BITS.AW57}`);
  }

  const scalableMode = boolProp(raw, 'x-scalable-mode');
  const pasidMode = boolProp(raw, 'x-pasid-mode');
  const flts = boolProp(raw, 'x-flts');
  const svm = boolProp(raw, 'svm');
  const dmaDrain = boolProp(raw, 'dma-drain');
  const deviceIotlb = boolProp(raw, 'device-iotlb');
  const dmaTranslation = boolProp(raw, 'dma-translation');
  if (scalableMode && !dmaDrain) throw new Error('Need to set dma_drain for scalable mode');
  if (pasidMode && !scalableMode) throw new Error('Need to set scalable mode for PASID');
  if (flts && !scalableMode) throw new Error('x-flts is only available in scalable mode');
  if (flts && awBits !== AW_BITS.AW48) throw new Error(`Scalable mode(flts) requires aw-bits=${AW_BITS.AW48}`);
  if (svm && (!deviceIotlb || !flts || !dmaTranslation || !pasidMode)) {
    throw new Error('svm=on requires device-iotlb=on, x-flts=on, dma-translation=on and x-pasid-mode=on');
  }
  if (scalableMode || pasidMode || flts || svm) {
    throw new Error('intel-iommu: x-scalable-mode, x-pasid-mode, x-flts and svm are not implemented by vtemu yet');
  }

  const nfr = numProp(raw, 'nfr');
  if (!Number.isInteger(nfr) || nfr < 1 || nfr > MAX_NFR) {
    throw new Error(`intel-iommu: nfr must be between 1 and ${MAX_NFR}`);
  }

  return {
    awBits,
    cachingMode: boolProp(raw, 'caching-mode'),
    intremap,
    eim,
    buggyEim,
    deviceIotlb,
    pt: boolProp(raw, 'pt'),
    dmaDrain,
    dmaTranslation,
    snoopControl: boolProp(raw, 'snoop-control'),
    scalableMode,
    pasidMode,
    flts,
    fs1gp: boolProp(raw, 'fs1gp'),
    svm,
    staleTm: boolProp(raw, 'stale-tm'),
    version: numProp(raw, 'version'),
    nfr,
    kernelIrqchip,
    raw,
  };
}
