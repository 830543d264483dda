/**
 * The MSI capability on a bare PciConfig, written by the guest through the
 * one write helper (PCI Local Bus 3.0 §6.8.1; QEMU msi_init,
 * msi_write_config, msi_get_message, msi_notify): the four layouts and
 * their write masks, the enable bit and multiple-message enable clamping,
 * 32- and 64-bit addresses, data with the vector in its low bits, and
 * per-vector masking with pending bits.  Delivery through a device's DMA
 * space is in device.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PciConfig } from './config.js';
import { MSI_CAP_ID, MSI_VECTORS_MAX, MsiCap, MsiFlags, MsiReg } from './msi.js';

const AT = 0x50;

/** A capability at 0x50 of a fresh config space. */
function cap(vectors: number, is64: boolean, mask: boolean) {
  const config = new PciConfig();
  const msi = new MsiCap(config, AT, vectors, is64, mask);
  const write = (reg: number, size: 1 | 2 | 4, value: number) => config.guestWrite(AT + reg, size, value);
  return { config, msi, write };
}

describe('constants', () => {
  it('capability ID, flags, register offsets and vector limit', () => {
    expect(MSI_CAP_ID).toBe(0x05);
    expect(MSI_VECTORS_MAX).toBe(32);
    expect(MsiFlags).toEqual({
      Enable: 0x0001,
      QMask: 0x000e,
      QMaskShift: 1,
      QSize: 0x0070,
      QSizeShift: 4,
      Is64: 0x0080,
      MaskBit: 0x0100,
    });
    expect(MsiReg).toEqual({
      Flags: 0x02,
      AddressLo: 0x04,
      AddressHi: 0x08,
      Data32: 0x08,
      Data64: 0x0c,
      Mask32: 0x0c,
      Mask64: 0x10,
      Pending32: 0x10,
      Pending64: 0x14,
    });
  });

  it('capability sizes of the four layouts (QEMU msi_cap_sizeof)', () => {
    expect(MsiCap.capSize(false, false)).toBe(0x0a);
    expect(MsiCap.capSize(true, false)).toBe(0x0e);
    expect(MsiCap.capSize(false, true)).toBe(0x14);
    expect(MsiCap.capSize(true, true)).toBe(0x18);
  });
});

describe('layout and write masks', () => {
  it('message control: capable count, 64-bit and per-vector-mask bits read-only; enable and QSIZE writable', () => {
    for (const [vectors, log] of [[1, 0], [2, 1], [4, 2], [8, 3], [16, 4], [32, 5]] as const) {
      const { config, write } = cap(vectors, true, true);
      const ro = (log << 1) | 0x80 | 0x100;
      expect(config.getWord(AT + 2)).toBe(ro);
      write(2, 2, 0xffff);
      expect(config.getWord(AT + 2)).toBe(ro | 0x71);
      write(2, 2, 0);
      expect(config.getWord(AT + 2)).toBe(ro);
    }
    expect(cap(1, false, false).config.getWord(AT + 2)).toBe(0);
    expect(cap(1, true, false).config.getWord(AT + 2)).toBe(0x80);
    expect(cap(1, false, true).config.getWord(AT + 2)).toBe(0x100);
  });

  it('the header (ID, next pointer) is not written by MsiCap and stays read-only', () => {
    const { config, write } = cap(4, true, true);
    write(0, 2, 0xffff);
    expect(config.getWord(AT)).toBe(0);
  });

  it('64-bit, maskable: address dword (bits 1:0 reserved), upper address, data word, mask; pending read-only', () => {
    const { config, write } = cap(8, true, true);
    write(0x04, 4, 0xffff_ffff);
    write(0x08, 4, 0xffff_ffff);
    write(0x0c, 4, 0xffff_ffff);
    write(0x10, 4, 0xffff_ffff);
    write(0x14, 4, 0xffff_ffff);
    expect(config.getLong(AT + 0x04)).toBe(0xffff_fffc);
    expect(config.getLong(AT + 0x08)).toBe(0xffff_ffff);
    expect(config.getLong(AT + 0x0c)).toBe(0x0000_ffff); // data is a word; 0x0e reserved
    expect(config.getLong(AT + 0x10)).toBe(0x0000_00ff); // 8 maskable vectors
    expect(config.getLong(AT + 0x14)).toBe(0);
  });

  it('32-bit, maskable: data at +8, mask at +0xc, pending at +0x10', () => {
    const { config, write } = cap(32, false, true);
    for (let r = 4; r < 0x14; r += 4) write(r, 4, 0xffff_ffff);
    expect(config.getLong(AT + 0x04)).toBe(0xffff_fffc);
    expect(config.getLong(AT + 0x08)).toBe(0x0000_ffff);
    expect(config.getLong(AT + 0x0c)).toBe(0xffff_ffff); // all 32 vectors maskable
    expect(config.getLong(AT + 0x10)).toBe(0);
  });

  it('one vector: only mask bit 0 is writable', () => {
    const { config, write } = cap(1, true, true);
    write(0x10, 4, 0xffff_ffff);
    expect(config.getLong(AT + 0x10)).toBe(1);
  });

  it('32-bit without masking: nothing writable past the data word', () => {
    const { config, write } = cap(2, false, false);
    for (let r = 4; r < 0x18; r += 4) write(r, 4, 0xffff_ffff);
    expect(config.getLong(AT + 0x04)).toBe(0xffff_fffc);
    expect(config.getLong(AT + 0x08)).toBe(0x0000_ffff);
    expect(config.getLong(AT + 0x0c)).toBe(0);
    expect(config.getLong(AT + 0x10)).toBe(0);
  });

  it('64-bit without masking: nothing writable past the data word', () => {
    const { config, write } = cap(2, true, false);
    for (let r = 4; r < 0x18; r += 4) write(r, 4, 0xffff_ffff);
    expect(config.getLong(AT + 0x0c)).toBe(0x0000_ffff);
    expect(config.getLong(AT + 0x10)).toBe(0);
    expect(config.getLong(AT + 0x14)).toBe(0);
  });

  it('refuses vector counts that are not a power of two from 1 to 32 (a host mistake)', () => {
    for (const n of [0, 3, 6, 33, 64, -1, 1.5, Number.NaN]) {
      expect(() => new MsiCap(new PciConfig(), AT, n, true, true)).toThrow(RangeError);
    }
    expect(() => new MsiCap(new PciConfig(), AT, 12, true, true)).toThrow('msi: vectors must be a power of two from 1 to 32, got 12');
  });
});

describe('enable, vectors and message', () => {
  it('enabled() follows bit 0 of message control', () => {
    const { msi, write } = cap(1, true, false);
    expect(msi.enabled()).toBe(false);
    write(2, 2, MsiFlags.Enable);
    expect(msi.enabled()).toBe(true);
    write(2, 2, 0);
    expect(msi.enabled()).toBe(false);
  });

  it('vectors() is 1 << QSIZE', () => {
    const { msi, write } = cap(32, true, false);
    expect(msi.vectors()).toBe(1);
    for (let q = 0; q <= 5; q++) {
      write(2, 2, q << 4);
      expect(msi.vectors()).toBe(1 << q);
    }
  });

  it('address(): the low dword for 32-bit; upper:lower for 64-bit', () => {
    const a32 = cap(1, false, false);
    a32.write(4, 4, 0xfee0_100f);
    a32.write(8, 2, 0x4041); // data, not an upper address
    expect(a32.msi.address()).toBe(0xfee0_100c);
    const a64 = cap(1, true, false);
    a64.write(4, 4, 0xfee0_1000);
    expect(a64.msi.address()).toBe(0xfee0_1000);
    a64.write(8, 4, 0x0000_0001);
    expect(a64.msi.address()).toBe(0x1_fee0_1000);
    a64.write(8, 4, 0xffff_ffff);
    a64.write(4, 4, 0xffff_ffff);
    expect(a64.msi.address()).toBe(0xffff_ffff * 2 ** 32 + 0xffff_fffc);
  });

  it('data(v): with one vector the data as written; with n vectors the low log2(n) bits are the vector', () => {
    const { msi, write } = cap(32, true, false);
    write(0x0c, 2, 0x40ff);
    expect(msi.data(0)).toBe(0x40ff);
    expect(msi.data(5)).toBe(0x40ff);
    write(2, 2, 1 << 4); // 2 vectors: bit 0 is the vector
    expect(msi.data(0)).toBe(0x40fe);
    expect(msi.data(1)).toBe(0x40ff);
    expect(msi.data(2)).toBe(0x40fe);
    write(2, 2, 2 << 4); // 4 vectors
    expect(msi.data(0)).toBe(0x40fc);
    expect(msi.data(1)).toBe(0x40fd);
    expect(msi.data(3)).toBe(0x40ff);
    expect(msi.data(5)).toBe(0x40fd); // vector taken modulo the vector count
    write(2, 2, 5 << 4); // 32 vectors
    expect(msi.data(31)).toBe(0x40ff);
    expect(msi.data(0)).toBe(0x40e0);
  });

  it('data is read from +8 in the 32-bit layout', () => {
    const { msi, write } = cap(2, false, true);
    write(0x08, 2, 0x1234);
    write(0x0c, 4, 0xffff); // mask, not data
    expect(msi.data(0)).toBe(0x1234);
  });
});

describe('afterWrite (QEMU msi_write_config)', () => {
  it('clamps an enabled QSIZE above the capable count to it; equal or below stays', () => {
    const { config, msi, write } = cap(4, true, false);
    write(2, 2, MsiFlags.Enable | (5 << 4));
    msi.afterWrite(() => {});
    expect(config.getWord(AT + 2)).toBe(0x80 | (2 << 1) | (2 << 4) | 1);
    expect(msi.vectors()).toBe(4);
    write(2, 2, MsiFlags.Enable | (2 << 4));
    msi.afterWrite(() => {});
    expect(msi.vectors()).toBe(4);
    write(2, 2, MsiFlags.Enable | (1 << 4));
    msi.afterWrite(() => {});
    expect(msi.vectors()).toBe(2);
    const one = cap(1, true, false);
    one.write(2, 2, MsiFlags.Enable | (1 << 4));
    one.msi.afterWrite(() => {});
    expect(one.msi.vectors()).toBe(1);
  });

  it('does nothing while MSI is disabled (QSIZE keeps what was written)', () => {
    const { msi, write } = cap(2, true, true);
    write(2, 2, 3 << 4);
    const sent: number[] = [];
    msi.afterWrite((v) => sent.push(v));
    expect(msi.vectors()).toBe(8);
    expect(sent).toEqual([]);
  });

  it('without per-vector masking only clamps', () => {
    const { config, msi, write } = cap(2, true, false);
    config.setLong(AT + 0x14, 0xffff_ffff); // bytes past the capability are not pending bits
    write(2, 2, MsiFlags.Enable | (1 << 4));
    const sent: number[] = [];
    msi.afterWrite((v) => sent.push(v));
    expect(sent).toEqual([]);
    expect(config.getLong(AT + 0x14)).toBe(0xffff_ffff);
  });
});

describe('per-vector masking and pending bits', () => {
  it('masked() reads the mask register; false for every vector without per-vector masking', () => {
    const { msi, write } = cap(4, true, true);
    write(0x10, 4, 0b1010);
    expect([0, 1, 2, 3].map((v) => msi.masked(v))).toEqual([false, true, false, true]);
    const plain = cap(4, true, false);
    plain.config.setLong(AT + 0x10, 0xffff_ffff);
    expect([0, 1, 2, 3].map((v) => plain.msi.masked(v))).toEqual([false, false, false, false]);
  });

  it('maskedOrPend: sends unmasked vectors, pends masked ones, drops out-of-range ones', () => {
    const { config, msi, write } = cap(4, true, true);
    write(2, 2, MsiFlags.Enable | (2 << 4));
    write(0x10, 4, 0b0100);
    expect(msi.maskedOrPend(0)).toBe(false);
    expect(msi.maskedOrPend(3)).toBe(false);
    expect(config.getLong(AT + 0x14)).toBe(0);
    expect(msi.maskedOrPend(2)).toBe(true);
    expect(config.getLong(AT + 0x14)).toBe(0b0100);
    for (const v of [-1, 4, 31, 32, 1.5, Number.NaN]) expect(msi.maskedOrPend(v)).toBe(true);
    expect(config.getLong(AT + 0x14)).toBe(0b0100);
  });

  it('out of range is against the enabled count, not the capable one', () => {
    const { msi, write } = cap(8, true, true);
    write(2, 2, MsiFlags.Enable | (1 << 4)); // 2 of 8 enabled
    expect(msi.maskedOrPend(1)).toBe(false);
    expect(msi.maskedOrPend(2)).toBe(true);
  });

  it('pending bits accumulate; vector 31 uses bit 31', () => {
    const { config, msi, write } = cap(32, true, true);
    write(2, 2, MsiFlags.Enable | (5 << 4));
    write(0x10, 4, 0xffff_ffff);
    msi.maskedOrPend(31);
    msi.maskedOrPend(0);
    msi.maskedOrPend(31);
    expect(config.getLong(AT + 0x14)).toBe(0x8000_0001);
  });

  it('unmasking sends pending vectors in order and clears their bits; masked ones stay pending', () => {
    const { config, msi, write } = cap(8, true, true);
    write(2, 2, MsiFlags.Enable | (3 << 4));
    write(0x10, 4, 0xff);
    for (const v of [6, 1, 3]) msi.maskedOrPend(v);
    expect(config.getLong(AT + 0x14)).toBe(0b0100_1010);
    const sent: number[] = [];
    write(0x10, 4, 0b0000_1000); // vector 3 stays masked
    msi.afterWrite((v) => {
      sent.push(v);
      // Each bit is already clear when its vector is sent.
      expect((config.getLong(AT + 0x14) >>> v) & 1).toBe(0);
    });
    expect(sent).toEqual([1, 6]);
    expect(config.getLong(AT + 0x14)).toBe(0b0000_1000);
    write(0x10, 4, 0);
    msi.afterWrite((v) => sent.push(v));
    expect(sent).toEqual([1, 6, 3]);
    expect(config.getLong(AT + 0x14)).toBe(0);
  });

  it('pending bits beyond the enabled vectors are dropped, not sent', () => {
    const { config, msi, write } = cap(8, true, true);
    write(2, 2, MsiFlags.Enable | (3 << 4));
    write(0x10, 4, 0xff);
    msi.maskedOrPend(7);
    msi.maskedOrPend(1);
    write(2, 2, MsiFlags.Enable | (1 << 4)); // down to 2 vectors
    const sent: number[] = [];
    msi.afterWrite((v) => sent.push(v));
    expect(sent).toEqual([]);
    expect(config.getLong(AT + 0x14)).toBe(0b10);
  });

  it('the guest cannot set or clear pending bits', () => {
    const { config, msi, write } = cap(4, true, true);
    write(2, 2, MsiFlags.Enable | (2 << 4));
    write(0x10, 4, 0xf);
    msi.maskedOrPend(2);
    write(0x14, 4, 0);
    expect(config.getLong(AT + 0x14)).toBe(0b100);
    write(0x14, 4, 0xffff_ffff);
    expect(config.getLong(AT + 0x14)).toBe(0b100);
  });
});

describe('overlaps', () => {
  it('covers exactly [offset, offset + capSize) for each layout', () => {
    for (const [is64, mask, size] of [
      [false, false, 0x0a],
      [true, false, 0x0e],
      [false, true, 0x14],
      [true, true, 0x18],
    ] as const) {
      const { msi } = cap(1, is64, mask);
      expect(msi.overlaps(AT - 1, 1)).toBe(false);
      expect(msi.overlaps(AT - 4, 4)).toBe(false);
      expect(msi.overlaps(AT - 3, 4)).toBe(true);
      expect(msi.overlaps(AT, 1)).toBe(true);
      expect(msi.overlaps(AT + size - 1, 1)).toBe(true);
      expect(msi.overlaps(AT + size, 4)).toBe(false);
    }
  });
});
