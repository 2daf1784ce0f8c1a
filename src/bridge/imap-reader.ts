/**
 * IMAP4rev1 command reader (RFC 3501 §2.2, §9): bytes from a client in, commands out. No I/O: the
 * connection pushes what it reads and pulls events one at a time, so it can switch the reader to
 * line mode (IDLE's DONE, AUTHENTICATE's responses) between two events of the same chunk.
 *
 *   command  = tag SP name [SP arg *(SP arg)] CRLF
 *   arg      = atom | quoted | literal | "(" [arg *(SP arg)] ")" | NIL
 *   literal  = "{" n ["+"] "}" CRLF <n octets>      ("+" = LITERAL+, RFC 7888: no continuation)
 *
 * An atom may contain a bracketed section with spaces (`BODY[HEADER.FIELDS (FROM TO)]<0.512>`),
 * kept as one atom for the FETCH item parser. Quoted strings and literals are returned as bytes.
 *
 * Limits (every one an option, defaults in src/limits.ts): the length of one line, of one literal,
 * and of a whole command. A line or a non-synchronizing literal over a limit is fatal (the client
 * has already sent the bytes); a synchronizing literal over a limit is refused before the client
 * sends it, and the connection goes on.
 */

export interface ImapReaderLimits {
  /** Longest command line without its literals, bytes. */
  maxLineBytes: number;
  /** Largest single literal (APPEND's message), bytes. */
  maxLiteralBytes: number;
  /** Largest command, lines and literals together, bytes. */
  maxCommandBytes: number;
}

export type ImapToken =
  | { type: 'atom'; value: string }
  | { type: 'string'; value: Buffer }
  | { type: 'list'; items: ImapToken[] }
  | { type: 'nil' };

export interface ImapCommand {
  tag: string;
  /** Upper case, e.g. FETCH. A UID command is `UID` with the sub-command as its first argument. */
  name: string;
  args: ImapToken[];
}

export type ReaderEvent =
  | { type: 'command'; command: ImapCommand }
  /** A raw line, in line mode. */
  | { type: 'line'; text: string }
  /** Send `+ <text>`: the client waits for it before sending a synchronizing literal. */
  | { type: 'continue'; text: string }
  /** Answer `<tag or *> BAD <message>`; when fatal, close the connection after it. */
  | { type: 'bad'; tag: string | null; message: string; fatal: boolean };

export class ImapSyntaxError extends Error {}

const LITERAL_AT_END = /\{(\d{1,10})(\+?)\}$/;
/** RFC 3501 tag: any ASTRING-CHAR but "+". */
const TAG = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c\x7e]{1,64}$/;
const LITERAL_MARK = '\u0000';

export class ImapReader {
  readonly #limits: ImapReaderLimits;
  #buf: Buffer = Buffer.alloc(0);
  #segments: string[] = [];
  #literals: Buffer[] = [];
  #literal: Buffer[] | null = null;
  #literalLeft = 0;
  /** Bytes of the command so far, lines and literals. */
  #commandBytes = 0;
  #dead = false;
  /** When true, the next complete line is returned as a `line` event, not parsed. */
  lineMode = false;

  constructor(limits: ImapReaderLimits) {
    this.#limits = limits;
  }

  push(chunk: Uint8Array): void {
    if (this.#dead) return;
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
  }

  /** Bytes received but not consumed yet (a bound for the connection's own buffer check). */
  get buffered(): number {
    return this.#buf.length;
  }

  /** The next event, or null when more bytes are needed. */
  next(): ReaderEvent | null {
    while (!this.#dead) {
      if (this.#literal) {
        if (this.#buf.length === 0) return null;
        const take = Math.min(this.#literalLeft, this.#buf.length);
        this.#literal.push(this.#buf.subarray(0, take));
        this.#buf = this.#buf.subarray(take);
        this.#literalLeft -= take;
        if (this.#literalLeft > 0) return null;
        this.#literals.push(Buffer.concat(this.#literal));
        this.#literal = null;
        continue;
      }
      const nl = this.#buf.indexOf(0x0a);
      if (nl < 0) {
        if (this.#buf.length > this.#limits.maxLineBytes) return this.#fatal('line too long');
        return null;
      }
      if (nl > this.#limits.maxLineBytes) return this.#fatal('line too long');
      const line = this.#buf.subarray(0, nl > 0 && this.#buf[nl - 1] === 0x0d ? nl - 1 : nl).toString('latin1');
      this.#buf = this.#buf.subarray(nl + 1);
      if (this.lineMode && this.#segments.length === 0) {
        this.lineMode = false;
        return { type: 'line', text: line };
      }
      if (line.includes(LITERAL_MARK)) {
        this.#reset();
        return { type: 'bad', tag: null, message: 'NUL in command', fatal: false };
      }
      this.#commandBytes += line.length + 2;
      const m = LITERAL_AT_END.exec(line);
      if (!m) {
        this.#segments.push(line);
        return this.#finish();
      }
      const n = Number(m[1]);
      const sync = m[2] !== '+';
      this.#segments.push(line.slice(0, m.index) + LITERAL_MARK);
      this.#commandBytes += n;
      if (n > this.#limits.maxLiteralBytes || this.#commandBytes > this.#limits.maxCommandBytes) {
        const tag = this.#tagSoFar();
        if (!sync) return this.#fatal('literal too large', tag);
        this.#reset();
        return { type: 'bad', tag, message: `literal of ${n} bytes is over the limit`, fatal: false };
      }
      this.#literal = [];
      this.#literalLeft = n;
      if (n === 0) {
        this.#literals.push(Buffer.alloc(0));
        this.#literal = null;
      }
      if (sync) return { type: 'continue', text: 'go ahead' };
    }
    return null;
  }

  #tagSoFar(): string | null {
    const first = this.#segments[0] ?? this.#buf.subarray(0, 65).toString('latin1');
    const tag = first.split(' ', 1)[0] ?? '';
    return TAG.test(tag) ? tag : null;
  }

  #fatal(message: string, tag: string | null = this.#tagSoFar()): ReaderEvent {
    this.#dead = true;
    this.#buf = Buffer.alloc(0);
    return { type: 'bad', tag, message, fatal: true };
  }

  #reset(): void {
    this.#segments = [];
    this.#literals = [];
    this.#commandBytes = 0;
  }

  #finish(): ReaderEvent {
    const text = this.#segments.join('');
    const literals = this.#literals;
    const tag = this.#tagSoFar();
    this.#reset();
    try {
      return { type: 'command', command: parseCommand(text, literals) };
    } catch (err) {
      if (!(err instanceof ImapSyntaxError)) throw err;
      return { type: 'bad', tag, message: err.message, fatal: false };
    }
  }
}

/** Parses one assembled command; `text` marks each literal's place with NUL. Throws ImapSyntaxError. */
export function parseCommand(text: string, literals: Buffer[] = []): ImapCommand {
  const sp = text.indexOf(' ');
  const tag = sp < 0 ? text : text.slice(0, sp);
  if (!TAG.test(tag)) throw new ImapSyntaxError('missing or invalid tag');
  if (sp < 0) throw new ImapSyntaxError('missing command');
  const tokens = tokenize(text.slice(sp + 1), literals);
  const first = tokens.shift();
  if (!first || first.type !== 'atom') throw new ImapSyntaxError('missing command');
  return { tag, name: first.value.toUpperCase(), args: tokens };
}

/** Splits command arguments into tokens. Throws ImapSyntaxError. */
export function tokenize(text: string, literals: Buffer[] = []): ImapToken[] {
  let i = 0;
  let lit = 0;
  const stack: ImapToken[][] = [[]];
  const top = () => stack[stack.length - 1]!;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ') {
      i++;
      continue;
    }
    if (c === '(') {
      const list: ImapToken = { type: 'list', items: [] };
      top().push(list);
      stack.push(list.items);
      if (stack.length > 32) throw new ImapSyntaxError('lists nested too deeply');
      i++;
    } else if (c === ')') {
      if (stack.length === 1) throw new ImapSyntaxError('unbalanced ")"');
      stack.pop();
      i++;
    } else if (c === '"') {
      const bytes: number[] = [];
      i++;
      for (;;) {
        if (i >= text.length) throw new ImapSyntaxError('unterminated quoted string');
        const ch = text.charCodeAt(i);
        if (ch === 0x22) break;
        if (ch === 0x5c) {
          const next = text.charCodeAt(i + 1);
          if (next !== 0x22 && next !== 0x5c) throw new ImapSyntaxError('bad escape in quoted string');
          bytes.push(next);
          i += 2;
          continue;
        }
        bytes.push(ch);
        i++;
      }
      i++;
      top().push({ type: 'string', value: Buffer.from(bytes) });
    } else if (c === LITERAL_MARK) {
      const value = literals[lit++];
      if (!value) throw new ImapSyntaxError('literal missing');
      top().push({ type: 'string', value });
      i++;
    } else {
      const start = i;
      let depth = 0;
      while (i < text.length) {
        const ch = text[i]!;
        if (ch === '[') depth++;
        else if (ch === ']') depth = Math.max(0, depth - 1);
        else if (depth === 0 && (ch === ' ' || ch === '(' || ch === ')' || ch === '"' || ch === LITERAL_MARK)) break;
        i++;
      }
      if (depth !== 0) throw new ImapSyntaxError('unbalanced "["');
      const value = text.slice(start, i);
      const bad = /[\x00-\x1f\x7f{]/.exec(value);
      if (bad) throw new ImapSyntaxError('bad character in atom');
      top().push(value.toUpperCase() === 'NIL' ? { type: 'nil' } : { type: 'atom', value });
    }
  }
  if (stack.length !== 1) throw new ImapSyntaxError('unbalanced "("');
  return stack[0]!;
}

/** The text of an atom or string argument (astring), or null for anything else. */
export function astring(t: ImapToken | undefined): string | null {
  if (!t) return null;
  if (t.type === 'atom') return t.value;
  if (t.type === 'string') return t.value.toString('utf8');
  return null;
}
