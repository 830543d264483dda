import { describe, expect, it } from 'vitest';
import { smramState, TSEG_SIZE_BY_FIELD } from './mch-smram.js';
import { MchDevice, MchReg } from './ich9.js';

const MIB = 0x10_0000;

describe('smramState (QEMU mch_update_smram)', () => {
  const base = { smbaseLocked: false, extTsegMbytes: 16 };
  it('legacy window: PCI view unless D_OPEN without H_SMRAME; high mirror with both', () => {
    expect(smramState({ ...base, smram: 0x02, esmramc: 0x38 })).toMatchObject({ legacyPci: true, openHigh: false });
    expect(smramState({ ...base, smram: 0x42, esmramc: 0x38 })).toMatchObject({ legacyPci: false, openHigh: false });
    expect(smramState({ ...base, smram: 0x42, esmramc: 0xb8 })).toMatchObject({ legacyPci: true, openHigh: true });
    expect(smramState({ ...base, smram: 0x02, esmramc: 0xb8 })).toMatchObject({ legacyPci: true, openHigh: false });
  });
  it('TSEG needs T_EN and G_SMRAME; TSEG_SZ picks 1/2/8 MiB or the extended size', () => {
    expect(TSEG_SIZE_BY_FIELD).toEqual([MIB, 2 * MIB, 8 * MIB, null]);
    expect(smramState({ ...base, smram: 0x0a, esmramc: 0x38 }).tsegSize).toBe(0);
    expect(smramState({ ...base, smram: 0x02, esmramc: 0x39 }).tsegSize).toBe(0);
    for (const [field, size] of [[0, MIB], [1, 2 * MIB], [2, 8 * MIB], [3, 16 * MIB]] as const) {
      expect(smramState({ ...base, smram: 0x0a, esmramc: 0x39 | (field << 1) }).tsegSize).toBe(size);
    }
    expect(smramState({ ...base, extTsegMbytes: 0, smram: 0x0a, esmramc: 0x3f }).tsegSize).toBe(0);
  });
});

describe('MchDevice SMRAM registers', () => {
  const states: unknown[] = [];
  const mch = (): MchDevice => {
    const d = new MchDevice();
    d.connectSmram({ apply: (s) => states.push(s) });
    return d;
  };
  it('D_LCK clears D_OPEN and freezes SMRAM (but D_CLS) and ESMRAMC', () => {
    const d = mch();
    d.configWrite(MchReg.Smram, 1, 0xff);
    expect(d.configRead(MchReg.Smram, 1)).toBe(0x3a);
    d.configWrite(MchReg.Esmramc, 1, 0xff);
    expect(d.configRead(MchReg.Esmramc, 1)).toBe(0x38);
    d.configWrite(MchReg.Smram, 1, 0x00);
    expect(d.configRead(MchReg.Smram, 1)).toBe(0x1a);
    d.reset();
    expect(d.configRead(MchReg.Smram, 1)).toBe(0x02);
    d.configWrite(MchReg.Smram, 1, 0x40);
    expect(d.configRead(MchReg.Smram, 1)).toBe(0x42);
  });
  it('F_SMBASE: 0xff and 0x01 negotiate, the lock bit latches 0x02 and the black hole until reset', () => {
    const d = mch();
    d.configWrite(MchReg.FSmbase, 1, 0x10);
    expect(d.configRead(MchReg.FSmbase, 1)).toBe(0x10);
    d.configWrite(MchReg.FSmbase, 1, 0xff);
    expect(d.configRead(MchReg.FSmbase, 1)).toBe(0x01);
    d.configWrite(MchReg.FSmbase, 1, 0x10);
    expect(d.configRead(MchReg.FSmbase, 1)).toBe(0x01);
    d.configWrite(MchReg.FSmbase, 1, 0x03);
    expect(d.configRead(MchReg.FSmbase, 1)).toBe(0x02);
    expect(states.at(-1)).toMatchObject({ smbaseLocked: true });
    d.configWrite(MchReg.FSmbase, 1, 0x00);
    expect(d.configRead(MchReg.FSmbase, 1)).toBe(0x02);
    d.reset();
    expect(d.configRead(MchReg.FSmbase, 1)).toBe(0);
    expect(states.at(-1)).toMatchObject({ smbaseLocked: false });
  });
  it('smbase-smram=off: a plain register', () => {
    const d = mch();
    d.configure({ smbaseSmram: false });
    for (const v of [0x02, 0xff, 0x01, 0x00]) {
      d.configWrite(MchReg.FSmbase, 1, v);
      expect(d.configRead(MchReg.FSmbase, 1)).toBe(v);
    }
  });
  it('extended-tseg-mbytes: register value, query, 0 keeps the written value over reset, > 0xfff refused', () => {
    const d = mch();
    d.configure({ extendedTsegMbytes: 48 });
    expect(d.configRead(MchReg.ExtTsegMbytes, 2)).toBe(48);
    d.configWrite(MchReg.ExtTsegMbytes, 2, 0xffff);
    expect(d.configRead(MchReg.ExtTsegMbytes, 2)).toBe(48);
    d.configure({ extendedTsegMbytes: 0 });
    d.configWrite(MchReg.ExtTsegMbytes, 2, 0xffff);
    d.reset();
    expect(d.configRead(MchReg.ExtTsegMbytes, 2)).toBe(0xffff);
    expect(() => d.configure({ extendedTsegMbytes: 0x1000 })).toThrow('invalid extended-tseg-mbytes value: 4096');
  });
});
