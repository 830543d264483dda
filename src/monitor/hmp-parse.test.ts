import { describe, expect, it } from 'vitest';
import { parseHmpLine, type HmpInfoSpec } from './hmp-parse.js';

const INFO = new Map<string, HmpInfoSpec>([
  ['mtree', { flags: ['f', 'd', 'o', 'D'] }],
  ['pci', { flags: [] }],
  ['qtree', { flags: ['b'] }],
]);
const HELP = 'HELP\n';
const parse = (line: string) => parseHmpLine(line, INFO, HELP);
const text = (line: string): string => {
  const p = parse(line);
  if (p.kind !== 'text') throw new Error(`${line}: expected text, got ${p.name}`);
  return p.text;
};
const flags = (line: string): string[] => {
  const p = parse(line);
  if (p.kind !== 'run') throw new Error(`${line}: ${p.text}`);
  return [...p.flags].sort();
};

describe('parseHmpLine', () => {
  it('answers nothing for an empty or blank line', () => {
    expect(text('')).toBe('');
    expect(text(' \t ')).toBe('');
  });

  it('names unknown commands with the text before them, up to a blank or a slash', () => {
    expect(text('foo')).toBe("unknown command: 'foo'\n");
    expect(text('  foo bar')).toBe("unknown command: '  foo'\n");
    expect(text('foo/x')).toBe("unknown command: 'foo'\n");
    expect(text('INFO pci')).toBe("unknown command: 'INFO'\n");
    expect(text('info  nope x')).toBe("unknown command: 'info  nope'\n");
    expect(text('info p')).toBe("unknown command: 'info p'\n");
  });

  it('prints the help list for info alone', () => {
    expect(text('info')).toBe(HELP);
    expect(text('  info  ')).toBe(HELP);
  });

  it('runs known sub-commands with their flags', () => {
    expect(parse('info pci')).toEqual({ kind: 'run', name: 'pci', flags: new Set() });
    expect(flags('info\tpci\t')).toEqual([]);
    expect(flags('info mtree -f')).toEqual(['f']);
    expect(flags('info mtree -f -D')).toEqual(['D', 'f']);
    expect(flags('info mtree -f-d')).toEqual(['d', 'f']);
    expect(flags('info mtree -d')).toEqual(['d']);
    expect(flags('info qtree -b')).toEqual(['b']);
  });

  it('takes flags in declaration order only', () => {
    const tail = 'Try "help info mtree" for more information\n';
    expect(text('info mtree -D -f')).toBe(`mtree: extraneous characters at the end of line\n${tail}`);
    expect(text('info mtree -o -f')).toBe(`mtree: unsupported option -f\n${tail}`);
    expect(text('info mtree -f -f')).toBe(`mtree: unsupported option -f\n${tail}`);
    expect(text('info mtree -ff')).toBe(`mtree: extraneous characters at the end of line\n${tail}`);
  });

  it('reports unsupported options and extra words with the help hint', () => {
    expect(text('info mtree -z')).toBe('mtree: unsupported option -z\nTry "help info mtree" for more information\n');
    expect(text('info mtree - f')).toBe('mtree: unsupported option - \nTry "help info mtree" for more information\n');
    expect(text('info qtree -x')).toBe('qtree: unsupported option -x\nTry "help info qtree" for more information\n');
    expect(text('info qtree -b -x')).toBe('qtree: extraneous characters at the end of line\nTry "help info qtree" for more information\n');
    expect(text('  info   pci  x')).toBe('pci: extraneous characters at the end of line\nTry "help   info   pci" for more information\n');
    expect(text('info pci/x')).toBe('pci: extraneous characters at the end of line\nTry "help info pci" for more information\n');
  });

  it('loses the newline after a dash at the very end (QEMU prints a NUL there)', () => {
    expect(text('info mtree -')).toBe('mtree: unsupported option -Try "help info mtree" for more information\n');
    expect(text('info qtree -')).toBe('qtree: unsupported option -Try "help info qtree" for more information\n');
  });
});
