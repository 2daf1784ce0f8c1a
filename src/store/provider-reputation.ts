/**
 * What this node saw mailbox providers do (store migration v13, issue 12 item 4): per provider and
 * kind of event, a decayed sum (the scoring is src/provider/reputation.ts's; this file only keeps
 * the numbers), the newest events to show, and which deposits have been counted once their message
 * was delivered or expired.
 *
 * Bounded: one tally row per (provider, kind), at most `EVENTS_KEPT` events per provider, and
 * prune() forgets providers nothing happened with for a long time.
 *
 * Every method joins an open `store.batch()`; outside one each is its own transaction.
 */
import type { Database } from 'better-sqlite3';
import { bytes } from './rows.js';
import type { MessageState } from './types.js';

/** Events kept per provider for display (the tallies keep the whole history). */
export const EVENTS_KEPT = 64;

/** One kind's decayed sum (src/provider/reputation.ts KindTally). */
export interface StoredTally {
  weight: number;
  count: number;
  /** ms since epoch the weight is decayed to. */
  at: number;
}

export interface ProviderEvent {
  provider: string;
  at: number;
  kind: string;
  /** A refusal's code, a lost message's id, … */
  detail: string | null;
}

/** A deposit whose message reached a final state and has not been counted for its provider yet. */
export interface FinishedDeposit {
  messageId: string;
  provider: string;
  envelopeHash: Uint8Array;
  /** Until when the provider signed to hold it. */
  heldUntil: number;
  state: MessageState;
  /** The message's own expiry (its TTL's end). */
  messageExpiresAt: number;
  /** Whether the deposit is of the bytes the message was last sent as (it may have been encrypted again since). */
  current: boolean;
}

export interface ProviderReputations {
  /** Every kind's tally of `provider` ({} when none). */
  tallies(provider: string): Record<string, StoredTally>;
  /** Every provider with a tally, and its tallies. */
  all(): Map<string, Record<string, StoredTally>>;
  /** Sets one kind's tally of `provider` and logs the event (the newest EVENTS_KEPT per provider stay). */
  record(provider: string, kind: string, tally: StoredTally, event: { at: number; detail?: string | null }): void;
  /** Logs an event that is not scored (a replacement, a warning). */
  note(provider: string, kind: string, at: number, detail?: string | null): void;
  /** The newest events of `provider`, newest first. */
  history(provider: string, limit?: number): ProviderEvent[];
  /** Up to `limit` deposits whose message was delivered, expired or failed, not yet settled. */
  finished(limit: number): FinishedDeposit[];
  /** Marks a deposit counted, with what it counted as. */
  settle(d: Pick<FinishedDeposit, 'messageId' | 'provider' | 'envelopeHash'>, outcome: string): void;
  /** Queued outgoing messages that providers hold, oldest first: id, recipient and those providers. */
  heldQueued(limit: number): { id: string; peerIdentity: string; mailboxes: string[] }[];
  /** Forgets every provider whose newest tally is older than `before`, except `keep`; returns how many. */
  prune(before: number, keep: Iterable<string>): number;
}

interface FinishedRow {
  message_id: string;
  provider: string;
  envelope_hash: Buffer;
  held_until: number;
  state: MessageState;
  ttl_end: number;
  current: number;
}

export function createProviderReputations(db: Database, run: <T>(what: string, fn: () => T) => T): ProviderReputations {
  const s = {
    tallies: db.prepare('SELECT kind, weight, count, at FROM provider_tallies WHERE provider = ?'),
    all: db.prepare('SELECT provider, kind, weight, count, at FROM provider_tallies ORDER BY provider'),
    put: db.prepare(`
      INSERT INTO provider_tallies (provider, kind, weight, count, at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (provider, kind) DO UPDATE SET weight = excluded.weight, count = excluded.count, at = excluded.at`),
    log: db.prepare('INSERT INTO provider_events (provider, at, kind, detail) VALUES (?, ?, ?, ?)'),
    trim: db.prepare(`
      DELETE FROM provider_events WHERE provider = @p AND id <= (
        SELECT id FROM provider_events WHERE provider = @p ORDER BY id DESC LIMIT 1 OFFSET ${EVENTS_KEPT})`),
    history: db.prepare('SELECT provider, at, kind, detail FROM provider_events WHERE provider = ? ORDER BY id DESC LIMIT ?'),
    finished: db.prepare(`
      SELECT d.message_id, d.provider, d.envelope_hash, d.expires_at AS held_until, m.state, m.expires_at AS ttl_end,
        (m.envelope_hash IS NOT NULL AND m.envelope_hash = d.envelope_hash) AS current
      FROM mailbox_deposits d JOIN messages m ON m.id = d.message_id
      WHERE d.settled IS NULL AND m.state IN ('delivered', 'expired', 'failed')
      LIMIT ?`),
    settle: db.prepare('UPDATE mailbox_deposits SET settled = ? WHERE message_id = ? AND provider = ? AND envelope_hash = ?'),
    heldQueued: db.prepare(`
      SELECT id, peer_identity, mailboxes FROM messages
      WHERE state = 'queued' AND direction = 'out' AND mailboxes IS NOT NULL ORDER BY sort_at, id LIMIT ?`),
    stale: db.prepare('SELECT provider FROM provider_tallies GROUP BY provider HAVING max(at) < ?'),
    forgetTallies: db.prepare('DELETE FROM provider_tallies WHERE provider = ?'),
    forgetEvents: db.prepare('DELETE FROM provider_events WHERE provider = ?'),
  };
  const log = (provider: string, kind: string, at: number, detail: string | null | undefined) => {
    s.log.run(provider, at, kind, detail === undefined || detail === null ? null : detail.slice(0, 200));
    s.trim.run({ p: provider });
  };
  return {
    tallies: (provider) => run('providerReputations.tallies', () => {
      const out: Record<string, StoredTally> = {};
      for (const r of s.tallies.all(provider) as { kind: string; weight: number; count: number; at: number }[]) {
        out[r.kind] = { weight: r.weight, count: r.count, at: r.at };
      }
      return out;
    }),
    all: () => run('providerReputations.all', () => {
      const out = new Map<string, Record<string, StoredTally>>();
      for (const r of s.all.all() as { provider: string; kind: string; weight: number; count: number; at: number }[]) {
        let t = out.get(r.provider);
        if (!t) out.set(r.provider, (t = {}));
        t[r.kind] = { weight: r.weight, count: r.count, at: r.at };
      }
      return out;
    }),
    record: (provider, kind, tally, event) => run('providerReputations.record', () => {
      s.put.run(provider, kind, tally.weight, tally.count, tally.at);
      log(provider, kind, event.at, event.detail);
    }),
    note: (provider, kind, at, detail) => run('providerReputations.note', () => log(provider, kind, at, detail)),
    history: (provider, limit = EVENTS_KEPT) => run('providerReputations.history', () =>
      s.history.all(provider, Math.max(0, Math.min(EVENTS_KEPT, Math.trunc(limit)))) as ProviderEvent[]),
    finished: (limit) => run('providerReputations.finished', () => (s.finished.all(Math.max(0, Math.trunc(limit))) as FinishedRow[]).map((r) => ({
      messageId: r.message_id, provider: r.provider, envelopeHash: bytes(r.envelope_hash), heldUntil: r.held_until, state: r.state,
      messageExpiresAt: r.ttl_end, current: r.current === 1,
    }))),
    settle: (d, outcome) => run('providerReputations.settle', () => {
      s.settle.run(outcome, d.messageId, d.provider, Buffer.from(d.envelopeHash));
    }),
    heldQueued: (limit) => run('providerReputations.heldQueued', () =>
      (s.heldQueued.all(Math.max(0, Math.trunc(limit))) as { id: string; peer_identity: string; mailboxes: string }[])
        .map((r) => ({ id: r.id, peerIdentity: r.peer_identity, mailboxes: JSON.parse(r.mailboxes) as string[] }))),
    prune: (before, keep) => run('providerReputations.prune', () => {
      const kept = new Set(keep);
      let n = 0;
      for (const { provider } of s.stale.all(before) as { provider: string }[]) {
        if (kept.has(provider)) continue;
        s.forgetTallies.run(provider);
        s.forgetEvents.run(provider);
        n++;
      }
      return n;
    }),
  };
}
