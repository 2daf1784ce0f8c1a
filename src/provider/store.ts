/**
 * The mail a provider holds for others: its own SQLite file (provider.db beside the node's store),
 * opened with the same durability as the node's (WAL, synchronous=FULL, secure_delete), so a
 * deposit that returned survives kill -9 and a fetched-and-acknowledged one is overwritten.
 *
 * Model (SimpleX SMP's queues, Briar Mailbox's retention):
 *   account  one per subscribed user (its identity key), with a byte quota and an optional
 *            subscriber tag (what its payments are recorded under in the provider directory).
 *   queue    16-byte random id, created by the account owner, with the SHA-256 of a write
 *            capability (handed to one contact inside the session) and of a read capability (kept
 *            by the owner). A public queue (first contact from strangers) takes deposits without a
 *            write capability; the wire rate-limits it.
 *   held     deposited envelopes per queue, numbered 1, 2, … per queue; each kept until the owner
 *            acknowledges it or its retention ends.
 *   bundle   the account's signed key bundle (newest by its created time) and a pool of its one-time
 *            prekeys, so a stranger can start a session while the owner is offline (PROTOCOL.md
 *            §14.8). Each prekey is handed out once: deleted (overwritten) in the transaction that
 *            hands it out.
 *
 * The provider never learns which contact a queue belongs to, nor links two queues of one account
 * through anything a depositor sends. It does learn which account owns a queue (the owner created
 * it), sizes (in buckets) and times.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Database as Db, Statement } from 'better-sqlite3';
import type { Logger } from '../log.js';
import { openDatabase, toStoreError, type Migration } from '../store/index.js';
import { ProviderError } from './errors.js';

export const PROVIDER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'accounts, queues and held envelopes',
    up: `
      CREATE TABLE accounts (
        id           INTEGER PRIMARY KEY,
        identity_key BLOB NOT NULL UNIQUE CHECK (length(identity_key) = 32),
        tag          BLOB CHECK (tag IS NULL OR length(tag) = 32),
        quota_bytes  INTEGER NOT NULL CHECK (quota_bytes > 0),
        used_bytes   INTEGER NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
        created_at   INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE queues (
        id          BLOB PRIMARY KEY CHECK (length(id) = 16),
        account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        write_hash  BLOB CHECK (write_hash IS NULL OR length(write_hash) = 32),
        read_hash   BLOB NOT NULL CHECK (length(read_hash) = 32),
        next_seq    INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX queues_by_account ON queues (account_id);
      CREATE TABLE held (
        queue_id     BLOB NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        digest       BLOB NOT NULL CHECK (length(digest) = 32),
        envelope     BLOB NOT NULL,
        deposited_at INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        PRIMARY KEY (queue_id, seq)
      ) STRICT, WITHOUT ROWID;
      CREATE UNIQUE INDEX held_by_digest ON held (queue_id, digest);
      CREATE INDEX held_by_expiry ON held (expires_at);
    `,
  },
  {
    version: 2,
    description: "each account's remembered paid-until date (a priced provider reads the chain only once it has passed)",
    up: 'ALTER TABLE accounts ADD COLUMN paid_until INTEGER NOT NULL DEFAULT 0;',
  },
  {
    version: 3,
    description: "each account's key bundle and one-time prekeys, handed to first contacts while the owner is offline",
    up: `
      CREATE TABLE bundles (
        account_id  INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        bundle      BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        put_at      INTEGER NOT NULL,
        fetched     INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE TABLE bundle_prekeys (
        account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        id          INTEGER NOT NULL,
        public      BLOB NOT NULL CHECK (length(public) = 32),
        PRIMARY KEY (account_id, id)
      ) STRICT, WITHOUT ROWID;
    `,
  },
];

export interface ProviderLimits {
  /** Users the provider holds mail for. */
  maxUsers: number;
  /** Held bytes per user (envelope bytes). */
  quotaBytes: number;
  /** Queues per user (one per contact, plus the public one). */
  maxQueuesPerUser: number;
  /** How long an envelope is held before it is dropped unfetched, ms. Default 14 days. */
  retentionMs: number;
  /** One-time prekeys held per user (PUT_BUNDLE beyond it keeps the first ones). Default 100. */
  maxBundlePrekeys: number;
}

export const DEFAULT_PROVIDER_LIMITS: Readonly<ProviderLimits> = Object.freeze({
  maxUsers: 1_000,
  quotaBytes: 256 * 1024 * 1024,
  maxQueuesPerUser: 10_000,
  retentionMs: 14 * 24 * 3600 * 1000,
  maxBundlePrekeys: 100,
});

/** A bundle kept for a user, as PUT_BUNDLE stores it (already verified by the service). */
export interface KeptBundle {
  bundle: Uint8Array;
  createdAt: number;
  expiresAt: number;
}

export interface ProviderStoreOptions {
  path: string;
  logger: Logger;
  limits?: Partial<ProviderLimits>;
  /** Which envelope lengths are valid (the padding buckets of the envelope format in use). */
  isEnvelopeSize: (n: number) => boolean;
}

export interface DepositResult {
  seq: number;
  digest: Uint8Array;
  depositedAt: number;
  expiresAt: number;
  /** The same envelope was already held in this queue: nothing new was stored. */
  duplicate: boolean;
}

export interface HeldEnvelope {
  seq: number;
  envelope: Uint8Array;
  depositedAt: number;
  expiresAt: number;
}

/** An account as a priced provider's payment check sees it. */
export interface AccountPayment {
  identityKey: Uint8Array;
  /** What its payments are recorded under on chain; null: subscribed without one. */
  tag: Uint8Array | null;
  /** The paid-until date last read on chain, ms; 0 none. */
  paidUntil: number;
}

export interface ProviderStats {
  users: number;
  queues: number;
  held: number;
  heldBytes: number;
}

/** SHA-256 of a capability: what the provider stores instead of the capability itself. */
export function capabilityHash(cap: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update('onionpost/mailbox-capability/v1').update(cap).digest());
}

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

function capOk(stored: Uint8Array | null, cap: Uint8Array | null): boolean {
  if (stored === null) return true; // a public queue: anyone may write
  if (cap === null || cap.length !== 32) return false;
  return timingSafeEqual(stored, capabilityHash(cap));
}

interface QueueRow {
  account_id: number;
  write_hash: Uint8Array | null;
  read_hash: Uint8Array;
  next_seq: number;
}

export class ProviderStore {
  readonly limits: ProviderLimits;
  readonly #db: Db;
  readonly #isEnvelopeSize: (n: number) => boolean;
  readonly #s: Record<string, Statement>;
  #closed = false;

  constructor(opts: ProviderStoreOptions) {
    this.limits = { ...DEFAULT_PROVIDER_LIMITS, ...opts.limits };
    this.#isEnvelopeSize = opts.isEnvelopeSize;
    this.#db = openDatabase(opts.path, opts.logger, { busyTimeoutMs: 5_000, walAutocheckpointPages: 1_000, journalSizeLimit: 16 << 20 }, PROVIDER_MIGRATIONS, 'open provider store').db;
    const db = this.#db;
    this.#s = {
      account: db.prepare('SELECT id, quota_bytes, used_bytes, tag, paid_until FROM accounts WHERE identity_key = ?'),
      accounts: db.prepare('SELECT count(*) AS n FROM accounts'),
      heldOf: db.prepare('SELECT count(*) AS n FROM held h JOIN queues q ON q.id = h.queue_id WHERE q.account_id = ?'),
      insertAccount: db.prepare('INSERT INTO accounts (identity_key, tag, quota_bytes, created_at, paid_until) VALUES (?, ?, ?, ?, ?)'),
      setTag: db.prepare('UPDATE accounts SET tag = ?, paid_until = ? WHERE id = ?'),
      setPaidUntil: db.prepare('UPDATE accounts SET paid_until = ? WHERE identity_key = ?'),
      queueOwner: db.prepare(`SELECT a.identity_key, a.tag, a.paid_until, q.write_hash, q.read_hash
                              FROM queues q JOIN accounts a ON a.id = q.account_id WHERE q.id = ?`),
      queue: db.prepare('SELECT account_id, write_hash, read_hash, next_seq FROM queues WHERE id = ?'),
      queuesOf: db.prepare('SELECT count(*) AS n FROM queues WHERE account_id = ?'),
      insertQueue: db.prepare('INSERT INTO queues (id, account_id, write_hash, read_hash, created_at) VALUES (?, ?, ?, ?, ?)'),
      queueBytes: db.prepare('SELECT coalesce(sum(length(envelope)), 0) AS n FROM held WHERE queue_id = ?'),
      deleteQueue: db.prepare('DELETE FROM queues WHERE id = ? AND account_id = ?'),
      byDigest: db.prepare('SELECT seq, deposited_at, expires_at FROM held WHERE queue_id = ? AND digest = ?'),
      quota: db.prepare('SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?'),
      insertHeld: db.prepare('INSERT INTO held (queue_id, seq, digest, envelope, deposited_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      bumpSeq: db.prepare('UPDATE queues SET next_seq = next_seq + 1 WHERE id = ?'),
      use: db.prepare('UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?'),
      fetch: db.prepare('SELECT seq, envelope, deposited_at, expires_at FROM held WHERE queue_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
      heldOne: db.prepare('SELECT length(envelope) AS n FROM held WHERE queue_id = ? AND seq = ?'),
      deleteHeld: db.prepare('DELETE FROM held WHERE queue_id = ? AND seq = ?'),
      expired: db.prepare(`SELECT q.account_id AS account_id, sum(length(h.envelope)) AS bytes, count(*) AS n
                           FROM held h JOIN queues q ON q.id = h.queue_id WHERE h.expires_at <= ? GROUP BY q.account_id`),
      deleteExpired: db.prepare('DELETE FROM held WHERE expires_at <= ?'),
      bundle: db.prepare('SELECT bundle, created_at, expires_at FROM bundles WHERE account_id = ?'),
      putBundle: db.prepare(`INSERT INTO bundles (account_id, bundle, created_at, expires_at, put_at) VALUES (?, ?, ?, ?, ?)
                             ON CONFLICT (account_id) DO UPDATE SET bundle = excluded.bundle, created_at = excluded.created_at,
                             expires_at = excluded.expires_at, put_at = excluded.put_at`),
      bundleFetched: db.prepare('SELECT fetched FROM bundles WHERE account_id = ?'),
      fetchedBundle: db.prepare('UPDATE bundles SET fetched = fetched + 1 WHERE account_id = ?'),
      prekeyCount: db.prepare('SELECT count(*) AS n FROM bundle_prekeys WHERE account_id = ?'),
      dropPrekeys: db.prepare('DELETE FROM bundle_prekeys WHERE account_id = ?'),
      addPrekey: db.prepare('INSERT OR IGNORE INTO bundle_prekeys (account_id, id, public) VALUES (?, ?, ?)'),
      firstPrekey: db.prepare('SELECT id, public FROM bundle_prekeys WHERE account_id = ? ORDER BY id LIMIT 1'),
      deletePrekey: db.prepare('DELETE FROM bundle_prekeys WHERE account_id = ? AND id = ?'),
      stats: db.prepare(`SELECT (SELECT count(*) FROM accounts) AS users, (SELECT count(*) FROM queues) AS queues,
                                (SELECT count(*) FROM held) AS held, (SELECT coalesce(sum(used_bytes), 0) FROM accounts) AS bytes`),
    };
  }

  #run<T>(what: string, fn: () => T): T {
    if (this.#closed) throw new ProviderError('CLOSED', 'the provider store is closed');
    try {
      return this.#db.transaction(fn).immediate();
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      throw toStoreError(err, what);
    }
  }

  #account(identityKey: Uint8Array): { id: number; quota_bytes: number; used_bytes: number; tag: Uint8Array | null } {
    const a = this.#s['account']!.get(identityKey) as { id: number; quota_bytes: number; used_bytes: number; tag: Uint8Array | null } | undefined;
    if (!a) throw new ProviderError('NOT_SUBSCRIBED', 'this provider holds no mail for that identity');
    return a;
  }

  /**
   * Holds mail for `identityKey` from now on (idempotent; a given `tag` replaces the old one). A
   * priced provider gives the tag's `paidUntil` as read on chain; it is remembered with the tag.
   */
  subscribe(identityKey: Uint8Array, now: number, tag: Uint8Array | null = null, paidUntil?: number): { quotaBytes: number; retentionMs: number } {
    return this.#run('subscribe', () => {
      const a = this.#s['account']!.get(identityKey) as { id: number; tag: Uint8Array | null; paid_until: number } | undefined;
      if (a) {
        // Another tag's date means nothing for this one: without a new date it starts from 0.
        const sameTag = tag !== null && a.tag !== null && Buffer.compare(a.tag, tag) === 0;
        if (tag) this.#s['setTag']!.run(tag, paidUntil ?? (sameTag ? a.paid_until : 0), a.id);
      } else {
        const n = (this.#s['accounts']!.get() as { n: number }).n;
        if (n >= this.limits.maxUsers) throw new ProviderError('TOO_MANY_USERS', `this provider holds mail for ${n} users, its limit`);
        this.#s['insertAccount']!.run(identityKey, tag, this.limits.quotaBytes, now, paidUntil ?? 0);
      }
      return { quotaBytes: this.limits.quotaBytes, retentionMs: this.limits.retentionMs };
    });
  }

  /** The account's subscriber tag, remembered paid-until date (ms; 0 none) and use, or null when not subscribed. */
  account(identityKey: Uint8Array): { tag: Uint8Array | null; paidUntil: number; quotaBytes: number; usedBytes: number } | null {
    const a = this.#s['account']!.get(identityKey) as { quota_bytes: number; used_bytes: number; tag: Uint8Array | null; paid_until: number } | undefined;
    return a ? { tag: a.tag ? new Uint8Array(a.tag) : null, paidUntil: a.paid_until, quotaBytes: a.quota_bytes, usedBytes: a.used_bytes } : null;
  }

  /** How many envelopes the account holds now (in all its queues), or null when not subscribed. */
  heldCount(identityKey: Uint8Array): number | null {
    if (this.#closed) throw new ProviderError('CLOSED', 'the provider store is closed');
    const a = this.#s['account']!.get(identityKey) as { id: number } | undefined;
    return a ? (this.#s['heldOf']!.get(a.id) as { n: number }).n : null;
  }

  /** Remembers when `identityKey`'s subscription is paid until (ms), as last read on chain. */
  setPaidUntil(identityKey: Uint8Array, paidUntil: number): void {
    this.#run('remember paid-until', () => this.#s['setPaidUntil']!.run(paidUntil, identityKey));
  }

  /**
   * Who owns the queue that `cap` opens for `access` (its write or read capability), or null when
   * no queue opens with it: a priced provider checks the owner's payment before serving, and tells
   * someone without the capability nothing more than the store would (NO_CAPABILITY).
   */
  queueOwner(queueId: Uint8Array, cap: Uint8Array | null, access: 'write' | 'read'): AccountPayment | null {
    if (this.#closed) throw new ProviderError('CLOSED', 'the provider store is closed');
    const r = this.#s['queueOwner']!.get(queueId) as
      { identity_key: Uint8Array; tag: Uint8Array | null; paid_until: number; write_hash: Uint8Array | null; read_hash: Uint8Array } | undefined;
    if (!r) return null;
    const ok = capOk(access === 'write' ? r.write_hash : r.read_hash, cap);
    return ok ? { identityKey: new Uint8Array(r.identity_key), tag: r.tag ? new Uint8Array(r.tag) : null, paidUntil: r.paid_until } : null;
  }

  /** A new queue of `owner`'s: `writeHash` null makes it public. Hashes come from capabilityHash(). */
  createQueue(owner: Uint8Array, queueId: Uint8Array, hashes: { write: Uint8Array | null; read: Uint8Array }, now: number): void {
    if (queueId.length !== 16) throw new ProviderError('NO_CAPABILITY', 'a queue id is 16 bytes');
    this.#run('create queue', () => {
      const a = this.#account(owner);
      if (this.#s['queue']!.get(queueId)) throw new ProviderError('QUEUE_EXISTS', 'that queue id is taken');
      const n = (this.#s['queuesOf']!.get(a.id) as { n: number }).n;
      if (n >= this.limits.maxQueuesPerUser) throw new ProviderError('TOO_MANY_QUEUES', `${n} queues already`);
      this.#s['insertQueue']!.run(queueId, a.id, hashes.write, hashes.read, now);
    });
  }

  /** Deletes one of `owner`'s queues and what it holds. */
  removeQueue(owner: Uint8Array, queueId: Uint8Array): boolean {
    return this.#run('remove queue', () => {
      const a = this.#account(owner);
      const bytes = (this.#s['queueBytes']!.get(queueId) as { n: number }).n;
      const removed = this.#s['deleteQueue']!.run(queueId, a.id).changes === 1;
      if (removed && bytes > 0) this.#s['use']!.run(-bytes, a.id);
      return removed;
    });
  }

  /**
   * Holds `envelope` in the queue, durably, before returning (only then may the provider receipt
   * it). A repeat of an envelope the queue still holds returns the first deposit's numbers.
   * Checks, cheapest first: size, queue and capability, duplicate, quota.
   */
  deposit(queueId: Uint8Array, writeCap: Uint8Array | null, envelope: Uint8Array, now: number): DepositResult {
    if (!this.#isEnvelopeSize(envelope.length)) throw new ProviderError('BAD_SIZE', `an envelope of ${envelope.length} bytes is not an envelope size`);
    const digest = sha256(envelope);
    return this.#run('deposit', () => {
      const q = this.#s['queue']!.get(queueId) as QueueRow | undefined;
      if (!q || !capOk(q.write_hash, writeCap)) throw new ProviderError('NO_CAPABILITY', 'no queue takes deposits with that capability');
      const dup = this.#s['byDigest']!.get(queueId, digest) as { seq: number; deposited_at: number; expires_at: number } | undefined;
      if (dup) return { seq: dup.seq, digest, depositedAt: dup.deposited_at, expiresAt: dup.expires_at, duplicate: true };
      const quota = this.#s['quota']!.get(q.account_id) as { quota_bytes: number; used_bytes: number };
      if (quota.used_bytes + envelope.length > quota.quota_bytes) throw new ProviderError('OVER_QUOTA', "the recipient's mailbox is full");
      const expiresAt = now + this.limits.retentionMs;
      this.#s['insertHeld']!.run(queueId, q.next_seq, digest, envelope, now, expiresAt);
      this.#s['bumpSeq']!.run(queueId);
      this.#s['use']!.run(envelope.length, q.account_id);
      return { seq: q.next_seq, digest, depositedAt: now, expiresAt, duplicate: false };
    });
  }

  /** Up to `limit` held envelopes after `afterSeq`, oldest first, for the holder of the read capability. */
  fetch(queueId: Uint8Array, readCap: Uint8Array, opts: { afterSeq?: number; limit?: number } = {}): HeldEnvelope[] {
    if (this.#closed) throw new ProviderError('CLOSED', 'the provider store is closed');
    const q = this.#s['queue']!.get(queueId) as QueueRow | undefined;
    if (!q || !capOk(q.read_hash, readCap)) throw new ProviderError('NO_CAPABILITY', 'no queue opens with that capability');
    const rows = this.#s['fetch']!.all(queueId, opts.afterSeq ?? 0, Math.min(Math.max(1, opts.limit ?? 100), 1000)) as { seq: number; envelope: Uint8Array; deposited_at: number; expires_at: number }[];
    return rows.map((r) => ({ seq: r.seq, envelope: new Uint8Array(r.envelope), depositedAt: r.deposited_at, expiresAt: r.expires_at }));
  }

  /** Deletes (overwriting) the acknowledged envelopes; returns how many were held. Unknown seqs are ignored. */
  ack(queueId: Uint8Array, readCap: Uint8Array, seqs: readonly number[]): number {
    return this.#run('ack', () => {
      const q = this.#s['queue']!.get(queueId) as QueueRow | undefined;
      if (!q || !capOk(q.read_hash, readCap)) throw new ProviderError('NO_CAPABILITY', 'no queue opens with that capability');
      let n = 0;
      let bytes = 0;
      for (const seq of seqs) {
        const one = this.#s['heldOne']!.get(queueId, seq) as { n: number } | undefined;
        if (!one) continue;
        this.#s['deleteHeld']!.run(queueId, seq);
        n++;
        bytes += one.n;
      }
      if (bytes > 0) this.#s['use']!.run(-bytes, q.account_id);
      return n;
    });
  }

  /** Drops every envelope whose retention ended; returns how many. */
  expire(now: number): number {
    return this.#run('expire', () => {
      const per = this.#s['expired']!.all(now) as { account_id: number; bytes: number; n: number }[];
      if (per.length === 0) return 0;
      for (const p of per) this.#s['use']!.run(-p.bytes, p.account_id);
      this.#s['deleteExpired']!.run(now);
      return per.reduce((t, p) => t + p.n, 0);
    });
  }

  /**
   * Keeps `b` as `owner`'s bundle unless the one kept is newer (by created time), and adds
   * `prekeys` to its one-time prekeys (after dropping those held, with `replace`; a replace that
   * comes with an older bundle than the one kept drops nothing), up to maxBundlePrekeys; an id held
   * already is kept as it is. Returns how many one-time prekeys it holds for `owner` now.
   */
  putBundle(owner: Uint8Array, b: KeptBundle, prekeys: readonly { id: number; public: Uint8Array }[], replace: boolean, now: number): number {
    return this.#run('put bundle', () => {
      const a = this.#account(owner);
      const kept = this.#s['bundle']!.get(a.id) as { created_at: number } | undefined;
      const newer = !kept || kept.created_at <= b.createdAt;
      if (newer) this.#s['putBundle']!.run(a.id, b.bundle, b.createdAt, b.expiresAt, now);
      if (newer && replace) this.#s['dropPrekeys']!.run(a.id);
      let n = (this.#s['prekeyCount']!.get(a.id) as { n: number }).n;
      for (const k of prekeys) {
        if (n >= this.limits.maxBundlePrekeys) break;
        n += this.#s['addPrekey']!.run(a.id, k.id, k.public).changes;
      }
      return n;
    });
  }

  /**
   * `owner`'s bundle for a first contact, with one of its one-time prekeys when `withPrekey` and
   * one is left (the lowest id; deleted in this same transaction, so it is handed out once), or
   * null when none is kept or it expired. Counts the hand-out.
   */
  takeBundle(owner: Uint8Array, withPrekey: boolean, now: number): { bundle: Uint8Array; prekey: { id: number; public: Uint8Array } | null } | null {
    return this.#run('take bundle', () => {
      const a = this.#s['account']!.get(owner) as { id: number } | undefined;
      if (!a) return null;
      const kept = this.#s['bundle']!.get(a.id) as { bundle: Uint8Array; expires_at: number } | undefined;
      if (!kept || kept.expires_at <= now) return null;
      let prekey: { id: number; public: Uint8Array } | null = null;
      if (withPrekey) {
        const k = this.#s['firstPrekey']!.get(a.id) as { id: number; public: Uint8Array } | undefined;
        if (k) {
          this.#s['deletePrekey']!.run(a.id, k.id);
          prekey = { id: k.id, public: new Uint8Array(k.public) };
        }
      }
      this.#s['fetchedBundle']!.run(a.id);
      return { bundle: new Uint8Array(kept.bundle), prekey };
    });
  }

  /** How many one-time prekeys are held for `owner`, and how many times its bundle was handed out; null without a bundle. */
  bundleStats(owner: Uint8Array): { prekeys: number; fetched: number } | null {
    if (this.#closed) throw new ProviderError('CLOSED', 'the provider store is closed');
    const a = this.#s['account']!.get(owner) as { id: number } | undefined;
    const r = a ? this.#s['bundleFetched']!.get(a.id) as { fetched: number } | undefined : undefined;
    if (!a || !r) return null;
    return { prekeys: (this.#s['prekeyCount']!.get(a.id) as { n: number }).n, fetched: r.fetched };
  }

  stats(): ProviderStats {
    const r = this.#s['stats']!.get() as { users: number; queues: number; held: number; bytes: number };
    return { users: r.users, queues: r.queues, held: r.held, heldBytes: r.bytes };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
