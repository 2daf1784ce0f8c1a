/**
 * Measured reputation of mailbox providers (DESIGN §10): a score per provider from what this node saw
 * it do, never from what it claims. Pure: events in, scores out; the caller keeps the history.
 *
 * What counts, and how much (weights in REPUTATION_WEIGHTS):
 *   deposit_ok           the provider committed a deposit and signed for it            good × 1
 *   deposit_refused      it refused a valid deposit (quota, busy, …)                    bad  × 1
 *   unreachable          a deposit or fetch could not reach it                          bad  × 1
 *   fetch_ok             our own fetch from it succeeded                                 good × 1
 *   delivered            a message it signed for reached its recipient                  good × 2
 *   lost                 it signed for a deposit, and no recipient receipt came before   bad  × 20
 *                        the message's TTL: "held but never delivered", the failure that
 *                        sank every earlier attempt at untrusted store-and-forward
 *   malformed            it answered with garbage or broke the protocol                  bad  × 5
 *
 * Score = (good + 1) / (good + bad + 2), with each event's weight halved every `halfLifeMs`, so a
 * provider that mends its ways recovers and a long-good one that starts losing mail falls fast.
 * A provider with fewer than `minObservations` weighted events is "unproven" (score still given).
 * A node keeps a ReputationTally per provider (constant space) rather than every event.
 */
export type ReputationEventKind = 'deposit_ok' | 'deposit_refused' | 'unreachable' | 'fetch_ok' | 'delivered' | 'lost' | 'malformed';

export interface ReputationEvent {
  kind: ReputationEventKind;
  /** ms since epoch. */
  at: number;
}

export const REPUTATION_WEIGHTS: Readonly<Record<ReputationEventKind, { good: number; bad: number }>> = Object.freeze({
  deposit_ok: { good: 1, bad: 0 },
  deposit_refused: { good: 0, bad: 1 },
  unreachable: { good: 0, bad: 1 },
  fetch_ok: { good: 1, bad: 0 },
  delivered: { good: 2, bad: 0 },
  lost: { good: 0, bad: 20 },
  malformed: { good: 0, bad: 5 },
});

export interface ReputationOptions {
  /** Default 14 days. */
  halfLifeMs: number;
  /** Weighted events before a score is trusted. Default 10. */
  minObservations: number;
}

export const DEFAULT_REPUTATION: Readonly<ReputationOptions> = Object.freeze({ halfLifeMs: 14 * 24 * 3600 * 1000, minObservations: 10 });

export interface Reputation {
  score: number;
  good: number;
  bad: number;
  /** Events of each kind, unweighted. */
  counts: Record<ReputationEventKind, number>;
  proven: boolean;
}

/** How much an event `ageMs` old still counts: halved every half-life; a future one counts fully. */
function decay(ageMs: number, halfLifeMs: number): number {
  return ageMs <= 0 ? 1 : Math.pow(0.5, ageMs / halfLifeMs);
}

function emptyCounts(): Record<ReputationEventKind, number> {
  return { deposit_ok: 0, deposit_refused: 0, unreachable: 0, fetch_ok: 0, delivered: 0, lost: 0, malformed: 0 };
}

function finish(good: number, bad: number, counts: Record<ReputationEventKind, number>, o: ReputationOptions): Reputation {
  return { score: (good + 1) / (good + bad + 2), good, bad, counts, proven: good + bad >= o.minObservations };
}

/** The reputation that `events` add up to at `now`. Events in the future count fully. */
export function reputationOf(events: Iterable<ReputationEvent>, now: number, opts: Partial<ReputationOptions> = {}): Reputation {
  const o = { ...DEFAULT_REPUTATION, ...opts };
  let good = 0;
  let bad = 0;
  const counts = emptyCounts();
  for (const e of events) {
    const w = REPUTATION_WEIGHTS[e.kind];
    const d = decay(now - e.at, o.halfLifeMs);
    good += w.good * d;
    bad += w.bad * d;
    counts[e.kind]++;
  }
  return finish(good, bad, counts, o);
}

/**
 * A history kept in constant space: per kind, the events' decayed sum as of the newest one's time.
 *   weight  Σ 0.5^((at − e.at) / halfLife) over the kind's events (so 1 right after one event)
 *   count   how many there were, unweighted
 *   at      the time `weight` is decayed to, ms since epoch
 * Decay is a product, so this sum decayed on to `now` is what reputationOf adds up for the same
 * events (exactly, while none is later than `now`): a node stores these instead of every event.
 */
export interface KindTally {
  weight: number;
  count: number;
  at: number;
}

export type ReputationTally = Partial<Record<ReputationEventKind, KindTally>>;

/** `t` with one more event at `at`. */
export function addToTally(t: KindTally | undefined, at: number, opts: Partial<ReputationOptions> = {}): KindTally {
  const halfLifeMs = opts.halfLifeMs ?? DEFAULT_REPUTATION.halfLifeMs;
  if (!t) return { weight: 1, count: 1, at };
  // Whichever is older is decayed to the newer one's time.
  if (at >= t.at) return { weight: t.weight * decay(at - t.at, halfLifeMs) + 1, count: t.count + 1, at };
  return { weight: t.weight + decay(t.at - at, halfLifeMs), count: t.count + 1, at: t.at };
}

/** The reputation a tally adds up to at `now` (see KindTally). */
export function reputationOfTally(t: ReputationTally, now: number, opts: Partial<ReputationOptions> = {}): Reputation {
  const o = { ...DEFAULT_REPUTATION, ...opts };
  let good = 0;
  let bad = 0;
  const counts = emptyCounts();
  for (const [kind, k] of Object.entries(t) as [ReputationEventKind, KindTally][]) {
    const w = REPUTATION_WEIGHTS[kind];
    const weight = k.weight * decay(now - k.at, o.halfLifeMs);
    good += w.good * weight;
    bad += w.bad * weight;
    counts[kind] = k.count;
  }
  return finish(good, bad, counts, o);
}
