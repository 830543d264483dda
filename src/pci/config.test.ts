/**
 * PciConfig: the configuration space as data with masks.  Register offsets
 * and bits against the specs, little-endian accessors at the edges of the
 * space (bytes outside read all-ones, guest writes outside are dropped),
 * the one guest write helper (writable bits, write-1-to-clear bits,
 * read-only bits), mask accessors, reset snapshots and host-side checks.
 */
import { describe, expect, it } from 'vitest';
import {
  BridgeReg,
  PCI_CONFIG_SPACE_SIZE,
  PCIE_CONFIG_SPACE_SIZE,
  PciCommand,
  PciConfig,
  PciHeaderType,
  PciReg,
  PciStatus,
  rangesOverlap,
} from './config.js';

describe('register layout (PCI Local Bus 3.0 §6.1-6.2, PCI-to-PCI Bridge 1.2 §3.2, PCIe Base 4.0 §7.2)', () => {
  it('space sizes: 256 bytes conventional, 4 KiB PCI Express', () => {
    expect(PCI_CONFIG_SPACE_SIZE).toBe(256);
    expect(PCIE_CONFIG_SPACE_SIZE).toBe(4096);
  });

  it('type-0/1 common header offsets', () => {
    expect(PciReg).toEqual({
      VendorId: 0x00,
      DeviceId: 0x02,
      Command: 0x04,
      Status: 0x06,
      RevisionId: 0x08,
      ClassProg: 0x09,
      ClassDevice: 0x0a,
      CacheLineSize: 0x0c,
      LatencyTimer: 0x0d,
      HeaderType: 0x0e,
      Bist: 0x0f,
      Bar0: 0x10,
      CardbusCis: 0x28,
      SubsystemVendorId: 0x2c,
      SubsystemId: 0x2e,
      RomAddress: 0x30,
      CapabilityList: 0x34,
      InterruptLine: 0x3c,
      InterruptPin: 0x3d,
      MinGnt: 0x3e,
      MaxLat: 0x3f,
    });
  });

  it('type-1 bridge header offsets', () => {
    expect(BridgeReg).toEqual({
      PrimaryBus: 0x18,
      SecondaryBus: 0x19,
      SubordinateBus: 0x1a,
      SecLatencyTimer: 0x1b,
      IoBase: 0x1c,
      IoLimit: 0x1d,
      SecStatus: 0x1e,
      MemoryBase: 0x20,
      MemoryLimit: 0x22,
      PrefMemoryBase: 0x24,
      PrefMemoryLimit: 0x26,
      PrefBaseUpper32: 0x28,
      PrefLimitUpper32: 0x2c,
      IoBaseUpper16: 0x30,
      IoLimitUpper16: 0x32,
      RomAddress1: 0x38,
      BridgeControl: 0x3e,
    });
  });

  it('command, status and header type bits', () => {
    expect(PciCommand).toEqual({
      Io: 1 << 0,
      Memory: 1 << 1,
      Master: 1 << 2,
      Special: 1 << 3,
      Invalidate: 1 << 4,
      VgaPalette: 1 << 5,
      Parity: 1 << 6,
      Wait: 1 << 7,
      Serr: 1 << 8,
      FastBack: 1 << 9,
      IntxDisable: 1 << 10,
    });
    expect(PciStatus).toEqual({
      Interrupt: 1 << 3,
      CapList: 1 << 4,
      Mhz66: 1 << 5,
      FastBack: 1 << 7,
      ParityError: 1 << 8,
      DevselMedium: 1 << 9,
      SigTargetAbort: 1 << 11,
      RecTargetAbort: 1 << 12,
      RecMasterAbort: 1 << 13,
      SigSystemError: 1 << 14,
      DetectedParity: 1 << 15,
    });
    expect(PciHeaderType).toEqual({ Normal: 0, Bridge: 1, Cardbus: 2, MultiFunction: 0x80 });
  });
});

describe('rangesOverlap (QEMU ranges_overlap)', () => {
  it('is true exactly when the access touches a byte of the register', () => {
    // Register [0x10, 0x14).
    expect(rangesOverlap(0x0c, 4, 0x10, 4)).toBe(false); // ends right before
    expect(rangesOverlap(0x0d, 4, 0x10, 4)).toBe(true); // last byte is the first register byte
    expect(rangesOverlap(0x10, 1, 0x10, 4)).toBe(true);
    expect(rangesOverlap(0x13, 1, 0x10, 4)).toBe(true); // last register byte
    expect(rangesOverlap(0x14, 1, 0x10, 4)).toBe(false); // first byte after
    expect(rangesOverlap(0x0f, 1, 0x10, 4)).toBe(false); // byte before
    expect(rangesOverlap(0x0e, 8, 0x10, 4)).toBe(true); // covers it
    expect(rangesOverlap(0x12, 4, 0x10, 4)).toBe(true); // runs past it
  });
});

describe('PciConfig construction', () => {
  it('is 256 bytes by default, or 4096; every value and mask starts zero', () => {
    const c = new PciConfig();
    expect(c.size).toBe(256);
    for (const a of [c.bytes, c.wmask, c.w1cmask, c.cmask]) {
      expect(a.length).toBe(256);
      expect(a.every((b) => b === 0)).toBe(true);
    }
    const e = new PciConfig(PCIE_CONFIG_SPACE_SIZE);
    expect(e.size).toBe(4096);
    expect(e.bytes.length).toBe(4096);
    expect(e.wmask.length).toBe(4096);
    expect(e.w1cmask.length).toBe(4096);
    expect(e.cmask.length).toBe(4096);
  });

  it('refuses any other size (a host mistake)', () => {
    for (const size of [0, 255, 257, 512, 4095, 4097, 8192]) {
      expect(() => new PciConfig(size)).toThrow(`pci config: size must be 256 or 4096, got ${size}`);
    }
  });
});

describe('reads', () => {
  /** A space whose byte i holds i (mod 256). */
  function counting(size = 256): PciConfig {
    const c = new PciConfig(size);
    for (let i = 0; i < size; i++) c.setByte(i, i & 0xff);
    return c;
  }

  it('are little-endian at 1, 2 and 4 bytes, unsigned', () => {
    const c = counting();
    expect(c.read(0x10, 1)).toBe(0x10);
    expect(c.read(0x10, 2)).toBe(0x1110);
    expect(c.read(0x10, 4)).toBe(0x1312_1110);
    expect(c.getByte(0x81)).toBe(0x81);
    expect(c.getWord(0x81)).toBe(0x8281);
    expect(c.getLong(0xf0)).toBe(0xf3f2_f1f0); // bit 31 set: still positive
    expect(c.read(0xfc, 4)).toBe(0xfffe_fdfc);
  });

  it('unaligned reads are allowed', () => {
    const c = counting();
    expect(c.read(0x11, 2)).toBe(0x1211);
    expect(c.read(0x13, 4)).toBe(0x1615_1413);
  });

  it('bytes outside the space read 0xff, the bytes inside still read their value', () => {
    const c = counting();
    expect(c.getByte(0xff)).toBe(0xff); // last byte: its value happens to be 0xff
    c.setByte(0xff, 0x12);
    expect(c.getByte(0xff)).toBe(0x12);
    expect(c.getByte(0x100)).toBe(0xff);
    expect(c.getByte(-1)).toBe(0xff);
    expect(c.getWord(0xff)).toBe(0xff12);
    expect(c.getLong(0xfd)).toBe(0xff12_fefd);
    expect(c.getLong(0xfe)).toBe(0xffff_12fe);
    expect(c.getLong(0x100)).toBe(0xffff_ffff);
    expect(c.getLong(-2)).toBe(0x0100_ffff);
    expect(c.read(-1, 2)).toBe(0x00ff);
    const e = counting(4096);
    expect(e.getByte(0x100)).toBe(0x00);
    expect(e.getLong(0xffe)).toBe(0xffff_fffe);
    expect(e.getByte(0x1000)).toBe(0xff);
  });

  it('have no side effects', () => {
    const c = counting();
    const before = c.bytes.slice();
    for (let off = -4; off < 0x104; off++) {
      c.read(off, 1);
      c.read(off, 2);
      c.read(off, 4);
    }
    expect(c.bytes).toEqual(before);
  });
});

describe('device-side setters and mask declarations', () => {
  it('set values without masks, truncated to their width', () => {
    const c = new PciConfig();
    c.setByte(0x00, 0x1ab);
    c.setWord(0x02, 0x1_2345);
    c.setLong(0x04, -1);
    expect(c.getByte(0x00)).toBe(0xab);
    expect(c.getWord(0x02)).toBe(0x2345);
    expect(c.getLong(0x04)).toBe(0xffff_ffff);
    expect(c.wmask.every((b) => b === 0)).toBe(true);
  });

  it('reach the last byte of the space and throw one past it, or at a bad offset', () => {
    const c = new PciConfig();
    c.setByte(0xff, 1);
    c.setWord(0xfe, 0x0201);
    c.setLong(0xfc, 0x0403_0201);
    expect(c.getLong(0xfc)).toBe(0x0403_0201);
    expect(() => c.setByte(0x100, 0)).toThrow(RangeError);
    expect(() => c.setWord(0xff, 0)).toThrow(RangeError);
    expect(() => c.setLong(0xfd, 0)).toThrow('pci config: offset 0xfd size 4 outside 256-byte space');
    expect(() => c.setByte(-1, 0)).toThrow(RangeError);
    expect(() => c.setByte(1.5, 0)).toThrow(RangeError);
    expect(() => c.setWmask(0xfe, 4, 0)).toThrow(RangeError);
    expect(() => c.setW1cmask(0x100, 1, 0)).toThrow(RangeError);
    expect(() => c.setCmask(-2, 2, 0)).toThrow(RangeError);
    expect(c.getLong(0xfc)).toBe(0x0403_0201);
    const e = new PciConfig(PCIE_CONFIG_SPACE_SIZE);
    e.setLong(0xffc, 0xa5a5_a5a5);
    expect(e.getLong(0xffc)).toBe(0xa5a5_a5a5);
    expect(() => e.setLong(0xffd, 0)).toThrow(RangeError);
  });

  it('masks are stored little-endian per byte and read back at any width', () => {
    const c = new PciConfig();
    c.setWmask(0x40, 4, 0x1234_5678);
    c.setW1cmask(0x44, 2, 0xbeef);
    c.setCmask(0x48, 1, 0x5a);
    expect(Array.from(c.wmask.subarray(0x40, 0x44))).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(c.getWmask(0x40, 4)).toBe(0x1234_5678);
    expect(c.getWmask(0x42, 2)).toBe(0x1234);
    expect(c.getWmask(0x43, 1)).toBe(0x12);
    expect(c.getW1cmask(0x44, 2)).toBe(0xbeef);
    expect(c.getW1cmask(0x44, 4)).toBe(0x0000_beef);
    expect(c.cmask[0x48]).toBe(0x5a);
    c.setWmask(0xfc, 4, 0xffff_ffff);
    expect(c.getWmask(0xfc, 4)).toBe(0xffff_ffff);
    // Outside the space nothing is writable.
    expect(c.getWmask(0xfe, 4)).toBe(0x0000_ffff);
    expect(c.getWmask(0x100, 4)).toBe(0);
    c.setWmask(0x00, 1, 0xab);
    expect(c.getWmask(-1, 2)).toBe(0xab00);
  });
});

describe('guestWrite: the one write helper', () => {
  it('read-only by default: a fresh space ignores every guest write', () => {
    const c = new PciConfig();
    c.setLong(0x00, 0x5678_1234);
    for (let off = 0; off < 256; off += 4) c.guestWrite(off, 4, 0xffff_ffff);
    for (let off = 0; off < 256; off++) c.guestWrite(off, 1, 0);
    expect(c.getLong(0x00)).toBe(0x5678_1234);
    expect(c.bytes.subarray(4).every((b) => b === 0)).toBe(true);
  });

  it('writable bits take the written value, the other bits keep theirs', () => {
    const c = new PciConfig();
    c.setLong(0x40, 0xa5a5_a5a5);
    c.setWmask(0x40, 4, 0x0ff0_f00f);
    c.guestWrite(0x40, 4, 0x0000_0000);
    expect(c.getLong(0x40)).toBe(0xa005_05a0);
    c.guestWrite(0x40, 4, 0xffff_ffff);
    expect(c.getLong(0x40)).toBe(0xaff5_f5af);
  });

  it('write-1-to-clear bits clear on 1, stay on 0, and are not otherwise writable (PCI status)', () => {
    const c = new PciConfig();
    c.setWord(PciReg.Status, 0xf910);
    c.setW1cmask(PciReg.Status, 2, 0xf900);
    c.guestWrite(PciReg.Status, 2, 0x0000);
    expect(c.getWord(PciReg.Status)).toBe(0xf910);
    c.guestWrite(PciReg.Status, 2, 0x0110); // clears bit 8; bit 4 is read-only
    expect(c.getWord(PciReg.Status)).toBe(0xf810);
    c.guestWrite(PciReg.Status, 2, 0xffff);
    expect(c.getWord(PciReg.Status)).toBe(0x0010);
    // A W1C bit that is already clear stays clear when written with 1.
    c.guestWrite(PciReg.Status, 2, 0x8000);
    expect(c.getWord(PciReg.Status)).toBe(0x0010);
  });

  it('a bit both writable and W1C: writing 1 clears it, writing 0 clears it too', () => {
    const c = new PciConfig();
    c.setByte(0x50, 0x03);
    c.setWmask(0x50, 1, 0x01);
    c.setW1cmask(0x50, 1, 0x01);
    c.guestWrite(0x50, 1, 0x01);
    expect(c.getByte(0x50)).toBe(0x02);
    c.setByte(0x50, 0x03);
    c.guestWrite(0x50, 1, 0x00);
    expect(c.getByte(0x50)).toBe(0x02);
  });

  it('writes exactly `size` bytes: value bits above the access are ignored', () => {
    const c = new PciConfig();
    c.wmask.fill(0xff, 0x40);
    c.guestWrite(0x41, 1, 0xffff_ff12);
    c.guestWrite(0x44, 2, 0xffff_3456);
    expect(c.getLong(0x40)).toBe(0x0000_1200);
    expect(c.getLong(0x44)).toBe(0x0000_3456);
    c.guestWrite(0x4b, 4, 0x8877_6655); // unaligned dword
    expect(c.getLong(0x48)).toBe(0x5500_0000);
    expect(c.getLong(0x4c)).toBe(0x0088_7766);
  });

  it('bytes beyond either end of the space are dropped; the bytes inside are written', () => {
    const c = new PciConfig();
    c.wmask.fill(0xff);
    c.guestWrite(0xfe, 4, 0x4433_2211);
    expect(c.getWord(0xfe)).toBe(0x2211);
    c.guestWrite(-1, 2, 0xabcd);
    expect(c.getByte(0)).toBe(0xab);
    c.guestWrite(0x100, 4, 0xffff_ffff);
    c.guestWrite(-4, 4, 0xffff_ffff);
    expect(c.getByte(0)).toBe(0xab);
    expect(c.getLong(0xfc)).toBe(0x2211_0000);
  });

  it('touches no mask', () => {
    const c = new PciConfig();
    c.setWmask(0x40, 4, 0xffff_0000);
    c.setW1cmask(0x40, 4, 0x0000_ffff);
    c.guestWrite(0x40, 4, 0xffff_ffff);
    expect(c.getWmask(0x40, 4)).toBe(0xffff_0000);
    expect(c.getW1cmask(0x40, 4)).toBe(0x0000_ffff);
  });
});

describe('reset snapshots', () => {
  it('restoreReset brings back the values of the last snapshot, not the masks', () => {
    const c = new PciConfig();
    c.setLong(0x40, 0x1111_1111);
    c.setWmask(0x40, 4, 0xffff_ffff);
    c.snapshotReset();
    c.guestWrite(0x40, 4, 0x2222_2222);
    c.setWmask(0x44, 4, 0xff);
    c.setLong(0x80, 7);
    c.restoreReset();
    expect(c.getLong(0x40)).toBe(0x1111_1111);
    expect(c.getLong(0x80)).toBe(0);
    expect(c.getWmask(0x44, 4)).toBe(0xff);
    c.guestWrite(0x40, 4, 0x3333_3333);
    c.snapshotReset();
    c.guestWrite(0x40, 4, 0);
    c.restoreReset();
    expect(c.getLong(0x40)).toBe(0x3333_3333);
  });

  it('without a snapshot the reset state is all zeros', () => {
    const c = new PciConfig(PCIE_CONFIG_SPACE_SIZE);
    c.setLong(0xffc, 0xffff_ffff);
    c.setLong(0, 0x1234_5678);
    c.restoreReset();
    expect(c.bytes.every((b) => b === 0)).toBe(true);
  });
});
