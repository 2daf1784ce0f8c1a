/**
 * Writes onionpost messages (and the bridge's bounces) as RFC 5322 / MIME messages for IMAP, and
 * gives IMAP what it asks of them: the raw bytes, each part's header and body (BODY[1.2.MIME]),
 * ENVELOPE and BODYSTRUCTURE. Parsing of what clients submit is mailparser's job (inbound.ts);
 * writing is ours because it must be deterministic: the same message renders to the same bytes
 * on every FETCH and after a restart (boundaries derive from the message id), as IMAP requires of
 * a message under one UID. No I/O.
 *
 *   single part:  headers + text/plain body
 *   with files:   multipart/mixed ── text/plain
 *                                  └─ one part per file (base64, Content-Disposition: attachment)
 */
import type { ImapValue } from './imap-writer.js';

export const MESSAGE_ID_DOMAIN = 'onionpost.onion';

export interface Mailbox {
  name: string;
  address: string;
}

/** A leaf part to write: its content decoded. */
export interface LeafSpec {
  type: string;
  subtype: string;
  params?: [string, string][];
  disposition?: { type: 'inline' | 'attachment'; filename?: string };
  content: Buffer;
}

export interface MultipartSpec {
  subtype: string;
  params?: [string, string][];
  parts: PartSpec[];
}

export type PartSpec = LeafSpec | MultipartSpec;

/** A written part: its header block (with the blank line) and body, and what BODYSTRUCTURE needs. */
export interface MimePart {
  header: Buffer;
  body: Buffer;
  type: string;
  subtype: string;
  params: [string, string][];
  encoding: string;
  disposition: { type: string; params: [string, string][] } | null;
  children: MimePart[];
}

export interface RenderedMessage {
  raw: Buffer;
  root: MimePart;
  envelope: ImapValue;
  internalDate: number;
  /** For SEARCH: decoded header text and body text. */
  search: { from: string; to: string; subject: string; body: string; headers: string; sentAt: number };
}

// ── header encoding ──────────────────────────────────────────────────────────

const ASCII_PRINTABLE = /^[\x20-\x7e]*$/;

/** RFC 2047 encoded words (UTF-8, base64), each ≤ 75 characters, or the text itself when it is printable ASCII. */
export function encodeWords(text: string): string {
  if (ASCII_PRINTABLE.test(text)) return text;
  const words: string[] = [];
  let chunk = '';
  for (const ch of text) {
    if (Buffer.byteLength(chunk + ch) > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString('base64')}?=`).join(' ');
}

/** A display name as a phrase: encoded words, or a quoted string when it has specials. */
function phrase(name: string): string {
  const clean = name.replace(/[\r\n\t]+/g, ' ').trim();
  if (!clean) return '';
  if (!ASCII_PRINTABLE.test(clean)) return encodeWords(clean);
  return /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(clean) ? clean : `"${clean.replace(/["\\]/g, '\\$&')}"`;
}

export function formatMailbox(m: Mailbox): string {
  const p = phrase(m.name);
  return p ? `${p} <${m.address}>` : `<${m.address}>`;
}

/** Folds a header line at spaces so no line exceeds 78 characters where it can be helped. */
function headerLine(name: string, value: string): string {
  const words = value.replace(/[\r\n]+/g, ' ').split(' ');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const w of words) {
    if (line.length + 1 + w.length > 78 && line.length > name.length + 1) {
      lines.push(line);
      line = ` ${w}`;
    } else line += ` ${w}`;
  }
  lines.push(line);
  return `${lines.join('\r\n')}\r\n`;
}

function paramValue(name: string, value: string): string {
  const v = value.replace(/[\r\n"\\]/g, '_');
  if (ASCII_PRINTABLE.test(v)) return `; ${name}="${v}"`;
  return `; ${name}*=utf-8''${encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

/** A safe media type, or application/octet-stream for anything a sender made up. */
export function safeMediaType(t: string): [string, string] {
  const m = /^([a-z0-9][a-z0-9!#$&^_.+-]{0,62})\/([a-z0-9][a-z0-9!#$&^_.+-]{0,62})$/i.exec(t.trim());
  return m ? [m[1]!.toLowerCase(), m[2]!.toLowerCase()] : ['application', 'octet-stream'];
}

function base64Lines(data: Buffer): Buffer {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return Buffer.from(lines.length ? `${lines.join('\r\n')}\r\n` : '', 'latin1');
}

/** 7bit when the text is ASCII with short lines (readable in any client's source view), else base64. */
function textBody(content: Buffer): { encoding: string; body: Buffer } {
  const s = content.toString('latin1');
  const sevenBit = /^[\x09\x0a\x0d\x20-\x7e]*$/.test(s) && s.split('\n').every((l) => l.length <= 998);
  if (!sevenBit) return { encoding: 'base64', body: base64Lines(content) };
  const normalized = s.replace(/\r?\n/g, '\r\n');
  return { encoding: '7bit', body: Buffer.from(normalized.endsWith('\r\n') || normalized === '' ? normalized : `${normalized}\r\n`, 'latin1') };
}

/** Writes a part. `top` holds the message headers (before the MIME ones) for the root part. */
export function writePart(spec: PartSpec, seed: string, top: [string, string][] = []): MimePart {
  let head = top.map(([n, v]) => headerLine(n, v)).join('');
  if ('parts' in spec) {
    const boundary = `=_op_${seed}`;
    const params: [string, string][] = [...(spec.params ?? []), ['boundary', boundary]];
    const children = spec.parts.map((p, i) => writePart(p, `${seed}.${i + 1}`));
    const chunks: Buffer[] = [];
    for (const c of children) chunks.push(Buffer.from(`--${boundary}\r\n`), c.header, c.body, Buffer.from('\r\n'));
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    head += `Content-Type: multipart/${spec.subtype}${params.map(([k, v]) => paramValue(k, v)).join('')}\r\n`;
    return { header: Buffer.from(`${head}\r\n`), body: Buffer.concat(chunks), type: 'multipart', subtype: spec.subtype, params, encoding: '7bit', disposition: null, children };
  }
  // Files go out as base64 whatever their type, so their bytes come back unchanged.
  const isText = !spec.disposition && (spec.type === 'text' || (spec.type === 'message' && spec.subtype === 'delivery-status'));
  const { encoding, body } = isText ? textBody(spec.content) : { encoding: 'base64', body: base64Lines(spec.content) };
  const params = spec.params ?? [];
  head += `Content-Type: ${spec.type}/${spec.subtype}${params.map(([k, v]) => paramValue(k, v)).join('')}\r\n`;
  head += `Content-Transfer-Encoding: ${encoding}\r\n`;
  let disposition: MimePart['disposition'] = null;
  if (spec.disposition) {
    const dp: [string, string][] = spec.disposition.filename !== undefined ? [['filename', spec.disposition.filename]] : [];
    head += `Content-Disposition: ${spec.disposition.type}${dp.map(([k, v]) => paramValue(k, v)).join('')}\r\n`;
    disposition = { type: spec.disposition.type, params: dp };
  }
  return { header: Buffer.from(`${head}\r\n`, 'utf8'), body, type: spec.type, subtype: spec.subtype, params, encoding, disposition, children: [] };
}

export function rfc2822Date(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

export function messageId(id: string): string {
  return `<${id}@${MESSAGE_ID_DOMAIN}>`;
}

/** The onionpost id in a Message-ID we wrote, or null. */
export function idFromMessageId(v: string): string | null {
  const m = new RegExp(`^<?([0-9a-f]{32})@${MESSAGE_ID_DOMAIN.replace('.', '\\.')}>?$`, 'i').exec(v.trim());
  return m ? m[1]!.toLowerCase() : null;
}

export interface MessageHeaders {
  date: number;
  from: Mailbox;
  to: Mailbox;
  subject: string;
  messageId: string;
  inReplyTo?: string | null;
  references?: string[];
  extra?: [string, string][];
}

/** Writes a whole message from its headers and body spec. */
export function renderMessage(h: MessageHeaders, body: PartSpec, seed: string, internalDate: number, searchBody: string): RenderedMessage {
  const top: [string, string][] = [
    ['Date', rfc2822Date(h.date)],
    ['From', formatMailbox(h.from)],
    ['To', formatMailbox(h.to)],
    ['Subject', encodeWords(h.subject)],
    ['Message-ID', h.messageId],
  ];
  if (h.inReplyTo) top.push(['In-Reply-To', h.inReplyTo]);
  if (h.references?.length) top.push(['References', h.references.join(' ')]);
  top.push(['MIME-Version', '1.0'], ...(h.extra ?? []));
  const root = writePart(body, seed, top);
  const raw = Buffer.concat([root.header, root.body]);
  const addr = (m: Mailbox): ImapValue => {
    const at = m.address.lastIndexOf('@');
    return [[phrase(m.name) ? encodeWords(m.name) : null, null, m.address.slice(0, at), m.address.slice(at + 1)]];
  };
  const envelope: ImapValue = [
    rfc2822Date(h.date), encodeWords(h.subject), addr(h.from), addr(h.from), addr(h.from), addr(h.to), null, null,
    h.inReplyTo ?? null, h.messageId,
  ];
  const headers = root.header.toString('utf8');
  return {
    raw, root, envelope, internalDate,
    search: { from: `${h.from.name} ${h.from.address}`, to: `${h.to.name} ${h.to.address}`, subject: h.subject, body: searchBody, headers, sentAt: h.date },
  };
}

// ── what IMAP asks of a rendered message ─────────────────────────────────────

function lineCount(b: Buffer): number {
  let n = 0;
  for (const c of b) if (c === 0x0a) n++;
  return n;
}

function paramList(params: [string, string][]): ImapValue {
  return params.length ? params.flatMap(([k, v]) => [k.toUpperCase(), v]) : null;
}

/** BODYSTRUCTURE (extensible) or BODY (basic) of a part, RFC 3501 §7.4.2. */
export function bodyStructure(p: MimePart, extensible: boolean): ImapValue {
  if (p.type === 'multipart') {
    const out: ImapValue[] = [...p.children.map((c) => bodyStructure(c, extensible)), p.subtype.toUpperCase()];
    if (extensible) out.push(paramList(p.params), null, null, null);
    return out;
  }
  const out: ImapValue[] = [p.type.toUpperCase(), p.subtype.toUpperCase(), paramList(p.params), null, null, p.encoding.toUpperCase(), p.body.length];
  if (p.type === 'text') out.push(lineCount(p.body));
  if (extensible) out.push(null, p.disposition ? [p.disposition.type.toUpperCase(), paramList(p.disposition.params)] : null, null, null);
  return out;
}

/** The part at a section path ([] = the message), or null. A non-multipart message's part 1 is its body. */
export function partAt(root: MimePart, path: readonly number[]): MimePart | null {
  let p: MimePart = root;
  for (const n of path) {
    if (p.type !== 'multipart') {
      if (n !== 1 || p !== root) return null;
      continue;
    }
    const c = p.children[n - 1];
    if (!c) return null;
    p = c;
  }
  return p;
}

/** The header block restricted to (or excluding) some fields, with its blank line. */
export function headerFields(header: Buffer, fields: readonly string[], not: boolean): Buffer {
  const text = header.toString('latin1').replace(/\r\n\r\n$/, '\r\n');
  const lines = text.split(/\r\n(?![ \t])/).filter(Boolean);
  const want = new Set(fields.map((f) => f.toLowerCase()));
  const kept = lines.filter((l) => want.has(l.slice(0, l.indexOf(':')).trim().toLowerCase()) !== not);
  return Buffer.from(`${kept.map((l) => `${l}\r\n`).join('')}\r\n`, 'latin1');
}

