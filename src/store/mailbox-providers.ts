/**
 * The mailbox providers this user subscribed at (store migrations v11, v13 and v14; issues 11 and 12): what the node
 * lists in its bundle and registry record, and where it will fetch its mail from. Each row keeps the
 * provider's signed terms (retention, quota, time, signature) as the provider sent them, and what it
 * last said of our account (paid until, held, quota).
 *
 * Every method joins an open `store.batch()`; outside one each is its own transaction.
 */
import type { Database } from 'better-sqlite3';
import { bytes } from './rows.js';
import { StoreError } from './errors.js';

/**
 * What a provider last said of our account: the fields of its ACCOUNT_STATUS (PROTOCOL.md §14.4;
 * paidUntil 0 is a free provider; times in ms since the epoch, sizes in bytes; `time` is the
 * provider's clock), and `checkedAt`, when we asked (ours).
 */
export interface ProviderAccount {
  paidUntil: number; graceMs: number; heldCount: number; heldBytes: number; quotaBytes: number; time: number; checkedAt: number;
}

export interface MailboxProvider {
  /** The provider's onion address (lower case, `.onion`). */
  onion: string;
  /** Its Ed25519 identity key, 64 hex chars (the key its onion is derived from). */
  identityKey: string;
  /** The terms it signed when we subscribed. */
  terms: { retentionMs: number; quotaBytes: number; time: number; sig: Uint8Array };
  subscribedAt: number;
  /** When we last fetched mail from it; null: never. */
  lastFetchAt: number | null;
  /** The first failed fetch since the last good one; null: the last fetch worked (or none failed). */
  fetchFailingSince: number | null;
  /** What it last said of our account; null: not asked yet. */
  account: ProviderAccount | null;
  /** When we last warned that its payment lapses (mailbox.lapsing); null: never. */
  lapseWarnedAt: number | null;
}

export interface MailboxProviders {
  /**
   * Records a subscription, or replaces the one at the same onion (a new subscription there).
   * With `max`, refuses (StoreError CONSTRAINT) a new onion when `max` providers are recorded
   * already: the check and the insert are one transaction.
   */
  put(p: Omit<MailboxProvider, 'lastFetchAt' | 'fetchFailingSince' | 'account' | 'lapseWarnedAt'>, opts?: { max?: number }): MailboxProvider;
  get(onion: string): MailboxProvider | null;
  /** In the order they were subscribed at. */
  list(): MailboxProvider[];
  /** True when there was one to remove. */
  remove(onion: string): boolean;
  /** Notes a completed fetch from `onion` (nothing when it is no longer ours); it is no longer failing. */
  setLastFetch(onion: string, at: number): void;
  /** Notes a failed fetch from `onion`: fetchFailingSince becomes `at` unless it is failing already. */
  setFetchFailed(onion: string, at: number): void;
  /** Keeps what `onion` said of our account (nothing when it is no longer ours). */
  setAccount(onion: string, account: ProviderAccount): void;
  /** Notes that we warned about `onion`'s payment at `at`. */
  setLapseWarned(onion: string, at: number): void;
}

interface Row {
  onion: string;
  identity_key: string;
  retention_ms: number;
  quota_bytes: number;
  terms_time: number;
  terms_sig: Buffer;
  subscribed_at: number;
  last_fetch_at: number | null;
  fetch_failing_since: number | null;
  account: string | null;
  lapse_warned_at: number | null;
}

function fromRow(r: Row): MailboxProvider {
  return {
    onion: r.onion, identityKey: r.identity_key,
    terms: { retentionMs: r.retention_ms, quotaBytes: r.quota_bytes, time: r.terms_time, sig: bytes(r.terms_sig) },
    subscribedAt: r.subscribed_at, lastFetchAt: r.last_fetch_at, fetchFailingSince: r.fetch_failing_since,
    account: r.account === null ? null : JSON.parse(r.account) as ProviderAccount, lapseWarnedAt: r.lapse_warned_at,
  };
}

export function createMailboxProviders(db: Database, run: <T>(what: string, fn: () => T) => T): MailboxProviders {
  const s = {
    upsert: db.prepare(`
      INSERT INTO mailbox_providers (onion, identity_key, retention_ms, quota_bytes, terms_time, terms_sig, subscribed_at)
      VALUES (@onion, @identity_key, @retention_ms, @quota_bytes, @terms_time, @terms_sig, @subscribed_at)
      ON CONFLICT (onion) DO UPDATE SET identity_key = excluded.identity_key, retention_ms = excluded.retention_ms,
        quota_bytes = excluded.quota_bytes, terms_time = excluded.terms_time, terms_sig = excluded.terms_sig,
        subscribed_at = excluded.subscribed_at, fetch_failing_since = NULL`),
    get: db.prepare('SELECT * FROM mailbox_providers WHERE onion = ?'),
    list: db.prepare('SELECT * FROM mailbox_providers ORDER BY subscribed_at, onion'),
    count: db.prepare('SELECT count(*) AS n FROM mailbox_providers'),
    remove: db.prepare('DELETE FROM mailbox_providers WHERE onion = ?'),
    setLastFetch: db.prepare('UPDATE mailbox_providers SET last_fetch_at = ?, fetch_failing_since = NULL WHERE onion = ?'),
    setFetchFailed: db.prepare('UPDATE mailbox_providers SET fetch_failing_since = coalesce(fetch_failing_since, ?) WHERE onion = ?'),
    setAccount: db.prepare('UPDATE mailbox_providers SET account = ? WHERE onion = ?'),
    setLapseWarned: db.prepare('UPDATE mailbox_providers SET lapse_warned_at = ? WHERE onion = ?'),
  };
  const get = (onion: string) => {
    const r = s.get.get(onion) as Row | undefined;
    return r ? fromRow(r) : null;
  };
  return {
    put: (p, opts = {}) => run('mailboxProviders.put', () => {
      if (opts.max !== undefined && !get(p.onion) && (s.count.get() as { n: number }).n >= opts.max) {
        throw new StoreError('CONSTRAINT', `at most ${opts.max} mailbox providers`);
      }
      s.upsert.run({
        onion: p.onion, identity_key: p.identityKey, retention_ms: p.terms.retentionMs, quota_bytes: p.terms.quotaBytes,
        terms_time: p.terms.time, terms_sig: Buffer.from(p.terms.sig), subscribed_at: p.subscribedAt,
      });
      return get(p.onion)!;
    }),
    get: (onion) => run('mailboxProviders.get', () => get(onion)),
    list: () => run('mailboxProviders.list', () => (s.list.all() as Row[]).map(fromRow)),
    remove: (onion) => run('mailboxProviders.remove', () => s.remove.run(onion).changes > 0),
    setLastFetch: (onion, at) => run('mailboxProviders.setLastFetch', () => void s.setLastFetch.run(at, onion)),
    setFetchFailed: (onion, at) => run('mailboxProviders.setFetchFailed', () => void s.setFetchFailed.run(at, onion)),
    setAccount: (onion, a) => run('mailboxProviders.setAccount', () => {
      const { paidUntil, graceMs, heldCount, heldBytes, quotaBytes, time, checkedAt } = a;
      s.setAccount.run(JSON.stringify({ paidUntil, graceMs, heldCount, heldBytes, quotaBytes, time, checkedAt }), onion);
    }),
    setLapseWarned: (onion, at) => run('mailboxProviders.setLapseWarned', () => void s.setLapseWarned.run(at, onion)),
  };
}
