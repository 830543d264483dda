/**
 * The text of the VT-d inspector (what `info iommu` prints): one block per
 * unit, the summary first (the six lines `info iommu` has always printed),
 * then each view present in the inspection.  The layout is stable (the
 * README shows it):
 *
 *   - an entry is `KIND [INDEX] @ADDR  QWORDS  FIELD=VALUE ...`, QWORDS
 *     lowest first with the trailing all-zero ones left out, flags as 1/0,
 *     then `RESERVED(mask)` when reserved bits are set and `-- NOTE`;
 *   - every address is 16 hex digits, fields print short hex;
 *   - lists are sorted (IOTLB by requester, PASID and IOVA; records by index).
 */
import type { EntryView, FieldValue } from './inspect-common.js';
import { faultText } from './inspect-common.js';
import type { IommuInspection, SummaryView, UnitInspection } from './inspect.js';
import type { PathInspection, StageView } from './inspect-path.js';
import { sizeText } from './inspect-entries.js';
import type { CachesView, DescriptorView, FaultsView, IrteView, IrView, QueueView } from './inspect-state.js';

/** Names of the bits of `value` set in `bits`, as `[A B]`. */
export function bitNames(value: number, bits: readonly (readonly [string, number])[]): string {
  return `[${bits.filter(([, b]) => (value & b) !== 0).map(([n]) => n).join(' ')}]`;
}

const h32 = (v: number): string => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
const fieldText = (v: FieldValue): string => (typeof v === 'boolean' ? (v ? '1' : '0') : String(v));

/** `K=V K=V ...` of a field record. */
export function fieldsText(fields: Readonly<Record<string, FieldValue>>): string {
  return Object.entries(fields).map(([k, v]) => `${k}=${fieldText(v)}`).join(' ');
}

/** The raw qwords, trailing zero ones left out (the first always kept). */
function rawText(raw: readonly string[]): string {
  let n = raw.length;
  while (n > 1 && /^0+$/.test(raw[n - 1]!)) n--;
  return raw.slice(0, n).join(' ');
}

/** One decoded entry on one line. */
export function entryLine(e: EntryView): string {
  const head = `${e.kind.padEnd(9)} [0x${e.index.toString(16).padStart(3, '0')}] @${e.addr}`;
  if (!e.readable) return `${head}  -- ${e.note}`;
  const rsvd = e.reserved.length ? `  RESERVED(${e.reserved.join(' ')})` : '';
  return `${head}  ${rawText(e.raw)}  ${fieldsText(e.fields)}${rsvd}${e.note ? `  -- ${e.note}` : ''}`;
}

/** The summary lines of a unit. */
export function summaryLines(u: UnitInspection): string[] {
  const s: SummaryView = u.summary;
  const where = u.base === null ? 'not mapped' : `at ${u.base}`;
  const spaces = s.addressSpaces.map((a) => `${a.requester} ${a.state}${a.pasid === null ? '' : ` pasid ${a.pasid}`}`);
  return [
    `intel-iommu "${u.id}" ${where}: ${u.mode} mode${u.mode === s.rtaddrMode ? '' : ` (RTADDR says ${s.rtaddrMode})`}, translation ${u.translation ? 'on' : 'off'}`,
    `  VER ${h32(s.ver)} (${(s.ver >>> 4) & 0xf}.${s.ver & 0xf})  CAP ${s.cap}  ECAP ${s.ecap}`,
    `  GSTS ${h32(s.gsts)} [${s.gstsBits.join(' ')}]  FSTS ${h32(s.fsts)} [${s.fstsBits.join(' ')}] FRI ${s.fri}`,
    `  RTADDR ${s.rtaddr}`,
    `  IQ head ${s.iqh} tail ${s.iqt} addr ${s.iqa}`,
    `  address spaces: ${spaces.length ? spaces.join(', ') : 'none'}`,
  ];
}

function stageLines(s: StageView): string[] {
  return [`    ${s.name}: ${s.levels} levels, table ${s.root}`, ...s.entries.map((e) => `      ${entryLine(e)}`)];
}

/** The lines of a translation path. */
export function pathLines(p: PathInspection): string[] {
  const out = [
    `  path ${p.requester} pasid ${p.pasid ?? '-'} iova ${p.iova ?? '-'} ${p.access}: ${p.mode} mode, root table ${p.rootTable}`,
    ...p.entries.map((e) => `    ${entryLine(e)}`),
  ];
  if (p.config) {
    const c = p.config;
    const stage = (n: string, s: { root: string; levels: number } | null): string => (s ? `, ${n} ${s.levels} levels at ${s.root}` : '');
    out.push(`    config: DID ${c.did} ${c.pgtt}${stage('second stage', c.secondStage)}${stage('first stage', c.firstStage)}, FPD ${c.fpd ? 1 : 0}`);
  }
  for (const s of p.stages) out.push(...stageLines(s));
  const r = p.result;
  switch (r.kind) {
    case 'translated':
      out.push(`    result: ${p.iova} -> ${r.output} (${sizeText(r.size)} page at ${r.page}, ${r.perm})`);
      break;
    case 'fault':
      out.push(`    result: fault ${faultText(r.reason)}${r.recorded ? '' : ' (FPD set: not recorded)'}`);
      break;
    default:
      out.push(`    result: ${r.kind}: ${r.why}`);
  }
  const hit = p.iotlb;
  out.push(hit ? `    IOTLB: hit DID ${hit.did} ${hit.page} ${sizeText(hit.size)} -> ${hit.output} ${hit.perm}${hit.stale ? '  STALE (memory translates otherwise)' : ''}` : '    IOTLB: miss');
  const cc = p.contextCache;
  out.push(cc ? `    context cache: ${rawText(cc.raw)}${cc.stale ? '  STALE (memory holds another entry)' : ''}` : '    context cache: empty');
  return out;
}

function irteLine(e: IrteView): string {
  const flags = [e.reserved ? 'RESERVED' : '', e.cached ? 'cached' : ''].filter((x) => x).join(' ');
  const pid = e.pid
    ? e.pid.readable
      ? `  PID @${e.pid.addr} ON=${e.pid.ON ? 1 : 0} SN=${e.pid.SN ? 1 : 0} NV=0x${e.pid.NV.toString(16)} NDST=${e.pid.NDST} PIR [${e.pid.pir.map((v) => `0x${v.toString(16)}`).join(' ')}]`
      : `  PID @${e.pid.addr} unreadable`
    : '';
  return `    [0x${e.index.toString(16).padStart(4, '0')}] ${rawText(e.raw)}  ${e.present ? '' : 'not present '}${e.format} ${fieldsText(e.fields)}${flags ? `  ${flags}` : ''}${pid}`;
}

/** The lines of the caches. */
export function cachesLines(c: CachesView): string[] {
  const count = (n: number): string => (n === 1 ? '1 entry' : `${n} entries`);
  return [
    `  IOTLB: ${count(c.iotlb.length)}`,
    ...c.iotlb.map((e) => `    ${e.requester} pasid ${e.pasid ?? '-'} DID ${e.did} ${e.iova} ${sizeText(e.size)} -> ${e.output} ${e.perm} ${e.pgtt}${e.fpd ? ' FPD' : ''}`),
    `  context cache: ${count(c.contextCache.length)}`,
    ...c.contextCache.map((e) => `    ${e.requester} ${e.mode} ${rawText(e.raw)}  ${fieldsText(e.fields)}`),
    `  PASID cache: ${c.pasidCache}`,
    `  interrupt entry cache: ${count(c.iec.length)}`,
    ...c.iec.map(irteLine),
  ];
}

function descriptorLine(d: DescriptorView): string {
  const body = d.fields ? fieldsText(d.fields) : `REFUSED (${d.error})`;
  return `    [${d.index}] @${d.addr}  ${rawText(d.raw)}  ${d.name} ${body}`;
}

/** The lines of the invalidation queue. */
export function queueLines(q: QueueView): string[] {
  return [
    `  invalidation queue: ${q.enabled ? 'on' : 'off'}, IQA ${q.iqa} (base ${q.base}, QS ${q.qs}, DW ${q.dw ? 1 : 0}: ${q.size} ${q.wide ? '256' : '128'}-bit entries)`,
    `    head ${q.head} tail ${q.tail} (IQH ${q.iqh} IQT ${q.iqt}), last descriptor ${q.lastType}, errors [${q.errors.join(' ')}]${q.iqei ? ` IQEI ${q.iqei}` : ''}`,
    ...(q.note ? [`    ${q.note}`] : [`    pending: ${q.pending.length}`]),
    ...q.pending.map(descriptorLine),
  ];
}

/** The lines of the fault registers. */
export function faultsLines(f: FaultsView): string[] {
  return [
    `  faults: FSTS ${f.fsts} [${f.bits.join(' ')}] FRI ${f.fri}, FECTL IM=${f.fectl.IM ? 1 : 0} IP=${f.fectl.IP ? 1 : 0}, ${f.records.length} of ${f.nfr} records pending`,
    ...f.records.map((r) => {
      const where = r.irIndex !== null ? `IR index 0x${r.irIndex.toString(16)}` : `addr ${r.addr}`;
      return `    FRCD[${r.index}] ${r.requester}${r.pasid !== null ? ` pasid ${r.pasid}` : ''} ${r.type} ${where} reason ${faultText(r.reason)}`;
    }),
  ];
}

/** The lines of the interrupt-remapping table. */
export function irLines(t: IrView): string[] {
  return [
    `  interrupt remapping: ${t.enabled ? 'on' : 'off'}, IRTA ${t.irta} (table ${t.base}, ${t.entries} entries, EIME ${t.eime ? 1 : 0}), posted interrupts ${t.posted ? 'on' : 'off'}`,
    ...(t.note ? [`    ${t.note}`] : [`    present: ${t.table.length}`]),
    ...t.table.map(irteLine),
  ];
}

/** The lines of one unit. */
export function unitLines(u: UnitInspection): string[] {
  return [
    ...summaryLines(u),
    ...(u.path ? pathLines(u.path) : []),
    ...(u.caches ? cachesLines(u.caches) : []),
    ...(u.queue ? queueLines(u.queue) : []),
    ...(u.faults ? faultsLines(u.faults) : []),
    ...(u.ir ? irLines(u.ir) : []),
  ];
}

/** The text of an inspection; lines end in '\n'. */
export function formatInspection(ins: IommuInspection): string {
  if (ins.units.length === 0) return 'No IOMMU\n';
  return ins.units.flatMap(unitLines).map((l) => `${l}\n`).join('');
}
