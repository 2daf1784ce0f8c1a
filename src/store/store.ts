/**
 * The SQLite implementation of Store (better-sqlite3, synchronous).
 *
 * Durability: journal_mode=WAL with synchronous=FULL, so a method that returned has been fsynced
 * and survives kill -9 and power loss (on storage that honours fsync). The receiver sends a receipt
 * only after commitIncoming returns. The WAL is bounded by wal_autocheckpoint and journal_size_limit.
 */
import type { Database as Db, Statement } from 'better-sqlite3';
import { systemClock } from '../clock.js';
import { StoreError, toStoreError } from './errors.js';
import { MIGRATIONS } from './schema.js';
import { openDatabase } from './database.js';
import { Mailbox } from './mailbox.js';
import { createMailFolders, type MailFolders } from './mail-folders.js';
import { createSessionStore, type SessionStore } from './sessions.js';
import { createMailboxProviders, type MailboxProviders } from './mailbox-providers.js';
import { createDeposits, type Deposits } from './deposits.js';
import { createContactQueues, type ContactQueueStore } from './contact-queues.js';
import { createProviderReputations, type ProviderReputations } from './provider-reputation.js';
import {
  aliasKey, attemptFromRow, isControlKind, bytes, contactFromRow, eventFromRow, messageFromRow, peerStateFromRow,
  type AttemptRow, type ContactRow, type MessageRow, type PeerStateRow,
} from './rows.js';
import type {
  Attempt, AttemptOutcome, CommitResult, Contact, ContactInput, Draft, DraftInput, KeyChange, KeyedSend, ListOptions, MessageEvent, MessageState,
  NewIncoming, NewOutgoing, PeerName, PeerState, PeerStateUpdate, QueuedPeer, RejectedKey, SearchOptions, Store, StoreCounts, StoreDiagnostics,
  StoreOptions, StoredAttachment, StoredMessage, ThreadSummary,
} from './types.js';

export const STORE_DEFAULTS = Object.freeze({
  busyTimeoutMs: 5_000,
  walAutocheckpointPages: 1_000,
  journalSizeLimit: 16 * 1024 * 1024,
  dedupSkewMs: 24 * 60 * 60 * 1000,
});

const MAX_LIST = 1_000;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Opens (creating and migrating if needed) the database at `opts.path`. */
export function openStore(opts: StoreOptions): Store {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger;
  const o = { ...STORE_DEFAULTS, ...definedOnly(opts) };

  const { db, schemaVersion } = openDatabase(opts.path, logger, o, MIGRATIONS, 'open store');
  return new SqliteStore(db, clock.now.bind(clock), logger, o.dedupSkewMs, schemaVersion);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

class SqliteStore implements Store {
  readonly schemaVersion: number;
  #db: Db;
  #now: () => number;
  #logger: StoreOptions['logger'];
  #closed = false;
  #listCache = new Map<string, Statement>();
  #s: ReturnType<typeof prepareAll>;
  #mail: Mailbox;
  readonly mailFolders: MailFolders;
  readonly sessions: SessionStore;
  readonly mailboxProviders: MailboxProviders;
  readonly deposits: Deposits;
  readonly contactQueues: ContactQueueStore;
  readonly providerReputations: ProviderReputations;

  constructor(db: Db, now: () => number, logger: StoreOptions['logger'], dedupSkewMs: number, schemaVersion: number) {
    this.#db = db;
    this.#now = now;
    this.#logger = logger;
    this.schemaVersion = schemaVersion;
    this.#s = prepareAll(db);
    this.#mail = new Mailbox(db, now, dedupSkewMs);
    this.mailFolders = createMailFolders(db, { now, run: (what, fn) => this.#run(what, () => this.#tx(fn)) });
    this.sessions = createSessionStore(db, (what, fn) => this.#run(what, () => this.#tx(fn)));
    this.mailboxProviders = createMailboxProviders(db, (what, fn) => this.#run(what, () => this.#tx(fn)));
    this.deposits = createDeposits(db, (what, fn) => this.#run(what, () => this.#tx(fn)));
    this.contactQueues = createContactQueues(db, (what, fn) => this.#run(what, () => this.#tx(fn)));
    this.providerReputations = createProviderReputations(db, (what, fn) => this.#run(what, () => this.#tx(fn)));
  }

  /** Every public method runs through here: CLOSED check, SQLite errors mapped to StoreError. */
  #run<T>(what: string, fn: () => T): T {
    if (this.#closed) throw new StoreError('CLOSED', `${what}: store is closed`);
    try {
      return fn();
    } catch (err) {
      const mapped = toStoreError(err, what);
      if (mapped instanceof StoreError && (mapped.code === 'DISK_FULL' || mapped.code === 'CORRUPT' || mapped.code === 'IO')) {
        this.#logger.error({ code: mapped.code }, `store: ${what} failed`);
      }
      throw mapped;
    }
  }

  /**
   * One method's writes, atomically. Inside a batch the method joins the batch's transaction
   * without a savepoint of its own: a savepoint makes SQLite journal every page it touches (a
   * statement journal that spilled to a temp file at 64 KiB; about 60 page writes per message in
   * the outbox's rounds). Methods check before they write, and a method that throws inside a
   * batch fails the batch, which its caller rolls back or wraps in a nested batch().
   */
  #tx<T>(fn: () => T): T {
    return this.#db.inTransaction ? fn() : this.#db.transaction(fn).immediate();
  }

  #row(id: string): MessageRow {
    const r = this.#s.getMessage.get(id) as MessageRow | undefined;
    if (!r) throw new StoreError('NOT_FOUND', `no message ${id}`);
    return r;
  }

  /** Direction and state only: what the state checks need, without reading body and envelope. */
  #stateOf(id: string): { direction: string; state: MessageState } {
    const r = this.#s.stateOf.get(id) as { direction: string; state: MessageState } | undefined;
    if (!r) throw new StoreError('NOT_FOUND', `no message ${id}`);
    return r;
  }

  #event(id: string, at: number, state: MessageState, detail: string | null): void {
    this.#s.insertEvent.run(id, at, state, detail);
  }

  // ── outgoing ───────────────────────────────────────────────────────────────

  batch<T>(fn: () => T): T {
    // Nested, a savepoint: the caller may catch the inner batch's error and go on without its writes.
    return this.#run('batch', () => this.#db.transaction(fn).immediate());
  }

  setEnvelope(id: string, envelope: Uint8Array, envelopeHash: Uint8Array): void {
    this.#run('setEnvelope', () =>
      this.#tx(() => {
        const row = this.#row(id);
        if (row.direction !== 'out' || (row.envelope && row.envelope.length > 0)) throw new StoreError('BAD_STATE', `message ${id} is already sealed`);
        this.#s.setEnvelope.run(envelope, id);
        this.#s.setEnvelopeHash.run(envelopeHash, id);
      }),
    );
  }

  insertOutgoing(m: NewOutgoing): StoredMessage {
    return this.#run('insertOutgoing', () =>
      this.#tx(() => {
        const state = m.state ?? 'queued';
        const control = isControlKind(m.kind) ? m.kind : null;
        this.#s.insertMessage.run({
          id: m.id, direction: 'out', kind: control ? 'chat' : m.kind, control, peer_identity: m.peerIdentity, peer_onion: m.peerOnion ?? null,
          peer_label: m.peerLabel ?? null, subject: m.subject ?? null, thread_id: m.threadId ?? m.id,
          in_reply_to: m.inReplyTo ?? null, created_at: m.createdAt, expires_at: m.expiresAt, received_at: null,
          sort_at: m.createdAt, state, state_reason: m.stateReason ?? null,
          envelope_hash: m.envelopeHash, receipt: null, next_attempt_at: m.nextAttemptAt ?? m.createdAt,
        });
        this.#s.insertContent.run(m.id, m.body, m.envelope);
        if (m.idempotency) this.#s.insertSendKey.run(m.idempotency.key, m.id, m.idempotency.requestHash, this.#now());
        this.#mail.addAttachments(m.id, m.attachments);
        this.#event(m.id, this.#now(), state, m.stateReason ?? null);
        // What was just written, without reading it back (the envelope is kilobytes).
        return {
          id: m.id, direction: 'out', kind: m.kind, peerIdentity: m.peerIdentity, peerOnion: m.peerOnion ?? null,
          peerLabel: m.peerLabel ?? null, subject: m.subject ?? null, body: m.body, threadId: m.threadId ?? m.id,
          inReplyTo: m.inReplyTo ?? null, createdAt: m.createdAt, expiresAt: m.expiresAt, receivedAt: null, deliveredAt: null,
          state, stateReason: m.stateReason ?? null, envelope: bytes(m.envelope), envelopeHash: bytes(m.envelopeHash), receipt: null,
          read: false, attempts: 0, nextAttemptAt: m.nextAttemptAt ?? m.createdAt, lastErrorCode: null,
          archived: false, attachmentCount: m.attachments?.length ?? 0, mailboxes: [], peerReadAt: null,
        };
      }),
    );
  }

  sentWithKey(key: string): KeyedSend | null {
    return this.#run('sentWithKey', () => {
      const r = this.#s.sendKey.get(key) as { message_id: string; request_hash: Uint8Array } | undefined;
      return r ? { messageId: r.message_id, requestHash: bytes(r.request_hash) } : null;
    });
  }

  transition(id: string, to: MessageState, opts: { reason?: string | null; from?: readonly MessageState[]; errorCode?: string | null } = {}): void {
    this.#run('transition', () =>
      this.#tx(() => {
        const row = this.#stateOf(id);
        if (opts.from && !opts.from.includes(row.state)) {
          throw new StoreError('BAD_STATE', `message ${id} is ${row.state}, expected ${opts.from.join('|')}`);
        }
        const now = this.#now();
        this.#s.setState.run({
          id, state: to, reason: opts.reason ?? null, error_code: opts.errorCode ?? null,
          delivered_at: to === 'delivered' ? now : null,
        });
        this.#event(id, now, to, opts.reason ?? opts.errorCode ?? null);
      }),
    );
  }

  markDelivered(id: string, receipt: Uint8Array, at: number): void {
    this.#run('markDelivered', () =>
      this.#tx(() => {
        // The usual case in one guarded UPDATE; the state is read only to say why it did not apply.
        if (this.#s.markDelivered.run(receipt, at, id).changes !== 1) {
          const row = this.#stateOf(id);
          if (row.state === 'delivered') return; // a second receipt for the same message
          throw new StoreError('BAD_STATE', `message ${id} is ${row.direction}/${row.state}, cannot be delivered`);
        }
        this.#event(id, at, 'delivered', null);
      }),
    );
  }

  dueOutgoing(now: number, limit: number, opts: { excludePeers?: Iterable<string> } = {}): StoredMessage[] {
    return this.#run('dueOutgoing', () => {
      const max = Math.max(0, Math.trunc(limit));
      const peers = this.#queuedPeers(opts.excludePeers).filter((p) => p.dueAt <= now);
      // A merge of the peers' due rows, each peer's already in order: once `max` rows are held and
      // the next peer's earliest row comes after the last of them, no later peer can contribute.
      const due = (r: MessageRow) => Math.max(r.next_attempt_at!, r.peer_next_attempt_at ?? 0);
      let rows: MessageRow[] = [];
      for (const p of peers) {
        if (rows.length >= max && due(rows[max - 1]!) < p.dueAt) break;
        rows = rows.concat(this.#s.dueForPeer.all(p.peerIdentity, now, max) as MessageRow[]);
        // Stable: ties keep each peer's own (rowid) order from the index.
        rows.sort((a, b) => due(a) - due(b) || a.sort_at - b.sort_at);
      }
      return rows.slice(0, max).map(messageFromRow);
    });
  }

  queuedPeers(opts: { excludePeers?: Iterable<string> } = {}): QueuedPeer[] {
    return this.#run('queuedPeers', () => this.#queuedPeers(opts.excludePeers));
  }

  dueForPeer(peerIdentity: string, now: number, limit: number): StoredMessage[] {
    return this.#run('dueForPeer', () =>
      (this.#s.dueForPeer.all(peerIdentity, now, Math.max(0, Math.trunc(limit))) as MessageRow[]).map(messageFromRow));
  }

  nextDueAt(opts: { excludePeers?: Iterable<string> } = {}): number | null {
    return this.#run('nextDueAt', () => {
      let t = (this.#s.nextExpiry.get() as { t: number | null }).t;
      const first = this.#queuedPeers(opts.excludePeers)[0];
      if (first && (t === null || first.dueAt < t)) t = first.dueAt;
      return t;
    });
  }

  /**
   * Every peer with queued messages, minus `exclude`, with the time its first is due (the later of
   * its earliest own next_attempt_at and the peer's backoff), earliest first. O(peers · log n).
   */
  #queuedPeers(exclude: Iterable<string> = []): QueuedPeer[] {
    const skip = new Set(exclude);
    const out: QueuedPeer[] = [];
    for (const r of this.#s.queuedPeers.all() as { peer: string; own: number; pnext: number | null; failures: number | null }[]) {
      if (skip.has(r.peer)) continue;
      out.push({ peerIdentity: r.peer, dueAt: Math.max(r.own, r.pnext ?? 0), failures: r.failures ?? 0 });
    }
    return out.sort((a, b) => a.dueAt - b.dueAt);
  }

  nextExpiryAt(): number | null {
    return this.#run('nextExpiryAt', () => (this.#s.nextExpiry.get() as { t: number | null }).t);
  }

  expireDue(now: number, limit = -1): string[] {
    return this.#run('expireDue', () =>
      this.#tx(() => {
        const ids = (this.#s.expiring.all(now, limit < 0 ? -1 : Math.trunc(limit)) as { id: string }[]).map((r) => r.id);
        for (const id of ids) {
          this.#s.setState.run({ id, state: 'expired', reason: 'TTL passed', error_code: null, delivered_at: null });
          this.#event(id, now, 'expired', 'TTL passed');
        }
        return ids;
      }),
    );
  }

  beginAttempt(id: string, at: number): void {
    this.#run('beginAttempt', () =>
      this.#tx(() => {
        // One guarded UPDATE instead of a read and a write: the state check is its WHERE clause.
        if (this.#s.begin.run(id).changes !== 1) {
          const row = this.#stateOf(id);
          throw new StoreError('BAD_STATE', `message ${id} is ${row.state}, expected queued`);
        }
        // No attempt row yet: it is written once, finished (an insert now and an update at the
        // outcome wrote the row, its index and the open-attempt index twice, in two commits).
        this.#event(id, at, 'sending', null);
      }),
    );
  }

  recordAttempt(messageId: string, startedAt: number, finishedAt: number, outcome: AttemptOutcome, errorCode: string | null = null, detail: string | null = null): void {
    this.#run('recordAttempt', () => this.#s.insertFinishedAttempt.run(messageId, startedAt, finishedAt, outcome, errorCode, detail));
  }

  recordAttemptStart(messageId: string, at: number): number {
    return this.#run('recordAttemptStart', () =>
      this.#tx(() => {
        this.#stateOf(messageId);
        this.#s.bumpAttempts.run(messageId);
        return Number(this.#s.insertAttempt.run(messageId, at).lastInsertRowid);
      }),
    );
  }

  recordAttemptFinish(attemptId: number, at: number, outcome: AttemptOutcome, errorCode: string | null = null, detail: string | null = null): void {
    this.#run('recordAttemptFinish', () => {
      const r = this.#s.finishAttempt.run(at, outcome, errorCode, detail, attemptId);
      if (r.changes === 0) throw new StoreError('NOT_FOUND', `no attempt ${attemptId}`);
    });
  }

  scheduleRetry(id: string, nextAt: number, errorCode: string, reason: string | null = null): void {
    this.#run('scheduleRetry', () =>
      this.#tx(() => {
        const row = this.#stateOf(id);
        if (row.state !== 'sending' && row.state !== 'queued') {
          throw new StoreError('BAD_STATE', `message ${id} is ${row.state}, cannot be retried`);
        }
        this.#s.retry.run({ id, next: nextAt, code: errorCode, reason: reason ?? errorCode });
        this.#event(id, this.#now(), 'queued', reason ? `${errorCode}: ${reason}` : errorCode);
      }),
    );
  }

  peerState(peerIdentity: string): PeerState | null {
    return this.#run('peerState', () => {
      const r = this.#s.peerState.get(peerIdentity) as PeerStateRow | undefined;
      return r ? peerStateFromRow(r) : null;
    });
  }

  setPeerState(peerIdentity: string, u: PeerStateUpdate): void {
    this.#run('setPeerState', () => {
      this.#s.setPeerState.run({
        peer: peerIdentity, failures: u.failures, next: u.nextAttemptAt, code: u.lastErrorCode ?? null,
        failure_at: u.lastFailureAt ?? null, success_at: u.lastSuccessAt ?? null, now: this.#now(),
      });
    });
  }

  makeDue(peerIdentity: string, now: number): number {
    return this.#run('makeDue', () =>
      this.#tx(() => this.#s.forgetBackoff.run({ now, peer: peerIdentity }).changes + this.#s.makeDue.run(now, peerIdentity, now).changes),
    );
  }

  resetInFlight(): number {
    return this.#run('resetInFlight', () =>
      this.#tx(() => {
        const now = this.#now();
        const ids = (this.#s.sending.all() as { id: string }[]).map((r) => r.id);
        for (const id of ids) {
          // beginAttempt wrote no attempt row (recordAttemptStart did, and it is closed below).
          if (!this.#s.openAttempt.get(id)) {
            const started = (this.#s.lastSendingAt.get(id) as { at: number | null }).at ?? now;
            this.#s.insertFinishedAttempt.run(id, started, now, 'aborted', null, null);
          }
          this.#s.setState.run({ id, state: 'queued', reason: 'interrupted', error_code: null, delivered_at: null });
          this.#event(id, now, 'queued', 'interrupted by restart');
        }
        this.#s.abortOpenAttempts.run(now);
        return ids.length;
      }),
    );
  }

  holdForPeer(identity: string, reason: string): number {
    return this.#run('holdForPeer', () =>
      this.#tx(() => {
        const now = this.#now();
        const ids = (this.#s.peerInState.all(identity, 'queued') as { id: string }[]).map((r) => r.id);
        for (const id of ids) {
          this.#s.setState.run({ id, state: 'held', reason, error_code: null, delivered_at: null });
          this.#event(id, now, 'held', reason);
        }
        return ids.length;
      }),
    );
  }

  releaseHeld(identity: string): number {
    return this.#run('releaseHeld', () =>
      this.#tx(() => {
        const now = this.#now();
        const ids = (this.#s.peerInState.all(identity, 'held') as { id: string }[]).map((r) => r.id);
        for (const id of ids) {
          this.#s.setState.run({ id, state: 'queued', reason: null, error_code: null, delivered_at: null });
          this.#s.setNextAttempt.run(now, id);
          this.#event(id, now, 'queued', 'released');
        }
        return ids.length;
      }),
    );
  }

  listEvents(id: string): MessageEvent[] {
    return this.#run('listEvents', () => (this.#s.events.all(id) as { at: number; state: string; detail: string | null }[]).map(eventFromRow));
  }

  listAttempts(id: string): Attempt[] {
    return this.#run('listAttempts', () => (this.#s.attempts.all(id) as AttemptRow[]).map(attemptFromRow));
  }

  // ── incoming ───────────────────────────────────────────────────────────────

  #commitOne(m: NewIncoming): CommitResult {
    const seen = this.#s.getSeen.get(m.id) as { sender_identity: string; envelope_hash: Buffer; receipt: Buffer } | undefined;
    if (seen) {
      return {
        duplicate: true,
        receipt: bytes(seen.receipt),
        conflict: seen.sender_identity !== m.peerIdentity || !sameBytes(seen.envelope_hash, m.envelopeHash),
      };
    }
    const existing = this.#s.getMessage.get(m.id) as MessageRow | undefined;
    if (existing) {
      // The dedup row was pruned but the message is still here: still a duplicate.
      if (existing.direction !== 'in' || !existing.receipt) {
        throw new StoreError('CONSTRAINT', `incoming id ${m.id} collides with an outgoing message`);
      }
      return {
        duplicate: true,
        receipt: bytes(existing.receipt),
        conflict: existing.peer_identity !== m.peerIdentity || !existing.envelope_hash || !sameBytes(existing.envelope_hash, m.envelopeHash),
      };
    }
    this.#s.insertMessage.run({
      id: m.id, direction: 'in', kind: m.kind, peer_identity: m.peerIdentity, peer_onion: m.peerOnion ?? null,
      peer_label: m.peerLabel ?? null, subject: m.subject ?? null, thread_id: m.threadId ?? m.id,
      in_reply_to: m.inReplyTo ?? null, created_at: m.createdAt, expires_at: m.expiresAt, received_at: m.receivedAt,
      sort_at: m.receivedAt, state: 'received', state_reason: null, envelope_hash: m.envelopeHash,
      receipt: m.receipt, next_attempt_at: null, control: null,
    });
    this.#s.insertContent.run(m.id, m.body, null);
    this.#mail.addAttachments(m.id, m.attachments);
    // No dedup row: while the message is here its own row answers a duplicate (above), and
    // deleting it writes the dedup row (Mailbox.deleteMessage), one write per message fewer.
    this.#event(m.id, m.receivedAt, 'received', null);
    return { duplicate: false, receipt: bytes(m.receipt), conflict: false };
  }

  commitIncoming(m: NewIncoming): CommitResult {
    return this.#run('commitIncoming', () => this.#tx(() => this.#commitOne(m)));
  }

  commitIncomingBatch(ms: readonly NewIncoming[]): CommitResult[] {
    return this.#run('commitIncomingBatch', () => this.#tx(() => ms.map((m) => this.#commitOne(m))));
  }

  pruneSeen(now: number): number {
    return this.#run('pruneSeen', () => this.#s.pruneSeen.run(now).changes);
  }

  // ── reading ────────────────────────────────────────────────────────────────

  getMessage(id: string): StoredMessage | null {
    return this.#run('getMessage', () => {
      const r = this.#s.getMessage.get(id) as MessageRow | undefined;
      return r ? messageFromRow(r) : null;
    });
  }

  listMessages(opts: ListOptions = {}): StoredMessage[] {
    return this.#run('listMessages', () => {
      // Control messages are never listed (they are not mail; PROTOCOL.md §9.2).
      const where: string[] = ['control IS NULL'];
      const params: Record<string, string | number> = {};
      if (opts.direction) (where.push('direction = @direction'), (params.direction = opts.direction));
      if (opts.kind) (where.push('kind = @kind'), (params.kind = opts.kind));
      if (opts.thread) (where.push('thread_id = @thread'), (params.thread = opts.thread));
      if (opts.peer) (where.push('peer_identity = @peer'), (params.peer = opts.peer));
      if (opts.state) (where.push('state = @state'), (params.state = opts.state));
      if (opts.states) {
        // States are a fixed vocabulary; bound one by one so the statement cache stays small.
        const names = opts.states.map((st, i) => ((params[`st${i}`] = st), `@st${i}`));
        where.push(names.length ? `state IN (${names.join(', ')})` : '0');
      }
      if (opts.archived !== undefined) (where.push('archived = @archived'), (params.archived = opts.archived ? 1 : 0));
      if (opts.idPrefix !== undefined) {
        // Ids are lower-case hex; anything else matches nothing (and never reaches GLOB as a pattern).
        if (!/^[0-9a-f]*$/.test(opts.idPrefix)) return [];
        where.push('id GLOB @idGlob');
        params.idGlob = `${opts.idPrefix}*`;
      }
      if (typeof opts.before === 'number') (where.push('sort_at < @beforeAt'), (params.beforeAt = opts.before));
      else if (opts.before) {
        where.push('(sort_at < @beforeAt OR (sort_at = @beforeAt AND id < @beforeId))');
        params.beforeAt = opts.before.at;
        params.beforeId = opts.before.id;
      }
      params.limit = Math.min(MAX_LIST, Math.max(0, Math.trunc(opts.limit ?? 50)));
      const sql = `SELECT * FROM message_rows WHERE ${where.join(' AND ')} ORDER BY sort_at DESC, id DESC LIMIT @limit`;
      let stmt = this.#listCache.get(sql);
      if (!stmt) this.#listCache.set(sql, (stmt = this.#db.prepare(sql)));
      return (stmt.all(params) as MessageRow[]).map(messageFromRow);
    });
  }

  listThreads(opts: { limit?: number } = {}): ThreadSummary[] {
    return this.#run('listThreads', () => {
      const limit = Math.min(MAX_LIST, Math.max(0, Math.trunc(opts.limit ?? 50)));
      type Row = { thread_id: string; subject: string | null; peer_identity: string; peer_label: string | null; kind: string; last_at: number; n: number; unread: number };
      return (this.#s.threads.all(limit) as Row[]).map((r) => ({
        threadId: r.thread_id, subject: r.subject, peerIdentity: r.peer_identity, peerLabel: r.peer_label,
        kind: r.kind as ThreadSummary['kind'], lastAt: r.last_at, messages: r.n, unread: r.unread,
      }));
    });
  }

  markRead(id: string, read = true): void {
    this.#run('markRead', () => {
      if (this.#s.markRead.run(read ? 1 : 0, id).changes === 0) throw new StoreError('NOT_FOUND', `no message ${id}`);
    });
  }

  markPeerRead(peerIdentity: string, ids: readonly string[], at: number): string[] {
    return this.#run('markPeerRead', () => this.#tx(() => ids.filter((id) => this.#s.markPeerRead.run(at, id, peerIdentity).changes > 0)));
  }

  pruneControl(): number {
    return this.#run('pruneControl', () => this.#s.pruneControl.run().changes);
  }

  counts(): StoreCounts {
    return this.#run('counts', () => {
      const n = new Map((this.#s.counts.all() as { key: string; n: number }[]).map((r) => [r.key, r.n]));
      const c = (key: string) => n.get(key) ?? 0;
      return {
        queued: c('out:queued'), sending: c('out:sending'), delivered: c('out:delivered'), expired: c('out:expired'),
        failed: c('out:failed'), held: c('out:held'), inbox: c('in:received'), unread: c('in:unread'),
      };
    });
  }

  // ── everyday use (mailbox.ts) ──────────────────────────────────────────────

  search(query: string, opts?: SearchOptions): StoredMessage[] {
    return this.#run('search', () => this.#mail.search(query, opts));
  }

  setArchived(id: string, archived: boolean): void {
    this.#run('setArchived', () => this.#mail.setArchived(id, archived));
  }

  deleteMessage(id: string): boolean {
    return this.#run('deleteMessage', () => this.#tx(() => this.#mail.deleteMessage(id)));
  }

  getAttachments(messageId: string): StoredAttachment[] {
    return this.#run('getAttachments', () => this.#mail.getAttachments(messageId));
  }

  saveDraft(d: DraftInput): Draft {
    return this.#run('saveDraft', () => this.#tx(() => this.#mail.saveDraft(d)));
  }

  getDraft(id: string): Draft | null {
    return this.#run('getDraft', () => this.#mail.getDraft(id));
  }

  listDrafts(opts?: { limit?: number }): Draft[] {
    return this.#run('listDrafts', () => this.#mail.listDrafts(opts));
  }

  deleteDraft(id: string): boolean {
    return this.#run('deleteDraft', () => this.#mail.deleteDraft(id));
  }

  retryNow(id: string, now: number): boolean {
    return this.#run('retryNow', () => this.#mail.retryNow(id, now));
  }

  setPeerName(identityKey: string, name: string | null, owner?: string | null): void {
    this.#run('setPeerName', () => this.#mail.setPeerName(identityKey, name, owner ?? null));
  }

  peerNames(): Map<string, PeerName> {
    return this.#run('peerNames', () => this.#mail.peerNames());
  }

  getPeerName(identityKey: string): PeerName | null {
    return this.#run('getPeerName', () => this.#mail.getPeerName(identityKey));
  }

  setRejectedKey(contactIdentity: string, rejected: Omit<RejectedKey, 'contactIdentity' | 'rejectedAt'> | null): void {
    this.#run('setRejectedKey', () => this.#mail.setRejectedKey(contactIdentity, rejected));
  }

  getRejectedKey(contactIdentity: string): RejectedKey | null {
    return this.#run('getRejectedKey', () => this.#mail.getRejectedKey(contactIdentity));
  }

  // ── contacts ───────────────────────────────────────────────────────────────

  upsertContact(c: ContactInput): Contact {
    return this.#run('upsertContact', () =>
      this.#tx(() => {
        const key = aliasKey(c.alias);
        const now = this.#now();
        this.#s.upsertContact.run({
          alias_key: key, alias: c.alias.trim(), identity_key: c.identityKey, encryption_key: c.encryptionKey ?? null,
          onion: c.onion, source: c.source, registry_name: c.registryName ?? null, registry_owner: c.registryOwner ?? null,
          registry_version: c.registryVersion ?? null, pinned_bundle: c.pinnedBundle ?? null, pinned_at: c.pinnedAt ?? null,
          key_change: c.keyChange ? JSON.stringify(c.keyChange) : null, notes: c.notes ?? null, now,
        });
        return contactFromRow(this.#s.contactByKey.get(key) as ContactRow);
      }),
    );
  }

  getContact(aliasOrIdentity: string): Contact | null {
    return this.#run('getContact', () => {
      const r = this.#s.findContact.get({ ident: aliasOrIdentity, key: aliasKey(aliasOrIdentity) }) as ContactRow | undefined;
      return r ? contactFromRow(r) : null;
    });
  }

  listContacts(): Contact[] {
    return this.#run('listContacts', () => (this.#s.contacts.all() as ContactRow[]).map(contactFromRow));
  }

  removeContact(alias: string): boolean {
    return this.#run('removeContact', () => this.#s.removeContact.run(alias, aliasKey(alias)).changes > 0);
  }

  setKeyChange(alias: string, info: KeyChange | null): void {
    this.#run('setKeyChange', () => {
      const r = this.#s.setKeyChange.run(info ? JSON.stringify(info) : null, this.#now(), alias, aliasKey(alias));
      if (r.changes === 0) throw new StoreError('NOT_FOUND', `no contact ${alias}`);
    });
  }

  // ── settings and housekeeping ──────────────────────────────────────────────

  getSetting(key: string): string | null {
    return this.#run('getSetting', () => (this.#s.getKv.get(key) as { value: string } | undefined)?.value ?? null);
  }

  setSetting(key: string, value: string | null): void {
    this.#run('setSetting', () => {
      if (value === null) this.#s.delKv.run(key);
      else this.#s.setKv.run(key, value);
    });
  }

  diagnostics(opts: { quickCheck?: boolean } = {}): StoreDiagnostics {
    return this.#run('diagnostics', () => {
      const p = (name: string) => this.#db.pragma(name, { simple: true }) as number | string;
      const d: StoreDiagnostics = {
        journalMode: String(p('journal_mode')),
        synchronous: Number(p('synchronous')),
        foreignKeys: Number(p('foreign_keys')) === 1,
        busyTimeoutMs: Number(p('busy_timeout')),
        walAutocheckpointPages: Number(p('wal_autocheckpoint')),
        journalSizeLimit: Number(p('journal_size_limit')),
        pageSize: Number(p('page_size')),
        pageCount: Number(p('page_count')),
        maxPageCount: Number(p('max_page_count')),
      };
      if (opts.quickCheck) d.quickCheck = String(p('quick_check'));
      return d;
    });
  }

  checkpoint(): void {
    this.#run('checkpoint', () => {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#db.close();
    } catch (err) {
      throw toStoreError(err, 'close');
    }
  }
}

function prepareAll(db: Db) {
  return {
    getMessage: db.prepare('SELECT * FROM message_rows WHERE id = ?'),
    stateOf: db.prepare('SELECT direction, state FROM messages WHERE id = ?'),
    insertMessage: db.prepare(`
      INSERT INTO messages (id, direction, kind, peer_identity, peer_onion, peer_label, subject, thread_id,
        in_reply_to, created_at, expires_at, received_at, sort_at, state, state_reason, envelope_hash,
        receipt, next_attempt_at, control)
      VALUES (@id, @direction, @kind, @peer_identity, @peer_onion, @peer_label, @subject, @thread_id,
        @in_reply_to, @created_at, @expires_at, @received_at, @sort_at, @state, @state_reason,
        @envelope_hash, @receipt, @next_attempt_at, @control)`),
    insertContent: db.prepare('INSERT INTO message_content (id, body, envelope) VALUES (?, ?, ?)'),
    insertSendKey: db.prepare('INSERT INTO send_keys (idem_key, message_id, request_hash, created_at) VALUES (?, ?, ?, ?)'),
    sendKey: db.prepare('SELECT message_id, request_hash FROM send_keys WHERE idem_key = ?'),
    setEnvelope: db.prepare('UPDATE message_content SET envelope = ? WHERE id = ?'),
    setEnvelopeHash: db.prepare('UPDATE messages SET envelope_hash = ? WHERE id = ?'),
    insertEvent: db.prepare('INSERT INTO message_events (message_id, at, state, detail) VALUES (?, ?, ?, ?)'),
    setState: db.prepare(`
      UPDATE messages SET state = @state, state_reason = @reason,
        last_error_code = COALESCE(@error_code, last_error_code),
        delivered_at = COALESCE(@delivered_at, delivered_at)
      WHERE id = @id`),
    setNextAttempt: db.prepare('UPDATE messages SET next_attempt_at = ? WHERE id = ?'),
    markDelivered: db.prepare(`
      UPDATE messages SET state = 'delivered', receipt = ?, delivered_at = ?, next_attempt_at = NULL, state_reason = NULL
      WHERE id = ? AND direction = 'out' AND state IN ('sending', 'queued')`),
    begin: db.prepare(`UPDATE messages SET state = 'sending', state_reason = NULL, attempts = attempts + 1 WHERE id = ? AND state = 'queued'`),
    // A loose index scan over messages_due_by_peer: one seek per distinct queued peer, and its
    // backoff by primary key.
    queuedPeers: db.prepare(`
      WITH RECURSIVE peers (p) AS (
        SELECT (SELECT peer_identity FROM messages WHERE state = 'queued' ORDER BY peer_identity LIMIT 1)
        UNION ALL
        SELECT (SELECT peer_identity FROM messages WHERE state = 'queued' AND peer_identity > p ORDER BY peer_identity LIMIT 1)
        FROM peers WHERE p IS NOT NULL)
      SELECT p AS peer, (SELECT MIN(next_attempt_at) FROM messages WHERE state = 'queued' AND peer_identity = p) AS own,
        s.next_attempt_at AS pnext, s.failures AS failures
      FROM peers LEFT JOIN peer_state s ON s.peer_identity = p WHERE p IS NOT NULL`),
    // message_rows, naming its index.
    dueForPeer: db.prepare(`
      SELECT m.*, c.body AS body, c.envelope AS envelope, p.next_attempt_at AS peer_next_attempt_at
      FROM messages m INDEXED BY messages_due_by_peer JOIN message_content c ON c.id = m.id
        LEFT JOIN peer_state p ON p.peer_identity = m.peer_identity
      WHERE m.state = 'queued' AND m.peer_identity = ? AND m.next_attempt_at <= ?
      ORDER BY m.next_attempt_at, m.sort_at LIMIT ?`),
    nextExpiry: db.prepare(`SELECT MIN(expires_at) AS t FROM messages WHERE state IN ('queued', 'held')`),
    expiring: db.prepare(`SELECT id FROM messages WHERE state IN ('queued', 'held') AND expires_at <= ? ORDER BY expires_at LIMIT ?`),
    bumpAttempts: db.prepare('UPDATE messages SET attempts = attempts + 1 WHERE id = ?'),
    insertAttempt: db.prepare('INSERT INTO attempts (message_id, started_at) VALUES (?, ?)'),
    finishAttempt: db.prepare('UPDATE attempts SET finished_at = ?, outcome = ?, error_code = ?, detail = ? WHERE id = ?'),
    insertFinishedAttempt: db.prepare('INSERT INTO attempts (message_id, started_at, finished_at, outcome, error_code, detail) VALUES (?, ?, ?, ?, ?, ?)'),
    openAttempt: db.prepare('SELECT 1 FROM attempts WHERE message_id = ? AND finished_at IS NULL'),
    lastSendingAt: db.prepare(`SELECT MAX(at) AS at FROM message_events WHERE message_id = ? AND state = 'sending'`),
    abortOpenAttempts: db.prepare(`UPDATE attempts SET finished_at = ?, outcome = 'aborted' WHERE finished_at IS NULL`),
    retry: db.prepare(`
      UPDATE messages SET state = 'queued', next_attempt_at = @next, last_error_code = @code, state_reason = @reason
      WHERE id = @id`),
    makeDue: db.prepare(`UPDATE messages SET next_attempt_at = ? WHERE peer_identity = ? AND state = 'queued' AND next_attempt_at > ?`),
    peerState: db.prepare('SELECT * FROM peer_state WHERE peer_identity = ?'),
    setPeerState: db.prepare(`
      INSERT INTO peer_state (peer_identity, failures, next_attempt_at, last_error_code, last_failure_at, last_success_at, updated_at)
      VALUES (@peer, @failures, @next, @code, @failure_at, @success_at, @now)
      ON CONFLICT (peer_identity) DO UPDATE SET failures = excluded.failures, next_attempt_at = excluded.next_attempt_at,
        last_error_code = COALESCE(excluded.last_error_code, last_error_code),
        last_failure_at = COALESCE(excluded.last_failure_at, last_failure_at),
        last_success_at = COALESCE(excluded.last_success_at, last_success_at), updated_at = excluded.updated_at`),
    forgetBackoff: db.prepare(`
      UPDATE peer_state SET failures = 0, next_attempt_at = @now, updated_at = @now
      WHERE peer_identity = @peer AND (failures > 0 OR next_attempt_at > @now)`),
    // A literal state, so that the partial index messages_sending applies.
    sending: db.prepare(`SELECT id FROM messages WHERE state = 'sending' ORDER BY sort_at, id`),
    peerInState: db.prepare('SELECT id FROM messages WHERE peer_identity = ? AND state = ? ORDER BY sort_at, id'),
    events: db.prepare('SELECT at, state, detail FROM message_events WHERE message_id = ? ORDER BY seq'),
    attempts: db.prepare('SELECT * FROM attempts WHERE message_id = ? ORDER BY id'),
    getSeen: db.prepare('SELECT sender_identity, envelope_hash, receipt FROM seen WHERE message_id = ?'),
    pruneSeen: db.prepare('DELETE FROM seen WHERE keep_until < ?'),
    threads: db.prepare(`
      SELECT thread_id, MAX(sort_at) AS last_at, peer_identity, peer_label, kind, COUNT(*) AS n,
        COUNT(*) FILTER (WHERE direction = 'in' AND read = 0) AS unread,
        (SELECT subject FROM messages r WHERE r.thread_id = m.thread_id ORDER BY sort_at, id LIMIT 1) AS subject
      FROM messages m WHERE control IS NULL GROUP BY thread_id ORDER BY last_at DESC, thread_id LIMIT ?`),
    markRead: db.prepare('UPDATE messages SET read = ? WHERE id = ? AND control IS NULL'),
    markPeerRead: db.prepare(`
      UPDATE messages SET peer_read_at = ?
      WHERE id = ? AND peer_identity = ? AND direction = 'out' AND control IS NULL AND peer_read_at IS NULL`),
    pruneControl: db.prepare(`DELETE FROM messages WHERE control IS NOT NULL AND state IN ('delivered', 'failed', 'expired')`),
    // Kept by triggers (schema v4): O(1) however many messages there are.
    counts: db.prepare('SELECT key, n FROM message_counts'),
    upsertContact: db.prepare(`
      INSERT INTO contacts (alias_key, alias, identity_key, encryption_key, onion, source, registry_name, registry_owner,
        registry_version, pinned_bundle, pinned_at, key_change, notes, created_at, updated_at)
      VALUES (@alias_key, @alias, @identity_key, @encryption_key, @onion, @source, @registry_name, @registry_owner,
        @registry_version, @pinned_bundle, @pinned_at, @key_change, @notes, @now, @now)
      ON CONFLICT (alias_key) DO UPDATE SET alias = excluded.alias, identity_key = excluded.identity_key,
        encryption_key = excluded.encryption_key, onion = excluded.onion, source = excluded.source,
        registry_name = excluded.registry_name, registry_owner = excluded.registry_owner,
        registry_version = excluded.registry_version, pinned_bundle = excluded.pinned_bundle,
        pinned_at = excluded.pinned_at, key_change = excluded.key_change, notes = excluded.notes,
        updated_at = excluded.updated_at`),
    contactByKey: db.prepare('SELECT * FROM contacts WHERE alias_key = ?'),
    findContact: db.prepare('SELECT * FROM contacts WHERE identity_key = @ident OR alias_key = @key ORDER BY identity_key = @ident DESC LIMIT 1'),
    contacts: db.prepare('SELECT * FROM contacts ORDER BY alias_key'),
    removeContact: db.prepare('DELETE FROM contacts WHERE identity_key = ? OR alias_key = ?'),
    setKeyChange: db.prepare('UPDATE contacts SET key_change = ?, updated_at = ? WHERE identity_key = ? OR alias_key = ?'),
    getKv: db.prepare('SELECT value FROM kv WHERE key = ?'),
    setKv: db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    delKv: db.prepare('DELETE FROM kv WHERE key = ?'),
  };
}
