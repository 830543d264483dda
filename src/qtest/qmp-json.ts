/**
 * The streaming QMP input reader, modelled on QEMU 11.1's json-streamer.c:
 * bytes go through the lexer (qmp-json-lexer.ts), every token goes straight
 * into the push parser (qmp-json-parser.ts), and each message ends as either
 * a value or one error string worded as QEMU words it.  Objects may span
 * lines and several may share one; nothing is re-scanned.
 *
 * The streamer also counts braces and brackets to find message boundaries
 * for error recovery, and enforces QEMU's per-message limits:
 * - more than MAX_TOKEN_SIZE bytes of tokens: `JSON token size limit exceeded`;
 * - more than MAX_TOKEN_COUNT tokens: `JSON token count limit exceeded`;
 * - more than MAX_NESTING open braces and brackets: `JSON nesting depth limit exceeded`.
 * After an error, tokens are swallowed until the counts balance (or a count
 * goes negative); a lexical error (a stray byte) always starts afresh, and is
 * reported only when no earlier error is being recovered from.
 *
 * Bounds: constant work per input byte plus the work of building the value;
 * memory is the message under construction, at most MAX_TOKEN_SIZE bytes of
 * token text in MAX_TOKEN_COUNT tokens.
 */
import { JsonLexer, MAX_TOKEN_SIZE, Tok, type TokenSink } from './qmp-json-lexer.js';
import { JsonPushParser } from './qmp-json-parser.js';
import type { QValue } from './qmp-qobject.js';

export { MAX_TOKEN_SIZE } from './qmp-json-lexer.js';

/** QEMU json-streamer.c MAX_TOKEN_COUNT: tokens per message. */
export const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
/** QEMU json-streamer.c MAX_NESTING: open braces plus brackets. */
export const MAX_NESTING = 1024;

/** QEMU's words for the three limits. */
export const LIMIT_ERRORS = {
  size: 'JSON token size limit exceeded',
  count: 'JSON token count limit exceeded',
  nesting: 'JSON nesting depth limit exceeded',
} as const;

/** Receives each message: a parsed value, or QEMU's error text for it. */
export interface QmpJsonHandler {
  value(v: QValue): void;
  error(desc: string): void;
}

const encoder = new TextEncoder();

/** The reader of one QMP connection. */
export class QmpJsonReader implements TokenSink {
  private readonly lexer = new JsonLexer(this);
  private readonly parser = new JsonPushParser();
  private braces = 0;
  private brackets = 0;
  private tokenCount = 0;
  private tokenSize = 0;
  private recovering = false;

  constructor(private readonly handler: QmpJsonHandler) {}

  /** Feeds input: bytes, or text (sent as its UTF-8 encoding). */
  feed(chunk: Uint8Array | string): void {
    this.lexer.feed(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
  }

  /** Forgets everything (QEMU re-initialises its parser when a client disconnects). */
  reset(): void {
    this.lexer.reset();
    this.endMessage();
  }

  /** TokenSink: one token from the lexer. */
  token(type: number, bytes: Uint8Array, len: number, line: number, column: number): void {
    this.tokenSize += len;
    this.tokenCount++;
    if (type === Tok.LCurly) this.braces++;
    else if (type === Tok.RCurly) this.braces--;
    else if (type === Tok.LSquare) this.brackets++;
    else if (type === Tok.RSquare) this.brackets--;

    if (!this.recovering) {
      let error: string | null = null;
      if (this.tokenSize > MAX_TOKEN_SIZE) error = LIMIT_ERRORS.size;
      else if (this.tokenCount > MAX_TOKEN_COUNT) error = LIMIT_ERRORS.count;
      else if (this.braces + this.brackets > MAX_NESTING) error = LIMIT_ERRORS.nesting;
      else {
        const step = this.parser.feed(type, bytes, len, line, column);
        if (step && 'value' in step) this.handler.value(step.value);
        else if (step) error = step.error;
      }
      if (error !== null) {
        this.handler.error(error);
        this.recovering = true;
      }
    }
    const balanced = this.braces === 0 && this.brackets === 0;
    if (balanced || this.braces < 0 || this.brackets < 0 || type === Tok.Error) this.endMessage();
  }

  private endMessage(): void {
    this.braces = this.brackets = 0;
    this.tokenCount = this.tokenSize = 0;
    this.recovering = false;
    this.parser.reset();
  }
}
