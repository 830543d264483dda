/**
 * A whole-machine DMA figure: the edu device at 00:01.0 copying 4 KiB from
 * guest RAM into its buffer, programmed through its BAR as a driver would
 * (src, dst, count, command: four 8-byte MMIO writes) and completed by
 * stepping the virtual clock past the device's DMA delay.  Once through VT-d
 * legacy translation (3-level tables, IOTLB warm after the first transfer),
 * once on a machine without an IOMMU; bytes per second of wall time,
 * everything on the way included (PCI bus-master checks, the requester's DMA
 * space, timers).
 */
import { createMachine, type Machine } from '../src/machine/q35.js';
import { DMAR_BASE, Gcmd, Gsts, Reg } from '../src/hw/intel-iommu/reg-layout.js';
import { EDU_DMA_DELAY_MS, EduDmaBuffer, EduDmaCmd, EduReg, NS_PER_MS } from '../src/hw/edu/regs.js';
import { type Bench, type Figures, perSecond, round3 } from './bench.js';

const MB = 1e6;
const PAGE = 4096;
/** Where BAR0 of the edu device is placed. */
const EDU_BAR = 0xe000_0000;
/** Config mechanism #1 address of 00:01.0 register `reg`. */
const cf8 = (reg: number) => (0x8000_0000 | (1 << 11) | reg) >>> 0;
const CONFIG_ADDRESS = 0xcf8;
const CONFIG_DATA = 0xcfc;
const PCI_BAR0 = 0x10;
const PCI_COMMAND = 0x04;
/** Memory space + bus master. */
const COMMAND_MEM_MASTER = 0x6;
/** Guest-physical layout: root table, context table, three table levels, the data page. */
const ROOT = 0x100_0000;
const CONTEXT = 0x100_1000;
const L3 = 0x100_2000;
const L2 = 0x100_3000;
const L1 = 0x100_4000;
const DATA = 0x200_0000;
/** The edu device's devfn (00:01.0), its context-table index. */
const EDU_DEVFN = 8;
/** Present / R|W bits, context AW=1 (3 levels) and domain 1. */
const PRESENT = 1n;
const RW = 3n;
const CONTEXT_HI = 1n | (1n << 8n);
/** Virtual time that lets the DMA timer fire. */
const STEP_NS = (EDU_DMA_DELAY_MS + 1) * NS_PER_MS;

function eduMachine(iommu: boolean): Machine {
  const m = createMachine({ accel: 'qtest', memory: '256M', devices: iommu ? ['intel-iommu', 'edu'] : ['edu'] });
  m.io.write(CONFIG_ADDRESS, 4, cf8(PCI_BAR0));
  m.io.write(CONFIG_DATA, 4, EDU_BAR);
  m.io.write(CONFIG_ADDRESS, 4, cf8(PCI_COMMAND));
  m.io.write(CONFIG_DATA, 2, COMMAND_MEM_MASTER);
  m.memory.fill(DATA, PAGE, 0x5a);
  if (!iommu) return m;
  m.memory.write64(ROOT, BigInt(CONTEXT) | PRESENT);
  m.memory.write64(CONTEXT + EDU_DEVFN * 16, BigInt(L3) | PRESENT);
  m.memory.write64(CONTEXT + EDU_DEVFN * 16 + 8, CONTEXT_HI);
  m.memory.write64(L3, BigInt(L2) | RW);
  m.memory.write64(L2, BigInt(L1) | RW);
  m.memory.write64(L1, BigInt(DATA) | RW);
  m.memory.write64(DMAR_BASE + Reg.RTADDR, BigInt(ROOT));
  m.memory.write(DMAR_BASE + Reg.GCMD, 4, Gcmd.SRTP);
  m.memory.write(DMAR_BASE + Reg.GCMD, 4, Gcmd.TE);
  if ((m.memory.read(DMAR_BASE + Reg.GSTS, 4) & Gsts.TES) === 0) throw new Error('bench: VT-d translation not enabled');
  return m;
}

/** One 4 KiB RAM-to-buffer transfer from device address `src`. */
function transfer(m: Machine, src: number): number {
  m.memory.write64(EDU_BAR + EduReg.DmaSrc, BigInt(src));
  m.memory.write64(EDU_BAR + EduReg.DmaDst, BigInt(EduDmaBuffer.Base));
  m.memory.write64(EDU_BAR + EduReg.DmaCount, BigInt(PAGE));
  m.memory.write64(EDU_BAR + EduReg.DmaCmd, BigInt(EduDmaCmd.Run));
  m.clock.step(STEP_NS);
  return m.memory.read(EDU_BAR + EduReg.DmaCmd, 4);
}

function rate(iommu: boolean): number {
  const m = eduMachine(iommu);
  const src = iommu ? 0 : DATA;
  // The transfer must complete, and without a fault.
  if (transfer(m, src) !== 0 || (iommu && m.memory.read(DMAR_BASE + Reg.FSTS, 4) !== 0)) {
    throw new Error('bench: edu DMA did not complete cleanly');
  }
  return round3(perSecond(() => transfer(m, src), PAGE) / MB);
}

/** The whole-machine edu DMA bench module. */
export const eduBench: Bench = {
  name: 'edu',
  run(): Figures {
    return {
      dma4k: { value: rate(true), unit: 'MB/s' },
      dma4kNoIommu: { value: rate(false), unit: 'MB/s' },
    };
  },
};
