/**
 * The rules of the strict programming-model checks (strict-checks.ts): each
 * rule's stable id, the VT-d spec section that states it (rev 4.x/5.0
 * numbering: registers in chapter 11, structures in chapter 9, invalidation
 * in 6.5) and a one-line statement of what software did wrong.  Data only.
 */

/** One rule. */
export interface StrictRule {
  /** The VT-d spec section. */
  readonly section: string;
  /** What the guest did, as the warning says it. */
  readonly text: string;
}

/** Every rule by id. */
export const STRICT_RULES = {
  'te-before-srtp': {
    section: '11.4.4.1',
    text: 'GCMD.TE set before any SRTP since reset: translation uses a root table that was never latched',
  },
  'rtaddr-without-srtp': {
    section: '11.4.5',
    text: 'RTADDR holds a value no SRTP latched, and translation is used (or enabled) with the old root table',
  },
  'qie-tail-nonzero': {
    section: '11.4.9.2',
    text: 'GCMD.QIE set while IQT != IQH (IQH reads 0 while QI is off, so the spec requires IQT = 0 before enabling; Linux writes IQT = 0 first)',
  },
  'iqa-while-qi': {
    section: '11.4.9.3',
    text: 'IQA written while queued invalidation is enabled (GSTS.QIES): the queue base and size may be changed only with QI off',
  },
  'register-invalidation-while-qi': {
    section: '6.5.2',
    text: 'register-based invalidation issued while queued invalidation is enabled: software must use the invalidation queue only',
  },
  'ire-without-iec': {
    section: '11.4.4.1',
    text: 'interrupt remapping used after SIRTP without a global interrupt-entry-cache invalidation in between (entries of the old table may be cached)',
  },
  'irta-without-sirtp': {
    section: '11.4.10.1',
    text: 'IRTA holds a value no SIRTP latched, and interrupt remapping is used (or enabled) with the old table',
  },
  'present-entry-modified': {
    section: '6.5.3.3',
    text: 'a present entry modified in place: the spec sequence is clear P, invalidate, then write the new entry',
  },
  'entry-rewritten-without-invalidation': {
    section: '6.5.3.3',
    text: 'an entry cleared and written with another value without the invalidation in between (clear P, invalidate, write)',
  },
  'reserved-sm-context': {
    section: '9.4',
    text: 'reserved field set in a scalable-mode context entry (the unit does not fault on it)',
  },
  'reserved-pasid-dir': {
    section: '9.5',
    text: 'reserved bits set in a PASID directory entry (the unit does not fault on them)',
  },
  'reserved-pasid-entry': {
    section: '9.6',
    text: 'reserved bits set in a PASID table entry (the unit does not fault on them)',
  },
  'did-zero-caching-mode': {
    section: '11.4.2',
    text: 'domain ID 0 used with CAP.CM=1: caching mode reserves domain ID 0 (for the not-present entries it caches)',
  },
} as const satisfies Record<string, StrictRule>;

/** A rule id. */
export type StrictRuleId = keyof typeof STRICT_RULES;
