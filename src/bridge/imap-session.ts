/**
 * One IMAP connection's state machine (RFC 3501 §3), between the reader (bytes → commands) and the
 * writer (values → bytes). It writes through a callback and knows nothing of sockets, so it can be
 * driven directly; imap-server.ts joins it to a socket.
 *
 *   not authenticated ──LOGIN / AUTHENTICATE PLAIN──> authenticated ──SELECT / EXAMINE──> selected
 *          │                                                 ^                                │
 *          └────────────── LOGOUT (any state) ───────────────┴────── CLOSE / UNSELECT ───────┘
 *
 * Folders: INBOX, Sent (\Sent), Trash (\Trash); they cannot be created, renamed or deleted.
 * Capabilities: IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN IDLE UIDPLUS MOVE NAMESPACE ID UNSELECT
 * SPECIAL-USE CHILDREN. Mailbox changes (new mail, a replaced Sent copy, flags set elsewhere) are
 * announced after NOOP, CHECK, IDLE and UID commands; EXPUNGE responses never during FETCH, STORE
 * or SEARCH by sequence number, as §7.4.1 requires.
 */
import { describeError, OnionpostError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeLimits } from '../limits.js';
import { checkPassword } from './auth.js';
import { ImapReader, ImapSyntaxError, astring, type ImapCommand, type ImapToken } from './imap-reader.js';
import {
  formatInternalDate, inSet, parseFetchItems, parseFlags, parseSearch, parseSequenceSet, type FetchItem, type SearchKey, type SequenceSet,
} from './imap-syntax.js';
import { atom, fetchResponse, serialize, tagged, untagged, type ImapValue } from './imap-writer.js';
import { bodyStructure, headerFields, partAt, type RenderedMessage } from './mime.js';
import type { FolderEntry, FolderName, MailPort } from './port.js';

const CAPS_PRE = 'IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN ID IDLE NAMESPACE';
const CAPS = 'IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN ID IDLE NAMESPACE UIDPLUS MOVE UNSELECT SPECIAL-USE CHILDREN';
const FOLDERS: { name: FolderName; attrs: string }[] = [
  { name: 'INBOX', attrs: '\\HasNoChildren' },
  { name: 'Sent', attrs: '\\HasNoChildren \\Sent' },
  { name: 'Trash', attrs: '\\HasNoChildren \\Trash' },
];
const KNOWN = new Set([
  'CAPABILITY', 'NOOP', 'CHECK', 'LOGOUT', 'ID', 'LOGIN', 'AUTHENTICATE', 'NAMESPACE', 'ENABLE', 'LIST', 'LSUB', 'SUBSCRIBE',
  'UNSUBSCRIBE', 'CREATE', 'DELETE', 'RENAME', 'STATUS', 'SELECT', 'EXAMINE', 'APPEND', 'IDLE', 'CLOSE', 'UNSELECT', 'EXPUNGE',
  'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE',
]);
const FLAGS_LIST = '(\\Answered \\Flagged \\Deleted \\Seen \\Draft)';
const PERMANENT = '(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)';

export interface SessionDeps {
  port: MailPort;
  password: string;
  limits: BridgeLimits;
  logger: Logger;
  /** The message (or bounce) a folder entry stands for, rendered; null when it is gone. */
  render(entry: FolderEntry): RenderedMessage | null;
  write(bytes: Buffer): void;
  /** Ends the connection after what was written. */
  end(): void;
  now(): number;
}

interface Selected {
  name: FolderName;
  readOnly: boolean;
  uidValidity: number;
  /** UIDs by sequence number - 1. */
  uids: number[];
  flags: Map<number, string>;
}

class No extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

function folderName(raw: string | null): FolderName | null {
  if (raw === null) return null;
  if (raw.toUpperCase() === 'INBOX') return 'INBOX';
  return FOLDERS.find((f) => f.name === raw)?.name ?? null;
}

/** LIST pattern match: `*` any, `%` any but the delimiter (no hierarchy here, so the same). */
function matches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/[*%]/g, '.*')}$`, name === 'INBOX' ? 'i' : '');
  return re.test(name);
}

/** Compact UID set text for COPYUID: 1,3:5. */
function uidSetText(uids: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < uids.length; ) {
    let j = i;
    while (j + 1 < uids.length && uids[j + 1] === uids[j]! + 1) j++;
    out.push(i === j ? `${uids[i]}` : `${uids[i]}:${uids[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

export class ImapSession {
  readonly #d: SessionDeps;
  readonly #reader: ImapReader;
  #user: string | null = null;
  #sel: Selected | null = null;
  #idleTag: string | null = null;
  #authTag: string | null = null;
  #unauthCommands = 0;
  #authFailures = 0;
  #tokens: number;
  #lastRefill: number;
  #closed = false;
  #busy = false;

  constructor(deps: SessionDeps) {
    this.#d = deps;
    this.#reader = new ImapReader({
      maxLineBytes: deps.limits.imapMaxLineBytes, maxLiteralBytes: deps.limits.imapMaxLiteralBytes, maxCommandBytes: deps.limits.imapMaxCommandBytes,
    });
    this.#tokens = deps.limits.imapCommandBurst;
    this.#lastRefill = deps.now();
  }

  get closed(): boolean {
    return this.#closed;
  }

  greet(): void {
    this.#d.write(untagged(`OK [CAPABILITY ${CAPS_PRE}] onionpost mail bridge ready`));
  }

  /** Bytes from the client. */
  receive(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#reader.push(chunk);
    this.#drain();
  }

  /** Something changed in the node: an idling client hears of it now. */
  changed(): void {
    if (this.#idleTag && !this.#closed) this.#safely(() => this.#refresh(true));
  }

  /** The server is shutting down. */
  shutdown(): void {
    if (this.#closed) return;
    this.#bye('server shutting down');
  }

  #bye(text: string): void {
    this.#d.write(untagged(`BYE ${text}`));
    this.#closed = true;
    this.#d.end();
  }

  #drain(): void {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (let ev = this.#reader.next(); ev && !this.#closed; ev = this.#reader.next()) {
        if (ev.type === 'continue') this.#d.write(Buffer.from(`+ ${ev.text}\r\n`));
        else if (ev.type === 'bad') {
          this.#d.write(ev.tag ? tagged(ev.tag, 'BAD', ev.message) : untagged(`BAD ${ev.message}`));
          if (ev.fatal) this.#bye('protocol error');
        } else if (ev.type === 'line') this.#line(ev.text);
        else this.#command(ev.command);
      }
    } finally {
      this.#busy = false;
    }
  }

  #charge(): boolean {
    const now = this.#d.now();
    const l = this.#d.limits;
    this.#tokens = Math.min(l.imapCommandBurst, this.#tokens + ((now - this.#lastRefill) / 1000) * l.imapCommandsPerSecond);
    this.#lastRefill = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #safely(fn: () => void, tag?: string): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof No) {
        if (tag) this.#d.write(tagged(tag, 'NO', err.message, err.code));
      } else if (err instanceof ImapSyntaxError) {
        if (tag) this.#d.write(tagged(tag, 'BAD', err.message));
      } else {
        this.#d.logger.warn({ err: describeError(err) }, 'imap: command failed');
        if (tag) this.#d.write(tagged(tag, 'NO', err instanceof OnionpostError ? err.message : 'internal error', 'SERVERBUG'));
      }
    }
  }

  // ── continuation lines: IDLE's DONE and AUTHENTICATE's response ────────────

  #line(text: string): void {
    if (this.#idleTag) {
      const tag = this.#idleTag;
      this.#idleTag = null;
      if (text.trim().toUpperCase() !== 'DONE') {
        this.#d.write(tagged(tag, 'BAD', 'expected DONE'));
        return;
      }
      this.#d.write(tagged(tag, 'OK', 'IDLE terminated'));
      return;
    }
    if (this.#authTag) {
      const tag = this.#authTag;
      this.#authTag = null;
      if (text.trim() === '*') return void this.#d.write(tagged(tag, 'BAD', 'authentication cancelled'));
      this.#plain(tag, text.trim());
    }
  }

  #plain(tag: string, b64: string): void {
    const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
    if (parts.length !== 3) return void this.#d.write(tagged(tag, 'BAD', 'malformed PLAIN response'));
    this.#login(tag, parts[1]!, parts[2]!);
  }

  #login(tag: string, user: string, pass: string): void {
    if (checkPassword(user, pass, this.#d.port.ownAddress, this.#d.password)) {
      this.#user = this.#d.port.ownAddress;
      this.#d.write(tagged(tag, 'OK', 'logged in', `CAPABILITY ${CAPS}`));
      return;
    }
    this.#authFailures++;
    this.#d.logger.warn({ failures: this.#authFailures }, 'imap: failed login');
    this.#d.write(tagged(tag, 'NO', 'wrong user name or password', 'AUTHENTICATIONFAILED'));
    if (this.#authFailures >= this.#d.limits.maxAuthFailures) this.#bye('too many failed logins');
  }

  // ── commands ────────────────────────────────────────────────────────────────

  #command(c: ImapCommand): void {
    if (!this.#charge()) return this.#bye('too many commands');
    if (!this.#user && ++this.#unauthCommands > this.#d.limits.maxUnauthenticatedCommands) return this.#bye('too many commands without logging in');
    let name = c.name;
    let args = c.args;
    let uid = false;
    if (name === 'UID') {
      const sub = args[0];
      if (!sub || sub.type !== 'atom') return void this.#d.write(tagged(c.tag, 'BAD', 'UID needs a command'));
      uid = true;
      name = sub.value.toUpperCase();
      args = args.slice(1);
      if (!['FETCH', 'SEARCH', 'STORE', 'COPY', 'MOVE', 'EXPUNGE'].includes(name)) return void this.#d.write(tagged(c.tag, 'BAD', `UID ${name} is not a command`));
    }
    this.#safely(() => this.#dispatch(c.tag, name, args, uid), c.tag);
  }

  #dispatch(tag: string, name: string, args: ImapToken[], uid: boolean): void {
    if (!KNOWN.has(name)) throw new ImapSyntaxError(`unknown command ${name.slice(0, 20)}`);
    const w = (b: Buffer) => this.#d.write(b);
    const ok = (text = `${name} completed`, code?: string) => w(tagged(tag, 'OK', text, code));
    switch (name) {
      case 'CAPABILITY':
        w(untagged(`CAPABILITY ${this.#user ? CAPS : CAPS_PRE}`));
        return ok();
      case 'NOOP':
      case 'CHECK':
        if (this.#sel) this.#refresh(true);
        return ok();
      case 'LOGOUT':
        w(untagged('BYE logging out'));
        ok();
        this.#closed = true;
        this.#d.end();
        return;
      case 'ID':
        w(untagged('ID ("name" "onionpost")'));
        return ok();
    }
    if (!this.#user) {
      if (name === 'LOGIN') {
        const user = astring(args[0]);
        const pass = astring(args[1]);
        if (user === null || pass === null) throw new ImapSyntaxError('LOGIN needs a user name and a password');
        return this.#login(tag, user, pass);
      }
      if (name === 'AUTHENTICATE') {
        const mech = astring(args[0])?.toUpperCase();
        if (mech !== 'PLAIN') throw new No('only AUTHENTICATE PLAIN is supported', 'CANNOT');
        const initial = astring(args[1]);
        if (initial !== null && initial !== '=') return this.#plain(tag, initial);
        this.#authTag = tag;
        this.#reader.lineMode = true;
        return w(Buffer.from('+ \r\n'));
      }
      throw new No('log in first');
    }
    switch (name) {
      case 'LOGIN':
      case 'AUTHENTICATE':
        throw new ImapSyntaxError('already logged in');
      case 'NAMESPACE':
        w(untagged('NAMESPACE (("" "/")) NIL NIL'));
        return ok();
      case 'ENABLE':
        w(untagged('ENABLED'));
        return ok();
      case 'LIST':
      case 'LSUB':
        return this.#list(name, args, ok);
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        if (!folderName(astring(args[0]))) throw new No('no such folder', 'NONEXISTENT');
        return ok();
      case 'CREATE':
      case 'DELETE':
      case 'RENAME':
        throw new No('the folders are fixed: INBOX, Sent, Trash', 'CANNOT');
      case 'STATUS':
        return this.#status(args, ok);
      case 'SELECT':
      case 'EXAMINE':
        return this.#select(tag, name === 'EXAMINE', args);
      case 'APPEND':
        return this.#append(args, ok);
      case 'IDLE':
        this.#idleTag = tag;
        this.#reader.lineMode = true;
        w(Buffer.from('+ idling\r\n'));
        if (this.#sel) this.#refresh(true);
        return;
    }
    const sel = this.#sel;
    if (!sel) throw new No('select a folder first');
    switch (name) {
      case 'CLOSE':
        if (!sel.readOnly) this.#expunge(null, false);
        this.#sel = null;
        return ok();
      case 'UNSELECT':
        this.#sel = null;
        return ok();
      case 'EXPUNGE': {
        if (sel.readOnly) throw new No('folder is read-only', 'READ-ONLY');
        const only = uid ? parseSequenceSet(astring(args[0]) ?? '', this.#maxUid()) : null;
        this.#expunge(only, true);
        if (uid) this.#refresh(true);
        return ok();
      }
      case 'SEARCH':
        return this.#search(args, uid, ok);
      case 'FETCH':
        return this.#fetch(args, uid, ok);
      case 'STORE':
        return this.#store(args, uid, ok);
      case 'COPY':
      case 'MOVE':
        return this.#copy(args, uid, name === 'MOVE', ok);
    }
    throw new ImapSyntaxError(`unknown command ${name.slice(0, 20)}`);
  }

  #list(name: string, args: ImapToken[], ok: (t?: string) => void): void {
    const rest = args[0]?.type === 'list' ? args.slice(1) : args;
    const ref = astring(rest[0]);
    const patToken = rest[1];
    const patterns = patToken?.type === 'list' ? patToken.items.map(astring) : [astring(patToken)];
    if (ref === null || patterns.some((p) => p === null)) throw new ImapSyntaxError(`${name} needs a reference and a pattern`);
    if (patterns.length === 1 && patterns[0] === '') {
      this.#d.write(untagged(`${name} (\\Noselect) "/" ""`));
      return ok();
    }
    for (const f of FOLDERS) {
      if (patterns.some((p) => matches(ref + p!, f.name))) this.#d.write(Buffer.concat([Buffer.from(`* ${name} (${f.attrs}) "/" `), serialize(f.name), Buffer.from('\r\n')]));
    }
    ok();
  }

  #status(args: ImapToken[], ok: (t?: string) => void): void {
    const name = folderName(astring(args[0]));
    if (!name) throw new No('no such folder', 'NONEXISTENT');
    const items = args[1]?.type === 'list' ? args[1].items.map((i) => astring(i)?.toUpperCase()) : [];
    this.#d.port.folders.sync();
    const info = this.#d.port.folders.info(name)!;
    const entries = this.#d.port.folders.entries(name);
    const out: ImapValue[] = [];
    for (const it of items) {
      if (it === 'MESSAGES') out.push(atom('MESSAGES'), entries.length);
      else if (it === 'RECENT') out.push(atom('RECENT'), 0);
      else if (it === 'UIDNEXT') out.push(atom('UIDNEXT'), info.uidNext);
      else if (it === 'UIDVALIDITY') out.push(atom('UIDVALIDITY'), info.uidValidity);
      else if (it === 'UNSEEN') out.push(atom('UNSEEN'), entries.filter((e) => !e.flags.includes('\\Seen')).length);
      else throw new ImapSyntaxError(`unknown STATUS item ${String(it).slice(0, 20)}`);
    }
    this.#d.write(Buffer.concat([Buffer.from('* STATUS '), serialize(name, out), Buffer.from('\r\n')]));
    ok();
  }

  #select(tag: string, readOnly: boolean, args: ImapToken[]): void {
    this.#sel = null;
    const name = folderName(astring(args[0]));
    if (!name) throw new No('no such folder', 'NONEXISTENT');
    this.#d.port.folders.sync();
    const info = this.#d.port.folders.info(name)!;
    const entries = this.#d.port.folders.entries(name);
    const sel: Selected = { name, readOnly, uidValidity: info.uidValidity, uids: entries.map((e) => e.uid), flags: new Map(entries.map((e) => [e.uid, e.flags.join(' ')])) };
    this.#sel = sel;
    const w = (s: string) => this.#d.write(untagged(s));
    w(`FLAGS ${FLAGS_LIST}`);
    w(`${entries.length} EXISTS`);
    w('0 RECENT');
    const firstUnseen = entries.findIndex((e) => !e.flags.includes('\\Seen'));
    if (firstUnseen >= 0) w(`OK [UNSEEN ${firstUnseen + 1}] first unseen`);
    w(`OK [UIDVALIDITY ${info.uidValidity}] UIDs valid`);
    w(`OK [UIDNEXT ${info.uidNext}] predicted next UID`);
    w(`OK [PERMANENTFLAGS ${readOnly ? '()' : PERMANENT}] flags`);
    this.#d.write(tagged(tag, 'OK', `${readOnly ? 'EXAMINE' : 'SELECT'} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE'));
  }

  #append(args: ImapToken[], ok: (t?: string) => void): void {
    const name = folderName(astring(args[0]));
    if (!name) throw new No('no such folder', 'TRYCREATE');
    const message = args[args.length - 1];
    if (!message || message.type !== 'string') throw new ImapSyntaxError('APPEND needs a message literal');
    // The node keeps its own record of what was sent (the Sent folder), so the copy a mail
    // client uploads after sending is accepted and not stored twice.
    if (name === 'Sent') return ok('APPEND completed: the node already keeps the sent message');
    throw new No('messages can be added to Sent only (mail is sent with SMTP)', 'CANNOT');
  }

  // ── selected-state helpers ─────────────────────────────────────────────────

  #maxUid(): number {
    const u = this.#sel!.uids;
    return u.length ? u[u.length - 1]! : 0;
  }

  /** The entries a set names: sequence numbers or UIDs, ascending; with their sequence numbers. */
  #resolveSet(text: string, uid: boolean): { seq: number; uid: number }[] {
    const sel = this.#sel!;
    const set: SequenceSet = parseSequenceSet(text, uid ? this.#maxUid() : sel.uids.length);
    const out: { seq: number; uid: number }[] = [];
    sel.uids.forEach((u, i) => {
      if (inSet(set, uid ? u : i + 1)) out.push({ seq: i + 1, uid: u });
    });
    return out;
  }

  #entriesByUid(): Map<number, FolderEntry> {
    return new Map(this.#d.port.folders.entries(this.#sel!.name).map((e) => [e.uid, e]));
  }

  /**
   * Brings the selected view up to date: new entries (EXISTS), flag changes (FETCH FLAGS) and,
   * when `expunges` is allowed, removed entries (EXPUNGE).
   */
  #refresh(expunges: boolean): void {
    const sel = this.#sel;
    if (!sel) return;
    this.#d.port.folders.sync();
    const now = this.#entriesByUid();
    if (expunges) {
      for (let i = sel.uids.length - 1; i >= 0; i--) {
        const u = sel.uids[i]!;
        if (!now.has(u)) {
          sel.uids.splice(i, 1);
          sel.flags.delete(u);
          this.#d.write(untagged(`${i + 1} EXPUNGE`));
        }
      }
    }
    sel.uids.forEach((u, i) => {
      const e = now.get(u);
      if (!e) return;
      const f = e.flags.join(' ');
      if (sel.flags.get(u) !== f) {
        sel.flags.set(u, f);
        this.#d.write(fetchResponse(i + 1, [['UID', u], ['FLAGS', e.flags.map(atom)]]));
      }
    });
    const max = this.#maxUid();
    const added = [...now.values()].filter((e) => e.uid > max).sort((a, b) => a.uid - b.uid);
    if (added.length) {
      for (const e of added) {
        sel.uids.push(e.uid);
        sel.flags.set(e.uid, e.flags.join(' '));
      }
      this.#d.write(untagged(`${sel.uids.length} EXISTS`));
    }
  }

  #expunge(only: SequenceSet | null, announce: boolean): void {
    const sel = this.#sel!;
    const byUid = this.#entriesByUid();
    const gone = sel.uids.filter((u) => byUid.get(u)?.flags.includes('\\Deleted') && (!only || inSet(only, u)));
    this.#d.port.folders.expunge(sel.name, gone);
    const goneSet = new Set(gone);
    for (let i = sel.uids.length - 1; i >= 0; i--) {
      const u = sel.uids[i]!;
      if (!goneSet.has(u)) continue;
      sel.uids.splice(i, 1);
      sel.flags.delete(u);
      if (announce) this.#d.write(untagged(`${i + 1} EXPUNGE`));
    }
  }

  #fetch(args: ImapToken[], uid: boolean, ok: (t?: string) => void): void {
    const sel = this.#sel!;
    const setText = astring(args[0]);
    if (setText === null) throw new ImapSyntaxError('FETCH needs a sequence set');
    const items = parseFetchItems(args[1]);
    if (uid && !items.some((i) => i.kind === 'UID')) items.unshift({ kind: 'UID' });
    const targets = this.#resolveSet(setText, uid);
    const byUid = this.#entriesByUid();
    for (const t of targets) {
      const e = byUid.get(t.uid);
      if (!e) continue;
      let rendered: RenderedMessage | null | undefined;
      const msg = () => (rendered === undefined ? (rendered = this.#d.render(e)) : rendered);
      let flags = e.flags;
      const out: [string, ImapValue][] = [];
      let markSeen = false;
      for (const it of items) {
        if (it.kind === 'UID') out.push(['UID', e.uid]);
        else if (it.kind === 'FLAGS') continue;
        else {
          const r = msg();
          if (!r) break;
          const body = this.#item(it, r);
          if (!body) continue;
          out.push(body);
          if ((it.kind === 'section' && !it.peek) || it.kind === 'RFC822' || it.kind === 'RFC822.TEXT') markSeen = true;
        }
      }
      if (markSeen && !sel.readOnly && !flags.includes('\\Seen')) {
        flags = ['\\Seen', ...flags];
        this.#d.port.folders.setFlags(sel.name, e.uid, flags);
        sel.flags.set(e.uid, flags.join(' '));
      }
      if (items.some((i) => i.kind === 'FLAGS') || markSeen) out.splice(uid ? 1 : 0, 0, ['FLAGS', flags.map(atom)]);
      this.#d.write(fetchResponse(t.seq, out));
    }
    if (uid) this.#refresh(true);
    ok();
  }

  #item(it: FetchItem, r: RenderedMessage): [string, ImapValue] | null {
    switch (it.kind) {
      case 'INTERNALDATE':
        return ['INTERNALDATE', formatInternalDate(r.internalDate)];
      case 'RFC822.SIZE':
        return ['RFC822.SIZE', r.raw.length];
      case 'ENVELOPE':
        return ['ENVELOPE', r.envelope];
      case 'BODYSTRUCTURE':
        return ['BODYSTRUCTURE', bodyStructure(r.root, true)];
      case 'BODY':
        return ['BODY', bodyStructure(r.root, false)];
      case 'RFC822':
        return ['RFC822', r.raw];
      case 'RFC822.HEADER':
        return ['RFC822.HEADER', r.root.header];
      case 'RFC822.TEXT':
        return ['RFC822.TEXT', r.root.body];
      case 'section': {
        const s = it.section;
        let bytes: Buffer;
        if (s.part.length === 0) {
          if (s.spec === '') bytes = r.raw;
          else if (s.spec === 'HEADER') bytes = r.root.header;
          else if (s.spec === 'TEXT') bytes = r.root.body;
          else bytes = headerFields(r.root.header, s.fields, s.spec === 'HEADER.FIELDS.NOT');
        } else {
          const p = partAt(r.root, s.part);
          if (!p) bytes = Buffer.alloc(0);
          else if (s.spec === '') bytes = p.body;
          else if (s.spec === 'MIME') bytes = p.header;
          else bytes = Buffer.alloc(0); // HEADER/TEXT of a part: only message/rfc822 parts have them, and we write none
        }
        if (it.partial) bytes = bytes.subarray(Math.min(it.partial.start, bytes.length), Math.min(it.partial.start + it.partial.length, bytes.length));
        return [it.label, bytes];
      }
      default:
        return null;
    }
  }

  #store(args: ImapToken[], uid: boolean, ok: (t?: string) => void): void {
    const sel = this.#sel!;
    if (sel.readOnly) throw new No('folder is read-only', 'READ-ONLY');
    const setText = astring(args[0]);
    const mode = astring(args[1])?.toUpperCase() ?? '';
    const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(mode);
    if (setText === null || !m) throw new ImapSyntaxError('STORE needs a set, FLAGS|+FLAGS|-FLAGS[.SILENT] and flags');
    const given = parseFlags(args.length > 3 ? { type: 'list', items: args.slice(2) } : args[2]);
    const byUid = this.#entriesByUid();
    for (const t of this.#resolveSet(setText, uid)) {
      const e = byUid.get(t.uid);
      if (!e) continue;
      const cur = new Set(e.flags);
      const next = m[1] === '+' ? new Set([...cur, ...given]) : m[1] === '-' ? new Set([...cur].filter((f) => !given.includes(f))) : new Set(given);
      const flags = [...next];
      this.#d.port.folders.setFlags(sel.name, e.uid, flags);
      sel.flags.set(e.uid, flags.join(' '));
      if (!m[2]) this.#d.write(fetchResponse(t.seq, uid ? [['UID', e.uid], ['FLAGS', flags.map(atom)]] : [['FLAGS', flags.map(atom)]]));
    }
    if (uid) this.#refresh(true);
    ok();
  }

  #copy(args: ImapToken[], uid: boolean, move: boolean, ok: (t?: string, code?: string) => void): void {
    const sel = this.#sel!;
    const setText = astring(args[0]);
    const dest = folderName(astring(args[1]));
    if (setText === null) throw new ImapSyntaxError('COPY needs a set and a folder');
    if (!dest) throw new No('no such folder', 'TRYCREATE');
    if (move && sel.readOnly) throw new No('folder is read-only', 'READ-ONLY');
    const targets = this.#resolveSet(setText, uid);
    const pairs = this.#d.port.folders.copy(sel.name, targets.map((t) => t.uid), dest);
    const info = this.#d.port.folders.info(dest)!;
    const code = pairs.length ? `COPYUID ${info.uidValidity} ${uidSetText(pairs.map((p) => p[0]))} ${uidSetText(pairs.map((p) => p[1]))}` : undefined;
    if (move) {
      if (code) this.#d.write(untagged(`OK [${code}] moved`));
      this.#d.port.folders.expunge(sel.name, pairs.map((p) => p[0]));
      const goneSet = new Set(pairs.map((p) => p[0]));
      for (let i = sel.uids.length - 1; i >= 0; i--) {
        if (!goneSet.has(sel.uids[i]!)) continue;
        sel.flags.delete(sel.uids[i]!);
        sel.uids.splice(i, 1);
        this.#d.write(untagged(`${i + 1} EXPUNGE`));
      }
      return ok('MOVE completed');
    }
    if (uid) this.#refresh(true);
    ok('COPY completed', code);
  }

  #search(args: ImapToken[], uid: boolean, ok: (t?: string) => void): void {
    const sel = this.#sel!;
    const key = parseSearch(args);
    const byUid = this.#entriesByUid();
    const found: number[] = [];
    sel.uids.forEach((u, i) => {
      const e = byUid.get(u);
      if (!e) return;
      let rendered: RenderedMessage | null | undefined;
      const msg = () => (rendered === undefined ? (rendered = this.#d.render(e)) : rendered);
      if (this.#matches(key, i + 1, e, msg)) found.push(uid ? u : i + 1);
    });
    this.#d.write(untagged(`SEARCH${found.length ? ` ${found.join(' ')}` : ''}`));
    if (uid) this.#refresh(true);
    ok();
  }

  #matches(k: SearchKey, seq: number, e: FolderEntry, msg: () => RenderedMessage | null): boolean {
    const has = (s: string, v: string) => s.toLowerCase().includes(v.toLowerCase());
    switch (k.op) {
      case 'all':
        return true;
      case 'and':
        return k.keys.every((x) => this.#matches(x, seq, e, msg));
      case 'or':
        return this.#matches(k.a, seq, e, msg) || this.#matches(k.b, seq, e, msg);
      case 'not':
        return !this.#matches(k.key, seq, e, msg);
      case 'seq':
        return inSet(parseSequenceSet(k.set, this.#sel!.uids.length), seq);
      case 'uid':
        return inSet(parseSequenceSet(k.set, this.#maxUid()), e.uid);
      case 'flag':
        return e.flags.includes(k.flag) === k.set;
      case 'new':
      case 'recent':
        return false;
      case 'old':
        return true;
      case 'date': {
        const r = msg();
        if (!r) return false;
        const t = k.which === 'internal' ? r.internalDate : r.search.sentAt;
        const d = new Date(t);
        const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
        return k.cmp === 'before' ? day < k.day : k.cmp === 'on' ? day === k.day : day >= k.day;
      }
      case 'size': {
        const r = msg();
        return !!r && (k.cmp === 'larger' ? r.raw.length > k.n : r.raw.length < k.n);
      }
      case 'text': {
        const r = msg();
        if (!r) return false;
        const s = r.search;
        if (k.where === 'from') return has(s.from, k.value);
        if (k.where === 'to') return has(s.to, k.value);
        if (k.where === 'subject') return has(s.subject, k.value);
        if (k.where === 'body') return has(s.body, k.value);
        if (k.where === 'text') return has(s.headers, k.value) || has(s.body, k.value) || has(s.subject, k.value);
        return false;
      }
      case 'header': {
        const r = msg();
        if (!r) return false;
        const block = headerFields(r.root.header, [k.field.toUpperCase()], false).toString('utf8');
        return block.trim() !== '' && has(block, k.value);
      }
    }
  }
}
