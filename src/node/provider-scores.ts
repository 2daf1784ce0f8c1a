/**
 * Measured reputation of mailbox providers in the node (issue 12, item 4; DESIGN §10): what this
 * node saw each provider do, recorded in the store as decayed tallies and scored with
 * src/provider/reputation.ts. Ours (we fetch from them) and others' (we deposit at them) alike: a
 * provider is one onion whatever role we met it in.
 *
 * What is recorded, when:
 *   deposit_ok        courier.deposit got the provider's signed receipt            every deposit
 *   deposit_refused   it answered a deposit with an ERROR (detail: its code)        every deposit
 *   unreachable       a deposit or fetch did not get through (dial, timeout, …)     deposits: each;
 *   fetch_ok          a fetch round from one of our providers went through           fetches: at most one
 *                                                                                   of each per provider
 *                                                                                   per `fetchSampleMs`
 *   malformed         it answered with what does not decode or verify               each
 *   delivered / lost  settle(): a deposit whose message is now delivered counts      once per deposit
 *                     `delivered`; one whose message expired undelivered counts
 *                     `lost` ("held but never delivered") if the provider had signed
 *                     to hold it until the message's own expiry; anything else (the
 *                     message was encrypted again, failed, or outlived the
 *                     provider's signed retention) is `void`: not the provider's doing.
 * Fetches are sampled so that a round every few minutes does not drown the rarer deposit evidence
 * (a provider we fetch from every 5 min would otherwise gather 288 good marks a day). Failures that
 * are ours (the store) or the node closing are not held against anyone.
 *
 * A proven provider scored below `minScore` is "below the line": the courier leaves mail at the
 * recipient's other providers instead, and mailbox-review.ts replaces it if it is ours.
 */
import type { Clock } from '../clock.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  DEFAULT_POLICY, MailboxErrorCode, ProviderError, addToTally, mailboxErrorName, reputationOfTally,
  type ReputationEventKind, type ReputationOptions, type ReputationTally,
} from '../provider/index.js';
import { StoreError, type ProviderEvent, type Store } from '../store/index.js';

/** What the courier saw of one request to a provider. */
export type ProviderObservation = { op: 'deposit' | 'fetch'; ok: true } | { op: 'deposit' | 'fetch'; ok: false; error: unknown };

/** A provider's measured reputation as the API, the CLI and `status` show it. */
export interface ReputationView {
  onion: string;
  /** (good + 1) / (good + bad + 2): 0.5 knowing nothing, towards 1 for good work. */
  score: number;
  /** Enough weighted events to act on the score. */
  proven: boolean;
  /** Proven and below the threshold: not used for deposits, replaced when ours. */
  belowThreshold: boolean;
  /** Decayed weighted sums of good and bad events. */
  good: number;
  bad: number;
  /** Events of each kind, ever (unweighted). */
  counts: Record<ReputationEventKind, number>;
  /** The newest event's time, ms since epoch; null: none. */
  lastEventAt: number | null;
}

export interface ProviderScoresOptions {
  store: () => Store;
  clock: Clock;
  logger: Logger;
  /** Aborted when the node closes: failures from then on are ours, not the provider's. */
  signal: AbortSignal;
  /** Fetch outcomes recorded at most this often per provider and outcome, ms. Default 1 h. */
  fetchSampleMs?: number;
  /** Half-life and proof threshold (src/provider/reputation.ts). */
  reputation?: Partial<ReputationOptions>;
  /** A proven provider below this is below the line. Default DEFAULT_POLICY.minScore (0.6). */
  minScore?: number;
}

/** Deposits settled per call, at most (the rest next time). */
const SETTLE_BATCH = 1_000;

export class ProviderScores {
  readonly #o: ProviderScoresOptions;
  /** When a fetch outcome was last recorded, per `${provider} ${kind}` (sampling; rebuilt after a restart). */
  readonly #sampled = new Map<string, number>();

  constructor(o: ProviderScoresOptions) {
    this.#o = o;
  }

  get minScore(): number {
    return this.#o.minScore ?? DEFAULT_POLICY.minScore;
  }

  /** Records what the courier saw (see the file comment). Never throws: scoring must not break delivery. */
  observe(provider: string, o: ProviderObservation): void {
    try {
      const now = this.#o.clock.now();
      const store = this.#o.store();
      const what = o.ok ? { kind: o.op === 'deposit' ? 'deposit_ok' as const : 'fetch_ok' as const, detail: null } : this.#classify(o.op, o.error);
      if (!what) return;
      if (!o.ok && o.op === 'fetch') store.mailboxProviders.setFetchFailed(provider, now);
      if (o.op === 'fetch') {
        const key = `${provider} ${what.kind}`;
        const last = this.#sampled.get(key);
        if (last !== undefined && now - last < (this.#o.fetchSampleMs ?? 3_600_000)) return;
        this.#sampled.set(key, now);
      }
      this.#record(store, provider, what.kind, now, what.detail);
    } catch (err) {
      this.#o.logger.warn({ provider, err: describeError(err) }, 'could not record a provider observation');
    }
  }

  /** What a failure counts as; null when it is not the provider's (ours, or the node closing). */
  #classify(op: 'deposit' | 'fetch', err: unknown): { kind: ReputationEventKind; detail: string | null } | null {
    if (this.#o.signal.aborted || err instanceof StoreError) return null;
    if (err instanceof ProviderError) {
      if (err.code === 'ABORTED') return null;
      if (err.code === 'MALFORMED' || err.code === 'BAD_SIGNATURE') return { kind: 'malformed', detail: err.code };
      if (err.code === 'REMOTE') {
        const name = mailboxErrorName(err.remoteCode ?? 0);
        // An unpaid subscription (ours, or the recipient's) is not the provider's fault: the lapse
        // warning tells the user; the provider must not be scored down or replaced for it.
        if (err.remoteCode === MailboxErrorCode.NOT_PAID) return null;
        // A refused fetch is a provider that does not serve us: availability, not a deposit.
        return op === 'deposit' ? { kind: 'deposit_refused', detail: name } : { kind: 'unreachable', detail: `fetch refused: ${name}` };
      }
    }
    const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'error';
    return { kind: 'unreachable', detail: `${op}: ${code}` };
  }

  #record(store: Store, provider: string, kind: ReputationEventKind, at: number, detail: string | null): void {
    store.batch(() => {
      const t = store.providerReputations.tallies(provider)[kind];
      store.providerReputations.record(provider, kind, addToTally(t, at, this.#o.reputation), { at, detail });
    });
  }

  /**
   * Counts the deposits whose message has since been delivered (`delivered`) or expired (`lost`,
   * see the file comment) for their providers. Returns how many of each.
   */
  settle(): { delivered: number; lost: number; void: number } {
    const store = this.#o.store();
    const n = { delivered: 0, lost: 0, void: 0 };
    const now = this.#o.clock.now();
    store.batch(() => {
      for (const d of store.providerReputations.finished(SETTLE_BATCH)) {
        let outcome: 'delivered' | 'lost' | 'void' = 'void';
        if (d.current && d.state === 'delivered') outcome = 'delivered';
        else if (d.current && d.state === 'expired' && d.heldUntil >= d.messageExpiresAt) outcome = 'lost';
        if (outcome !== 'void') this.#record(store, d.provider, outcome, now, outcome === 'lost' ? `message ${d.messageId}` : null);
        store.providerReputations.settle(d, outcome);
        n[outcome]++;
      }
    });
    if (n.lost > 0) this.#o.logger.warn({ lost: n.lost }, 'mailbox providers signed for messages that expired undelivered');
    return n;
  }

  /** `onion`'s reputation now (0.5 and unproven when nothing is known). */
  reputation(onion: string, tallies?: ReputationTally): ReputationView {
    const t = tallies ?? (this.#o.store().providerReputations.tallies(onion) as ReputationTally);
    const r = reputationOfTally(t, this.#o.clock.now(), this.#o.reputation);
    const times = Object.values(t).map((k) => k.at);
    return {
      onion, score: r.score, proven: r.proven, belowThreshold: r.proven && r.score < this.minScore,
      good: r.good, bad: r.bad, counts: r.counts, lastEventAt: times.length ? Math.max(...times) : null,
    };
  }

  /** Whether mail may be left at `onion`: not proven bad. */
  usable(onion: string): boolean {
    try {
      return !this.reputation(onion).belowThreshold;
    } catch (err) {
      this.#o.logger.warn({ provider: onion, err: describeError(err) }, 'could not read a provider reputation');
      return true;
    }
  }

  /** Every provider this node has figures for, best first. */
  list(): ReputationView[] {
    return [...this.#o.store().providerReputations.all()]
      .map(([onion, t]) => this.reputation(onion, t as ReputationTally))
      .sort((a, b) => b.score - a.score || (a.onion < b.onion ? -1 : 1));
  }

  /** The newest events of `onion`, newest first. */
  history(onion: string, limit?: number): ProviderEvent[] {
    return this.#o.store().providerReputations.history(onion, limit);
  }
}
