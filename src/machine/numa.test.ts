import { describe, expect, it } from 'vitest';
import { parseObjects, resolveNuma } from './numa.js';
import { numaFwCfgItem } from '../hw/fw-cfg/numa-item.js';
import { resolveSmp } from './smp.js';

const Q35 = { name: 'pc-q35-11.1', maxCpus: 4096 };
const MiB = 1 << 20;
const OBJECTS = ['memory-backend-ram,id=r0,size=128M', 'memory-backend-ram,id=r1,size=384M'];

/** FW_CFG_NUMA as u64 words for a command line's -smp / -numa (the values measured on QEMU 11.1). */
function words(smp: string | undefined, numa: string[], objects = OBJECTS, ram = 512 * MiB): number[] {
  const topo = resolveSmp(smp, Q35);
  const item = numaFwCfgItem(resolveNuma(numa, parseObjects(objects), topo, ram), topo.apicIdLimit);
  const v = new DataView(item.buffer);
  return [...Array(item.length / 8).keys()].map((i) => Number(v.getBigUint64(8 * i, true)));
}

function error(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as { line?: string }).line ?? (e as Error).message;
  }
  return 'accepted';
}

describe('-numa (FW_CFG_NUMA as QEMU 11.1 fills it)', () => {
  const two = ['node,memdev=r0', 'node,memdev=r1'];
  it('no -numa: a zero count and a zero node per APIC ID', () => {
    expect(words('2', [])).toEqual([0, 0, 0]);
  });
  it('two nodes, one CPU', () => {
    expect(words(undefined, two)).toEqual([2, 0, 128 * MiB, 384 * MiB]);
  });
  it('CPUs go to socket % nodes by default (cores preferred over sockets)', () => {
    expect(words('6,sockets=3,cores=2', two)).toEqual([2, 0, 0, 1, 1, 0, 0, 128 * MiB, 384 * MiB]);
    expect(words('6,sockets=3,cores=1,threads=2', two)).toEqual([2, 0, 0, 1, 1, 0, 0, 128 * MiB, 384 * MiB]);
    expect(words('1,maxcpus=3', two)).toEqual([2, 0, 0, 0, 128 * MiB, 384 * MiB]);
    expect(words('3,sockets=1,cores=3', two)).toEqual([2, 0, 0, 0, 128 * MiB, 384 * MiB]);
  });
  it('explicit node ids, cpus= and -numa cpu', () => {
    expect(words('3,maxcpus=4', ['node,memdev=r0,nodeid=1', 'node,memdev=r1,nodeid=0'])).toEqual([2, 0, 0, 0, 0, 384 * MiB, 128 * MiB]);
    expect(words('4,sockets=2,cores=2', ['node,memdev=r0,cpus=0-1', 'node,memdev=r1,cpus=2-3'])).toEqual([2, 0, 0, 1, 1, 128 * MiB, 384 * MiB]);
    expect(words('1', [...two, 'cpu,node-id=1,socket-id=0'])).toEqual([2, 1, 128 * MiB, 384 * MiB]);
    expect(words('4,sockets=4,cores=1,threads=1', [...two, 'cpu,node-id=0,socket-id=0', 'cpu,node-id=1,socket-id=1', 'cpu,node-id=0,socket-id=2', 'cpu,node-id=1,socket-id=3']))
      .toEqual([2, 0, 1, 0, 1, 128 * MiB, 384 * MiB]);
  });
  it('with some CPUs placed, the others go to node 0; a node may have no memory', () => {
    expect(words('2', ['node,memdev=r0,cpus=1', 'node,memdev=r1'])).toEqual([2, 0, 0, 128 * MiB, 384 * MiB]);
    expect(words(undefined, ['node,memdev=r0', 'node,cpus=0'], ['memory-backend-ram,id=r0,size=512M'])).toEqual([2, 1, 512 * MiB, 0]);
  });
  it("refuses what QEMU refuses, with QEMU's messages and context", () => {
    const topo = resolveSmp(undefined, Q35);
    const objs = parseObjects(OBJECTS);
    const r = (numa: string[], ram = 512 * MiB): string => error(() => resolveNuma(numa, objs, topo, ram));
    expect(r(['node', 'node'])).toBe('total memory for NUMA nodes (0x0) should equal RAM size (0x20000000)');
    expect(r(['node,memdev=r0', 'node,memdev=r1,nodeid=3'])).toBe('numa: Node ID missing: 2');
    expect(r(['node,memdev=r0,nodeid=0', 'node,memdev=r1,nodeid=0'])).toBe('-numa node,memdev=r1,nodeid=0: Duplicate NUMA nodeid: 0');
    expect(r(['node,memdev=rx'])).toBe('-numa node,memdev=rx: memdev=rx is ambiguous');
    expect(r(['node,mem=256M'])).toBe('-numa node,mem=256M: Parameter -numa node,mem is not supported by this machine type\nUse -numa node,memdev instead');
    expect(r(['node,memdev=r0,cpus=3', 'node,memdev=r1'])).toBe('-numa node,memdev=r0,cpus=3: CPU index (3) should be smaller than maxcpus (1)');
    expect(r(['node,memdev=r0,nodeid=200'])).toBe('-numa node,memdev=r0,nodeid=200: Max number of NUMA nodes reached: 200');
    expect(r(['cpu,socket-id=0'])).toBe('-numa cpu,socket-id=0: Missing mandatory node-id property');
    expect(r(['node,memdev=r0', 'node,memdev=r1', 'cpu,node-id=3,socket-id=0'])).toBe(
      "-numa cpu,node-id=3,socket-id=0: Invalid node-id=3, NUMA node must be defined with -numa node,nodeid=ID before it's used with -numa cpu,node-id=ID",
    );
    expect(r(['node,memdev=r0', 'node,memdev=r1', 'cpu,node-id=1,socket-id=5'])).toBe('-numa cpu,node-id=1,socket-id=5: no match found');
    expect(r(['node,memdev=r0,cpus=0', 'node,memdev=r1', 'cpu,node-id=1,socket-id=0'])).toBe('-numa cpu,node-id=1,socket-id=0: CPU is already assigned to node-id: 0');
    expect(r(['foo'])).toBe("-numa foo: Parameter 'type' does not accept value 'foo'");
    expect(r(['dist,src=0,dst=0,val=10'])).toBe("-numa dist,src=0,dst=0,val=10: Source/Destination NUMA node is missing. Please use '-numa node' option to declare it first.");
    expect(r(['node,memdev=r0,foo=1'])).toBe("-numa node,memdev=r0,foo=1: Invalid parameter 'foo'");
    expect(r(['node,memdev=r0', 'node,memdev=r1', 'dist,src=0,dst=1,val=20'])).toBe('accepted');
  });
  it("-object: memory backends only, with QEMU's errors", () => {
    const o = (...args: string[]): string => error(() => parseObjects(args));
    expect(o('memory-backend-ram,id=r0')).toBe("-object memory-backend-ram,id=r0: Parameter 'size' is missing");
    expect(o('memory-backend-ram,size=512M')).toBe("-object memory-backend-ram,size=512M: Parameter 'id' is missing");
    expect(o('memory-backend-ram,id=r0,size=1M', 'memory-backend-ram,id=r0,size=1M')).toBe("-object memory-backend-ram,id=r0,size=1M: Duplicate ID 'r0' for object");
    expect(o('memory-backend-ram,id=r0,size=512M,foo=1')).toBe("-object memory-backend-ram,id=r0,size=512M,foo=1: Invalid parameter 'foo'");
    expect(o('foo,id=x')).toBe("-object foo,id=x: Parameter 'qom-type' does not accept value 'foo'");
    expect(o('iothread,id=x')).toMatch(/^-object iothread,id=x: object type 'iothread' is not supported by vtemu/);
    expect(o('memory-backend-memfd,id=r0,size=512M,share=on')).toBe('accepted');
  });
});
