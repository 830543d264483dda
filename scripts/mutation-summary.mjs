#!/usr/bin/env node
// Summarises a StrykerJS JSON report (default reports/mutation/mutation.json):
// per folder and file, killed / timeout / survived / no coverage, and the
// score the project uses, (killed + timeout) / (killed + timeout + survived);
// with --survivors, every surviving mutant as `file:line:col mutator: original -> replacement`.
//
//   node scripts/mutation-summary.mjs [REPORT] [--survivors]
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--')) ?? 'reports/mutation/mutation.json';
const report = JSON.parse(readFileSync(file, 'utf8'));
const rows = new Map();
const survivors = [];
for (const [name, f] of Object.entries(report.files)) {
  const c = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, other: 0 };
  const lines = f.source.split('\n');
  for (const m of f.mutants) {
    if (m.status in c) c[m.status]++;
    else c.other++;
    if (m.status === 'Survived' || m.status === 'NoCoverage') {
      const l = m.location.start;
      const orig = lines[l.line - 1].slice(m.location.start.column - 1, m.location.end.line === l.line ? m.location.end.column - 1 : undefined).trim();
      survivors.push(`${name}:${l.line}:${l.column} ${m.status} ${m.mutatorName}: ${orig.slice(0, 60)} -> ${(m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 60)}`);
    }
  }
  rows.set(name, c);
}
const score = (c) => {
  const d = c.Killed + c.Timeout + c.Survived;
  return d ? ((100 * (c.Killed + c.Timeout)) / d).toFixed(2) : '-';
};
const sum = (list) => list.reduce((a, c) => ({ Killed: a.Killed + c.Killed, Timeout: a.Timeout + c.Timeout, Survived: a.Survived + c.Survived, NoCoverage: a.NoCoverage + c.NoCoverage, other: a.other + c.other }), { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, other: 0 });
const fmt = (n, c) => `${n.padEnd(48)} ${String(c.Killed).padStart(6)} ${String(c.Timeout).padStart(5)} ${String(c.Survived).padStart(5)} ${String(c.NoCoverage).padStart(5)}  ${score(c)}%`;
console.log(`${'file'.padEnd(48)} killed  tout  surv nocov  score`);
const folders = new Map();
for (const [n, c] of [...rows].sort()) {
  const dir = n.split('/').slice(0, -1).join('/');
  folders.set(dir, [...(folders.get(dir) ?? []), c]);
  console.log(fmt(n, c));
}
for (const [d, list] of folders) console.log(fmt(`${d}/ (all)`, sum(list)));
console.log(fmt('all', sum([...rows.values()])));
if (args.includes('--survivors')) for (const s of survivors) console.log(s);
