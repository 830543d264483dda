/**
 * Register map of `sva-testdev`, vtemu's shared-virtual-addressing test
 * device (a vtemu extension: QEMU 11.1 has no device that issues ATS
 * translation requests or page requests).
 *
 * A PCI Express endpoint with MSI (one 64-bit vector), the ATS, PASID and
 * PRI extended capabilities (0x100, 0x110, 0x120) and one 8 KiB memory BAR:
 *
 *   0x000 RO  ID: 0x53564101 ("SVA", version 1)
 *   0x004 RO  STATUS: bit 0 PENDING (a command waits for a page-group
 *             response), bits 1/2/3 ATS / PASID / PRI Enable as configured
 *   0x008 RW  COMMAND: a write runs a command (reads give the last one);
 *             bits 3:0 opcode, then flags (see SvaCmd)
 *   0x00C RO  RESULT of the last command (SvaResult)
 *   0x010 RW  ADDR bits 31:0   \ device address: an IOVA, or a process
 *   0x014 RW  ADDR bits 63:32  / virtual address with a PASID
 *   0x018 RW  LENGTH in bytes, 1..4096 (the data buffer's size)
 *   0x01C RW  PASID (bits 19:0)
 *   0x020 RO  ATC_COUNT: valid device-TLB (ATC) entries
 *   0x024 RO  INV_COUNT: ATC invalidation requests received
 *   0x028 RO  PRQ_COUNT: page requests issued
 *   0x02C RO  PRG_COUNT: page-group responses received
 *   0x030 RO  LAST_ATS: the last ATS completion: bit 0 R, bit 1 W, bit 2 U,
 *             bits 7:4 status (0 success, 1 UR, 4 CA), bits 15:8 log2 of
 *             the translation size (12 for 4 KiB)
 *   0x034 RW1C IRQ_STATUS: bit 0 command done, bit 1 page-group response,
 *             bit 2 ATC invalidated
 *   0x038 RW  IRQ_ENABLE: the IRQ_STATUS bits that send the MSI
 *   0x03C RW  CONTROL: bit 0 STALL (ATC invalidation requests go
 *             unanswered: the IOMMU times out, ITE), bit 1 FAIL (they are
 *             answered with an error: ICE)
 *   0x040 RO  XLAT bits 31:0   \ translated address of the last ATS
 *   0x044 RO  XLAT bits 63:32  / completion (page base)
 *   0x048 RW  PRGI: page request group index of the next page request (9 bits)
 *   0x04C RO  LAST_PRG: code (bits 3:0) and PRGI (bits 24:16) of the last
 *             page-group response
 *   0x1000-0x1FFF RW  the data buffer (any size, any alignment)
 *
 * Registers take 4- or 8-byte accesses (8 bytes: the pair at the lower
 * dword); other offsets below 0x1000 read 0 and ignore writes.
 */

/** PCI identity: vendor 0x1234 (as edu), a device ID of vtemu's own. */
export const SvaPci = {
  VendorId: 0x1234,
  DeviceId: 0x5341,
  Revision: 0x01,
  /** Unclassified device (0xff), as iommu-testdev. */
  ClassCode: 0x00ff00,
  SubsystemVendorId: 0x1af4,
  SubsystemId: 0x1100,
  /** BAR0 size. */
  MmioSize: 0x2000,
  MsiVectors: 1,
  /** Extended capability offsets. */
  AtsCap: 0x100,
  PasidCap: 0x110,
  PriCap: 0x120,
  /** PASID width offered (20 bits) and Outstanding Page Request Capacity. */
  PasidWidth: 20,
  PriCapacity: 32,
} as const;

/** BAR0 register offsets. */
export const SvaReg = {
  Id: 0x000,
  Status: 0x004,
  Command: 0x008,
  Result: 0x00c,
  AddrLo: 0x010,
  AddrHi: 0x014,
  Length: 0x018,
  Pasid: 0x01c,
  AtcCount: 0x020,
  InvCount: 0x024,
  PrqCount: 0x028,
  PrgCount: 0x02c,
  LastAts: 0x030,
  IrqStatus: 0x034,
  IrqEnable: 0x038,
  Control: 0x03c,
  XlatLo: 0x040,
  XlatHi: 0x044,
  Prgi: 0x048,
  LastPrg: 0x04c,
  /** The data buffer. */
  Buffer: 0x1000,
} as const;

/** Size of the data buffer: the largest LENGTH. */
export const SVA_BUFFER_SIZE = 0x1000;

/** The ID register's value. */
export const SVA_ID = 0x53564101;

/** STATUS bits. */
export const SvaStatus = {
  Pending: 1 << 0,
  AtsEnabled: 1 << 1,
  PasidEnabled: 1 << 2,
  PriEnabled: 1 << 3,
} as const;

/**
 * COMMAND: opcode in bits 3:0, flags above.
 *
 *   NOP          nothing; RESULT OK
 *   READ         copy LENGTH bytes at ADDR into the buffer
 *   WRITE        copy LENGTH bytes of the buffer to ADDR
 *   TRANSLATE    ATS translation requests for every page of [ADDR, +LENGTH),
 *                filling the ATC (needs ATS Enable); no data moves
 *   PAGE_REQUEST one page request for ADDR's page (needs PRI Enable), read
 *                access, write too with the WRITE flag; RESULT PENDING until
 *                its page-group response arrives
 *   ATC_FLUSH    drop every ATC entry
 *
 * Flags:
 *   PASID  requests carry the PASID register (needs PASID Enable; with ATC
 *          the translation requests carry it, the translated requests do not)
 *   ATC    READ / WRITE go through the device-TLB: a miss is an ATS
 *          translation request, the data moves as translated requests
 *   PRI    with ATC: when a completion grants no access, issue a page request
 *          (LPIG set, PRGI register) and wait; a successful response retries
 *          the command, up to SVA_MAX_PAGE_REQUESTS page requests per command
 *   PRIV   privileged-mode access (PMR in page requests)
 *   EXEC   execute access (page requests)
 *   WRITE  (PAGE_REQUEST and TRANSLATE) ask for write access too (a TRANSLATE
 *          without it sends No Write)
 */
export const SvaCmd = {
  OPCODE_MASK: 0xf,
  Nop: 0,
  Read: 1,
  Write: 2,
  Translate: 3,
  PageRequest: 4,
  AtcFlush: 5,
  PASID: 1 << 8,
  ATC: 1 << 9,
  PRI: 1 << 10,
  PRIV: 1 << 11,
  EXEC: 1 << 12,
  WRITE: 1 << 13,
} as const;

/** Page requests one command may issue before it gives up (RESULT NO_ACCESS). */
export const SVA_MAX_PAGE_REQUESTS = 4;

/** RESULT values. */
export const SvaResult = {
  Ok: 0,
  /** Waiting for a page-group response. */
  Pending: 1,
  /** An untranslated or translated request was refused (the IOMMU faulted or blocked it). */
  DmaFault: 0x10,
  /** An ATS translation request got Unsupported Request. */
  AtsUr: 0x11,
  /** An ATS translation request got Completer Abort. */
  AtsCa: 0x12,
  /** No access after translation (and no page request was possible or allowed). */
  NoAccess: 0x13,
  /** ATC / TRANSLATE with ATS Enable clear. */
  AtsDisabled: 0x14,
  /** PASID flag with PASID Enable clear, or the PASID beyond the enabled width. */
  PasidDisabled: 0x15,
  /** A page request needed with PRI disabled, stopped after a failure, or out of credits. */
  PriUnavailable: 0x16,
  /** The host refused the page request (no PRI there, PRE clear, ...). */
  PrqRefused: 0x17,
  /** The host's page-request queue overflowed. */
  PrqOverflow: 0x18,
  /** Page-group response: Invalid Request. */
  PrgInvalid: 0x19,
  /** Page-group response: Response Failure. */
  PrgFailure: 0x1a,
  /** Unknown opcode, LENGTH 0 or above the buffer, or a command while one is pending. */
  BadCommand: 0x1b,
} as const;

/** IRQ_STATUS / IRQ_ENABLE bits. */
export const SvaIrq = {
  Done: 1 << 0,
  PageResponse: 1 << 1,
  AtcInvalidated: 1 << 2,
} as const;

/** CONTROL bits. */
export const SvaControl = {
  /** Leave ATC invalidation requests unanswered (the IOMMU's ITE). */
  Stall: 1 << 0,
  /** Answer ATC invalidation requests with an error (the IOMMU's ICE). */
  Fail: 1 << 1,
} as const;

/** LAST_ATS fields. */
export const SvaLastAts = {
  R: 1 << 0,
  W: 1 << 1,
  U: 1 << 2,
  STATUS_SHIFT: 4,
  SIZE_SHIFT: 8,
} as const;

/** Entries the device-TLB holds (oldest replaced first). */
export const SVA_ATC_ENTRIES = 64;
