/**
 * How long a dial may take, and when one attempt may dial twice (pure functions; Connections
 * applies them). The problem they solve: after a peer's tor restarts, our tor still holds the old
 * descriptor and its intro points lead nowhere, so a dial can hang until its deadline although the
 * peer is back within seconds; and a wait measured for a first rendezvous over the real Tor
 * network (tens of seconds) is far too long for a peer we reached in one second a minute ago.
 *
 *   timeout     a peer never reached: maxMs. A peer reached before: `factor` × its last successful
 *               dial time, within [minMs, maxMs] — a rendezvous takes about as long as last time,
 *               and one that takes four times as long is stuck on a circuit that leads nowhere.
 *   second dial at most one per attempt, only where a fresh dial (new isolation key, so new
 *               circuits; and once the old intro points failed, a freshly fetched descriptor) is
 *               likely to get through, and only with at least minMs left of the attempt's budget
 *               of maxMs (so an attempt never dials for longer than maxMs in all):
 *                 failed fast (≤ fastFailMs) with retry class 'soon' (intro or rendezvous failed,
 *                   circuit timed out, our tor restarting) → after quickRetryPauseMs
 *                 timed out under a shortened (adaptive) timeout → at once, with the rest of maxMs
 *               never after 'later' (the peer looks offline: one dial per backoff step, as the
 *               outbox's schedule intends) or 'never'.
 */
import type { RetryClass } from '../errors.js';

export interface DialPolicy {
  /** The longest a dial may take (a peer never reached), and an attempt's dial budget, ms. Default 30 000. */
  maxMs: number;
  /** The shortest timeout for a peer reached before, ms. Default 10 000. */
  minMs: number;
  /** A peer reached before gets this many times its last successful dial time. Default 4. */
  factor: number;
  /** A dial that failed within this came back "fast", ms. Default 5 000. */
  fastFailMs: number;
  /** Pause before the second dial after a fast failure, ms. Default 1 000. */
  quickRetryPauseMs: number;
}

export const DEFAULT_DIAL_POLICY: Readonly<DialPolicy> = Object.freeze({
  maxMs: 30_000,
  minMs: 10_000,
  factor: 4,
  fastFailMs: 5_000,
  quickRetryPauseMs: 1_000,
});

/** The timeout of a dial to a peer whose last successful dial took `lastSuccessMs` (undefined: never reached). */
export function dialTimeout(policy: DialPolicy, lastSuccessMs: number | undefined): number {
  if (lastSuccessMs === undefined) return policy.maxMs;
  return Math.min(policy.maxMs, Math.max(policy.minMs, Math.ceil(policy.factor * lastSuccessMs)));
}

/** How the first dial of an attempt failed. */
export interface FailedDial {
  /** From the start of the dial to its failure, ms. */
  elapsedMs: number;
  /** The timeout it had, ms. */
  timeoutMs: number;
  /** The error's code (DIAL_TIMEOUT when it ran out of time). */
  code: string;
  /** The error's retry class, if it carries one. */
  retryClass: RetryClass | undefined;
}

/** Whether to dial again within the same attempt: the pause before it and its timeout, or null. */
export function secondDial(policy: DialPolicy, first: FailedDial): { pauseMs: number; timeoutMs: number } | null {
  if (first.retryClass === 'never' || first.retryClass === 'later') return null;
  if (first.code === 'DIAL_TIMEOUT') {
    const rest = policy.maxMs - first.elapsedMs;
    return first.timeoutMs < policy.maxMs && rest >= policy.minMs ? { pauseMs: 0, timeoutMs: rest } : null;
  }
  if (first.retryClass === 'soon' && first.elapsedMs <= policy.fastFailMs) {
    const rest = policy.maxMs - first.elapsedMs - policy.quickRetryPauseMs;
    return rest >= policy.minMs ? { pauseMs: policy.quickRetryPauseMs, timeoutMs: rest } : null;
  }
  return null;
}
