/**
 * The argument grammars of IMAP4rev1 commands (RFC 3501 §6.4, §9): sequence sets, FETCH items with
 * body sections, SEARCH keys, flag lists and dates. Pure functions over the reader's tokens; each
 * throws ImapSyntaxError (answered with BAD) on input it does not accept.
 */
import { ImapSyntaxError, astring, type ImapToken } from './imap-reader.js';

// ── sequence sets ────────────────────────────────────────────────────────────

/** Inclusive ranges; `*` already replaced by the largest number in the mailbox. */
export type SequenceSet = readonly (readonly [number, number])[];

/** `1,3:5,7:*`. `max` stands for `*` (for an empty mailbox, 0: then `*` matches nothing real). */
export function parseSequenceSet(s: string, max: number): SequenceSet {
  if (!/^[0-9:*,]+$/.test(s)) throw new ImapSyntaxError(`bad sequence set "${s}"`);
  const parts = s.split(',');
  if (parts.length > 1000) throw new ImapSyntaxError('sequence set too long');
  return parts.map((p) => {
    const [a, b, extra] = p.split(':');
    if (extra !== undefined || !a) throw new ImapSyntaxError(`bad sequence range "${p}"`);
    const n = (x: string) => {
      if (x === '*') return max;
      if (!/^[1-9][0-9]{0,9}$/.test(x)) throw new ImapSyntaxError(`bad sequence number "${x}"`);
      return Number(x);
    };
    const lo = n(a);
    const hi = b === undefined ? lo : n(b);
    return [Math.min(lo, hi), Math.max(lo, hi)] as const;
  });
}

export function inSet(set: SequenceSet, n: number): boolean {
  return set.some(([lo, hi]) => n >= lo && n <= hi);
}

// ── FETCH items ──────────────────────────────────────────────────────────────

export interface BodySection {
  /** MIME part path, [] for the whole message. */
  part: number[];
  /** What of it: the whole part, its header, its text, the MIME header of a part, or some header fields. */
  spec: '' | 'HEADER' | 'TEXT' | 'MIME' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT';
  fields: string[];
}

export type FetchItem =
  | { kind: 'FLAGS' | 'UID' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' }
  | { kind: 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' }
  | { kind: 'section'; peek: boolean; section: BodySection; partial: { start: number; length: number } | null; label: string };

const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};
const SIMPLE = new Set(['FLAGS', 'UID', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT']);

/** The FETCH data items: a macro, one item, or a parenthesized list. */
export function parseFetchItems(t: ImapToken | undefined): FetchItem[] {
  if (!t) throw new ImapSyntaxError('FETCH needs data items');
  if (t.type === 'atom' && MACROS[t.value.toUpperCase()]) return MACROS[t.value.toUpperCase()]!.map((k) => parseFetchItem(k));
  const atoms = t.type === 'list' ? t.items : [t];
  if (atoms.length === 0) throw new ImapSyntaxError('empty FETCH item list');
  return atoms.map((a) => {
    if (a.type !== 'atom') throw new ImapSyntaxError('FETCH item must be an atom');
    return parseFetchItem(a.value);
  });
}

export function parseFetchItem(raw: string): FetchItem {
  const up = raw.toUpperCase();
  if (SIMPLE.has(up)) return { kind: up } as FetchItem;
  const m = /^(BODY(?:\.PEEK)?|BINARY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$/i.exec(raw);
  if (!m || m[1]!.toUpperCase().startsWith('BINARY')) throw new ImapSyntaxError(`unknown FETCH item ${raw.slice(0, 40)}`);
  const section = parseSection(m[2]!);
  const partial = m[3] !== undefined ? { start: Number(m[3]), length: Number(m[4]) } : null;
  const label = `BODY[${formatSection(section)}]${partial ? `<${partial.start}>` : ''}`;
  return { kind: 'section', peek: m[1]!.toUpperCase() === 'BODY.PEEK', section, partial, label };
}

function parseSection(s: string): BodySection {
  const m = /^((?:[1-9][0-9]{0,4}\.?)*)(.*)$/.exec(s);
  const numbers = m![1]!.replace(/\.$/, '');
  const part = numbers ? numbers.split('.').map(Number) : [];
  if (part.length > 16) throw new ImapSyntaxError('section nested too deeply');
  const rest = m![2]!.trim();
  const up = rest.toUpperCase();
  if (up === '') return { part, spec: '', fields: [] };
  if (up === 'HEADER' || up === 'TEXT') return { part, spec: up, fields: [] };
  if (up === 'MIME') {
    if (part.length === 0) throw new ImapSyntaxError('MIME needs a part number');
    return { part, spec: 'MIME', fields: [] };
  }
  const f = /^(HEADER\.FIELDS(?:\.NOT)?)\s*\((.*)\)$/i.exec(rest);
  if (f) {
    const fields = f[2]!.trim().split(/\s+/).filter(Boolean).map((x) => x.replace(/^"(.*)"$/, '$1').toUpperCase());
    if (fields.length === 0 || fields.some((x) => !/^[\x21-\x39\x3b-\x7e]+$/.test(x))) throw new ImapSyntaxError('bad header field list');
    return { part, spec: f[1]!.toUpperCase() as BodySection['spec'], fields };
  }
  throw new ImapSyntaxError(`bad body section "${s.slice(0, 40)}"`);
}

export function formatSection(s: BodySection): string {
  const nums = s.part.join('.');
  const spec = s.spec === 'HEADER.FIELDS' || s.spec === 'HEADER.FIELDS.NOT' ? `${s.spec} (${s.fields.join(' ')})` : s.spec;
  return nums && spec ? `${nums}.${spec}` : nums || spec;
}

// ── flags ────────────────────────────────────────────────────────────────────

export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;

/** A flag list `(\Seen $Label)` or a single flag; system flags normalized to their canonical case. */
export function parseFlags(t: ImapToken | undefined): string[] {
  if (!t) throw new ImapSyntaxError('missing flags');
  const items = t.type === 'list' ? t.items : [t];
  return items.map((i) => {
    if (i.type !== 'atom') throw new ImapSyntaxError('a flag must be an atom');
    const sys = SYSTEM_FLAGS.find((f) => f.toLowerCase() === i.value.toLowerCase());
    if (sys) return sys;
    if (i.value.startsWith('\\') || !/^[\x21\x23-\x27\x2a-\x5a\x5e-\x7a\x7c\x7e]{1,64}$/.test(i.value)) throw new ImapSyntaxError(`bad flag ${i.value.slice(0, 40)}`);
    return i.value;
  });
}

// ── dates ────────────────────────────────────────────────────────────────────

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `1-Feb-1994` → the start of that day, UTC, ms. */
export function parseDate(s: string): number {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  const month = m ? MONTHS.findIndex((x) => x.toLowerCase() === m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) throw new ImapSyntaxError(`bad date "${s.slice(0, 20)}"`);
  return Date.UTC(Number(m[3]), month, Number(m[1]));
}

/** INTERNALDATE: `17-Jul-1996 02:44:25 +0000` (UTC). */
export function formatInternalDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

// ── SEARCH ───────────────────────────────────────────────────────────────────

export type SearchKey =
  | { op: 'all' }
  | { op: 'and'; keys: SearchKey[] }
  | { op: 'or'; a: SearchKey; b: SearchKey }
  | { op: 'not'; key: SearchKey }
  | { op: 'seq'; set: string }
  | { op: 'uid'; set: string }
  | { op: 'flag'; flag: string; set: boolean }
  | { op: 'new' | 'old' | 'recent' }
  | { op: 'date'; which: 'internal' | 'sent'; cmp: 'before' | 'on' | 'since'; day: number }
  | { op: 'size'; cmp: 'larger' | 'smaller'; n: number }
  | { op: 'text'; where: 'from' | 'to' | 'cc' | 'bcc' | 'subject' | 'body' | 'text'; value: string }
  | { op: 'header'; field: string; value: string };

const FLAG_KEYS: Record<string, [string, boolean]> = {
  SEEN: ['\\Seen', true], UNSEEN: ['\\Seen', false], ANSWERED: ['\\Answered', true], UNANSWERED: ['\\Answered', false],
  FLAGGED: ['\\Flagged', true], UNFLAGGED: ['\\Flagged', false], DELETED: ['\\Deleted', true], UNDELETED: ['\\Deleted', false],
  DRAFT: ['\\Draft', true], UNDRAFT: ['\\Draft', false],
};
const DATE_KEYS: Record<string, ['internal' | 'sent', 'before' | 'on' | 'since']> = {
  BEFORE: ['internal', 'before'], ON: ['internal', 'on'], SINCE: ['internal', 'since'],
  SENTBEFORE: ['sent', 'before'], SENTON: ['sent', 'on'], SENTSINCE: ['sent', 'since'],
};
const TEXT_KEYS = new Set(['FROM', 'TO', 'CC', 'BCC', 'SUBJECT', 'BODY', 'TEXT']);

/** SEARCH [CHARSET x] keys…; the implied AND of the top-level keys. */
export function parseSearch(tokens: ImapToken[]): SearchKey {
  let i = 0;
  if (tokens[0]?.type === 'atom' && tokens[0].value.toUpperCase() === 'CHARSET') {
    const cs = astring(tokens[1])?.toUpperCase();
    if (cs !== 'UTF-8' && cs !== 'US-ASCII') throw new ImapSyntaxError('[BADCHARSET (UTF-8 US-ASCII)] unsupported charset');
    i = 2;
  }
  let budget = 256;
  const key = (): SearchKey => {
    if (--budget < 0) throw new ImapSyntaxError('search too complex');
    const t = tokens[i++];
    if (!t) throw new ImapSyntaxError('search key missing');
    if (t.type === 'list') {
      const saved = tokens;
      const savedI = i;
      tokens = t.items;
      i = 0;
      const keys: SearchKey[] = [];
      while (i < tokens.length) keys.push(key());
      tokens = saved;
      i = savedI;
      return { op: 'and', keys };
    }
    if (t.type !== 'atom') throw new ImapSyntaxError('search key must be an atom');
    const k = t.value.toUpperCase();
    const arg = (): string => {
      const v = astring(tokens[i++]);
      if (v === null) throw new ImapSyntaxError(`${k} needs an argument`);
      return v;
    };
    if (k === 'ALL') return { op: 'all' };
    if (k === 'NEW' || k === 'OLD' || k === 'RECENT') return { op: k.toLowerCase() as 'new' };
    if (k === 'NOT') return { op: 'not', key: key() };
    if (k === 'OR') {
      const a = key();
      return { op: 'or', a, b: key() };
    }
    if (k === 'UID') return { op: 'uid', set: arg() };
    if (FLAG_KEYS[k]) return { op: 'flag', flag: FLAG_KEYS[k]![0], set: FLAG_KEYS[k]![1] };
    if (k === 'KEYWORD' || k === 'UNKEYWORD') return { op: 'flag', flag: arg(), set: k === 'KEYWORD' };
    if (DATE_KEYS[k]) return { op: 'date', which: DATE_KEYS[k]![0], cmp: DATE_KEYS[k]![1], day: parseDate(arg()) };
    if (k === 'LARGER' || k === 'SMALLER') {
      const n = Number(arg());
      if (!Number.isInteger(n) || n < 0) throw new ImapSyntaxError(`${k} needs a number`);
      return { op: 'size', cmp: k.toLowerCase() as 'larger', n };
    }
    if (TEXT_KEYS.has(k)) return { op: 'text', where: k.toLowerCase() as 'from', value: arg() };
    if (k === 'HEADER') {
      const field = arg();
      return { op: 'header', field, value: arg() };
    }
    if (/^[0-9:*,]+$/.test(k)) return { op: 'seq', set: k };
    throw new ImapSyntaxError(`unknown search key ${k.slice(0, 20)}`);
  };
  const keys: SearchKey[] = [];
  while (i < tokens.length) keys.push(key());
  if (keys.length === 0) throw new ImapSyntaxError('SEARCH needs a key');
  return keys.length === 1 ? keys[0]! : { op: 'and', keys };
}
