/**
 * The durable outbox: delivers queued outgoing messages from the store, retries with backoff, and
 * expires what outlives its TTL. All state lives in the store; this object only holds the timer
 * and the set of deliveries in flight, so a crash loses nothing (start() re-queues 'sending' rows
 * and the receiver's dedup makes the repeat safe).
 *
 * ```
 *   queued ──pick──> sending ──delivered──> delivered
 *     ^                 │  ├───failed─────> failed (reason)
 *     └──retry(backoff)─┘  ├───held───────> held ──releaseHeld + kick(peer)──> queued
 *     └──close()/crash──┘  │
 *   queued|held ──expires_at passed──> expired
 * ```
 *
 * Scheduling: no polling. After every change the outbox asks the store when it next has work
 * (the earliest due time of a peer it may start a delivery to, the earliest expiry) and arms
 * exactly one timer for then. At most `perPeerConcurrency` deliveries per peer and
 * `maxConcurrency` overall.
 *
 * Backoff has two levels, and neither rewrites a queue:
 *
 *   peer     A 'retry' is about reaching the peer, so it sets the peer's backoff, one row in the
 *            store (store.setPeerState: failed steps, next attempt, last error). While the peer is
 *            backing off (failures > 0) at most ONE delivery to it is in flight: a probe, the least
 *            recently tried due message. A peer that is down costs one dial per backoff step,
 *            however many messages wait for it. Deliveries that were already in flight when the
 *            step was counted fail as part of the same step (they count once). A receipt from the
 *            peer ends its backoff (and lifts the one-in-flight limit at once); so does
 *            kick(peer) or peerSeen(peer), e.g. when the peer connected to us.
 *   message  The message that was actually tried also gets its own next_attempt_at, from its own
 *            attempt count (policy.ts): it goes to the back of the peer's line, and one message
 *            the peer keeps refusing with a retryable answer backs off on its own schedule even
 *            while the peer is healthy.
 *
 * A queued message is due when both its own next_attempt_at and its peer's have passed. Its
 * attempts, attempt rows and events record only what happened to it: a message that waited behind
 * a probe that failed has no attempt of its own (the peer's row says why it waits).
 */
import type { Clock, TimerHandle } from '../clock.js';
import { OnionpostError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { StoreError, type MessageState, type QueuedPeer, type Store, type StoredMessage } from '../store/index.js';
import { DEFAULT_BACKOFF, retryDelay, type BackoffPolicy, type RetryWhen } from './policy.js';

/** What one delivery attempt came to. */
export type DeliveryOutcome =
  /** The recipient's receipt, already verified by `deliver`. */
  | { kind: 'delivered'; receipt: Uint8Array }
  /**
   * Outcome unknown or temporary (unreachable, timeout, REJECT retryable). 'later' skips to the
   * slow phase, 'busy' waits a short fixed pause (see policy.ts). Default 'soon'.
   */
  | { kind: 'retry'; code: string; when?: RetryWhen }
  /** Permanent: the peer refused it for good (REJECT not retryable, too large, …). */
  | { kind: 'failed'; code: string; reason: string }
  /** The peer needs the user's attention (e.g. its key changed). Holds every queued message to that peer. */
  | { kind: 'held'; code: string; reason: string };

/**
 * Sends `message.envelope` to its peer and waits for the outcome. Must honour `signal` (aborted on
 * close) and have its own deadline. A throw counts as `{kind:'retry', code:'UNEXPECTED'}`.
 */
export type Deliver = (message: StoredMessage, signal: AbortSignal) => Promise<DeliveryOutcome>;

export type OutboxErrorCode = 'CLOSED'; // the outbox was closed (the abort reason given to in-flight deliveries)

export class OutboxError extends OnionpostError<OutboxErrorCode> {}

export interface OutboxOptions {
  store: Store;
  clock: Clock;
  deliver: Deliver;
  logger: Logger;
  /** Overrides of DEFAULT_BACKOFF. */
  policy?: Partial<BackoffPolicy>;
  /** Jitter source, [0, 1). Default Math.random (timing jitter needs no secrecy). */
  random?: () => number;
  /** Deliveries in flight to one peer identity. Default 1. */
  perPeerConcurrency?: number;
  /** Deliveries in flight overall. Default 8. */
  maxConcurrency?: number;
  /** How long close() waits for aborted deliveries to settle, ms. Default 5 000. */
  closeGraceMs?: number;
  /** Delay before trying again after the store itself failed (disk full, busy), ms. Default 30 000. */
  storeRetryMs?: number;
  /**
   * Told after each recorded state change of a message ('sending', 'delivered', 'queued' for a
   * retry, …), with the message's kind (a control message's changes are shown nowhere).
   */
  onChange?: (id: string, state: MessageState, detail: { code?: string; reason?: string }, kind: StoredMessage['kind']) => void;
}

export interface Outbox {
  /**
   * Re-queues rows left 'sending' by a crash (indexed: as many rows as were in flight), then starts
   * delivering. Peers keep the backoff they had before the restart. Idempotent.
   */
  start(): void;
  /**
   * Looks at the queue now instead of at the next timer: call it after queueing a message, when Tor
   * came back, or with a peer identity when that peer was seen online (its queued messages become
   * due now and its backoff is forgotten). Also after store.releaseHeld(peer).
   */
  kick(peerIdentity?: string): void;
  /**
   * Evidence that the peer is reachable now (it connected to us and delivered a message): if it is
   * backing off, its backoff ends and its queue drains at once, as after kick(peer). Cheap when it
   * is not (one primary-key lookup), so it may be called for every inbound message.
   */
  peerSeen(peerIdentity: string): void;
  /** Deliveries in flight now. */
  readonly inFlight: number;
  /** Stops the timer, aborts in-flight deliveries and leaves them queued. Same promise on every call. */
  close(): Promise<void>;
}

interface InFlight {
  id: string;
  kind: StoredMessage['kind'];
  peer: string;
  /** The peer's step when this delivery began (see `steps`). */
  step: number;
  /** When the attempt began: its row is written once, at the outcome. */
  startedAt: number;
  attempts: number;
  expiresAt: number;
  controller: AbortController;
  done: Promise<void>;
  abandoned: boolean;
}

/** Longest single timer; longer waits are re-armed (setTimeout's limit is 2^31-1 ms). */
const MAX_TIMER_MS = 24 * 60 * 60_000;
/** Expiries written per round; more wait for the next round (a timer at once), so start-up after a long stop is not one long transaction. */
const EXPIRE_BATCH = 500;

export function createOutbox(opts: OutboxOptions): Outbox {
  const { store, clock, deliver, logger } = opts;
  const policy: BackoffPolicy = { ...DEFAULT_BACKOFF, ...opts.policy };
  const random = opts.random ?? Math.random;
  const perPeer = Math.max(1, opts.perPeerConcurrency ?? 1);
  const maxConcurrency = Math.max(1, opts.maxConcurrency ?? 8);
  const closeGraceMs = opts.closeGraceMs ?? 5_000;
  const storeRetryMs = opts.storeRetryMs ?? 30_000;

  const inflight = new Map<string, InFlight>();
  const peerLoad = new Map<string, number>();
  // Per peer with deliveries in flight: bumped when a failure is counted as a step of the peer's
  // backoff (or the backoff is forgotten). A failure of a delivery begun at an older step belongs
  // to a step already counted. Dropped when nothing is in flight to the peer.
  const steps = new Map<string, number>();
  let timer: TimerHandle | undefined;
  let started = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  let waking = false;
  let again = false;
  let storeFailedUntil = 0;

  function armTimer(at: number | null): void {
    if (timer !== undefined) clock.clearTimeout(timer);
    timer = undefined;
    if (at === null || closed) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(1, at - clock.now()));
    timer = clock.setTimeout(() => {
      timer = undefined;
      wake();
    }, delay);
  }

  /** How many more deliveries to the peer may start now: one in flight while it backs off. */
  function room(p: QueuedPeer): number {
    const cap = p.failures > 0 ? 1 : perPeer;
    return Math.min(maxConcurrency - inflight.size, cap - (peerLoad.get(p.peerIdentity) ?? 0));
  }

  // Group commit: the outcomes that finished together and the deliveries they make room for are
  // written in one transaction (flushFinished → wake(record)), so under synchronous=FULL a burst
  // of N messages costs a few fsyncs instead of 4N.
  function pumpRound(): void {
    const now = clock.now();
    for (const id of store.expireDue(now, EXPIRE_BATCH)) logger.info({ id }, 'message expired undelivered');
    if (inflight.size >= maxConcurrency) return;
    // One index seek per queued peer, then only the rows that will start (they come back whole,
    // body and envelope): the cost of a round does not grow with the backlog.
    for (const p of store.queuedPeers()) {
      if (p.dueAt > now || inflight.size >= maxConcurrency) break;
      const n = room(p);
      if (n <= 0) continue;
      for (const row of store.dueForPeer(p.peerIdentity, now, n)) begin(row, now);
    }
  }

  function nextWake(): number | null {
    const now = clock.now();
    if (storeFailedUntil > now) return storeFailedUntil;
    let next = store.nextExpiryAt();
    if (next !== null && next <= now) return now; // more expiries than one round writes
    // At the global cap only a finishing delivery frees a slot (and each finish wakes us); until
    // then only expiries are due. Otherwise: the first peer, in due order, we may start one more
    // delivery to (a peer without room is woken for by its deliveries' outcomes).
    if (inflight.size >= maxConcurrency) return next;
    for (const p of store.queuedPeers()) {
      if (next !== null && p.dueAt >= next) break;
      if (room(p) > 0) return p.dueAt;
    }
    return next;
  }

  /**
   * Starts what is due and re-arms the timer. `record` (outcomes to write) runs first, in the same
   * transaction; if that transaction fails it is run again on its own, so outcomes are not lost
   * to a failure of the round.
   */
  function wake(record?: () => void): void {
    if (!started || closed || waking) {
      record?.();
      if (waking) again = true;
      return;
    }
    waking = true;
    let next: number | null = null;
    try {
      // A deliver() that synchronously kicks us sets `again`; bounded anyway.
      for (let i = 0; i < 16; i++) {
        again = false;
        const first = i === 0 ? record : undefined;
        try {
          store.batch(() => {
            first?.();
            pumpRound();
          });
        } catch (err) {
          first?.();
          throw err;
        }
        if (!again) break;
      }
      next = nextWake();
    } catch (err) {
      if (closed) return;
      if (err instanceof StoreError && err.code === 'CLOSED') {
        logger.warn('outbox: store closed underneath; idle until kicked');
      } else {
        logger.error({ err: describeError(err) }, 'outbox: store failed; will try again');
        storeFailedUntil = clock.now() + storeRetryMs;
        next = storeFailedUntil;
      }
    } finally {
      waking = false;
    }
    armTimer(next);
  }

  function begin(row: StoredMessage, now: number): void {
    store.beginAttempt(row.id, now);
    const message: StoredMessage = { ...row, state: 'sending', attempts: row.attempts + 1 };
    const controller = new AbortController();
    const entry: InFlight = {
      id: row.id, kind: row.kind, peer: row.peerIdentity, step: steps.get(row.peerIdentity) ?? 0, startedAt: now, attempts: message.attempts,
      expiresAt: row.expiresAt, controller, done: Promise.resolve(), abandoned: false,
    };
    steps.set(entry.peer, entry.step);
    inflight.set(row.id, entry);
    peerLoad.set(entry.peer, (peerLoad.get(entry.peer) ?? 0) + 1);
    logger.debug({ id: row.id, attempt: message.attempts }, 'delivering');
    opts.onChange?.(row.id, 'sending', {}, row.kind);
    entry.done = (async () => {
      let outcome: DeliveryOutcome;
      try {
        outcome = await deliver(message, controller.signal);
      } catch (err) {
        if (!entry.abandoned) logger.warn({ id: row.id, err: describeError(err) }, 'deliver threw; will retry');
        outcome = { kind: 'retry', code: 'UNEXPECTED', when: 'soon' };
      }
      finish(entry, outcome);
    })();
  }

  function release(entry: InFlight): void {
    inflight.delete(entry.id);
    const n = (peerLoad.get(entry.peer) ?? 1) - 1;
    if (n > 0) peerLoad.set(entry.peer, n);
    else peerLoad.delete(entry.peer);
  }

  /** After their outcomes are recorded: step counters of peers with nothing in flight are not needed. */
  function forgetIdleSteps(peers: Iterable<string>): void {
    for (const p of peers) if (!peerLoad.has(p)) steps.delete(p);
  }

  /**
   * A 'retry' outcome, for the peer: counts a step of its backoff unless this delivery began before
   * the current step was counted. Returns the peer's next attempt time.
   */
  function peerFailed(entry: InFlight, when: RetryWhen, code: string, now: number): number {
    const state = store.peerState(entry.peer);
    const step = steps.get(entry.peer) ?? 0;
    if (entry.step !== step) return state?.nextAttemptAt ?? now;
    steps.set(entry.peer, step + 1);
    if (when === 'busy') {
      // The peer answered: it is up, just full for now. A short pause, and no step of backoff.
      const nextAttemptAt = now + retryDelay(policy, 1, 'busy', random);
      store.setPeerState(entry.peer, { failures: 0, nextAttemptAt, lastErrorCode: code });
      return nextAttemptAt;
    }
    const failures = (state?.failures ?? 0) + 1;
    const nextAttemptAt = now + retryDelay(policy, failures, when, random);
    store.setPeerState(entry.peer, { failures, nextAttemptAt, lastErrorCode: code, lastFailureAt: now });
    if (failures === 1) logger.info({ peer: entry.peer.slice(0, 16), code, nextAttemptAt }, 'peer unreachable; backing off');
    return nextAttemptAt;
  }

  /** A receipt from the peer: its backoff ends (a BUSY pause still pending is kept). */
  function peerSucceeded(peer: string, now: number): void {
    const state = store.peerState(peer);
    const paused = state !== null && state.failures === 0 ? state.nextAttemptAt : 0;
    store.setPeerState(peer, { failures: 0, nextAttemptAt: paused, lastSuccessAt: now });
  }

  const finished: [InFlight, DeliveryOutcome][] = [];
  let flushScheduled = false;

  function finish(entry: InFlight, outcome: DeliveryOutcome): void {
    if (entry.abandoned) return; // close() already put it back in the queue
    finished.push([entry, outcome]);
    if (!flushScheduled) {
      flushScheduled = true;
      // After the current I/O callbacks, so receipts read together are recorded in one transaction.
      setImmediate(flushFinished);
    }
  }

  function flushFinished(): void {
    flushScheduled = false;
    const batch = finished.splice(0).filter(([e]) => !e.abandoned);
    if (batch.length === 0) return;
    const now = clock.now();
    for (const [e] of batch) release(e);
    wake(() => {
      try {
        store.batch(() => {
          // A peer's success is written once per run of receipts in the batch, not once per receipt.
          const succeeded = new Set<string>();
          for (const [e, o] of batch) record(e, o, now, succeeded);
        });
      } catch {
        // One bad row must not lose the others' outcomes: record them one by one.
        for (const [e, o] of batch) recordSafely(e, o, now);
      }
    });
    forgetIdleSteps(batch.map(([e]) => e.peer));
    if (opts.onChange) {
      for (const [e, o] of batch) {
        const state: MessageState = o.kind === 'retry' ? 'queued' : o.kind;
        opts.onChange(e.id, state, o.kind === 'delivered' ? {} : o.kind === 'retry' ? { code: o.code } : { code: o.code, reason: o.reason }, e.kind);
      }
    }
  }

  function recordSafely(entry: InFlight, outcome: DeliveryOutcome, now: number): void {
    const { id } = entry;
    try {
      store.batch(() => record(entry, outcome, now));
    } catch (err) {
      if (closed && err instanceof StoreError && err.code === 'CLOSED') return;
      logger.error({ id, err: describeError(err) }, 'outbox: recording the outcome failed');
      // Put it back so it is not stuck in 'sending' until the next restart (best effort: the store may be full).
      try {
        store.batch(() => store.scheduleRetry(id, now + storeRetryMs, 'STORE'));
      } catch {
        logger.error({ id }, 'outbox: message left in sending until restart');
      }
    }
  }

  /**
   * Writes one outcome. `succeeded`: peers whose success this batch already wrote with nothing
   * failing since (writing it again, with the same time, would change nothing).
   */
  function record(entry: InFlight, outcome: DeliveryOutcome, now: number, succeeded = new Set<string>()): void {
    const { id } = entry;
    {
      switch (outcome.kind) {
        case 'delivered':
          store.markDelivered(id, outcome.receipt, now);
          store.recordAttempt(id, entry.startedAt, now, 'delivered');
          if (!succeeded.has(entry.peer)) peerSucceeded(entry.peer, now);
          succeeded.add(entry.peer);
          logger.info({ id, attempts: entry.attempts }, 'message delivered');
          break;
        case 'retry': {
          const when = outcome.when ?? 'soon';
          // This message's own schedule, by its own attempts; the peer's backoff is one row.
          const ownAt = now + retryDelay(policy, entry.attempts, when, random);
          store.recordAttempt(id, entry.startedAt, now, 'retry', outcome.code);
          // Past expires_at the timer's expiry pass marks it expired, so no attempt is scheduled beyond.
          store.scheduleRetry(id, ownAt, outcome.code);
          const peerAt = peerFailed(entry, when, outcome.code, now);
          succeeded.delete(entry.peer);
          logger.debug({ id, code: outcome.code, attempts: entry.attempts, nextAt: Math.max(ownAt, peerAt) }, 'delivery will be retried');
          break;
        }
        case 'failed':
          store.recordAttempt(id, entry.startedAt, now, 'failed', outcome.code, outcome.reason);
          store.transition(id, 'failed', { from: ['sending'], reason: outcome.reason, errorCode: outcome.code });
          logger.warn({ id, code: outcome.code }, 'delivery failed permanently');
          break;
        case 'held':
          store.recordAttempt(id, entry.startedAt, now, 'held', outcome.code, outcome.reason);
          store.transition(id, 'held', { from: ['sending'], reason: outcome.reason, errorCode: outcome.code });
          store.holdForPeer(entry.peer, outcome.reason);
          logger.warn({ id, code: outcome.code }, 'deliveries to peer held');
          break;
      }
    }
  }

  function kick(peerIdentity?: string): void {
    if (!started || closed) return;
    if (peerIdentity !== undefined) {
      try {
        store.makeDue(peerIdentity, clock.now());
      } catch (err) {
        logger.error({ err: describeError(err) }, 'outbox: kick failed');
      }
      // Deliveries in flight began before the peer was seen: their failures are not a new step.
      if (steps.has(peerIdentity)) steps.set(peerIdentity, steps.get(peerIdentity)! + 1);
    }
    storeFailedUntil = 0;
    wake();
  }

  return {
    get inFlight() {
      return inflight.size;
    },

    start() {
      if (started || closed) return;
      started = true;
      try {
        const n = store.resetInFlight();
        if (n > 0) logger.info({ count: n }, 're-queued deliveries interrupted by a restart');
      } catch (err) {
        logger.error({ err: describeError(err) }, 'outbox: could not re-queue interrupted deliveries');
      }
      wake();
    },

    kick,

    peerSeen(peerIdentity: string) {
      if (!started || closed) return;
      try {
        if ((store.peerState(peerIdentity)?.failures ?? 0) === 0) return;
      } catch (err) {
        logger.error({ err: describeError(err) }, 'outbox: peerSeen failed');
        return;
      }
      logger.info({ peer: peerIdentity.slice(0, 16) }, 'peer seen online; its backoff ends');
      kick(peerIdentity);
    },

    close() {
      if (closing) return closing;
      // Outcomes already received are recorded, not thrown away and re-sent.
      flushFinished();
      closed = true;
      armTimer(null);
      const entries = [...inflight.values()];
      const now = clock.now();
      steps.clear();
      for (const e of entries) {
        e.abandoned = true;
        release(e);
        e.controller.abort(new OutboxError('CLOSED', 'outbox closed'));
        try {
          store.recordAttempt(e.id, e.startedAt, now, 'aborted');
          store.transition(e.id, 'queued', { from: ['sending'], reason: 'shutdown' });
        } catch (err) {
          // If the store is already closed, resetInFlight() on the next start re-queues it.
          logger.warn({ id: e.id, err: describeError(err) }, 'outbox: could not re-queue on close');
        }
      }
      closing = (async () => {
        if (entries.length === 0) return;
        let grace: TimerHandle | undefined;
        await Promise.race([
          Promise.allSettled(entries.map((e) => e.done)),
          new Promise<void>((resolve) => {
            grace = clock.setTimeout(resolve, closeGraceMs);
          }),
        ]);
        if (grace !== undefined) clock.clearTimeout(grace);
      })();
      return closing;
    },
  };
}
