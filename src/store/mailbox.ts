/**
 * The store's everyday-use tables (schema v4): attachments, the archive flag, deletion, drafts and
 * full-text search. SqliteStore delegates to this class inside its error mapping and transactions;
 * every method here assumes it already runs in one (the caller's #run / #tx).
 */
import type { Database as Db, Statement } from 'better-sqlite3';
import { StoreError } from './errors.js';
import { bytes, messageFromRow, type MessageRow } from './rows.js';
import type { Direction, Draft, DraftInput, PeerName, RejectedKey, SearchOptions, StoredAttachment, StoredMessage } from './types.js';

/** The envelope's limit (crypto's MAX_ATTACHMENTS); the schema checks it again. */
const MAX_ATTACHMENTS = 16;
const MAX_LIST = 1_000;

interface AttachmentRow {
  idx: number;
  name: string;
  media_type: string;
  data: Buffer;
}

interface DraftRow {
  id: string;
  kind: string;
  recipient: string;
  subject: string;
  body: string;
  thread_id: string | null;
  in_reply_to: string | null;
  created_at: number;
  updated_at: number;
}

/**
 * The FTS5 query for what a person typed: each word a prefix, all words required. Quotes are
 * doubled, so nothing typed is read as FTS5 syntax (NEAR, OR, column filters, `*`). Words without a
 * letter or digit are left out (the tokenizer would make nothing of them). '' when no word is left.
 */
export function ftsQuery(typed: string): string {
  return typed
    .split(/\s+/)
    .filter((w) => /[\p{L}\p{N}]/u.test(w))
    .slice(0, 16)
    .map((w) => `"${w.replaceAll('"', '""')}"*`)
    .join(' ');
}

/** A LIKE pattern matching values that start with `s` (with `\` as the escape). */
function likePrefix(s: string): string {
  return `${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function attachmentFromRow(r: AttachmentRow, withData = true): StoredAttachment {
  return { name: r.name, mediaType: r.media_type, data: withData ? bytes(r.data) : new Uint8Array(0) };
}

export class Mailbox {
  readonly #db: Db;
  readonly #now: () => number;
  readonly #s: ReturnType<typeof prepare>;
  readonly #searchCache = new Map<string, Statement>();

  readonly #dedupSkewMs: number;

  /** `dedupSkewMs`: how long past its expiry a deleted incoming message's id is still known (StoreOptions). */
  constructor(db: Db, now: () => number, dedupSkewMs: number) {
    this.#db = db;
    this.#now = now;
    this.#dedupSkewMs = dedupSkewMs;
    this.#s = prepare(db);
  }

  /** Stores a new message's files (inside the insert's transaction). */
  addAttachments(messageId: string, list: readonly StoredAttachment[] | undefined): void {
    if (!list || list.length === 0) return;
    if (list.length > MAX_ATTACHMENTS) throw new StoreError('CONSTRAINT', `more than ${MAX_ATTACHMENTS} attachments`);
    list.forEach((a, i) => this.#s.insertAttachment.run(messageId, i, a.name, a.mediaType, a.data));
    this.#s.setAttachmentCount.run(list.length, messageId);
  }

  getAttachments(messageId: string): StoredAttachment[] {
    return (this.#s.attachments.all(messageId) as AttachmentRow[]).map((r) => attachmentFromRow(r));
  }

  setArchived(id: string, archived: boolean): void {
    if (this.#s.setArchived.run(archived ? 1 : 0, id).changes === 0) throw new StoreError('NOT_FOUND', `no message ${id}`);
  }

  deleteMessage(id: string): boolean {
    const row = this.#s.stateOf.get(id) as { direction: string; state: string } | undefined;
    if (!row) return false;
    if (row.direction === 'out' && (row.state === 'queued' || row.state === 'sending' || row.state === 'held')) {
      throw new StoreError('BAD_STATE', `message ${id} is ${row.state}: cancel it before deleting it`);
    }
    // While an incoming message is here, its row answers a duplicate (the same receipt); once it
    // is gone, its dedup row does, until the sender could no longer re-send it.
    if (row.direction === 'in') this.#s.keepSeen.run({ id, skew: this.#dedupSkewMs, now: this.#now() });
    return this.#s.deleteMessage.run(id).changes > 0;
  }

  search(query: string, opts: SearchOptions = {}): StoredMessage[] {
    const typed = query.trim().normalize('NFKC');
    if (!typed) return [];
    const fts = ftsQuery(typed);
    const where: string[] = ['control IS NULL'];
    const params: Record<string, string | number> = { like: likePrefix(typed.toLowerCase()) };
    const peers = `peer_identity IN (SELECT identity_key FROM contacts WHERE alias_key LIKE @like ESCAPE '\\' OR lower(registry_name) LIKE @like ESCAPE '\\')`;
    if (fts) {
      params.fts = fts;
      where.push(`(id IN (SELECT i.message_id FROM message_search s JOIN message_search_ids i ON i.rowid = s.rowid WHERE message_search MATCH @fts) OR ${peers})`);
    } else {
      where.push(peers);
    }
    if (opts.direction) (where.push('direction = @direction'), (params.direction = opts.direction satisfies Direction));
    params.limit = Math.min(MAX_LIST, Math.max(0, Math.trunc(opts.limit ?? 50)));
    const sql = `SELECT * FROM message_rows WHERE ${where.join(' AND ')} ORDER BY sort_at DESC, id DESC LIMIT @limit`;
    let stmt = this.#searchCache.get(sql);
    if (!stmt) this.#searchCache.set(sql, (stmt = this.#db.prepare(sql)));
    return (stmt.all(params) as MessageRow[]).map(messageFromRow);
  }

  saveDraft(d: DraftInput): Draft {
    const now = this.#now();
    const attachments = d.attachments ?? [];
    if (attachments.length > MAX_ATTACHMENTS) throw new StoreError('CONSTRAINT', `more than ${MAX_ATTACHMENTS} attachments`);
    this.#s.upsertDraft.run({
      id: d.id, kind: d.kind, recipient: d.to, subject: d.subject, body: d.body, thread_id: d.threadId ?? null,
      in_reply_to: d.inReplyTo ?? null, now,
    });
    this.#s.clearDraftAttachments.run(d.id);
    attachments.forEach((a, i) => this.#s.insertDraftAttachment.run(d.id, i, a.name, a.mediaType, a.data));
    return this.getDraft(d.id)!;
  }

  getDraft(id: string): Draft | null {
    const r = this.#s.draft.get(id) as DraftRow | undefined;
    return r ? this.#draftFromRow(r, true) : null;
  }

  listDrafts(opts: { limit?: number } = {}): Draft[] {
    const limit = Math.min(MAX_LIST, Math.max(0, Math.trunc(opts.limit ?? 50)));
    return (this.#s.drafts.all(limit) as DraftRow[]).map((r) => this.#draftFromRow(r, false));
  }

  deleteDraft(id: string): boolean {
    return this.#s.deleteDraft.run(id).changes > 0;
  }

  retryNow(id: string, now: number): boolean {
    return this.#s.retryNow.run(now, id).changes > 0;
  }

  setPeerName(identityKey: string, name: string | null, owner: string | null = null): void {
    if (name === null) this.#s.deletePeerName.run(identityKey);
    else this.#s.upsertPeerName.run(identityKey, name, owner, this.#now());
  }

  peerNames(): Map<string, PeerName> {
    return new Map((this.#s.peerNames.all() as PeerNameRow[]).map((r) => [r.identity_key, peerNameFromRow(r)]));
  }

  getPeerName(identityKey: string): PeerName | null {
    const r = this.#s.peerName.get(identityKey) as PeerNameRow | undefined;
    return r ? peerNameFromRow(r) : null;
  }

  setRejectedKey(contactIdentity: string, rejected: Omit<RejectedKey, 'contactIdentity' | 'rejectedAt'> | null): void {
    if (rejected === null) this.#s.deleteRejected.run(contactIdentity);
    else this.#s.upsertRejected.run(contactIdentity, rejected.identityKey, rejected.registryVersion, this.#now());
  }

  getRejectedKey(contactIdentity: string): RejectedKey | null {
    const r = this.#s.rejected.get(contactIdentity) as { contact_identity: string; identity_key: string; registry_version: number | null; rejected_at: number } | undefined;
    return r ? { contactIdentity: r.contact_identity, identityKey: r.identity_key, registryVersion: r.registry_version, rejectedAt: r.rejected_at } : null;
  }

  #draftFromRow(r: DraftRow, withData: boolean): Draft {
    const files = (withData ? this.#s.draftAttachments : this.#s.draftAttachmentNames).all(r.id) as AttachmentRow[];
    return {
      id: r.id, kind: r.kind as Draft['kind'], to: r.recipient, subject: r.subject, body: r.body, threadId: r.thread_id,
      inReplyTo: r.in_reply_to, attachments: files.map((f) => attachmentFromRow(f, withData)), createdAt: r.created_at, updatedAt: r.updated_at,
    };
  }
}

interface PeerNameRow {
  identity_key: string;
  name: string;
  owner: string | null;
  verified_at: number;
}

function peerNameFromRow(r: PeerNameRow): PeerName {
  return { identityKey: r.identity_key, name: r.name, owner: r.owner, verifiedAt: r.verified_at };
}

function prepare(db: Db) {
  return {
    retryNow: db.prepare(`UPDATE messages SET next_attempt_at = ? WHERE id = ? AND state = 'queued'`),
    upsertPeerName: db.prepare(`
      INSERT INTO peer_names (identity_key, name, owner, verified_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (identity_key) DO UPDATE SET name = excluded.name, owner = excluded.owner, verified_at = excluded.verified_at`),
    deletePeerName: db.prepare('DELETE FROM peer_names WHERE identity_key = ?'),
    peerNames: db.prepare('SELECT * FROM peer_names'),
    peerName: db.prepare('SELECT * FROM peer_names WHERE identity_key = ?'),
    upsertRejected: db.prepare(`
      INSERT INTO rejected_keys (contact_identity, identity_key, registry_version, rejected_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (contact_identity) DO UPDATE SET identity_key = excluded.identity_key,
        registry_version = excluded.registry_version, rejected_at = excluded.rejected_at`),
    deleteRejected: db.prepare('DELETE FROM rejected_keys WHERE contact_identity = ?'),
    rejected: db.prepare('SELECT * FROM rejected_keys WHERE contact_identity = ?'),
    insertAttachment: db.prepare('INSERT INTO message_attachments (message_id, idx, name, media_type, data) VALUES (?, ?, ?, ?, ?)'),
    setAttachmentCount: db.prepare('UPDATE messages SET attachment_count = ? WHERE id = ?'),
    attachments: db.prepare('SELECT idx, name, media_type, data FROM message_attachments WHERE message_id = ? ORDER BY idx'),
    setArchived: db.prepare('UPDATE messages SET archived = ? WHERE id = ?'),
    stateOf: db.prepare('SELECT direction, state FROM messages WHERE id = ?'),
    deleteMessage: db.prepare('DELETE FROM messages WHERE id = ?'),
    keepSeen: db.prepare(`
      INSERT INTO seen (message_id, sender_identity, envelope_hash, receipt, seen_at, keep_until)
      SELECT id, peer_identity, envelope_hash, receipt, coalesce(received_at, @now), expires_at + @skew FROM messages
      WHERE id = @id AND direction = 'in' AND receipt IS NOT NULL AND envelope_hash IS NOT NULL AND expires_at + @skew >= @now
      ON CONFLICT (message_id) DO NOTHING`),
    upsertDraft: db.prepare(`
      INSERT INTO drafts (id, kind, recipient, subject, body, thread_id, in_reply_to, created_at, updated_at)
      VALUES (@id, @kind, @recipient, @subject, @body, @thread_id, @in_reply_to, @now, @now)
      ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, recipient = excluded.recipient, subject = excluded.subject,
        body = excluded.body, thread_id = excluded.thread_id, in_reply_to = excluded.in_reply_to, updated_at = excluded.updated_at`),
    clearDraftAttachments: db.prepare('DELETE FROM draft_attachments WHERE draft_id = ?'),
    insertDraftAttachment: db.prepare('INSERT INTO draft_attachments (draft_id, idx, name, media_type, data) VALUES (?, ?, ?, ?, ?)'),
    draft: db.prepare('SELECT * FROM drafts WHERE id = ?'),
    drafts: db.prepare('SELECT * FROM drafts ORDER BY updated_at DESC, id LIMIT ?'),
    draftAttachments: db.prepare('SELECT idx, name, media_type, data FROM draft_attachments WHERE draft_id = ? ORDER BY idx'),
    draftAttachmentNames: db.prepare("SELECT idx, name, media_type, X'' AS data FROM draft_attachments WHERE draft_id = ? ORDER BY idx"),
    deleteDraft: db.prepare('DELETE FROM drafts WHERE id = ?'),
  };
}
