/**
 * Offline delivery's records (store migration v12, issue 11): which providers hold a message's
 * envelope for its offline recipient, their signed receipts, and which providers each peer's newest
 * bundle lists.
 *
 * Every method joins an open `store.batch()`; outside one each is its own transaction.
 */
import type { Database } from 'better-sqlite3';
import { StoreError } from './errors.js';

/** A provider's signed word that it holds an envelope of ours (src/provider/client.ts DepositReceipt). */
export interface Deposit {
  messageId: string;
  provider: string;
  seq: number;
  envelopeHash: Uint8Array;
  depositedAt: number;
  expiresAt: number;
  /** The provider's Ed25519 signature over the deposit statement (PROTOCOL.md §14.3). */
  receipt: Uint8Array;
}

export interface Deposits {
  /**
   * Records a deposit of the message's current envelope (`envelopeHash` must be it, else
   * BAD_STATE: the message was encrypted again meanwhile) and adds the provider to the message's
   * `mailboxes`. Returns the message's providers after it.
   */
  record(d: Deposit): string[];
  /** The deposits recorded for a message, oldest first. */
  list(messageId: string): Deposit[];
  /** Ids of queued messages to `peerIdentity` that no provider holds, oldest first. */
  undeposited(peerIdentity: string, limit: number): string[];
  /** The providers `peerIdentity`'s newest bundle listed ([] when none is known). */
  peerMailboxes(peerIdentity: string): string[];
  /**
   * Remembers the providers a verified bundle of `peerIdentity` listed, unless a newer bundle's
   * list is stored already. An empty list is stored too (the peer dropped its providers).
   */
  setPeerMailboxes(peerIdentity: string, mailboxes: readonly string[], bundleCreatedAt: number, now: number): void;
}

interface DepositRow {
  message_id: string;
  provider: string;
  seq: number;
  envelope_hash: Buffer;
  deposited_at: number;
  expires_at: number;
  receipt: Buffer;
}

export function createDeposits(db: Database, run: <T>(what: string, fn: () => T) => T): Deposits {
  const s = {
    current: db.prepare('SELECT m.mailboxes AS mailboxes, m.envelope_hash AS hash FROM messages m WHERE id = ?'),
    insert: db.prepare(`
      INSERT OR REPLACE INTO mailbox_deposits (message_id, provider, seq, envelope_hash, deposited_at, expires_at, receipt)
      VALUES (@message_id, @provider, @seq, @envelope_hash, @deposited_at, @expires_at, @receipt)`),
    setMailboxes: db.prepare('UPDATE messages SET mailboxes = ? WHERE id = ?'),
    list: db.prepare('SELECT * FROM mailbox_deposits WHERE message_id = ? ORDER BY deposited_at, provider'),
    undeposited: db.prepare(`
      SELECT id FROM messages WHERE peer_identity = ? AND state = 'queued' AND direction = 'out' AND mailboxes IS NULL
      ORDER BY sort_at, id LIMIT ?`),
    peer: db.prepare('SELECT mailboxes FROM peer_mailboxes WHERE peer_identity = ?'),
    setPeer: db.prepare(`
      INSERT INTO peer_mailboxes (peer_identity, mailboxes, bundle_created_at, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (peer_identity) DO UPDATE SET mailboxes = excluded.mailboxes, bundle_created_at = excluded.bundle_created_at,
        updated_at = excluded.updated_at
      WHERE excluded.bundle_created_at >= peer_mailboxes.bundle_created_at`),
  };
  return {
    record: (d) => run('deposits.record', () => {
      const m = s.current.get(d.messageId) as { mailboxes: string | null; hash: Buffer | null } | undefined;
      if (!m) throw new StoreError('NOT_FOUND', `no message ${d.messageId}`);
      if (!m.hash || !Buffer.from(d.envelopeHash).equals(m.hash)) {
        throw new StoreError('BAD_STATE', `message ${d.messageId} was encrypted again: the deposit is of bytes it no longer sends`);
      }
      s.insert.run({
        message_id: d.messageId, provider: d.provider, seq: d.seq, envelope_hash: Buffer.from(d.envelopeHash),
        deposited_at: d.depositedAt, expires_at: d.expiresAt, receipt: Buffer.from(d.receipt),
      });
      const held: string[] = m.mailboxes ? (JSON.parse(m.mailboxes) as string[]) : [];
      if (!held.includes(d.provider)) held.push(d.provider);
      s.setMailboxes.run(JSON.stringify(held), d.messageId);
      return held;
    }),
    list: (messageId) => run('deposits.list', () => (s.list.all(messageId) as DepositRow[]).map((r) => ({
      messageId: r.message_id, provider: r.provider, seq: r.seq, envelopeHash: new Uint8Array(r.envelope_hash),
      depositedAt: r.deposited_at, expiresAt: r.expires_at, receipt: new Uint8Array(r.receipt),
    }))),
    undeposited: (peer, limit) => run('deposits.undeposited', () => (s.undeposited.all(peer, limit) as { id: string }[]).map((r) => r.id)),
    peerMailboxes: (peer) => run('deposits.peerMailboxes', () => {
      const r = s.peer.get(peer) as { mailboxes: string } | undefined;
      return r ? (JSON.parse(r.mailboxes) as string[]) : [];
    }),
    setPeerMailboxes: (peer, mailboxes, bundleCreatedAt, now) => run('deposits.setPeerMailboxes', () => {
      s.setPeer.run(peer, JSON.stringify(mailboxes), bundleCreatedAt, now);
    }),
  };
}
