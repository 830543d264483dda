import { describe, expect, it } from 'vitest';
import {
  applyMachineArg,
  checkMemoryConfig,
  checkMemoryOption,
  checkSmpOption,
  machineArgsSetAccel,
  parseAccel,
  parseAccelOption,
  RAM_ALLOC_ERROR,
  resolveMachineArgs,
  type MachineArgs,
} from './machine-options.js';
import { ConfigError } from './registry.js';

function resolve(...args: string[]) {
  const a: MachineArgs = {};
  for (const x of args) applyMachineArg(x, a);
  return resolveMachineArgs(a);
}

/** The lines a ConfigError prints (`P: ...`), or '' when `fn` does not throw. */
function lines(fn: () => void): string {
  try {
    fn();
    return '';
  } catch (e) {
    if (e instanceof ConfigError) return e.lines('P');
    throw e;
  }
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('-machine', () => {
  it('q35 with properties; later options win', () => {
    expect(resolve('q35,kernel-irqchip=split')).toEqual({ type: 'q35', kernelIrqchip: 'split', defaultBusBypassIommu: false });
    expect(resolve('q35,kernel-irqchip=on', 'kernel-irqchip=off,accel=qtest').kernelIrqchip).toBe('off');
    expect(resolve('pc-q35-7.2,accel=qtest').accel).toBe('qtest');
    expect(resolve('pc-q35-11.1').type).toBe('q35');
    expect(resolve('q35,smm=off,default-bus-bypass-iommu=on').defaultBusBypassIommu).toBe(true);
    expect(resolve().type).toBe('q35');
  });
  it('errors as QEMU 11.1 words them', () => {
    expect(() => resolve('nosuch')).toThrow('unsupported machine type: "nosuch"\nUse -machine help to list supported machines');
    expect(() => resolve('pc-q35')).toThrow('unsupported machine type: "pc-q35"');
    expect(() => resolve('q35,foo=1')).toThrow("Property 'pc-q35-11.1-machine.foo' not found");
    expect(() => resolve('pc-q35-7.2,foo=1')).toThrow("Property 'pc-q35-7.2-machine.foo' not found");
    expect(() => resolve('q35,accel=nope')).toThrow('invalid accelerator nope');
    expect(() => resolve('q35,smm=bogus')).toThrow("Parameter 'smm' does not accept value 'bogus'");
    expect(() => resolve('q35,graphics=x')).toThrow("Parameter 'graphics' expects 'on' or 'off'");
    expect(() => resolve('q35,max-ram-below-4g=x')).toThrow("Parameter 'max-ram-below-4g' expects size");
    expect(resolve('q35,smm=auto,graphics=off,max-ram-below-4g=2G').type).toBe('q35');
  });
  it('machines QEMU has but vtemu does not model: one line of its own', () => {
    expect(() => resolve('pc')).toThrow('machine type "pc" is not modelled (vtemu models q35 only)');
    expect(() => resolve('pc-i440fx-11.1')).toThrow(/not modelled/);
    expect(() => resolve('pc-q35-10.0')).toThrow(/not modelled/);
  });
  it('kernel-irqchip is the KVM accelerator\'s: a bad value matters only under kvm', () => {
    expect(resolve('q35,kernel-irqchip=bogus').kernelIrqchip).toBe('off');
    expect(resolve('q35,kernel-irqchip=bogus,accel=qtest').kernelIrqchip).toBe('off');
    expect(() => resolve('q35,kernel-irqchip=bogus,accel=kvm')).toThrow("Parameter 'kernel-irqchip' does not accept value 'bogus'");
  });
  it('accel lists and the -accel conflict probe', () => {
    expect(parseAccel('nope:qtest')).toBe('qtest');
    expect(() => parseAccel('a:b')).toThrow('invalid accelerator a:b');
    expect(machineArgsSetAccel(['q35', 'smm=off'])).toBe(false);
    expect(machineArgsSetAccel(['q35', 'q35,accel=tcg'])).toBe(true);
  });
});

describe('-accel', () => {
  it('names and properties as QEMU 11.1 checks them', () => {
    expect(parseAccelOption('qtest')).toBe('qtest');
    expect(parseAccelOption('tcg,thread=multi,tb-size=64')).toBe('tcg');
    expect(parseAccelOption('kvm,kernel-irqchip=split')).toBe('kvm');
    expect(parseAccelOption('nope')).toBeNull();
    expect(parseAccelOption('')).toBeNull();
    expect(() => parseAccelOption('qtest,foo=1')).toThrow("Property 'qtest-accel.foo' not found");
    expect(() => parseAccelOption('tcg,foo=1')).toThrow("Property 'tcg-accel.foo' not found");
    expect(() => parseAccelOption('tcg,thread=bogus')).toThrow("Invalid 'thread' setting bogus");
  });
});

describe('-m', () => {
  it('option-time refusals with QEMU 11.1 messages', () => {
    expect(lines(() => checkMemoryOption('512'))).toBe('');
    expect(lines(() => checkMemoryOption('256M,slots=2,maxmem=1G'))).toBe('');
    expect(lines(() => checkMemoryOption('-1'))).toBe("P: -m -1: Value '-1' is out of range for parameter 'size'\n");
    expect(lines(() => checkMemoryOption('1x'))).toMatch(/^P: -m 1x: Parameter 'size' expects a non-negative number below 2\^64\nOptional suffix/);
    expect(lines(() => checkMemoryOption('0x10M'))).toMatch(/^P: -m 0x10M: Parameter 'size' expects a non-negative/);
    expect(lines(() => checkMemoryOption('0x10'))).toBe("P: Parameter 'memory.size' expects size\n");
    expect(lines(() => checkMemoryOption('256M,maxmem=16E'))).toBe("P: -m 256M,maxmem=16E: Value '16E' is out of range for parameter 'maxmem'\n");
    expect(lines(() => checkMemoryOption('256M,slots=x'))).toBe("P: -m 256M,slots=x: Parameter 'slots' expects a number\n");
    expect(lines(() => checkMemoryOption('512,512'))).toBe(
      "P: -m 512,512: warning: short-form boolean option '512' deprecated\nPlease use 512=on instead\nP: -m 512,512: Invalid parameter '512'\n",
    );
  });
  it('machine-time checks: slots, maxmem, and what the host can allocate', () => {
    const host = 16 * GiB;
    expect(lines(() => checkMemoryConfig('1G', GiB, host))).toBe('');
    expect(lines(() => checkMemoryConfig('16G', 16 * GiB, host))).toBe('');
    expect(lines(() => checkMemoryConfig('17G', 17 * GiB, host))).toBe(`P: ${RAM_ALLOC_ERROR}\n`);
    expect(lines(() => checkMemoryConfig('8E', null, host))).toBe(`P: ${RAM_ALLOC_ERROR}\n`);
    expect(lines(() => checkMemoryConfig('1T', 1024 * GiB, Infinity))).toBe('');
    expect(lines(() => checkMemoryConfig('256M,slots=2', 256 * MiB, host))).toBe('P: slots specified but no max-size\n');
    expect(lines(() => checkMemoryConfig('256M,maxmem=128M', 256 * MiB, host))).toBe(
      'P: invalid value of maxmem: maximum memory size (0x8000000) must be at least the initial memory size (0x10000000)\n',
    );
    expect(lines(() => checkMemoryConfig('256M,slots=2,maxmem=256M', 256 * MiB, host))).toBe(
      'P: invalid value of maxmem: memory slots were specified but maximum memory size (0x10000000) is equal to the initial memory size (0x10000000)\n',
    );
    expect(lines(() => checkMemoryConfig('256M,slots=0,maxmem=256M', 256 * MiB, host))).toBe('');
    expect(lines(() => checkMemoryConfig('256M,slots=256,maxmem=2G', 256 * MiB, host))).toBe('');
    expect(lines(() => checkMemoryConfig('256M,slots=257,maxmem=2G', 256 * MiB, host))).toBe('P: unsupported amount of memory slots: 257\n');
  });
});

describe('-smp', () => {
  it('integers only, known keys only, no zero', () => {
    expect(lines(() => checkSmpOption('2'))).toBe('');
    expect(lines(() => checkSmpOption('4,sockets=2,cores=2,maxcpus=8'))).toBe('');
    expect(lines(() => checkSmpOption('x'))).toBe("P: Parameter 'smp.cpus' expects integer\n");
    expect(lines(() => checkSmpOption('2,sockets=x'))).toBe("P: Parameter 'smp.sockets' expects integer\n");
    expect(lines(() => checkSmpOption('2,foo=1'))).toBe("P: Parameter 'smp.foo' is unexpected\n");
    expect(lines(() => checkSmpOption('0'))).toBe('P: Invalid CPU topology: CPU topology parameters must be greater than zero\n');
  });
});
