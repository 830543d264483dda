/**
 * intel-iommu properties: the list `-device intel-iommu,help` prints (QEMU
 * 11.1's, in its layout), their defaults, the names QEMU 11.1 dropped (kept
 * as deprecated aliases with one warning each), and the resolution /
 * validation QEMU 11.1 does at realize (vtd_decide_config,
 * x86_iommu_realize) for a machine without KVM, in its order and words.
 *
 * Beyond QEMU: aw-bits=57 in legacy mode (5-level tables, SAGAW bit 3; QEMU
 * 11.1 refuses it with "Legacy mode: supported values for aw-bits are: 39,
 * 48", which stays the message for every other width: vtemu accepts 57 in
 * addition and says so in the README, not in QEMU's line), nfr=N fault
 * recording registers and the x-... extension properties.  Three of them
 * extend scalable mode, each off by default so the default machine stays
 * QEMU's, and each checked after all of QEMU's checks in QEMU's words
 * ("Need to set X for Y"):
 *   x-fs5lp   CAP.FS5LP: 5-level first stage.  Needs fsts ("Need to set fsts
 *             for x-fs5lp"); with it fsts=on also accepts aw-bits=57, so a
 *             guest can use 57-bit IOVAs (QEMU's aw-bits line is unchanged).
 *   x-nested  ECAP.NEST (and ECAP.SSTS next to FSTS): PGTT=3.  Needs scalable
 *             mode, fsts (first stage) and dma-translation (second stage).
 *   x-smpwc   ECAP.SMPWC: scalable-mode page walks are coherent.  Needs
 *             scalable mode.
 */
import type { DeprecatedProp, PropDef, PropValue, PropValues } from '../../machine/device-type.js';

/** kernel-irqchip machine property, as the machine resolves it. */
export type KernelIrqchip = 'on' | 'off' | 'split';

/** Host address widths the model accepts (57, beyond QEMU: legacy mode, or fsts=on with x-fs5lp). */
export const AW_BITS = { AW39: 39, AW48: 48, AW57: 57 } as const;

/** Largest number of fault recording registers that still fit the 4 KiB register page. */
export const MAX_NFR = (0x1000 - 0x220) / 16;

/** Widest PASID the PCI spec allows (QEMU's pasid-bits limit). */
export const MAX_PASID_BITS = 20;

/** PASID width `x-pasid-mode=on` meant (ECAP.PSS = 7, QEMU < 10.2). */
export const LEGACY_PASID_BITS = 8;

/**
 * The property definitions, in `-device intel-iommu,help` order (QEMU 11.1's
 * list, then vtemu's own, marked "beyond QEMU").
 */
export const INTEL_IOMMU_PROPS: Readonly<Record<string, PropDef>> = {
  'aw-bits': { kind: 'uint8', default: AW_BITS.AW48 },
  'caching-mode': { kind: 'bool', default: false },
  'device-iotlb': { kind: 'bool', default: false },
  'dma-translation': { kind: 'bool', default: true },
  eim: { kind: 'OnOffAuto', default: 'auto' },
  fs1gp: { kind: 'bool', default: true },
  fsts: { kind: 'bool', default: false },
  intremap: { kind: 'OnOffAuto', default: 'auto' },
  'pasid-bits': { kind: 'uint8', default: 0 },
  'scalable-mode': { kind: 'bool', default: false },
  'snoop-control': { kind: 'bool', default: false },
  'stale-tm': { kind: 'bool', default: false },
  svm: { kind: 'bool', default: false },
  version: { kind: 'uint32', default: 0 },
  nfr: { kind: 'uint8', default: 1, help: 'number of fault recording registers (beyond QEMU)' },
  // Queued invalidation (queue.ts) and interrupt remapping (interrupt-remap.ts) options, beyond QEMU.
  'x-pi': { kind: 'bool', default: false, help: 'posted interrupts (CAP.PI, IRTE IM=1; needs intremap) (beyond QEMU)' },
  'x-cfi': { kind: 'bool', default: false, help: 'GSTS.CFIS follows GCMD.CFI; compatibility-format interrupts are blocked while IRE is on without it (beyond QEMU)' },
  'x-iqer': { kind: 'bool', default: false, help: 'invalidation queue error record register at 0xB0 (beyond QEMU)' },
  'x-devtlb-timeout-sid': { kind: 'uint32', default: 0x10000, help: 'device-TLB invalidations of this SID time out (FSTS.ITE); 65536 = none (beyond QEMU)' },
  'x-devtlb-error-sid': { kind: 'uint32', default: 0x10000, help: 'device-TLB invalidations of this SID fail (FSTS.ICE); 65536 = none (beyond QEMU)' },
  // Scalable-mode extensions (caps.ts), beyond QEMU.
  'x-fs5lp': { kind: 'bool', default: false, help: '5-level first-stage paging (CAP.FS5LP; needs fsts, allows aw-bits=57) (beyond QEMU)' },
  'x-nested': { kind: 'bool', default: false, help: 'nested translation, PGTT=3 (ECAP.NEST and SSTS; needs fsts and dma-translation) (beyond QEMU)' },
  'x-smpwc': { kind: 'bool', default: false, help: 'scalable-mode page-walk coherency (ECAP.SMPWC; needs scalable-mode) (beyond QEMU)' },
  // Driver-debugging aids (src/monitor/sanitizer.ts, strict-checks.ts), beyond QEMU; off changes nothing.
  'x-sanitize': { kind: 'bool', default: false, help: 'invalidation sanitizer: report a DMA or interrupt that may use a cached entry changed without the required invalidation (beyond QEMU)' },
  'x-strict': { kind: 'bool', default: false, help: 'strict programming-model checks: warn about what the spec calls undefined or a programming error (beyond QEMU)' },
};

const onOff = (v: PropValue): string => (v === true ? 'on' : 'off');

/** A property QEMU 11.1 renamed: the old name sets the new one. */
function renamed(oldName: string, newName: string): DeprecatedProp {
  return {
    def: { kind: 'bool' },
    warning: (v) => `intel-iommu property '${oldName}' is deprecated (QEMU 11.1 name: '${newName}'); use ${newName}=${onOff(v)}`,
    replacement: (v) => [newName, v],
  };
}

/**
 * The names QEMU 11.1 no longer accepts (QEMU: "Property
 * 'intel-iommu.NAME' not found"), kept so old vtemu command lines still run.
 * Renamed ones set their successor; removed ones keep their 7.2 meaning,
 * which no 11.1 command line can express: pt=off clears ECAP.PT,
 * dma-drain=off clears CAP.DRD/DWD (11.1 always sets both), x-buggy-eim=on
 * resolves eim=auto to on (11.1 needs eim=on instead).
 */
export const INTEL_IOMMU_DEPRECATED_PROPS: Readonly<Record<string, DeprecatedProp>> = {
  'x-scalable-mode': renamed('x-scalable-mode', 'scalable-mode'),
  'x-flts': renamed('x-flts', 'fsts'),
  'x-pasid-mode': {
    def: { kind: 'bool' },
    warning: (v) => `intel-iommu property 'x-pasid-mode' is deprecated (QEMU 11.1 name: 'pasid-bits'); use pasid-bits=${v === true ? LEGACY_PASID_BITS : 0}`,
    replacement: (v) => ['pasid-bits', v === true ? LEGACY_PASID_BITS : 0],
  },
  pt: {
    def: { kind: 'bool', default: true },
    warning: (v) => `intel-iommu property 'pt' is deprecated (QEMU 11.1 removed it and always sets ECAP.PT); pt=${onOff(v)} kept as a vtemu extension`,
  },
  'dma-drain': {
    def: { kind: 'bool', default: true },
    warning: (v) => `intel-iommu property 'dma-drain' is deprecated (QEMU 11.1 removed it and always sets CAP.DRD/DWD); dma-drain=${onOff(v)} kept as a vtemu extension`,
  },
  'x-buggy-eim': {
    def: { kind: 'bool', default: false },
    warning: (v) => `intel-iommu property 'x-buggy-eim' is deprecated (QEMU 11.1 removed it; use eim=on); x-buggy-eim=${onOff(v)} kept as a vtemu extension`,
  },
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
  readonly deviceIotlb: boolean;
  /** ECAP.PT: always, unless the deprecated pt=off asks otherwise. */
  readonly pt: boolean;
  /** CAP.DRD/DWD: always, unless the deprecated dma-drain=off asks otherwise. */
  readonly dmaDrain: boolean;
  readonly dmaTranslation: boolean;
  readonly snoopControl: boolean;
  readonly scalableMode: boolean;
  /** PASID width in bits; 0 = no PASID support. */
  readonly pasidBits: number;
  /** First-stage translation (QEMU 11.1 `fsts`, formerly `x-flts`). */
  readonly fsts: boolean;
  readonly fs1gp: boolean;
  readonly svm: boolean;
  readonly staleTm: boolean;
  /** CAP.FS5LP: 5-level first stage (vtemu's x-fs5lp; implies fsts). */
  readonly fs5lp: boolean;
  /** ECAP.NEST: nested translation, PGTT=3 (vtemu's x-nested; implies fsts). */
  readonly nested: boolean;
  /** ECAP.SMPWC: scalable-mode page-walk coherency (vtemu's x-smpwc). */
  readonly smpwc: boolean;
  readonly version: number;
  /** Number of fault recording registers. */
  readonly nfr: number;
  /** The machine's kernel-irqchip setting used for the resolution. */
  readonly kernelIrqchip: KernelIrqchip;
  /** Every property value as given (defaults filled), for the components' own (x-...) properties. */
  readonly raw: PropValues;
}

function defaultOf(name: string): PropValue | undefined {
  return INTEL_IOMMU_PROPS[name]?.default ?? INTEL_IOMMU_DEPRECATED_PROPS[name]?.def.default;
}

function boolProp(p: PropValues, name: string): boolean {
  const v = p[name] ?? defaultOf(name);
  return v === true || v === 'on';
}

function numProp(p: PropValues, name: string): number {
  const v = p[name] ?? defaultOf(name) ?? 0;
  return Number(v);
}

function onOffAuto(p: PropValues, name: string): 'on' | 'off' | 'auto' {
  const v = p[name] ?? defaultOf(name);
  if (v === true || v === 'on') return 'on';
  if (v === false || v === 'off') return 'off';
  return 'auto';
}

/**
 * Resolves and validates properties as QEMU 11.1's realize does.  Throws an
 * Error with QEMU 11.1's message for a configuration it refuses (checked in
 * its order: eim, fsts, aw-bits, pasid-bits, svm), then for vtemu's own
 * properties (x-fs5lp, x-nested, x-smpwc, nfr).
 */
export function resolveIommuConfig(props: PropValues, kernelIrqchip: KernelIrqchip = 'off'): IommuConfig {
  const raw: Record<string, PropValues[string]> = {};
  for (const [k, def] of Object.entries(INTEL_IOMMU_PROPS)) if (def.default !== undefined) raw[k] = def.default;
  Object.assign(raw, props);

  // There is no KVM here, so QEMU's kvm_irqchip_in_kernel() is always false:
  // `-machine kernel-irqchip=...` changes nothing (checked against QEMU 11.1
  // -accel qtest for on/split/off): intremap auto resolves on, eim auto
  // resolves off, and eim=on is accepted (ECAP.EIM set).
  void kernelIrqchip;
  const intremapProp = onOffAuto(raw, 'intremap');
  const intremap = intremapProp !== 'off';

  // vtd_decide_config.
  const eimProp = onOffAuto(raw, 'eim');
  if (eimProp === 'on' && !intremap) throw new Error('eim=on cannot be selected without intremap=on');
  const eim = eimProp === 'auto' ? boolProp(raw, 'x-buggy-eim') && intremap : eimProp === 'on';

  const scalableMode = boolProp(raw, 'scalable-mode');
  const fsts = boolProp(raw, 'fsts');
  if (fsts && !scalableMode) throw new Error('fsts is only available in scalable mode');

  const awBits = numProp(raw, 'aw-bits');
  const fs5lp = boolProp(raw, 'x-fs5lp');
  const qemuWidth = awBits === AW_BITS.AW39 || awBits === AW_BITS.AW48;
  if (!fsts && !qemuWidth && (scalableMode || awBits !== AW_BITS.AW57)) {
    throw new Error(`${scalableMode ? 'Scalable mode(fsts=off)' : 'Legacy mode'}: supported values for aw-bits are: ${AW_BITS.AW39}, ${AW_BITS.AW48}`);
  }
  // x-fs5lp (beyond QEMU) adds aw-bits=57 to first-stage mode.
  const fsWidth = awBits === AW_BITS.AW48 || (fs5lp && awBits === AW_BITS.AW57);
  if (fsts && !fsWidth) throw new Error(`Scalable mode(fsts=on): supported value for aw-bits is: ${AW_BITS.AW48}`);

  const pasidBits = numProp(raw, 'pasid-bits');
  if (pasidBits !== 0 && !scalableMode) throw new Error('Need to set scalable mode for PASID');
  if (pasidBits > MAX_PASID_BITS) throw new Error(`PASID width ${pasidBits} exceeds Max PASID Width ${MAX_PASID_BITS} allowed in PCI spec`);

  const svm = boolProp(raw, 'svm');
  const deviceIotlb = boolProp(raw, 'device-iotlb');
  const dmaTranslation = boolProp(raw, 'dma-translation');
  if (svm) {
    if (!deviceIotlb) throw new Error('Need to set device IOTLB for svm');
    if (!fsts) throw new Error('Need to set fsts for svm');
    if (!dmaTranslation) throw new Error('Need to set dma-translation for svm');
    if (pasidBits === 0) throw new Error('Need to set PASID support for svm');
  }

  // vtemu's scalable-mode extensions, after everything QEMU checks.
  if (fs5lp && !fsts) throw new Error('Need to set fsts for x-fs5lp');
  const nested = boolProp(raw, 'x-nested');
  if (nested) {
    if (!scalableMode) throw new Error('Need to set scalable mode for x-nested');
    if (!fsts) throw new Error('Need to set fsts for x-nested');
    if (!dmaTranslation) throw new Error('Need to set dma-translation for x-nested');
  }
  const smpwc = boolProp(raw, 'x-smpwc');
  if (smpwc && !scalableMode) throw new Error('Need to set scalable mode for x-smpwc');

  const nfr = numProp(raw, 'nfr');
  if (!Number.isInteger(nfr) || nfr < 1 || nfr > MAX_NFR) {
    throw new Error(`intel-iommu: nfr must be between 1 and ${MAX_NFR}`);
  }

  return {
    awBits,
    cachingMode: boolProp(raw, 'caching-mode'),
    intremap,
    eim,
    deviceIotlb,
    pt: boolProp(raw, 'pt'),
    dmaDrain: boolProp(raw, 'dma-drain'),
    dmaTranslation,
    snoopControl: boolProp(raw, 'snoop-control'),
    scalableMode,
    pasidBits,
    fsts,
    fs1gp: boolProp(raw, 'fs1gp'),
    svm,
    staleTm: boolProp(raw, 'stale-tm'),
    fs5lp,
    nested,
    smpwc,
    version: numProp(raw, 'version'),
    nfr,
    kernelIrqchip,
    raw,
  };
}
