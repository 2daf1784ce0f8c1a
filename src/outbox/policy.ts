/**
 * Retry timing for the outbox.
 *
 * After the n-th failed step (n, 1-based, is a peer's failed steps for its backoff, or a message's
 * own attempts for the message's own schedule; see outbox.ts) the next attempt waits:
 *
 *   fast phase, n = 1..7:  2 s · 2^(n-1), capped at 2 min  →  2 s, 4 s, 8 s, 16 s, 32 s, 64 s, 2 min
 *   slow phase, n ≥ 8:     5 min · 2^(n-8), capped at 6 h   →  5, 10, 20, 40, 80, 160, 320 min, then 6 h
 *
 * each multiplied by a jitter factor uniform in [0.8, 1.2) (±20 %) so that many queued messages do
 * not retry in lock-step. A retry the transport marks `when: 'later'` (the peer's storage is full)
 * skips the fast phase and counts the slow phase from its start: 5 min · 2^(n-1), capped at 6 h
 * (5, 10, 20 min, … for consecutive 'later's). One marked `when: 'busy'` (the peer is up and
 * answered REJECT BUSY: more of our deliveries in flight than it takes at once) is flow control,
 * not failure: it waits busyMs (500 ms) whatever n is, so a burst slows down instead of sliding
 * into minutes of backoff.
 *
 * Messages live DEFAULT_TTL_MS (14 days, like Signal's server-side retention) unless the sender
 * chose otherwise; at expires_at a message still undelivered becomes 'expired', with an event.
 */
export interface BackoffPolicy {
  /** First fast-phase delay, ms. Default 2 000. */
  fastBaseMs: number;
  /** Fast-phase cap, ms. Default 120 000 (2 min). */
  fastMaxMs: number;
  /** Attempts that use the fast phase. Default 7. */
  fastAttempts: number;
  /** First slow-phase delay, ms. Default 300 000 (5 min). */
  slowBaseMs: number;
  /** Slow-phase cap, ms. Default 21 600 000 (6 h). */
  slowMaxMs: number;
  /** Relative jitter: the delay is multiplied by 1 ± jitter. Default 0.2. */
  jitter: number;
  /** Delay after the peer answered BUSY, ms, regardless of attempts. Default 500. */
  busyMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  fastBaseMs: 2_000,
  fastMaxMs: 2 * 60_000,
  fastAttempts: 7,
  slowBaseMs: 5 * 60_000,
  slowMaxMs: 6 * 60 * 60_000,
  jitter: 0.2,
  busyMs: 500,
});

/** Default message lifetime: 14 days. The node sets expires_at = created_at + this unless told otherwise. */
export const DEFAULT_TTL_MS = 14 * 24 * 60 * 60_000;

/** Which schedule a retry follows: the backoff, its slow phase, or the short pause after BUSY. */
export type RetryWhen = 'soon' | 'later' | 'busy';

/**
 * Delay before the next attempt after `attempts` attempts (≥ 1), ms. `random()` returns [0, 1);
 * 0.5 gives the nominal delay.
 */
export function retryDelay(policy: BackoffPolicy, attempts: number, when: RetryWhen, random: () => number): number {
  const n = Math.max(1, Math.trunc(attempts));
  let base: number;
  if (when === 'busy') {
    base = policy.busyMs;
  } else if (when === 'soon' && n <= policy.fastAttempts) {
    base = Math.min(policy.fastMaxMs, policy.fastBaseMs * 2 ** (n - 1));
  } else {
    const slowIndex = when === 'later' ? n - 1 : n - policy.fastAttempts - 1;
    // 2^slowIndex overflows to Infinity only for absurd n; min() still caps it.
    base = Math.min(policy.slowMaxMs, policy.slowBaseMs * 2 ** Math.min(slowIndex, 60));
  }
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.max(0, Math.round(base * (1 + policy.jitter * (2 * r - 1))));
}
