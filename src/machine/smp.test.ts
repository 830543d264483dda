import { describe, expect, it } from 'vitest';
import { apicIdOf, resolveSmp } from './smp.js';

const Q35 = { name: 'pc-q35-11.1', maxCpus: 4096 };
const err = (arg: string): string => {
  try {
    resolveSmp(arg, Q35);
  } catch (e) {
    return (e as Error).message;
  }
  return 'ok';
};

describe('-smp (QEMU 11.1 machine_parse_smp_config, x86 APIC IDs)', () => {
  it('prefers cores; the APIC ID limit follows the topology bit widths', () => {
    expect(resolveSmp('4', Q35)).toMatchObject({ cpus: 4, maxCpus: 4, sockets: 1, cores: 4, threads: 1, apicIdLimit: 4 });
    expect(resolveSmp('6,sockets=2,cores=3', Q35).apicIdLimit).toBe(7);
    expect(resolveSmp('2,threads=2,cores=3,maxcpus=12', Q35).apicIdLimit).toBe(14);
    expect(resolveSmp('1,maxcpus=256', Q35)).toMatchObject({ cpus: 1, apicIdLimit: 256 });
    expect(resolveSmp(undefined, Q35)).toMatchObject({ cpus: 1, apicIdLimit: 1 });
    expect(apicIdOf({ dies: 2, modules: 2, cores: 1, threads: 1 }, 7)).toBe(7);
  });
  it("QEMU's messages", () => {
    expect(err('cpus=2,sockets=3')).toBe('Invalid CPU topology: product of the hierarchy must match maxcpus: sockets (3) * dies (1) * modules (1) * cores (0) * threads (1) != maxcpus (2)');
    expect(err('4,maxcpus=2')).toBe('Invalid CPU topology: maxcpus must be equal to or greater than smp: sockets (1) * dies (1) * modules (1) * cores (2) * threads (1) == maxcpus (2) < smp_cpus (4)');
    expect(err('5000')).toBe("Invalid SMP CPUs 5000. The max CPUs supported by machine 'pc-q35-11.1' is 4096");
    expect(err('4,books=2,clusters=2')).toBe("clusters > 1 not supported by this machine's CPU topology");
    expect(err('maxcpus=0')).toBe('Invalid CPU topology: CPU topology parameters must be greater than zero');
    expect(err('256')).toBe('APIC ID 255 requires x2APIC feature in CPU\nTry x2apic=on in -cpu.');
    expect(err('255')).toBe('ok');
  });
  it('warns about threads on the default AMD CPU model', () => {
    const w: string[] = [];
    resolveSmp('2,threads=2', Q35, (l) => w.push(l));
    expect(w).toEqual(["warning: This family of AMD CPU doesn't support hyperthreading(2). Please configure -smp options properly or try enabling topoext feature."]);
  });
});
