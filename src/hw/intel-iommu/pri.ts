/**
 * A function's page request (PCIe PRI) on its way to the page-request queue,
 * with the checks QEMU 11.1's vtd_pri_request_page makes before and around
 * the queue (page-requests.ts does the queue itself):
 *
 *   1. the unit has a page-request queue (ECAP.PRS, svm=on), else refused;
 *   2. the request carries a PASID (QEMU supports no PRI without one);
 *   3. execute without read is refused (nothing recorded);
 *   4. the context entry is fetched (root and context entry, and PASID 0's
 *      entry in scalable mode, as every context fetch validates it): a
 *      failure records its fault, with the request's PASID and no FPD; a
 *      present entry with PRE clear records fault 0x47 (SCT.8), suppressed
 *      by the FPD of the context, directory or PASID entry;
 *   5. in the queue: PRO set drops it; a full queue sets PRO;
 *   6. before the descriptor is written, the implicit invalidation: the
 *      request's PASID entry must resolve to a first-stage entry, whose
 *      IOTLB entries for the page (DID, PASID) are dropped — a stale
 *      translation must not outlive the fault the device saw; otherwise the
 *      request is refused and nothing is written (QEMU: -EINVAL);
 *   7. the descriptor is written, PQT advances, PPR and the event.
 * The function is told only queued / overflow / refused: no response ever
 * comes for the last two.
 */
import { NO_PASID, type DevicePageRequest, type PageRequestStatus } from '../../memory/iommu.js';
import { VtdFault } from './fault-reasons.js';
import type { Iotlb } from './iotlb.js';
import type { PageRequestQueue } from './page-requests.js';
import type { FaultExtra } from './requests.js';
import { ctxFpd, lookupContext, newContextEntry } from './root-context.js';
import type { ResolveUnit } from './resolve.js';
import { lookupScalableContext, newPasidConfig, newScalableContext, Pgtt, resolvePasid, smCtxPre } from './scalable-context.js';

const BYTE = 0xff;
const BUS_SHIFT = 8;

/** What the page-request path reads from the unit. */
export interface PriUnit extends ResolveUnit {
  readonly pageRequests: Pick<PageRequestQueue, 'submit'> | null;
  readonly iotlb: Pick<Iotlb, 'removePasidPages'>;
  recordFault(sid: number, reason: number, addr: number, isWrite: boolean, extra?: FaultExtra): void;
}

const smCtx = newScalableContext();
const legacyCtx = newContextEntry();
const cfg = newPasidConfig();

/**
 * Step 4: true when the context entry allows page requests; else the fault is
 * recorded.  A failed fetch is recorded whatever the FPD bits say (QEMU has
 * not read them then).  Legacy context entries have no PRE bit: bit 4, where
 * a scalable entry has it, is reserved there and fails the fetch, so in
 * legacy mode every page request is refused.
 */
function preAllows(u: PriUnit, sid: number, pasid: number, req: DevicePageRequest): boolean {
  const bus = sid >>> BUS_SHIFT;
  const devfn = sid & BYTE;
  let r: number;
  let fpd = false;
  if (u.scalable) {
    r = lookupScalableContext(u.memory, u.rootTable, bus, devfn, u.smRules, smCtx);
    if (r === 0) {
      if (smCtxPre(smCtx)) return true;
      // The PASID entry's FPD counts too; cfg.fpd folds in the context's and the directory's.
      resolvePasid(u.memory, smCtx, pasid, u.smRules, cfg);
      fpd = cfg.fpd;
    }
  } else {
    r = lookupContext(u.memory, u.rootTable, bus, devfn, u.ctxRules, legacyCtx);
    if (r === 0) fpd = ctxFpd(legacyCtx);
  }
  u.recordFault(sid, r !== 0 ? r : VtdFault.SM_PRE_ABS, req.addr, req.write, { fpd, pasid });
  return false;
}

/**
 * Step 6: drops the page's first-stage IOTLB entries of (DID, PASID); false
 * when the PASID entry does not allow it.  Runs only right after preAllows
 * allowed the request (nothing runs in between), so in scalable mode with
 * `smCtx` still holding the context entry it fetched.
 */
function implicitInvalidation(u: PriUnit, pasid: number, addr: number): boolean {
  if (resolvePasid(u.memory, smCtx, pasid, u.smRules, cfg) !== 0 || cfg.pgtt !== Pgtt.FirstStage) return false;
  u.iotlb.removePasidPages(cfg.did, pasid, addr, 0);
  return true;
}

/** A page request from the function at `sid` with `pasid` (NO_PASID: none); see the module comment. */
export function submitPageRequest(u: PriUnit, sid: number, pasid: number, req: DevicePageRequest): PageRequestStatus {
  const queue = u.pageRequests;
  if (queue === null || pasid === NO_PASID) return 'refused';
  if (req.execute === true && !req.read) return 'refused';
  if (!preAllows(u, sid, pasid, req)) return 'refused';
  const outcome = queue.submit({ sid, pasid, ...req }, () => implicitInvalidation(u, pasid, req.addr));
  if (outcome === 'queued') return 'queued';
  return outcome === 'overflow' ? 'overflow' : 'refused';
}
