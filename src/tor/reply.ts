/**
 * The control protocol's reply grammar, as a byte parser with no I/O (control-spec §2.3, §4.1).
 *
 * Wire format, one line each, CRLF terminated:
 *
 *   250-key=value        a middle line of a multi-line reply         sep '-'
 *   250+key=             a middle line followed by a data block      sep '+'
 *   line one             ... data lines; a line starting with '.' is sent with one extra '.'
 *   .                    ... the data block ends with a line holding only '.'
 *   250 OK               the final line: it ends the reply           sep ' '
 *
 * Replies to commands carry 2xx/4xx/5xx codes and arrive in command order. Asynchronous events carry
 * 650 and may arrive between replies; they are multi-line too (`650-…`, `650+…`, `650 OK`). They are
 * assembled separately, so an event that started mid-reply cannot corrupt the reply being built.
 *
 * `ReplyParser.feed(bytes)` returns every reply completed by those bytes, in arrival order, and
 * throws TorProtocolError on a malformed line (the connection is then unusable).
 */
import { TorProtocolError } from './errors.js';

export type ReplySep = ' ' | '-' | '+';

export interface ReplyLine {
  /** Three-digit status of this line (250, 650, 552, …). */
  status: number;
  sep: ReplySep;
  /** Everything after the status and separator, without CRLF. */
  text: string;
  /** For sep '+': the data block, dot-unstuffed, lines joined with '\n' (no trailing newline). */
  data?: string;
}

export interface Reply {
  /** Status of the final line: the reply's outcome. */
  status: number;
  lines: ReplyLine[];
}

export interface ReplyParserOptions {
  /** Longest single line accepted, bytes. Default 1 MiB. */
  maxLineBytes?: number;
  /** Largest reply (all lines and data together) accepted, bytes. Default 32 MiB. */
  maxReplyBytes?: number;
}

interface Partial {
  lines: ReplyLine[];
  bytes: number;
  /** Set while inside a '+' data block: the line the block belongs to and its lines so far. */
  data?: { line: ReplyLine; chunks: string[] };
}

const LINE_RE = /^([0-9]{3})([ +-])(.*)$/s;

export class ReplyParser {
  readonly #maxLine: number;
  readonly #maxReply: number;
  #buf: Buffer = Buffer.alloc(0);
  #sync: Partial | null = null;
  #async: Partial | null = null;
  /** Which partial a data block is being read into (data lines carry no status to tell). */
  #inData: 'sync' | 'async' | null = null;
  #broken = false;

  constructor(opts: ReplyParserOptions = {}) {
    this.#maxLine = opts.maxLineBytes ?? 1024 * 1024;
    this.#maxReply = opts.maxReplyBytes ?? 32 * 1024 * 1024;
  }

  /** Consumes bytes; returns the replies they complete (commands' replies and events, in order). */
  feed(chunk: Uint8Array | string): Reply[] {
    if (this.#broken) throw new TorProtocolError('parser already failed on malformed input');
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#buf = this.#buf.length === 0 ? bytes : Buffer.concat([this.#buf, bytes]);
    const out: Reply[] = [];
    try {
      let start = 0;
      for (;;) {
        const nl = this.#buf.indexOf(0x0a, start);
        if (nl < 0) break;
        let end = nl;
        if (end > start && this.#buf[end - 1] === 0x0d) end--;
        if (end - start > this.#maxLine) throw new TorProtocolError(`reply line longer than ${this.#maxLine} bytes`);
        const line = this.#buf.toString('utf8', start, end);
        const size = nl + 1 - start;
        start = nl + 1;
        const done = this.#line(line, size);
        if (done) out.push(done);
      }
      this.#buf = this.#buf.subarray(start);
      if (this.#buf.length > this.#maxLine) throw new TorProtocolError(`reply line longer than ${this.#maxLine} bytes`);
    } catch (err) {
      this.#broken = true;
      throw err;
    }
    return out;
  }

  /** True when no partial reply or partial line is buffered. */
  get idle(): boolean {
    return this.#buf.length === 0 && this.#sync === null && this.#async === null;
  }

  #line(line: string, size: number): Reply | null {
    if (this.#inData) {
      const p = (this.#inData === 'sync' ? this.#sync : this.#async)!;
      const d = p.data!;
      this.#count(p, size);
      if (line === '.') {
        d.line.data = d.chunks.join('\n');
        delete p.data;
        this.#inData = null;
        return null;
      }
      d.chunks.push(line.startsWith('.') ? line.slice(1) : line);
      return null;
    }
    const m = LINE_RE.exec(line);
    if (!m) throw new TorProtocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
    const status = Number(m[1]);
    const sep = m[2] as ReplySep;
    const parsed: ReplyLine = { status, sep, text: m[3]! };
    const kind = status >= 600 && status < 700 ? 'async' : 'sync';
    let p = kind === 'sync' ? this.#sync : this.#async;
    if (!p) {
      p = { lines: [], bytes: 0 };
      if (kind === 'sync') this.#sync = p;
      else this.#async = p;
    }
    this.#count(p, size);
    p.lines.push(parsed);
    if (sep === '+') {
      p.data = { line: parsed, chunks: [] };
      this.#inData = kind;
      return null;
    }
    if (sep === '-') return null;
    if (kind === 'sync') this.#sync = null;
    else this.#async = null;
    return { status, lines: p.lines };
  }

  #count(p: Partial, size: number): void {
    p.bytes += size;
    if (p.bytes > this.#maxReply) throw new TorProtocolError(`reply larger than ${this.#maxReply} bytes`);
  }
}

/** True for asynchronous event replies (6xx). */
export function isEvent(reply: Reply): boolean {
  return reply.status >= 600 && reply.status < 700;
}

/**
 * Splits reply text of the form `WORD KEY=VALUE KEY="quoted \"value\""` into positional words and
 * keyword arguments (control-spec §2.1). Values in double quotes are unescaped (C escapes).
 * Throws TorProtocolError on an unterminated quote.
 */
export function parseArgs(text: string): { positional: string[]; kv: Map<string, string> } {
  const positional: string[] = [];
  const kv = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ') i++;
    if (i >= text.length) break;
    let key: string | null = null;
    let j = i;
    while (j < text.length && text[j] !== ' ' && text[j] !== '=' && text[j] !== '"') j++;
    if (text[j] === '=') {
      key = text.slice(i, j);
      i = j + 1;
    }
    let value: string;
    if (text[i] === '"') {
      const q = readQuoted(text, i);
      value = q.value;
      i = q.end;
    } else {
      let k = i;
      while (k < text.length && text[k] !== ' ') k++;
      value = text.slice(i, k);
      i = k;
    }
    if (key === null) positional.push(value);
    else kv.set(key, value);
  }
  return { positional, kv };
}

/** Reads a QuotedString starting at text[start] === '"'; returns the unescaped value and the index after it. */
export function readQuoted(text: string, start: number): { value: string; end: number } {
  if (text[start] !== '"') throw new TorProtocolError('expected a quoted string');
  const bytes: number[] = [];
  let i = start + 1;
  for (;;) {
    if (i >= text.length) throw new TorProtocolError('unterminated quoted string');
    const c = text[i]!;
    if (c === '"') return { value: Buffer.from(bytes).toString('utf8'), end: i + 1 };
    if (c === '\\') {
      const n = text[i + 1];
      if (n === undefined) throw new TorProtocolError('unterminated escape in quoted string');
      const simple: Record<string, number> = { n: 10, r: 13, t: 9, '\\': 92, '"': 34, "'": 39 };
      if (n in simple) {
        bytes.push(simple[n]!);
        i += 2;
        continue;
      }
      const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4));
      if (oct) {
        bytes.push(parseInt(oct[0], 8) & 0xff);
        i += 1 + oct[0].length;
        continue;
      }
      bytes.push(n.charCodeAt(0));
      i += 2;
      continue;
    }
    for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    i++;
  }
}

/**
 * GETINFO's answer as a map key → value: `250-key=value` lines, and `250+key=` lines whose value is
 * their data block. The final `250 OK` is not part of the map.
 */
export function parseGetInfo(reply: Reply): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of reply.lines) {
    if (line.sep === ' ' && line.text === 'OK') continue;
    const eq = line.text.indexOf('=');
    if (eq < 0) throw new TorProtocolError(`GETINFO line without '=': ${JSON.stringify(line.text.slice(0, 80))}`);
    const key = line.text.slice(0, eq);
    out.set(key, line.sep === '+' ? (line.data ?? '') : line.text.slice(eq + 1));
  }
  return out;
}
