import { describe, expect, it } from 'vitest';
import { applyMachineArg, resolveMachineArgs, type MachineArgs } from './machine-options.js';

function resolve(...args: string[]) {
  const a: MachineArgs = {};
  for (const x of args) applyMachineArg(x, a);
  return resolveMachineArgs(a);
}

describe('-machine', () => {
  it('q35 with properties; later options win', () => {
    expect(resolve('q35,kernel-irqchip=split')).toEqual({ type: 'q35', kernelIrqchip: 'split', defaultBusBypassIommu: false });
    expect(resolve('q35,kernel-irqchip=on', 'kernel-irqchip=off,accel=qtest').kernelIrqchip).toBe('off');
    expect(resolve('pc-q35-7.2,accel=qtest').accel).toBe('qtest');
    expect(resolve('q35,smm=off,default-bus-bypass-iommu=on').defaultBusBypassIommu).toBe(true);
    expect(resolve().type).toBe('q35');
  });
  it('errors as QEMU words them', () => {
    expect(() => resolve('pc')).toThrow('unsupported machine type\nUse -machine help to list supported machines');
    expect(() => resolve('q35,foo=1')).toThrow("Property 'pc-q35-7.2-machine.foo' not found");
    expect(() => resolve('q35,accel=nope')).toThrow('invalid accelerator nope');
    expect(() => resolve('q35,kernel-irqchip=bogus')).toThrow(/kernel-irqchip/);
  });
});
