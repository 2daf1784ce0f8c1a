/**
 * The provider side of the mailbox protocol: serves one MessageChannel per connection (the onion
 * listener routes `/mailbox/v1` here) against the ProviderStore.
 *
 * Per connection, requests are handled one at a time in arrival order (a FETCH or a DEPOSIT is a
 * single SQLite transaction), at most `maxQueued` wait behind the one running (beyond that: ERROR
 * BUSY), and a token bucket bounds the rate. Cheap checks run before expensive ones: decode, rate,
 * request shape, then signature (Ed25519 verify), then the store. A frame that does not decode is
 * answered ERROR MALFORMED and the connection is closed (and `onMisbehaved` told: the node refuses
 * the circuit for a while); every other refusal keeps it open.
 *
 * What a deposit is answered with (DEPOSITED, signed) is sent only after the store committed it.
 *
 * Watches: a WATCH (with the queue's read capability) makes the connection get a NOTIFY for that
 * queue after each deposit there commits, so an owner who is online fetches at once instead of at
 * its next round. At most `maxWatches` per connection (watching a queue twice is one watch); a
 * queue's NOTIFYs to one watcher are coalesced to one per `notifyGapMs`; they end with the
 * connection, or with REMOVE_QUEUE of the queue.
 */
import { toHex } from '../bytes.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Identity } from '../crypto/index.js';
import type { Logger } from '../log.js';
import { TokenBucket } from '../protocol/index.js';
import { CloseCode, type MessageChannel } from '../transport/index.js';
import { ProviderError, type ProviderErrorCode } from './errors.js';
import { DEFAULT_PAYMENT_TIMING, PaymentGate, type PaymentSource } from './payments.js';
import { SessionError, decodeBundle, verifyBundle } from '../session/index.js';
import { DOMAINS, accountBody, accountStatusBody, depositBody, putBundleBody, queueBody, sign, subscribeBody, termsBody, verify } from './statements.js';
import type { ProviderStore } from './store.js';
import {
  MailboxErrorCode, decodeMailboxRequest, encodeMailboxFrame, type MailboxAnswer, type MailboxRequest,
} from './wire.js';


/** One WATCH: where its NOTIFYs go. */
interface Watcher {
  queue: string;
  /** The WATCH's request id, echoed by each NOTIFY. */
  id: number;
  send: (a: MailboxAnswer & { id: number }) => void;
  timer: TimerHandle | undefined;
  /** A NOTIFY is scheduled. */
  due: boolean;
  last: number;
  /** Its queue was removed: it stays in its connection's list (for the limit) but is told nothing. */
  removed?: boolean;
}

export interface MailboxServiceLimits {
  /** How far a signed request's time may be from ours, ms. Default 10 min. */
  maxSkewMs: number;
  /** Requests per second per connection, and the burst. Defaults 50 and 200. */
  requestsPerSecond: number;
  requestBurst: number;
  /** Requests waiting behind the running one on a connection. Default 32. */
  maxQueued: number;
  /** Largest envelope, bytes. */
  maxEnvelope: number;
  /** How long past its paid-until date a subscription is still served, ms. Default 3 days. */
  graceMs: number;
  /** How often envelopes past their retention are dropped, ms. Default 1 h. */
  expireIntervalMs: number;
  /** A priced provider: past a subscriber's remembered paid-until, how often a DEPOSIT/FETCH may read the chain again for it, ms. Default 10 min. */
  paymentRecheckMs: number;
  /** The deadline of one chain read of a payment, ms. Default 30 s. */
  paymentCheckTimeoutMs: number;
  /** Queues one connection may watch (WATCH). Default 16. */
  maxWatches: number;
  /** Least time between two NOTIFYs of one watch, ms. Default 250. */
  notifyGapMs: number;
  /**
   * GET_BUNDLE answers per second over all connections (anonymous: Tor hides who asks, so the
   * bound is the provider's), and their burst. Beyond: RATE_LIMITED. Default 5/s, burst 50.
   */
  bundleGetsPerSecond: number;
  bundleGetBurst: number;
  /**
   * One-time prekeys handed out per user per hour, and their burst: past this a stranger draining a
   * user's pool gets the bundle without one (the agreement still works, without DH4). Default 30/h, burst 20.
   */
  prekeysPerHour: number;
  prekeyBurst: number;
  /** How far a put bundle's created time may be ahead of the provider's clock, ms. Default 24 h (PROTOCOL.md §12 maxClockSkew). */
  bundleSkewMs: number;
}

export const DEFAULT_SERVICE_LIMITS: Readonly<Omit<MailboxServiceLimits, 'maxEnvelope'>> = Object.freeze({
  maxSkewMs: 10 * 60 * 1000,
  requestsPerSecond: 50,
  requestBurst: 200,
  maxQueued: 32,
  graceMs: 3 * 24 * 3600 * 1000,
  expireIntervalMs: 3600 * 1000,
  paymentRecheckMs: DEFAULT_PAYMENT_TIMING.recheckMs,
  paymentCheckTimeoutMs: DEFAULT_PAYMENT_TIMING.checkTimeoutMs,
  maxWatches: 16,
  notifyGapMs: 250,
  bundleGetsPerSecond: 5,
  bundleGetBurst: 50,
  prekeysPerHour: 30,
  prekeyBurst: 20,
  bundleSkewMs: 24 * 3600 * 1000,
});

export interface MailboxServiceOptions {
  identity: Identity;
  store: ProviderStore;
  clock: Clock;
  logger: Logger;
  limits: Partial<MailboxServiceLimits> & { maxEnvelope: number };
  /**
   * For a priced provider: when the subscription recorded under `tag` is paid until (ms; 0 never),
   * read from the provider directory on chain. Absent: the provider is free. Asked at SUBSCRIBE, and
   * at DEPOSIT/FETCH only once the owner's remembered paid-until date has passed (payments.ts).
   */
  paidUntil?: (tag: Uint8Array, signal: AbortSignal) => Promise<number>;
  /** With `paidUntil`: whether the provider charges now (its listing has a price). Absent: always. */
  priced?: (signal: AbortSignal) => Promise<boolean>;
}

const STORE_CODES: Partial<Record<ProviderErrorCode, number>> = {
  NO_CAPABILITY: MailboxErrorCode.NO_CAPABILITY, OVER_QUOTA: MailboxErrorCode.OVER_QUOTA, BAD_SIZE: MailboxErrorCode.BAD_SIZE,
  TOO_MANY_USERS: MailboxErrorCode.TOO_MANY_USERS, TOO_MANY_QUEUES: MailboxErrorCode.TOO_MANY_QUEUES,
  NOT_SUBSCRIBED: MailboxErrorCode.NOT_SUBSCRIBED, UNAVAILABLE: MailboxErrorCode.INTERNAL, QUEUE_EXISTS: MailboxErrorCode.QUEUE_EXISTS,
  BAD_SIGNATURE: MailboxErrorCode.BAD_SIGNATURE, STALE: MailboxErrorCode.STALE, NOT_PAID: MailboxErrorCode.NOT_PAID,
  MALFORMED: MailboxErrorCode.MALFORMED, NO_BUNDLE: MailboxErrorCode.NO_BUNDLE, BAD_BUNDLE: MailboxErrorCode.BAD_BUNDLE,
  RATE_LIMITED: MailboxErrorCode.RATE_LIMITED,
};
/** A HELD answer's header and count, and each item's seq, time and length prefix. */
const HELD_FIXED_BYTES = 8;
const HELD_ITEM_BYTES = 20;
const RETRYABLE = new Set<number>([MailboxErrorCode.OVER_QUOTA, MailboxErrorCode.RATE_LIMITED, MailboxErrorCode.BUSY, MailboxErrorCode.INTERNAL]);

export class MailboxService {
  readonly #o: MailboxServiceOptions;
  readonly #limits: MailboxServiceLimits;
  readonly #log: Logger;
  readonly #channels = new Set<MessageChannel>();
  /** Queue (hex) → the connections watching it. */
  readonly #watchers = new Map<string, Set<Watcher>>();
  readonly #abort = new AbortController();
  #expireTimer: TimerHandle | undefined;
  readonly #payments: PaymentGate | null;
  /** GET_BUNDLE over all connections (see bundleGetsPerSecond). */
  readonly #bundleGets: TokenBucket;
  /** Per user (identity hex, only users with a bundle kept): one-time prekeys handed out (see prekeysPerHour). */
  readonly #prekeyBuckets = new Map<string, TokenBucket>();

  constructor(o: MailboxServiceOptions) {
    this.#o = o;
    this.#limits = { ...DEFAULT_SERVICE_LIMITS, ...o.limits };
    this.#log = o.logger;
    this.#bundleGets = new TokenBucket(this.#limits.bundleGetsPerSecond, this.#limits.bundleGetBurst, o.clock.now());
    const paidUntil = o.paidUntil;
    const source: PaymentSource | null = paidUntil ? { paidUntil, priced: o.priced ?? (async () => true) } : null;
    this.#payments = source && new PaymentGate({
      source, store: o.store, clock: o.clock, logger: o.logger, graceMs: this.#limits.graceMs, recheckMs: this.#limits.paymentRecheckMs,
      checkTimeoutMs: this.#limits.paymentCheckTimeoutMs, logEveryMs: DEFAULT_PAYMENT_TIMING.logEveryMs, signal: this.#abort.signal,
    });
  }

  /** Drops expired envelopes now and every expireIntervalMs until close(). */
  startHousekeeping(): void {
    if (this.#abort.signal.aborted || this.#expireTimer !== undefined) return;
    const run = () => {
      try {
        const n = this.#o.store.expire(this.#o.clock.now());
        if (n > 0) this.#log.info({ dropped: n }, 'dropped envelopes past their retention');
      } catch (err) {
        this.#log.warn({ err }, 'expiring held envelopes failed');
      }
      if (!this.#abort.signal.aborted) this.#expireTimer = this.#o.clock.setTimeout(run, this.#limits.expireIntervalMs);
    };
    run();
  }

  /**
   * Serves `channel` until it closes. `onProven` runs once, after the first request that proved
   * something (a valid signature, or a write or read capability): the node then moves the
   * connection off the anonymous budget, as a peer connection is after its first DELIVER that
   * opens. Public-queue deposits prove nothing. `onMisbehaved` runs when the client sent a frame
   * that does not decode (answered MALFORMED, then closed); not for BAD_SIZE.
   */
  serve(channel: MessageChannel, opts: { onProven?: () => void; onMisbehaved?: () => void } = {}): void {
    let proven = false;
    const bucket = new TokenBucket(this.#limits.requestsPerSecond, this.#limits.requestBurst, this.#o.clock.now());
    let queued = 0;
    let chain: Promise<void> = Promise.resolve();
    const answer = (a: MailboxAnswer & { id: number }) => {
      if (channel.state !== 'open') return;
      try {
        channel.send(encodeMailboxFrame(a, this.#limits.maxEnvelope));
      } catch (err) {
        this.#log.debug({ err }, 'mailbox answer not sent');
      }
    };
    this.#channels.add(channel);
    const watches: Watcher[] = [];
    channel.on('close', () => {
      this.#channels.delete(channel);
      for (const w of watches) this.#unwatch(w);
    });
    channel.on('message', (bytes) => {
      let f: MailboxRequest & { id: number };
      try {
        f = decodeMailboxRequest(bytes, this.#limits.maxEnvelope);
      } catch (err) {
        const code = err instanceof ProviderError && err.code === 'BAD_SIZE' ? MailboxErrorCode.BAD_SIZE : MailboxErrorCode.MALFORMED;
        answer({ type: 'ERROR', id: 0, code, retryable: false, reason: err instanceof Error ? err.message : 'malformed' });
        void channel.close(CloseCode.PROTOCOL_ERROR, 'malformed mailbox frame');
        if (code === MailboxErrorCode.MALFORMED) opts.onMisbehaved?.();
        return;
      }
      if (!bucket.take(this.#o.clock.now())) {
        answer({ type: 'ERROR', id: f.id, code: MailboxErrorCode.RATE_LIMITED, retryable: true, reason: 'too many requests' });
        return;
      }
      if (queued >= this.#limits.maxQueued) {
        answer({ type: 'ERROR', id: f.id, code: MailboxErrorCode.BUSY, retryable: true, reason: 'too many requests in flight' });
        return;
      }
      queued++;
      const req = f;
      chain = chain.then(async () => {
        try {
          // Watching a queue this connection watches already changes nothing; past the limit, a new
          // one is refused before it costs a capability check.
          const watching = req.type === 'WATCH' ? watches.find((w) => w.queue === toHex(req.queue) && !w.removed) : undefined;
          if (req.type === 'WATCH' && !watching && watches.length >= this.#limits.maxWatches) {
            answer({ type: 'ERROR', id: req.id, code: MailboxErrorCode.BUSY, retryable: false, reason: `at most ${this.#limits.maxWatches} watches per connection` });
            return;
          }
          const a = await this.handle(req);
          if (req.type === 'WATCH' && a.type === 'OK' && !watching) {
            const w: Watcher = { queue: toHex(req.queue), id: req.id, send: answer, timer: undefined, due: false, last: -Infinity };
            watches.push(w);
            this.#watch(w);
          }
          if (req.type === 'REMOVE_QUEUE' && a.type === 'OK') this.#unwatchQueue(toHex(req.queue));
          answer({ ...a, id: req.id });
          if (req.type === 'DEPOSIT' && a.type === 'DEPOSITED') this.#notify(req.queue);
          // A public-queue deposit or a bundle request proves nothing (anyone may make them).
          if (!proven && a.type !== 'ERROR' && req.type !== 'GET_BUNDLE' && (req.type !== 'DEPOSIT' || req.writeCap !== null)) {
            proven = true;
            opts.onProven?.();
          }
        } finally {
          queued--;
        }
      });
    });
  }

  /** One request, answered; never throws (every failure becomes an ERROR answer). */
  async handle(req: MailboxRequest): Promise<MailboxAnswer> {
    try {
      return await this.#handle(req);
    } catch (err) {
      if (err instanceof ProviderError) {
        const code = STORE_CODES[err.code] ?? MailboxErrorCode.INTERNAL;
        return { type: 'ERROR', code, retryable: RETRYABLE.has(code), reason: err.message };
      }
      this.#log.error({ err, type: req.type }, 'mailbox request failed');
      return { type: 'ERROR', code: MailboxErrorCode.INTERNAL, retryable: true, reason: 'internal error' };
    }
  }

  #checkSigned(identity: Uint8Array, time: number, domain: string, body: Uint8Array, sig: Uint8Array): void {
    const now = this.#o.clock.now();
    if (Math.abs(now - time) > this.#limits.maxSkewMs) throw new ProviderError('STALE', 'the request is signed for another time');
    if (!verify(identity, domain, body, sig)) throw new ProviderError('BAD_SIGNATURE', 'the request is not signed by that identity for this provider');
  }

  async #handle(req: MailboxRequest): Promise<MailboxAnswer> {
    const me = this.#o.identity.identityKey;
    const store = this.#o.store;
    const now = this.#o.clock.now();
    switch (req.type) {
      case 'SUBSCRIBE': {
        this.#checkSigned(req.identity, req.time, DOMAINS.subscribe, subscribeBody(me, req.identity, req.time, req.tag), req.sig);
        const paidUntil = await this.#payments?.subscribe(req.identity, req.tag, now);
        const t = store.subscribe(req.identity, now, req.tag, paidUntil);
        const sig = sign(this.#o.identity, DOMAINS.terms, termsBody(me, req.identity, t.retentionMs, t.quotaBytes, now));
        return { type: 'TERMS', retentionMs: t.retentionMs, quotaBytes: t.quotaBytes, time: now, sig };
      }
      case 'CREATE_QUEUE':
        this.#checkSigned(req.identity, req.time, DOMAINS.queue, queueBody('create', me, req.identity, req.time, req.queue, req.writeHash, req.readHash), req.sig);
        store.createQueue(req.identity, req.queue, { write: req.writeHash, read: req.readHash }, now);
        return { type: 'OK' };
      case 'REMOVE_QUEUE':
        this.#checkSigned(req.identity, req.time, DOMAINS.queue, queueBody('remove', me, req.identity, req.time, req.queue, null, null), req.sig);
        store.removeQueue(req.identity, req.queue);
        return { type: 'OK' };
      case 'DEPOSIT': {
        await this.#paid(req.queue, req.writeCap, 'write', now);
        const d = store.deposit(req.queue, req.writeCap, req.envelope, now);
        const sig = sign(this.#o.identity, DOMAINS.deposit, depositBody(me, req.queue, d.digest, d.depositedAt, d.expiresAt));
        return { type: 'DEPOSITED', seq: d.seq, digest: d.digest, depositedAt: d.depositedAt, expiresAt: d.expiresAt, sig };
      }
      case 'FETCH': {
        // Bounded by the frame: one envelope always fits (maxFrame leaves room for its 28 bytes of
        // framing); more only while the answer stays within maxEnvelope.
        await this.#paid(req.queue, req.readCap, 'read', now);
        const held = store.fetch(req.queue, req.readCap, { afterSeq: req.afterSeq, limit: req.limit });
        const items: { seq: number; depositedAt: number; envelope: Uint8Array }[] = [];
        let bytes = HELD_FIXED_BYTES;
        for (const h of held) {
          bytes += HELD_ITEM_BYTES + h.envelope.length;
          if (items.length > 0 && bytes > this.#limits.maxEnvelope) break;
          items.push({ seq: h.seq, depositedAt: h.depositedAt, envelope: h.envelope });
        }
        return { type: 'HELD', items };
      }
      case 'ACK':
        return { type: 'ACKED', count: store.ack(req.queue, req.readCap, req.seqs) };
      case 'WATCH':
        // The read capability, and for a priced provider a paid subscription, like a FETCH.
        if (!store.queueOwner(req.queue, req.readCap, 'read')) throw new ProviderError('NO_CAPABILITY', 'no queue opens with that capability');
        await this.#paid(req.queue, req.readCap, 'read', now);
        return { type: 'OK' };
      case 'ACCOUNT': {
        // Answered whether or not the subscription is paid: this is how a lapsing user learns it.
        this.#checkSigned(req.identity, req.time, DOMAINS.account, accountBody(me, req.identity, req.time), req.sig);
        const a = store.account(req.identity);
        if (!a) throw new ProviderError('NOT_SUBSCRIBED', 'this provider holds no mail for that identity');
        const paidUntil = this.#payments ? await this.#payments.status({ identityKey: req.identity, tag: a.tag, paidUntil: a.paidUntil }, now) : 0;
        const fields = {
          paidUntil, graceMs: paidUntil === 0 ? 0 : this.#limits.graceMs, heldCount: Math.min(store.heldCount(req.identity) ?? 0, 0xffff_ffff),
          heldBytes: a.usedBytes, quotaBytes: a.quotaBytes, time: now,
        };
        return { type: 'ACCOUNT_STATUS', ...fields, sig: sign(this.#o.identity, DOMAINS.accountStatus, accountStatusBody(me, req.identity, fields)) };
      }
      case 'PUT_BUNDLE': {
        this.#checkSigned(req.identity, req.time, DOMAINS.putBundle, putBundleBody(me, req.identity, req.time, req.replace, req.bundle, req.prekeys), req.sig);
        let b;
        try {
          b = decodeBundle(req.bundle);
          verifyBundle(b, { now, maxClockSkewMs: this.#limits.bundleSkewMs, expectedIdentity: req.identity });
        } catch (err) {
          if (!(err instanceof SessionError)) throw err;
          throw new ProviderError('BAD_BUNDLE', `the bundle is not a valid bundle of that identity: ${err.message}`);
        }
        const prekeys = store.putBundle(req.identity, { bundle: req.bundle, createdAt: b.createdAt, expiresAt: b.expiresAt }, req.prekeys, req.replace, now);
        return { type: 'BUNDLE_KEPT', prekeys: Math.min(prekeys, 0xffff) };
      }
      case 'GET_BUNDLE': {
        if (!this.#bundleGets.take(now)) throw new ProviderError('RATE_LIMITED', 'too many bundle requests; try again shortly');
        const key = toHex(req.identity);
        // A user without a bundle gets no bucket: the map holds at most one per user with a bundle.
        const bucket = this.#prekeyBuckets.get(key) ?? (store.bundleStats(req.identity) ? new TokenBucket(this.#limits.prekeysPerHour / 3600, this.#limits.prekeyBurst, now) : null);
        if (!bucket) throw new ProviderError('NO_BUNDLE', 'this provider keeps no bundle for that identity');
        this.#prekeyBuckets.set(key, bucket);
        const withPrekey = bucket.available(now) >= 1;
        const got = store.takeBundle(req.identity, withPrekey, now);
        if (!got) throw new ProviderError('NO_BUNDLE', 'this provider keeps no bundle for that identity');
        if (got.prekey) bucket.take(now);
        return { type: 'BUNDLE', bundle: got.bundle, prekey: got.prekey };
      }
    }
  }

  /** A priced provider: throws NOT_PAID once the queue owner's subscription has lapsed. A wrong capability is left to the store (NO_CAPABILITY). */
  async #paid(queue: Uint8Array, cap: Uint8Array | null, access: 'write' | 'read', now: number): Promise<void> {
    if (!this.#payments) return;
    const owner = this.#o.store.queueOwner(queue, cap, access);
    if (owner) await this.#payments.access(owner, now);
  }

  #watch(w: Watcher): void {
    let set = this.#watchers.get(w.queue);
    if (!set) this.#watchers.set(w.queue, (set = new Set()));
    set.add(w);
  }

  /** A removed queue is watched by no one any more (a queue later created with the same id starts unwatched). */
  #unwatchQueue(queue: string): void {
    for (const w of [...(this.#watchers.get(queue) ?? [])]) {
      this.#unwatch(w);
      w.removed = true;
    }
  }

  #unwatch(w: Watcher): void {
    if (w.timer !== undefined) this.#o.clock.clearTimeout(w.timer);
    const set = this.#watchers.get(w.queue);
    set?.delete(w);
    if (set?.size === 0) this.#watchers.delete(w.queue);
  }

  /** Tells the watchers of `queue` that mail came (at most one NOTIFY per watcher per notifyGapMs). */
  #notify(queue: Uint8Array): void {
    const set = this.#watchers.get(toHex(queue));
    if (!set) return;
    const now = this.#o.clock.now();
    for (const w of set) {
      if (w.due) continue;
      const send = () => {
        w.timer = undefined;
        w.due = false;
        w.last = this.#o.clock.now();
        w.send({ type: 'NOTIFY', id: w.id, queue });
      };
      const gap = this.#limits.notifyGapMs;
      if (now - w.last >= gap) send();
      else {
        w.due = true;
        w.timer = this.#o.clock.setTimeout(send, gap - (now - w.last));
      }
    }
  }

  /** Closes every connection being served. Idempotent. */
  close(): void {
    if (this.#expireTimer !== undefined) this.#o.clock.clearTimeout(this.#expireTimer);
    this.#expireTimer = undefined;
    this.#abort.abort(new ProviderError('CLOSED', 'mailbox service closed'));
    this.#payments?.close();
    for (const set of this.#watchers.values()) for (const w of set) if (w.timer !== undefined) this.#o.clock.clearTimeout(w.timer);
    this.#watchers.clear();
    for (const c of this.#channels) void c.close(CloseCode.GOING_AWAY, 'provider stopping');
    this.#channels.clear();
  }
}
