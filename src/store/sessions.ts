/**
 * Session storage (store migration v7): ratchet states, our prekeys, skipped message keys, seen
 * tags and the receipt keys of queued messages. Bytes in, bytes out: the session layer encodes and
 * decodes (src/session/), the store only keeps them.
 *
 * Every method joins an open `store.batch()` (without a savepoint of its own), so the caller moves
 * the ratchet in the same transaction that queues or commits the message:
 *
 *   send:     store.batch(() => { insertOutgoing(m); sessions.updateState(id, state); sessions.recordOutgoing(...) })
 *   receive:  store.batch(() => { commitIncoming(m); sessions.updateState(...); sessions.putSkippedKeys(...);
 *                                 sessions.deleteSkippedKey(...); sessions.recordSeen(...) })
 *   receipt:  store.batch(() => { markDelivered(id, mac, at); sessions.deleteOutgoing(id) })
 *
 * Outside a batch each method is its own transaction.
 */
import type { Database } from 'better-sqlite3';
import { StoreError } from './errors.js';

export type SessionRole = 'initiator' | 'responder';

export interface StoredSession {
  /** 32 hex chars (the session layer's 16-byte id). */
  id: string;
  /** The peer's Ed25519 identity key, 64 hex chars. */
  peerIdentity: string;
  role: SessionRole;
  /** The encoded session state (src/session encodeState). */
  state: Uint8Array;
  /** The session we send on to this peer. */
  current: boolean;
  /** The peer is known to hold the session (our INIT was receipted, or it sent on it). */
  confirmed: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface NewSession {
  id: string;
  peerIdentity: string;
  role: SessionRole;
  state: Uint8Array;
  /** Responders are confirmed at once; an initiator when its INIT is receipted. */
  confirmed: boolean;
  now: number;
}

export interface StoredSkippedKey {
  k: number;
  tag: Uint8Array;
  headerKey: Uint8Array;
  n: number;
  messageKey: Uint8Array;
  expiresAt: number;
}

export interface SeenEnvelope {
  /** A SESSION tag, or an INIT's SHA256(envelope)[0..16]. */
  seenKey: Uint8Array;
  sessionId: string;
  messageId: string;
  envelopeHash: Uint8Array;
  receipt: Uint8Array;
  expiresAt: number;
}

export interface OutgoingKey {
  messageId: string;
  sessionId: string;
  k: number;
  receiptKey: Uint8Array;
}

export type SignedPrekeyKind = 'x25519' | 'mlkem768';

export interface StoredPrekey {
  id: number;
  /** X25519 secret (32 bytes), or the ML-KEM-768 seed (64 bytes). */
  secret: Uint8Array;
  public: Uint8Array;
  createdAt: number;
}

export interface StoredSignedPrekey extends StoredPrekey {
  kind: SignedPrekeyKind;
  /** null while current. */
  retiredAt: number | null;
  deleteAfter: number | null;
}

export interface StoredOneTimePrekey extends StoredPrekey {
  handedOutAt: number | null;
}

export interface PruneResult {
  /** Skipped keys dropped (drop their tags from the tag window). */
  skipped: { sessionId: string; k: number }[];
  seen: number;
  signedPrekeys: number;
  /** Receipt keys of messages that reached a final state (delivered, expired, failed). */
  outgoing: number;
}

export interface SessionStore {
  // ── sessions ───────────────────────────────────────────────────────────────
  /**
   * Stores a new session and makes it the one we send on to its peer (the previous current one
   * becomes receive-only). CONSTRAINT if the id exists.
   */
  insertSession(s: NewSession): void;
  /** Replaces a session's state after encrypt/decrypt. NOT_FOUND if absent. */
  updateState(id: string, state: Uint8Array, now: number): void;
  /** Marks the session as held by the peer. */
  confirm(id: string): void;
  /** Stops sending on a session (a reset): it stays receive-only; the next send runs an agreement. */
  retire(id: string): void;
  getSession(id: string): StoredSession | null;
  /** The session we send on to `peerIdentity`, or null (then: agreement). */
  currentSession(peerIdentity: string): StoredSession | null;
  /** Every session, oldest first: what the tag window is rebuilt from at start. */
  listSessions(): StoredSession[];
  /**
   * Deletes a session and its skipped keys (not its seen tags: dedup outlives it). Returns the
   * counters of the skipped keys it had, for the tag window.
   */
  deleteSession(id: string): number[];
  /** Receive-only sessions of `peerIdentity` with no skipped keys left (safe to delete), oldest first. */
  idleSessions(peerIdentity: string): string[];

  // ── skipped message keys ───────────────────────────────────────────────────
  /**
   * Stores keys a message made us skip, then keeps at most `maxPerSession` for that session,
   * dropping the lowest counters. Returns the counters dropped (drop their tags).
   */
  putSkippedKeys(sessionId: string, keys: readonly StoredSkippedKey[], maxPerSession: number): number[];
  getSkippedKey(sessionId: string, k: number): StoredSkippedKey | null;
  deleteSkippedKey(sessionId: string, k: number): void;
  /** A session's skipped keys by counter: the tag window's second half. */
  listSkippedKeys(sessionId: string): StoredSkippedKey[];

  // ── seen envelopes (dedup before decryption) ───────────────────────────────
  /** CONSTRAINT if the seen key is already recorded. */
  recordSeen(s: SeenEnvelope): void;
  getSeen(seenKey: Uint8Array): SeenEnvelope | null;

  // ── receipt keys of queued messages ────────────────────────────────────────
  /** Replaces any earlier key of the message (a re-encryption after a reset). */
  recordOutgoing(o: OutgoingKey): void;
  getOutgoing(messageId: string): OutgoingKey | null;
  deleteOutgoing(messageId: string): void;
  /** Message ids queued under a session (what a reset re-encrypts), by counter. */
  outgoingBySession(sessionId: string): string[];
  /**
   * A reset's re-encryption: replaces the envelope of an outgoing message that is not delivered yet
   * (queued, sending or held). The only time a message's bytes change: its old session is gone at
   * the receiver, so the old bytes can never be accepted. BAD_STATE otherwise, NOT_FOUND if absent.
   */
  replaceEnvelope(messageId: string, envelope: Uint8Array, envelopeHash: Uint8Array): void;
  /**
   * Outgoing messages to `peerIdentity` that wait for an envelope (queued unsealed, or unsealed by
   * a reset), queued or sending, oldest first: what the next agreement or sealing encrypts.
   */
  unsealedOutgoing(peerIdentity: string): string[];
  /**
   * A reset (PROTOCOL.md §7.4): the session stops sending, and every undelivered message queued
   * under it (queued, sending or held) loses its envelope, to be encrypted again in a new session
   * (same id). Returns those message ids. NOT_FOUND if the session is absent.
   */
  resetSession(id: string): string[];
  /** The message a session's INIT carried (counter 0) and its state, while its receipt key is kept. */
  initMessage(sessionId: string): { messageId: string; state: string } | null;
  /**
   * Counters of a session's queued messages, while their receipt keys are kept: the highest of
   * those delivered, and the lowest of those not yet (queued, sending or held). Nulls when none.
   */
  counters(sessionId: string): { highestDelivered: number | null; lowestPending: number | null };

  // ── our prekeys ────────────────────────────────────────────────────────────
  /**
   * Adds a signed prekey as the current one of its kind; the previous current one is retired now
   * and kept until `now + keepRetiredMs` (maxTtl + maxClockSkew: mail sealed to it may still come).
   */
  addSignedPrekey(kind: SignedPrekeyKind, k: { id: number; secret: Uint8Array; public: Uint8Array }, now: number, keepRetiredMs: number): void;
  currentSignedPrekey(kind: SignedPrekeyKind): StoredSignedPrekey | null;
  /** Current or retired, while kept. */
  getSignedPrekey(kind: SignedPrekeyKind, id: number): StoredSignedPrekey | null;
  addOneTimePrekeys(keys: readonly { id: number; secret: Uint8Array; public: Uint8Array }[], now: number): void;
  /** Hands out the lowest-id one-time prekey not handed out before and marks it; null when none is left. */
  handOutOneTimePrekey(now: number): { id: number; public: Uint8Array } | null;
  getOneTimePrekey(id: number): StoredOneTimePrekey | null;
  /** After an INIT used it (same transaction as the commit). */
  deleteOneTimePrekey(id: number): void;
  oneTimePrekeyCounts(): { available: number; handedOut: number };
  /** One more than the highest id ever stored of that kind (one-time prekeys: 'one-time'), from 1. Ids only grow. */
  nextPrekeyId(kind: SignedPrekeyKind | 'one-time'): number;

  // ── housekeeping ───────────────────────────────────────────────────────────
  /**
   * Drops skipped keys and seen envelopes past expires_at, retired prekeys past delete_after, and the
   * receipt keys of messages that are delivered, expired or failed (deleteOutgoing does it at once).
   */
  prune(now: number): PruneResult;
}

interface SessionRow {
  id: string;
  peer_identity: string;
  role: string;
  state: Buffer;
  current: number;
  confirmed: number;
  created_at: number;
  updated_at: number;
}

interface SkippedRow {
  k: number;
  tag: Buffer;
  header_key: Buffer;
  n: number;
  message_key: Buffer;
  expires_at: number;
}

const b = (x: Buffer): Uint8Array => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
const EMPTY = new Uint8Array(0);

function sessionFromRow(r: SessionRow): StoredSession {
  return {
    id: r.id, peerIdentity: r.peer_identity, role: r.role as SessionRole, state: b(r.state), current: r.current === 1,
    confirmed: r.confirmed === 1, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

function skippedFromRow(r: SkippedRow): StoredSkippedKey {
  return { k: r.k, tag: b(r.tag), headerKey: b(r.header_key), n: r.n, messageKey: b(r.message_key), expiresAt: r.expires_at };
}

/** `run(what, fn)` is the store's wrapper: CLOSED check, errors mapped, joins an open batch. */
export function createSessionStore(db: Database, run: <T>(what: string, fn: () => T) => T): SessionStore {
  const s = {
    insertSession: db.prepare(`
      INSERT INTO sessions (id, peer_identity, role, state, current, confirmed, created_at, updated_at)
      VALUES (?, ?, ?, ?, 1, ?, ?, ?)`),
    demote: db.prepare('UPDATE sessions SET current = 0 WHERE peer_identity = ? AND current = 1'),
    updateState: db.prepare('UPDATE sessions SET state = ?, updated_at = ? WHERE id = ?'),
    confirm: db.prepare('UPDATE sessions SET confirmed = 1 WHERE id = ?'),
    retire: db.prepare('UPDATE sessions SET current = 0 WHERE id = ?'),
    getSession: db.prepare('SELECT * FROM sessions WHERE id = ?'),
    current: db.prepare('SELECT * FROM sessions WHERE peer_identity = ? AND current = 1'),
    listSessions: db.prepare('SELECT * FROM sessions ORDER BY created_at, id'),
    deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
    idle: db.prepare(`
      SELECT id FROM sessions s WHERE peer_identity = ? AND current = 0
        AND NOT EXISTS (SELECT 1 FROM session_skipped_keys k WHERE k.session_id = s.id)
      ORDER BY created_at, id`),
    putSkipped: db.prepare(`
      INSERT INTO session_skipped_keys (session_id, k, tag, header_key, n, message_key, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
    countSkipped: db.prepare('SELECT count(*) AS n FROM session_skipped_keys WHERE session_id = ?'),
    lowestSkipped: db.prepare('SELECT k FROM session_skipped_keys WHERE session_id = ? ORDER BY k LIMIT ?'),
    getSkipped: db.prepare('SELECT * FROM session_skipped_keys WHERE session_id = ? AND k = ?'),
    deleteSkipped: db.prepare('DELETE FROM session_skipped_keys WHERE session_id = ? AND k = ?'),
    listSkipped: db.prepare('SELECT * FROM session_skipped_keys WHERE session_id = ? ORDER BY k'),
    skippedKs: db.prepare('SELECT k FROM session_skipped_keys WHERE session_id = ? ORDER BY k'),
    expiredSkipped: db.prepare('DELETE FROM session_skipped_keys WHERE expires_at <= ? RETURNING session_id, k'),
    recordSeen: db.prepare(`
      INSERT INTO session_seen (seen_key, session_id, message_id, envelope_hash, receipt, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
    getSeen: db.prepare('SELECT * FROM session_seen WHERE seen_key = ?'),
    expiredSeen: db.prepare('DELETE FROM session_seen WHERE expires_at <= ?'),
    recordOutgoing: db.prepare(`
      INSERT INTO session_outgoing (message_id, session_id, k, receipt_key) VALUES (?, ?, ?, ?)
      ON CONFLICT (message_id) DO UPDATE SET session_id = excluded.session_id, k = excluded.k, receipt_key = excluded.receipt_key`),
    getOutgoing: db.prepare('SELECT * FROM session_outgoing WHERE message_id = ?'),
    deleteOutgoing: db.prepare('DELETE FROM session_outgoing WHERE message_id = ?'),
    outgoingBySession: db.prepare('SELECT message_id FROM session_outgoing WHERE session_id = ? ORDER BY k'),
    unsealed: db.prepare(`
      SELECT m.id FROM messages m INDEXED BY messages_peer JOIN message_content c ON c.id = m.id
      WHERE m.peer_identity = ? AND m.state IN ('queued', 'sending') AND m.direction = 'out' AND (c.envelope IS NULL OR length(c.envelope) = 0)
      ORDER BY m.sort_at, m.id`),
    undelivered: db.prepare(`
      SELECT o.message_id AS id FROM session_outgoing o JOIN messages m ON m.id = o.message_id
      WHERE o.session_id = ? AND m.state IN ('queued', 'sending', 'held') ORDER BY o.k`),
    initMessage: db.prepare(`
      SELECT o.message_id AS id, m.state AS state FROM session_outgoing o JOIN messages m ON m.id = o.message_id
      WHERE o.session_id = ? AND o.k = 0`),
    counters: db.prepare(`
      SELECT max(o.k) FILTER (WHERE m.state = 'delivered') AS delivered, min(o.k) FILTER (WHERE m.state IN ('queued', 'sending', 'held')) AS pending
      FROM session_outgoing o JOIN messages m ON m.id = o.message_id WHERE o.session_id = ?`),
    messageState: db.prepare('SELECT direction, state FROM messages WHERE id = ?'),
    setEnvelope: db.prepare('UPDATE message_content SET envelope = ? WHERE id = ?'),
    setEnvelopeHash: db.prepare('UPDATE messages SET envelope_hash = ? WHERE id = ?'),
    // Deposited bytes are not what the message sends once it is encrypted again.
    clearMailboxes: db.prepare('UPDATE messages SET mailboxes = NULL WHERE id = ? AND mailboxes IS NOT NULL'),
    retireSigned: db.prepare(`
      UPDATE session_signed_prekeys SET retired_at = ?, delete_after = ? WHERE kind = ? AND retired_at IS NULL`),
    addSigned: db.prepare(`
      INSERT INTO session_signed_prekeys (kind, id, secret, public, created_at, retired_at, delete_after) VALUES (?, ?, ?, ?, ?, NULL, NULL)`),
    currentSigned: db.prepare('SELECT * FROM session_signed_prekeys WHERE kind = ? AND retired_at IS NULL'),
    getSigned: db.prepare('SELECT * FROM session_signed_prekeys WHERE kind = ? AND id = ?'),
    expiredSigned: db.prepare('DELETE FROM session_signed_prekeys WHERE delete_after <= ?'),
    // Driven by session_outgoing (small: undelivered mail) with a primary-key lookup each, never a
    // scan of messages (which grows with the whole history).
    finishedOutgoing: db.prepare(`
      DELETE FROM session_outgoing AS o
      WHERE (SELECT m.state FROM messages m WHERE m.id = o.message_id) IN ('delivered', 'expired', 'failed')`),
    addOneTime: db.prepare('INSERT INTO session_one_time_prekeys (id, secret, public, created_at, handed_out_at) VALUES (?, ?, ?, ?, NULL)'),
    handOut: db.prepare(`
      UPDATE session_one_time_prekeys SET handed_out_at = ?
      WHERE id = (SELECT id FROM session_one_time_prekeys WHERE handed_out_at IS NULL ORDER BY id LIMIT 1)
      RETURNING id, public`),
    getOneTime: db.prepare('SELECT * FROM session_one_time_prekeys WHERE id = ?'),
    deleteOneTime: db.prepare('DELETE FROM session_one_time_prekeys WHERE id = ?'),
    countOneTime: db.prepare(`
      SELECT count(*) FILTER (WHERE handed_out_at IS NULL) AS available, count(*) FILTER (WHERE handed_out_at IS NOT NULL) AS handed_out
      FROM session_one_time_prekeys`),
    getHigh: db.prepare('SELECT high FROM session_prekey_ids WHERE kind = ?'),
    setHigh: db.prepare('INSERT INTO session_prekey_ids (kind, high) VALUES (?, ?) ON CONFLICT (kind) DO UPDATE SET high = excluded.high'),
  };
  // Prekey ids only grow, per kind, even past deleted rows: an INIT naming a deleted key must find
  // nothing (PREKEY_UNKNOWN), never a newer key under the same id.
  const highWater = (kind: SignedPrekeyKind | 'one-time'): number => (s.getHigh.get(kind) as { high: number } | undefined)?.high ?? 0;
  const claimIds = (kind: SignedPrekeyKind | 'one-time', ids: readonly number[]): void => {
    let high = highWater(kind);
    for (const id of ids) {
      if (id <= high) throw new StoreError('CONSTRAINT', `${kind} prekey id ${id} was used before (ids only grow; next is ${high + 1})`);
      high = id;
    }
    s.setHigh.run(kind, high);
  };

  const signedFromRow = (r: { kind: string; id: number; secret: Buffer; public: Buffer; created_at: number; retired_at: number | null; delete_after: number | null }): StoredSignedPrekey => ({
    kind: r.kind as SignedPrekeyKind, id: r.id, secret: b(r.secret), public: b(r.public), createdAt: r.created_at,
    retiredAt: r.retired_at, deleteAfter: r.delete_after,
  });

  return {
    insertSession: (n) => run('insertSession', () => {
      s.demote.run(n.peerIdentity);
      s.insertSession.run(n.id, n.peerIdentity, n.role, n.state, n.confirmed ? 1 : 0, n.now, n.now);
    }),
    updateState: (id, state, now) => run('updateState', () => {
      if (s.updateState.run(state, now, id).changes !== 1) throw new StoreError('NOT_FOUND', `no session ${id}`);
    }),
    confirm: (id) => run('confirm', () => {
      if (s.confirm.run(id).changes !== 1) throw new StoreError('NOT_FOUND', `no session ${id}`);
    }),
    retire: (id) => run('retire', () => {
      if (s.retire.run(id).changes !== 1) throw new StoreError('NOT_FOUND', `no session ${id}`);
    }),
    getSession: (id) => run('getSession', () => {
      const r = s.getSession.get(id) as SessionRow | undefined;
      return r ? sessionFromRow(r) : null;
    }),
    currentSession: (peer) => run('currentSession', () => {
      const r = s.current.get(peer) as SessionRow | undefined;
      return r ? sessionFromRow(r) : null;
    }),
    listSessions: () => run('listSessions', () => (s.listSessions.all() as SessionRow[]).map(sessionFromRow)),
    deleteSession: (id) => run('deleteSession', () => {
      const ks = (s.skippedKs.all(id) as { k: number }[]).map((r) => r.k);
      s.deleteSession.run(id);
      return ks;
    }),
    idleSessions: (peer) => run('idleSessions', () => (s.idle.all(peer) as { id: string }[]).map((r) => r.id)),

    putSkippedKeys: (sessionId, keys, max) => run('putSkippedKeys', () => {
      for (const k of keys) s.putSkipped.run(sessionId, k.k, k.tag, k.headerKey, k.n, k.messageKey, k.expiresAt);
      const count = (s.countSkipped.get(sessionId) as { n: number }).n;
      if (count <= max) return [];
      const drop = (s.lowestSkipped.all(sessionId, count - max) as { k: number }[]).map((r) => r.k);
      for (const k of drop) s.deleteSkipped.run(sessionId, k);
      return drop;
    }),
    getSkippedKey: (sessionId, k) => run('getSkippedKey', () => {
      const r = s.getSkipped.get(sessionId, k) as SkippedRow | undefined;
      return r ? skippedFromRow(r) : null;
    }),
    deleteSkippedKey: (sessionId, k) => run('deleteSkippedKey', () => void s.deleteSkipped.run(sessionId, k)),
    listSkippedKeys: (sessionId) => run('listSkippedKeys', () => (s.listSkipped.all(sessionId) as SkippedRow[]).map(skippedFromRow)),

    recordSeen: (x) => run('recordSeen', () => {
      s.recordSeen.run(x.seenKey, x.sessionId, x.messageId, x.envelopeHash, x.receipt, x.expiresAt);
    }),
    getSeen: (key) => run('getSeen', () => {
      const r = s.getSeen.get(key) as { seen_key: Buffer; session_id: string; message_id: string; envelope_hash: Buffer; receipt: Buffer; expires_at: number } | undefined;
      return r ? { seenKey: b(r.seen_key), sessionId: r.session_id, messageId: r.message_id, envelopeHash: b(r.envelope_hash), receipt: b(r.receipt), expiresAt: r.expires_at } : null;
    }),

    recordOutgoing: (o) => run('recordOutgoing', () => void s.recordOutgoing.run(o.messageId, o.sessionId, o.k, o.receiptKey)),
    getOutgoing: (id) => run('getOutgoing', () => {
      const r = s.getOutgoing.get(id) as { message_id: string; session_id: string; k: number; receipt_key: Buffer } | undefined;
      return r ? { messageId: r.message_id, sessionId: r.session_id, k: r.k, receiptKey: b(r.receipt_key) } : null;
    }),
    deleteOutgoing: (id) => run('deleteOutgoing', () => void s.deleteOutgoing.run(id)),
    replaceEnvelope: (id, envelope, hash) => run('replaceEnvelope', () => {
      const row = s.messageState.get(id) as { direction: string; state: string } | undefined;
      if (!row) throw new StoreError('NOT_FOUND', `no message ${id}`);
      if (row.direction !== 'out' || !['queued', 'sending', 'held'].includes(row.state)) {
        throw new StoreError('BAD_STATE', `message ${id} is ${row.direction}/${row.state}: only an undelivered outgoing message is re-encrypted`);
      }
      s.setEnvelope.run(envelope, id);
      s.setEnvelopeHash.run(hash, id);
      s.clearMailboxes.run(id);
    }),
    outgoingBySession: (sessionId) => run('outgoingBySession', () => (s.outgoingBySession.all(sessionId) as { message_id: string }[]).map((r) => r.message_id)),
    unsealedOutgoing: (peer) => run('unsealedOutgoing', () => (s.unsealed.all(peer) as { id: string }[]).map((r) => r.id)),
    resetSession: (id) => run('resetSession', () => {
      if (!s.getSession.get(id)) throw new StoreError('NOT_FOUND', `no session ${id}`);
      s.retire.run(id);
      const ids = (s.undelivered.all(id) as { id: string }[]).map((r) => r.id);
      for (const m of ids) {
        s.setEnvelope.run(EMPTY, m);
        s.setEnvelopeHash.run(EMPTY, m);
      }
      return ids;
    }),
    counters: (sessionId) => run('counters', () => {
      const r = s.counters.get(sessionId) as { delivered: number | null; pending: number | null };
      return { highestDelivered: r.delivered, lowestPending: r.pending };
    }),
    initMessage: (sessionId) => run('initMessage', () => {
      const r = s.initMessage.get(sessionId) as { id: string; state: string } | undefined;
      return r ? { messageId: r.id, state: r.state } : null;
    }),

    addSignedPrekey: (kind, k, now, keep) => run('addSignedPrekey', () => {
      claimIds(kind, [k.id]);
      s.retireSigned.run(now, now + keep, kind);
      s.addSigned.run(kind, k.id, k.secret, k.public, now);
    }),
    currentSignedPrekey: (kind) => run('currentSignedPrekey', () => {
      const r = s.currentSigned.get(kind) as Parameters<typeof signedFromRow>[0] | undefined;
      return r ? signedFromRow(r) : null;
    }),
    getSignedPrekey: (kind, id) => run('getSignedPrekey', () => {
      const r = s.getSigned.get(kind, id) as Parameters<typeof signedFromRow>[0] | undefined;
      return r ? signedFromRow(r) : null;
    }),
    addOneTimePrekeys: (keys, now) => run('addOneTimePrekeys', () => {
      claimIds('one-time', keys.map((k) => k.id));
      for (const k of keys) s.addOneTime.run(k.id, k.secret, k.public, now);
    }),
    handOutOneTimePrekey: (now) => run('handOutOneTimePrekey', () => {
      const r = s.handOut.get(now) as { id: number; public: Buffer } | undefined;
      return r ? { id: r.id, public: b(r.public) } : null;
    }),
    getOneTimePrekey: (id) => run('getOneTimePrekey', () => {
      const r = s.getOneTime.get(id) as { id: number; secret: Buffer; public: Buffer; created_at: number; handed_out_at: number | null } | undefined;
      return r ? { id: r.id, secret: b(r.secret), public: b(r.public), createdAt: r.created_at, handedOutAt: r.handed_out_at } : null;
    }),
    deleteOneTimePrekey: (id) => run('deleteOneTimePrekey', () => void s.deleteOneTime.run(id)),
    oneTimePrekeyCounts: () => run('oneTimePrekeyCounts', () => {
      const r = s.countOneTime.get() as { available: number; handed_out: number };
      return { available: r.available, handedOut: r.handed_out };
    }),
    nextPrekeyId: (kind) => run('nextPrekeyId', () => highWater(kind) + 1),

    prune: (now) => run('prune', () => ({
      skipped: (s.expiredSkipped.all(now) as { session_id: string; k: number }[]).map((r) => ({ sessionId: r.session_id, k: r.k })),
      seen: s.expiredSeen.run(now).changes,
      signedPrekeys: s.expiredSigned.run(now).changes,
      outgoing: s.finishedOutgoing.run().changes,
    })),
  };
}
