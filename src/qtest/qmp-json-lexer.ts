/**
 * The byte-level JSON lexer of QMP input, modelled on QEMU 11.1's
 * qobject/json-lexer.c: a table-driven state machine over bytes (not
 * characters), with QEMU's extensions (single-quoted strings, `\'`), its
 * error-recovery state (after a lexical error, bytes are skipped up to a
 * structural character, a control character or 0xFE/0xFF), its 64 MiB token
 * limit, and its token positions (1-based line and column, counted in bytes;
 * a token is stamped with the position saved the last time the lexer went
 * back to its start state, so a token that follows a number or keyword
 * without whitespace carries a column one too far, as in QEMU).
 *
 * Work is constant per byte; the only memory is the current token (at most
 * MAX_TOKEN_SIZE + 1 bytes).
 */

/** QEMU json-lexer.c MAX_TOKEN_SIZE: the longest token (bytes) before it is cut off. */
export const MAX_TOKEN_SIZE = 64 * 1024 * 1024;

/** Token types handed to the sink (QEMU JSONTokenType). */
export const Tok = {
  /** A lexical error: the bytes read so far plus the offending byte. */
  Error: 0,
  LCurly: 16,
  RCurly: 17,
  LSquare: 18,
  RSquare: 19,
  Colon: 20,
  Comma: 21,
  Integer: 22,
  Float: 23,
  Keyword: 24,
  String: 25,
  /** A token cut off at MAX_TOKEN_SIZE (QEMU passes the lexer state as the type). */
  Oversize: 26,
} as const;
/** One token type. */
export type Tok = (typeof Tok)[keyof typeof Tok];

/** Lexer states (QEMU enum json_lexer_state, without interpolation). */
const enum St {
  Recovery = 1,
  DqEscape,
  DqString,
  SqEscape,
  SqString,
  Zero,
  ExpDigits,
  ExpSign,
  ExpE,
  Mantissa,
  MantissaDigits,
  Digits,
  Sign,
  Keyword,
  Start,
}

/** Flag on a transition: the byte is not consumed (the token ended before it). */
const LOOKAHEAD = 0x80;
const STATE_COUNT = St.Start + 1;

/** Receives tokens; `bytes[0, len)` is the token text (valid only during the call). */
export interface TokenSink {
  token(type: number, bytes: Uint8Array, len: number, line: number, column: number): void;
}

function buildTable(): Uint8Array {
  const t = new Uint8Array(STATE_COUNT * 256); // default: Tok.Error
  const set = (s: St, lo: number, hi: number, to: number): void => {
    for (let c = lo; c <= hi; c++) t[s * 256 + c] = to;
  };
  const ch = (c: string): number => c.charCodeAt(0);
  const one = (s: St, c: string, to: number): void => set(s, ch(c), ch(c), to);
  const terminal = (s: St, tok: number): void => set(s, 0, 0xff, tok | LOOKAHEAD);

  // Recovery: skip to a structural character, a control character other than TAB, or 0xFE/0xFF.
  set(St.Recovery, 0x00, 0x1f, St.Start | LOOKAHEAD);
  set(St.Recovery, 0x20, 0xfd, St.Recovery);
  set(St.Recovery, 0xfe, 0xff, St.Start | LOOKAHEAD);
  one(St.Recovery, '\t', St.Recovery);
  for (const c of '[]{}:,') one(St.Recovery, c, St.Start | LOOKAHEAD);

  for (const [esc, str, quote] of [[St.DqEscape, St.DqString, '"'], [St.SqEscape, St.SqString, "'"]] as const) {
    set(esc, 0x20, 0xfd, str);
    set(str, 0x20, 0xfd, str);
    one(str, '\\', esc);
    one(str, quote, Tok.String);
  }

  terminal(St.Zero, Tok.Integer);
  set(St.Zero, ch('0'), ch('9'), Tok.Error);
  one(St.Zero, '.', St.Mantissa);

  terminal(St.ExpDigits, Tok.Float);
  set(St.ExpDigits, ch('0'), ch('9'), St.ExpDigits);
  set(St.ExpSign, ch('0'), ch('9'), St.ExpDigits);
  one(St.ExpE, '-', St.ExpSign);
  one(St.ExpE, '+', St.ExpSign);
  set(St.ExpE, ch('0'), ch('9'), St.ExpDigits);

  terminal(St.MantissaDigits, Tok.Float);
  set(St.MantissaDigits, ch('0'), ch('9'), St.MantissaDigits);
  one(St.MantissaDigits, 'e', St.ExpE);
  one(St.MantissaDigits, 'E', St.ExpE);
  set(St.Mantissa, ch('0'), ch('9'), St.MantissaDigits);

  terminal(St.Digits, Tok.Integer);
  set(St.Digits, ch('0'), ch('9'), St.Digits);
  one(St.Digits, 'e', St.ExpE);
  one(St.Digits, 'E', St.ExpE);
  one(St.Digits, '.', St.Mantissa);
  one(St.Sign, '0', St.Zero);
  set(St.Sign, ch('1'), ch('9'), St.Digits);

  terminal(St.Keyword, Tok.Keyword);
  set(St.Keyword, ch('a'), ch('z'), St.Keyword);

  one(St.Start, '"', St.DqString);
  one(St.Start, "'", St.SqString);
  one(St.Start, '0', St.Zero);
  set(St.Start, ch('1'), ch('9'), St.Digits);
  one(St.Start, '-', St.Sign);
  one(St.Start, '{', Tok.LCurly);
  one(St.Start, '}', Tok.RCurly);
  one(St.Start, '[', Tok.LSquare);
  one(St.Start, ']', Tok.RSquare);
  one(St.Start, ',', Tok.Comma);
  one(St.Start, ':', Tok.Colon);
  set(St.Start, ch('a'), ch('z'), St.Keyword);
  for (const c of ' \t\r\n') one(St.Start, c, St.Start);
  return t;
}

const TABLE = buildTable();
const NEWLINE = 0x0a;
const DOUBLE_QUOTE = 0x22;
const SINGLE_QUOTE = 0x27;
const BACKSLASH = 0x5c;
const INITIAL_TOKEN_CAPACITY = 64;

/** QEMU's JSON lexer over a byte stream. */
export class JsonLexer {
  private state: number = St.Start;
  private token = new Uint8Array(INITIAL_TOKEN_CAPACITY);
  private len = 0;
  /** Position of the byte about to be read. */
  private curLine = 1;
  private curColumn = 1;
  /** Position stamped on the next token. */
  private line = 1;
  private column = 1;

  constructor(private readonly sink: TokenSink) {}

  /** Back to the initial state (a new connection). */
  reset(): void {
    this.state = St.Start;
    this.len = 0;
    this.curLine = this.line = 1;
    this.curColumn = this.column = 1;
    if (this.token.length > INITIAL_TOKEN_CAPACITY) this.token = new Uint8Array(INITIAL_TOKEN_CAPACITY);
  }

  /** Lexes `bytes[start, end)`. */
  feed(bytes: Uint8Array, start = 0, end = bytes.length): void {
    for (let i = start; i < end; ) {
      const run = this.stringRun(bytes, i, end);
      if (run > 0) {
        this.appendRun(bytes, i, run);
        this.curColumn += run;
        i += run;
        this.checkSize();
      } else this.feedByte(bytes[i++]!);
    }
  }

  /**
   * Inside a string, the bytes that only extend it (no quote, backslash,
   * control or impossible byte; so no newline) are taken in one run, capped
   * so that the size check still fires at the same byte as per-byte lexing.
   */
  private stringRun(bytes: Uint8Array, i: number, end: number): number {
    if (this.state !== St.DqString && this.state !== St.SqString) return 0;
    const quote = this.state === St.DqString ? DOUBLE_QUOTE : SINGLE_QUOTE;
    const cap = Math.min(end, i + MAX_TOKEN_SIZE + 1 - this.len);
    let j = i;
    while (j < cap) {
      const c = bytes[j]!;
      if (c < 0x20 || c > 0xfd || c === BACKSLASH || c === quote) break;
      j++;
    }
    return j - i;
  }

  private appendRun(bytes: Uint8Array, start: number, n: number): void {
    if (this.len + n > this.token.length) {
      let size = this.token.length;
      while (size < this.len + n) size *= 2;
      const grown = new Uint8Array(Math.min(size, MAX_TOKEN_SIZE + 2));
      grown.set(this.token.subarray(0, this.len));
      this.token = grown;
    }
    this.token.set(bytes.subarray(start, start + n), this.len);
    this.len += n;
  }

  private checkSize(): void {
    if (this.len > MAX_TOKEN_SIZE) {
      this.emit(Tok.Oversize);
      this.len = 0;
      this.state = St.Start;
    }
  }

  private append(c: number): void {
    if (this.len === this.token.length) {
      const grown = new Uint8Array(Math.min(this.token.length * 2, MAX_TOKEN_SIZE + 2));
      grown.set(this.token);
      this.token = grown;
    }
    this.token[this.len++] = c;
  }

  private emit(type: number): void {
    this.sink.token(type, this.token, this.len, this.line, this.column);
  }

  private feedByte(c: number): void {
    this.curColumn++;
    if (c === NEWLINE) {
      this.curColumn = 1;
      this.curLine++;
    }
    let consumed = false;
    while (!consumed) {
      const next = TABLE[this.state * 256 + c]!;
      consumed = (next & LOOKAHEAD) === 0;
      let to = next & ~LOOKAHEAD;
      if (consumed) this.append(c);
      if (to >= Tok.LCurly || to === St.Start) {
        if (to !== St.Start) this.emit(to);
        this.len = 0;
        to = St.Start;
        this.line = this.curLine;
        this.column = this.curColumn;
      } else if (to === Tok.Error) {
        this.emit(Tok.Error);
        this.len = 0;
        to = St.Recovery;
      } else if (to === St.Recovery) {
        this.len = 0;
      }
      this.state = to;
    }
    this.checkSize();
  }
}
