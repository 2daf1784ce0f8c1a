/**
 * Offline delivery, the user's side (issue 11, items 4, 5 and 7): leaving a message at its
 * recipient's providers when the recipient is offline, and fetching what our own providers hold
 * for us.
 *
 *   deposit(m):  the providers the recipient's newest bundle listed (store.deposits.peerMailboxes),
 *                in that order, skipping those that hold the message already → dial
 *                <provider>/mailbox/v1 → DEPOSIT (recipient's public queue, PROTOCOL.md §14.2) →
 *                the provider's signed receipt, verified → recorded with the message. Stops once
 *                `replicas` providers hold it; a provider that is down or refuses is skipped. With
 *                measured reputation (`usable`), providers scored below the line are passed over
 *                and do not count as holding it, unless the recipient lists no other.
 *   fetch():     for each of our providers: ACCOUNT (how our account stands; `checkAccount`, best
 *                effort) → FETCH our public queue a page at a time → each envelope
 *                through the pipeline's receive path (opened, committed, deduplicated by message id
 *                like a direct DELIVER) → ACK what committed or can never be read (so the provider
 *                deletes it) → last fetch time recorded. A retryable refusal of ours (storage full)
 *                leaves the rest at the provider for the next round.
 *
 * A provider that answers with what does not decode (MALFORMED) is skipped for a cooling period
 * (limits.coolingMs, doubling on repeat up to maxCoolingMs): deposits go to the recipient's next
 * provider, and our own fetch rounds, notices and re-watches pass it over (the last fetch before
 * one of ours is dropped still goes). Its reputation records the answer itself (provider-scores.ts, `malformed`).
 *
 * A deposit never makes a message delivered: only the recipient's own receipt does, which comes
 * back when the sender's slow direct retry reaches the recipient after it fetched (the receiver
 * answers a retry of the same bytes with the receipt it stored).
 */
import { fromHex } from '../bytes.js';
import type { Clock, TimerHandle } from '../clock.js';
import { Cooling } from '../cooling.js';
import { describeError } from '../errors.js';
import { KeyedRerun } from '../rerun.js';
import { contactQueueReadCap, onionAddress, parseOnionAddress, publicQueueId, publicQueueReadCap, type Identity, type RandomBytes } from '../crypto/index.js';
import type { QueueAt } from '../store/index.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../log.js';
import type { MessagePipeline } from '../pipeline/index.js';
import { MAILBOX_PATH, MAX_FETCH, MailboxClient, MailboxErrorCode, ProviderError, type DepositReceipt } from '../provider/index.js';
import { RejectCode } from '../protocol/index.js';
import { KIND_RECEIPTS, SessionError, openReceipts, sealReceipts } from '../session/index.js';
import type { Store, StoredMessage } from '../store/index.js';
import type { PeerNetwork } from './network.js';
import type { ProviderObservation } from './provider-scores.js';

export interface CourierOptions {
  identity: Identity;
  store: Store;
  network: PeerNetwork;
  pipeline: Pick<MessagePipeline, 'receiveHeld' | 'receiptsPushed'>;
  /** Randomness (the RECEIPTS envelopes' ephemeral keys). */
  random: RandomBytes;
  clock: Clock;
  limits: Limits;
  logger: Logger;
  emit: (ev: { type: string; [k: string]: unknown }) => void;
  /**
   * Hands receipts for fetched mail to its sender's node (a RECEIPT push on a direct connection);
   * rejects when the sender cannot be reached. Default none: senders then learn of delivery only
   * on their next direct retry.
   */
  pushReceipts?: (senderOnion: string, receipts: { messageId: Uint8Array; mac: Uint8Array }[], signal: AbortSignal) => Promise<void>;
  /**
   * Asked first in each fetch from a provider of ours, on the same connection: the node asks how our
   * account stands there (mailboxes.ts checkAccount). A failure is logged; the fetch goes on.
   */
  checkAccount?: (onion: string, client: MailboxClient, opts: { signal: AbortSignal; timeoutMs: number }) => Promise<unknown>;
  /**
   * Asked next in each fetch from a provider of ours, on the same connection: the node keeps its
   * bundle and one-time prekeys there for first contacts (first-contact.ts). A failure is logged.
   */
  keepBundle?: (onion: string, client: MailboxClient, opts: { signal: AbortSignal; timeoutMs: number }) => Promise<unknown>;
  /** Aborted when the node closes. */
  signal: AbortSignal;
  /** Told of every deposit and fetch outcome, per provider (reputation, provider-scores.ts). */
  observe?: (provider: string, o: ProviderObservation) => void;
  /**
   * Whether mail may be left at a provider (default all): one scored below the line is passed
   * over while the recipient lists another, and a message it holds is left at another too.
   */
  usable?: (provider: string) => boolean;
  /** Providers a message is left at, at most. Default 2. */
  replicas?: number;
  /** Dial deadline per provider, ms. Default 60 s. */
  dialTimeoutMs?: number;
  /** Deadline of one request, ms. Default 60 s. */
  requestTimeoutMs?: number;
  /** Time between fetch rounds, ms. Default 5 min. */
  fetchIntervalMs?: number;
}

/** A FETCH refused as RATE_LIMITED is tried again this many times per round, this much later. */
const RATE_LIMITED_RETRIES = 20;
const RATE_LIMITED_PAUSE_MS = 1_000;

/** Resolves after `ms` on `clock`, or rejects when `signal` aborts. */
function delay(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clock.clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** FETCH pages in one round per provider, at most (64 envelopes each). */
const MAX_PAGES = 1_000;
/** A provider connection nobody used for this long is closed, ms. */
const IDLE_MS = 30_000;

/** After a watched connection to one of our providers closes, we dial it again this much later, ms. */
const REWATCH_MS = 10_000;

interface Pooled {
  ready: Promise<{ client: MailboxClient; key: Uint8Array }>;
  idle: TimerHandle | undefined;
  users: number;
  /** It carries a WATCH of our queues there: kept open while the node runs (never idle-closed). */
  watched: boolean;
  /** The queues (hex) watched on this connection. */
  watching: Set<string>;
}

/** One of our queues at a provider, with the capability that reads it. */
interface OwnQueue {
  queue: Uint8Array;
  readCap: Uint8Array;
}

const hexOf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class Courier {
  readonly #o: CourierOptions;
  #timer: TimerHandle | undefined;
  #fetching: Promise<void> | undefined;
  #closed = false;
  /**
   * One connection per provider, shared by every deposit and fetch (requests are matched by id):
   * over Tor each new connection to an onion costs a rendezvous, so a burst of deposits must not
   * dial once per message.
   */
  readonly #pool = new Map<string, Pooled>();
  /** Per provider of ours: a fetch it asked for (NOTIFY) running now, and whether another is due after it. */
  readonly #soon = new KeyedRerun<string>({ maxRuns: 100, onError: () => {} });
  readonly #timers = new Set<TimerHandle>();
  /** Providers that answered what does not decode, by onion. */
  readonly #cooling: Cooling;

  constructor(o: CourierOptions) {
    this.#o = o;
    this.#cooling = new Cooling({ baseMs: o.limits.coolingMs, maxMs: o.limits.maxCoolingMs, maxKeys: o.limits.maxCoolingScopes });
  }

  /** Until when `onion` is skipped (it answered what does not decode), ms since epoch; undefined: it is not. */
  coolingUntil(onion: string): number | undefined {
    return this.#cooling.refusedUntil(onion, this.#o.clock.now());
  }

  /** Whether `onion` is skipped for now: it answered what does not decode. */
  #cool(onion: string): boolean {
    return this.#cooling.refusedUntil(onion, this.#o.clock.now()) !== undefined;
  }

  /** Runs `fn` on the pooled connection to `onion` (dialled if none); a connection found closed is replaced once. */
  async #with<T>(onion: string, signal: AbortSignal, fn: (client: MailboxClient, key: Uint8Array) => Promise<T>): Promise<T> {
    for (let round = 0; ; round++) {
      const p = this.#acquire(onion);
      try {
        const { client, key } = await p.ready;
        return await fn(client, key);
      } catch (err) {
        if (round === 0 && err instanceof ProviderError && err.code === 'CLOSED' && !signal.aborted) {
          this.#drop(onion, p);
          continue;
        }
        if (!(err instanceof ProviderError && err.code === 'REMOTE')) this.#drop(onion, p);
        if (err instanceof ProviderError && err.code === 'MALFORMED' && !this.#cool(onion)) {
          const until = this.#cooling.offend(onion, this.#o.clock.now());
          if (until !== undefined) this.#o.logger.warn({ provider: onion, skippedForMs: until - this.#o.clock.now() }, 'a mailbox provider answered with what does not decode: skipping it for a while');
        }
        throw err;
      } finally {
        this.#release(onion, p);
      }
    }
  }

  #acquire(onion: string): Pooled {
    let p = this.#pool.get(onion);
    if (!p) {
      const key = parseOnionAddress(onion).identityKey;
      const o = this.#o;
      // The dial ends with the node (its signal), not with the caller that happened to start it.
      const dialSignal = AbortSignal.any([o.signal, AbortSignal.timeout(o.dialTimeoutMs ?? 60_000)]);
      const ready = o.network.dial(onion, { signal: dialSignal, timeoutMs: o.dialTimeoutMs ?? 60_000, limits: o.limits, path: MAILBOX_PATH })
        .then((channel) => {
          channel.on('close', () => this.#lost(onion, pooled));
          const client = new MailboxClient({ channel, providerKey: key, clock: o.clock, maxEnvelope: o.limits.maxEnvelope, onNotify: () => this.#fetchSoon(onion) });
          return { client, key };
        });
      ready.catch(() => {});
      const pooled: Pooled = { ready, idle: undefined, users: 0, watched: false, watching: new Set() };
      p = pooled;
      this.#pool.set(onion, p);
    }
    if (p.idle !== undefined) this.#o.clock.clearTimeout(p.idle);
    p.idle = undefined;
    p.users++;
    return p;
  }

  #release(onion: string, p: Pooled): void {
    p.users--;
    if (p.users > 0 || p.watched || this.#pool.get(onion) !== p) return;
    p.idle = this.#o.clock.setTimeout(() => this.#drop(onion, p), IDLE_MS);
  }

  #drop(onion: string, p: Pooled): void {
    if (this.#pool.get(onion) === p) this.#pool.delete(onion);
    if (p.idle !== undefined) this.#o.clock.clearTimeout(p.idle);
    p.idle = undefined;
    void p.ready.then(({ client }) => client.close()).catch(() => {});
  }

  /**
   * Leaves `m`'s envelope at its recipient's providers. Returns the providers holding it now
   * (those from before included), or [] when the recipient lists none or none took it.
   */
  async deposit(m: StoredMessage, signal: AbortSignal, only?: readonly string[]): Promise<string[]> {
    const o = this.#o;
    const envelope = m.envelope;
    if (!envelope || envelope.length === 0 || !m.envelopeHash) return [];
    const hash = m.envelopeHash;
    let held = [...m.mailboxes];
    const targets = this.#targets(m.peerIdentity).filter((p) => !only || only.includes(p));
    await this.#spread(targets, held, signal, (client, key, provider) =>
      this.#depositFor(m.peerIdentity, provider, client, key, envelope, signal),
    (provider, receipt: DepositReceipt) => {
      held = o.store.deposits.record({
        messageId: m.id, provider, seq: receipt.seq, envelopeHash: hash, depositedAt: receipt.depositedAt, expiresAt: receipt.expiresAt, receipt: receipt.sig,
      });
      return held;
    });
    return held;
  }

  /**
   * Deposits `envelope` for `peer` (hex) at `provider`: in the private queue the peer handed us
   * there (PROTOCOL.md §9.2 kind 4), else in its public queue. A handed queue the provider refuses
   * (NO_CAPABILITY: the peer removed it) is forgotten and the public queue used at once.
   */
  async #depositFor(peer: string, provider: string, client: MailboxClient, key: Uint8Array, envelope: Uint8Array, signal: AbortSignal): Promise<DepositReceipt> {
    const o = this.#o;
    const opts = { signal, timeoutMs: o.requestTimeoutMs ?? 60_000 };
    const handed = o.store.contactQueues.theirs(peer, provider);
    if (handed) {
      try {
        return await client.deposit(handed.queue, handed.writeCap, envelope, opts);
      } catch (err) {
        if (!(err instanceof ProviderError && err.code === 'REMOTE' && err.remoteCode === MailboxErrorCode.NO_CAPABILITY)) throw err;
        o.logger.info({ provider }, 'a queue a contact handed us is gone at its provider: using its public queue');
        o.store.contactQueues.forgetTheirs(peer, provider, o.clock.now());
      }
    }
    return client.deposit(publicQueueId(fromHex(peer), key), null, envelope, opts);
  }

  /**
   * Runs `put` at `targets` in order until `replicas` of them hold what it leaves there: each
   * provider in `held` already counts (only those among the targets: the recipient still lists
   * them and they are not scored bad), one cooling down is skipped, and every outcome is observed.
   * `took` records a success and returns the providers holding it now.
   */
  async #spread<T>(
    targets: readonly string[], held: readonly string[], signal: AbortSignal,
    put: (client: MailboxClient, key: Uint8Array, provider: string) => Promise<T>, took: (provider: string, result: T) => readonly string[],
  ): Promise<void> {
    const o = this.#o;
    let holding = held;
    for (const provider of targets) {
      if (holding.filter((p) => targets.includes(p)).length >= (o.replicas ?? 2) || signal.aborted) break;
      if (holding.includes(provider) || this.#cool(provider)) continue;
      let result: T;
      try {
        result = await this.#with(provider, signal, (client, key) => put(client, key, provider));
      } catch (err) {
        o.logger.info({ provider, err: describeError(err) }, 'leaving mail at a provider failed; trying the next');
        o.observe?.(provider, { op: 'deposit', ok: false, error: err });
        continue;
      }
      o.observe?.(provider, { op: 'deposit', ok: true });
      holding = took(provider, result);
    }
  }

  /**
   * Where to leave mail for `peer` (hex), in the order its bundle lists them: those not scored bad,
   * or, when every one is, all of them (better there than nowhere).
   */
  #targets(peer: string): string[] {
    const listed = this.#o.store.deposits.peerMailboxes(peer);
    const good = this.#o.usable ? listed.filter(this.#o.usable) : listed;
    return good.length > 0 ? good : listed;
  }

  /**
   * `identityKey`'s bundle answer as the provider `onion` keeps it (GET_BUNDLE, PROTOCOL.md §14.8),
   * on the pooled connection; unverified (the caller checks it is that identity's). Rejects when
   * the provider is cooling down, unreachable or has none.
   */
  async getBundle(onion: string, identityKey: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    if (this.#cool(onion)) throw new ProviderError('CLOSED', `${onion} is skipped for now: it answered what does not decode`);
    return this.#with(onion, signal, (client) => client.getBundle(identityKey, { signal, timeoutMs: this.#o.requestTimeoutMs ?? 60_000 }));
  }

  /** Fetches from every provider of ours now (a round already running is joined). */
  fetch(): Promise<void> {
    this.#fetching ??= this.#fetchAll().finally(() => {
      this.#fetching = undefined;
    });
    return this.#fetching;
  }

  /** A fetch round now, then one every fetchIntervalMs until close(). */
  start(): void {
    if (this.#closed) return;
    const round = () => {
      this.#timer = undefined;
      void this.fetch()
        .catch((err: unknown) => this.#o.logger.warn({ err: describeError(err) }, 'a fetch round failed'))
        .finally(() => {
          if (!this.#closed) this.#timer = this.#o.clock.setTimeout(round, this.#o.fetchIntervalMs ?? 5 * 60_000);
        });
    };
    round();
  }

  async #fetchAll(): Promise<void> {
    for (const p of this.#o.store.mailboxProviders.list()) {
      if (this.#o.signal.aborted) return;
      if (this.#cool(p.onion)) {
        this.#o.logger.info({ provider: p.onion }, 'not fetching from a mailbox provider that answered what does not decode, for now');
        continue;
      }
      try {
        await this.fetchFrom(p.onion);
      } catch (err) {
        this.#o.logger.info({ provider: p.onion, err: describeError(err) }, 'fetch from a mailbox provider failed');
      }
    }
  }

  /**
   * A connection closed (the provider restarted, the circuit broke). One that carried our watch is
   * dialled again a little later (by a fetch, which watches anew), so mail still comes at once.
   */
  #lost(onion: string, p: Pooled): void {
    if (this.#pool.get(onion) === p) this.#drop(onion, p);
    if (!p.watched || this.#closed) return;
    const t = this.#o.clock.setTimeout(() => {
      this.#timers.delete(t);
      if (this.#o.store.mailboxProviders.get(onion)) this.#fetchSoon(onion);
    }, REWATCH_MS);
    this.#timers.add(t);
  }

  /** A fetch from one provider of ours now (a NOTIFY came): one at a time per provider, coalesced. */
  #fetchSoon(onion: string): void {
    // One that answered garbage waits for a fetch round after its cooling (which watches anew).
    this.#soon.request(onion, async () => {
      await this.fetchFrom(onion).catch((err: unknown) => this.#o.logger.info({ provider: onion, err: describeError(err) }, 'fetch on notice failed'));
      return false;
    }, () => this.#closed || this.#cool(onion));
  }

  /** One fetch from `onion` (ours, or one we are about to drop); rejects when it fails. */
  async fetchFrom(onion: string): Promise<void> {
    try {
      await this.#with(onion, this.#o.signal, (client, key) => this.#fetchOn(onion, client, key));
    } catch (err) {
      this.#o.observe?.(onion, { op: 'fetch', ok: false, error: err });
      throw err;
    }
    this.#o.observe?.(onion, { op: 'fetch', ok: true });
  }

  async #fetchOn(onion: string, client: MailboxClient, key: Uint8Array): Promise<void> {
    const o = this.#o;
    const opts = { signal: o.signal, timeoutMs: o.requestTimeoutMs ?? 60_000 };
    await o.checkAccount?.(onion, client, opts).catch((err: unknown) => o.logger.info({ provider: onion, err: describeError(err) }, 'asking a mailbox provider how our account stands failed; fetching anyway'));
    await o.keepBundle?.(onion, client, opts).catch((err: unknown) => o.logger.info({ provider: onion, err: describeError(err) }, 'keeping our bundle at a mailbox provider failed'));
    const queues = this.#ownQueues(onion, key);
    for (const q of queues) await this.#watchOn(onion, client, q, opts);
    const round = { fetched: 0, receipts: new Map<string, { messageId: Uint8Array; mac: Uint8Array }[]>() };
    try {
      for (const q of queues) {
        if (o.signal.aborted || !(await this.#fetchQueue(client, q, opts, round))) break;
      }
    } finally {
      // What committed is ours even if the round broke off: its senders hear of it now.
      this.#push(round.receipts);
      if (round.fetched > 0) {
        o.logger.info({ provider: onion, messages: round.fetched }, 'fetched mail from a mailbox provider');
        o.emit({ type: 'mailbox.fetched', provider: onion, messages: round.fetched });
      }
    }
    o.store.mailboxProviders.setLastFetch(onion, o.clock.now());
  }

  /** Our queues at a provider: the public one, then one per contact (PROTOCOL.md §14.2). */
  #ownQueues(onion: string, key: Uint8Array): OwnQueue[] {
    const id = this.#o.identity;
    return [
      { queue: publicQueueId(id.identityKey, key), readCap: publicQueueReadCap(id, key) },
      ...this.#o.store.contactQueues.oursAt(onion).map((q) => ({ queue: q.queue, readCap: contactQueueReadCap(id, key, q.queue) })),
    ];
  }

  /**
   * Fetches one of our queues a page at a time, commits each page through the pipeline, ACKs what
   * committed. Adds to `round`; returns false when the round must stop (our storage is full).
   */
  async #fetchQueue(
    client: MailboxClient, q: OwnQueue, opts: { signal: AbortSignal; timeoutMs: number },
    round: { fetched: number; receipts: Map<string, { messageId: Uint8Array; mac: Uint8Array }[]> },
  ): Promise<boolean> {
    const o = this.#o;
    const { queue, readCap } = q;
    let after = 0;
    // Each page's ACK is in flight while the next page is fetched and committed (the provider
    // answers a connection's requests in order): over Tor that hides a round trip per page.
    let acking: Promise<unknown> = Promise.resolve();
    let limited = 0;
    let stop = false;
    for (let page = 0; page < MAX_PAGES && !stop; page++) {
      let items;
      try {
        items = await client.fetch(queue, readCap, after, MAX_FETCH, opts);
      } catch (err) {
        // A big backlog outruns the provider's request rate: wait a moment and go on (bounded).
        if (err instanceof ProviderError && err.code === 'REMOTE' && err.remoteCode === MailboxErrorCode.RATE_LIMITED && limited < RATE_LIMITED_RETRIES) {
          limited++;
          await delay(this.#o.clock, RATE_LIMITED_PAUSE_MS, opts.signal);
          page--;
          continue;
        }
        throw err;
      }
      if (items.length === 0) break;
      // RECEIPTS envelopes (receipts for our own mail, left here while we were offline) are read
      // here; everything else is mail for the pipeline's receive path.
      const mail = items.filter((i) => i.envelope[0] !== KIND_RECEIPTS);
      const answers = new Map((await o.pipeline.receiveHeld(mail.map((i) => i.envelope))).map((a, j) => [mail[j]!.seq, a]));
      // Committed, or never readable (not for us, garbage in the public queue): the provider may
      // delete it. What we refused retryably stays for a later round (see below).
      const done: number[] = [];
      for (let i = 0; i < items.length; i++) {
        const a = answers.get(items[i]!.seq);
        if (!a) {
          this.#applyReceipts(items[i]!.envelope);
          done.push(items[i]!.seq);
          continue;
        }
        if ('reject' in a && a.reject.retryable) {
          // Our storage is full: the rest stays at the provider for the next round. Any other
          // retryable refusal (a clock that disagrees, our own internal error) concerns this
          // envelope alone: it stays, and the rest of the queue goes on (one bad envelope must
          // not hold up everyone's mail).
          if (a.reject.code === RejectCode.STORAGE_FULL) stop = true;
          continue;
        }
        done.push(items[i]!.seq);
        if ('receipt' in a) round.fetched++;
        if ('receipt' in a && a.id && a.peer) {
          const list = round.receipts.get(a.peer) ?? [];
          list.push({ messageId: fromHex(a.id), mac: a.receipt });
          round.receipts.set(a.peer, list);
        }
      }
      await acking;
      if (done.length > 0) {
        acking = client.ack(queue, readCap, done, opts);
        acking.catch(() => {}); // awaited below; a fetch failing first must not leave it unhandled
      }
      after = items[items.length - 1]!.seq;
    }
    await acking;
    return !stop;
  }

  /** A RECEIPTS envelope from our queue: receipts for our own mail (a bad one is dropped). */
  #applyReceipts(envelope: Uint8Array): void {
    try {
      const n = this.#o.pipeline.receiptsPushed(openReceipts(this.#o.identity, envelope));
      if (n > 0) this.#o.logger.info({ receipts: n }, 'receipts for our mail came through our mailbox');
    } catch (err) {
      if (!(err instanceof SessionError)) throw err;
      this.#o.logger.info({ err: describeError(err) }, 'dropped an unreadable RECEIPTS envelope from our mailbox');
    }
  }

  /**
   * Tells each sender, in the background, which of its messages we now hold: pushed to its node
   * directly, or, when it cannot be reached, left at its own providers as RECEIPTS envelopes
   * (best effort: a sender that gets neither learns on its next direct retry).
   */
  #push(receipts: Map<string, { messageId: Uint8Array; mac: Uint8Array }[]>): void {
    const push = this.#o.pushReceipts;
    if (!push) return;
    for (const [peer, list] of receipts) {
      const onion = this.#o.store.contactQueues.theirOnion(peer) ?? onionAddress(fromHex(peer));
      const signal = AbortSignal.any([this.#o.signal, AbortSignal.timeout(this.#o.dialTimeoutMs ?? 60_000)]);
      void push(onion, list, signal).catch(async (err: unknown) => {
        const held = await this.#depositReceipts(peer, list).catch(() => 0);
        this.#o.logger.info({ peer: onion, receipts: list.length, atProviders: held, err: describeError(err) }, 'could not push receipts to the sender');
      });
    }
  }

  /** Leaves `receipts` for `peer` (hex) at up to `replicas` of its providers; returns how many took them. */
  async #depositReceipts(peer: string, receipts: { messageId: Uint8Array; mac: Uint8Array }[]): Promise<number> {
    const o = this.#o;
    const envelopes = sealReceipts(fromHex(peer), receipts, o.random);
    const held: string[] = [];
    await this.#spread(this.#targets(peer), held, o.signal, async (client, key, provider) => {
      for (const e of envelopes) await this.#depositFor(peer, provider, client, key, e, o.signal);
    }, (provider) => {
      held.push(provider);
      return held;
    });
    return held.length;
  }

  /**
   * Watches one of our queues on this connection (once per connection and queue; only while
   * `onion` is ours), so the provider tells us the moment mail comes. A provider that refuses is
   * fetched on the schedule.
   */
  async #watchOn(onion: string, client: MailboxClient, q: OwnQueue, opts: { signal: AbortSignal; timeoutMs: number }): Promise<void> {
    const p = this.#pool.get(onion);
    const id = hexOf(q.queue);
    if (!p || p.watching.has(id) || !this.#o.store.mailboxProviders.get(onion)) return;
    // The pooled entry may have been replaced since this client was handed out: mark only its own.
    if ((await p.ready.catch(() => null))?.client !== client) return;
    try {
      await client.watch(q.queue, q.readCap, opts);
      p.watching.add(id);
      p.watched = true;
    } catch (err) {
      this.#o.logger.info({ provider: onion, err: describeError(err) }, 'the provider does not notify us of new mail; fetching on the schedule');
    }
  }

  /**
   * Creates a private queue for the contact `peer` (hex) at our provider `onion` (PROTOCOL.md
   * §14.2: a random id and write capability, the read capability derived) and records it. The
   * caller hands it to the contact.
   */
  async createContactQueue(onion: string, peer: string, signal: AbortSignal): Promise<QueueAt> {
    const o = this.#o;
    const queue = o.random(16);
    const writeCap = o.random(32);
    await this.#with(onion, signal, async (client, key) => {
      await client.createQueue(o.identity, queue, { write: writeCap, read: contactQueueReadCap(o.identity, key, queue) }, { signal, timeoutMs: o.requestTimeoutMs ?? 60_000 });
    });
    const q = { provider: onion, queue, writeCap };
    o.store.contactQueues.addOurs(peer, q, o.clock.now());
    return q;
  }

  /** Removes one of our contact queues at `onion` (best effort: the provider may be gone). */
  async removeContactQueue(onion: string, queue: Uint8Array, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    await this.#with(onion, signal, (client) => client.removeQueue(o.identity, queue, { signal, timeoutMs: o.requestTimeoutMs ?? 60_000 }));
  }

  /** Closes the watched connections to providers that are no longer ours (after `mailboxes remove`). */
  forgetRemoved(): void {
    for (const [onion, p] of [...this.#pool]) if (p.watched && !this.#o.store.mailboxProviders.get(onion)) this.#drop(onion, p);
  }

  /** Stops the schedule and closes the provider connections; a round in flight ends with the node's signal. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) this.#o.clock.clearTimeout(t);
    this.#timers.clear();
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [onion, p] of [...this.#pool]) this.#drop(onion, p);
  }
}
