/**
 * The user's side of the mailbox protocol over one MessageChannel to a provider's `/mailbox/v1`:
 * requests matched to answers by request id, each with a deadline and an AbortSignal, every signed
 * answer (terms, deposit receipts) verified against the provider's identity key before it is
 * returned. An ERROR answer becomes ProviderError REMOTE with the provider's code.
 */
import { createHash } from 'node:crypto';
import { bytesEqual, toHex } from '../bytes.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Identity } from '../crypto/index.js';
import type { MessageChannel } from '../transport/index.js';
import { ProviderError } from './errors.js';
import { DOMAINS, accountBody, accountStatusBody, depositBody, putBundleBody, queueBody, sign, subscribeBody, termsBody, verify } from './statements.js';
import { capabilityHash } from './store.js';
import {
  MAX_FETCH, decodeMailboxAnswer, encodeMailboxFrame, mailboxErrorName, type AccountStatusFields, type BundlePrekey, type HeldItem, type MailboxAnswer,
  type MailboxRequest,
} from './wire.js';

export interface Terms {
  retentionMs: number;
  quotaBytes: number;
  time: number;
  sig: Uint8Array;
}

/** What the provider says of our account (ACCOUNT_STATUS), with its signature, verified. */
export interface AccountStatus extends AccountStatusFields {
  sig: Uint8Array;
}

/** The provider's signed word that it holds an envelope: keep it to score the provider later. */
export interface DepositReceipt {
  queue: Uint8Array;
  seq: number;
  digest: Uint8Array;
  depositedAt: number;
  expiresAt: number;
  sig: Uint8Array;
}

export interface RequestOpts {
  signal?: AbortSignal;
  /** Default 60 s. */
  timeoutMs?: number;
}

export interface MailboxClientOptions {
  channel: MessageChannel;
  /** The provider's identity key: the one its onion was derived from. */
  providerKey: Uint8Array;
  clock: Clock;
  maxEnvelope: number;
  /** Told of each NOTIFY (mail came for a queue we watch, see watch()). */
  onNotify?: (queue: Uint8Array) => void;
}

interface Pending {
  resolve(a: MailboxAnswer): void;
  reject(e: Error): void;
}

export class MailboxClient {
  readonly #o: MailboxClientOptions;
  readonly #pending = new Map<number, Pending>();
  /** Our accepted WATCHes: request id → queue (hex). A NOTIFY is taken only for one of them. */
  readonly #watches = new Map<number, string>();
  #nextId = 1;
  #closed: Error | null = null;

  constructor(o: MailboxClientOptions) {
    this.#o = o;
    o.channel.on('message', (bytes) => {
      let a;
      try {
        a = decodeMailboxAnswer(bytes, o.maxEnvelope);
      } catch (err) {
        this.#fail(new ProviderError('MALFORMED', 'the provider sent a frame that does not decode', { cause: err }));
        o.channel.destroy();
        return;
      }
      if (a.type === 'NOTIFY') {
        // Only for a watch of ours, by its request id and queue (PROTOCOL.md §14.1).
        if (this.#watches.get(a.id) === toHex(a.queue)) o.onNotify?.(a.queue);
        return;
      }
      const p = this.#pending.get(a.id);
      if (!p) return; // answer to a request we gave up on
      this.#pending.delete(a.id);
      p.resolve(a);
    });
    o.channel.on('close', () => this.#fail(new ProviderError('CLOSED', 'the connection to the provider closed')));
  }

  #fail(err: Error): void {
    this.#closed ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  #request(req: MailboxRequest, opts: RequestOpts): Promise<MailboxAnswer> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (opts.signal?.aborted) return Promise.reject(new ProviderError('ABORTED', 'aborted', { cause: opts.signal.reason }));
    const id = this.#nextId;
    this.#nextId = (this.#nextId % 0xffff_fffe) + 1;
    const clock = this.#o.clock;
    return new Promise<MailboxAnswer>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      let settled = false;
      const onAbort = () => done(new ProviderError('ABORTED', `${req.type} aborted`, { cause: opts.signal?.reason }));
      const done = (err: Error | null, a?: MailboxAnswer) => {
        if (settled) return;
        settled = true;
        this.#pending.delete(id);
        if (timer !== undefined) clock.clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(a!);
      };
      this.#pending.set(id, { resolve: (a) => done(null, a), reject: (e) => done(e) });
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      timer = clock.setTimeout(() => done(new ProviderError('TIMEOUT', `${req.type}: no answer from the provider`)), opts.timeoutMs ?? 60_000);
      try {
        this.#o.channel.send(encodeMailboxFrame({ ...req, id }, this.#o.maxEnvelope));
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async #expect<T extends MailboxAnswer['type']>(req: MailboxRequest, type: T, opts: RequestOpts): Promise<Extract<MailboxAnswer, { type: T }>> {
    const a = await this.#request(req, opts);
    if (a.type === 'ERROR') {
      throw new ProviderError('REMOTE', `provider refused ${req.type}: ${mailboxErrorName(a.code)} ${a.reason}`.trim(), { remoteCode: a.code, retryable: a.retryable });
    }
    if (a.type !== type) throw new ProviderError('MALFORMED', `provider answered ${req.type} with ${a.type}`);
    return a as Extract<MailboxAnswer, { type: T }>;
  }

  /** Asks the provider to hold mail for `id` (with the tag its payment is recorded under, if priced). */
  async subscribe(id: Identity, tag: Uint8Array | null, opts: RequestOpts = {}): Promise<Terms> {
    const p = this.#o.providerKey;
    const time = this.#o.clock.now();
    const sig = sign(id, DOMAINS.subscribe, subscribeBody(p, id.identityKey, time, tag));
    const t = await this.#expect({ type: 'SUBSCRIBE', identity: id.identityKey, time, tag, sig }, 'TERMS', opts);
    if (!verify(p, DOMAINS.terms, termsBody(p, id.identityKey, t.retentionMs, t.quotaBytes, t.time), t.sig)) {
      throw new ProviderError('BAD_SIGNATURE', 'the terms are not signed by the provider');
    }
    return { retentionMs: t.retentionMs, quotaBytes: t.quotaBytes, time: t.time, sig: t.sig };
  }

  /**
   * How `id`'s account at the provider stands: paid until when (0: a free provider), the grace after
   * that, what it holds and the quota. Answered for a lapsed subscription too.
   */
  async account(id: Identity, opts: RequestOpts = {}): Promise<AccountStatus> {
    const p = this.#o.providerKey;
    const time = this.#o.clock.now();
    const sig = sign(id, DOMAINS.account, accountBody(p, id.identityKey, time));
    const a = await this.#expect({ type: 'ACCOUNT', identity: id.identityKey, time, sig }, 'ACCOUNT_STATUS', opts);
    const status: AccountStatus = {
      paidUntil: a.paidUntil, graceMs: a.graceMs, heldCount: a.heldCount, heldBytes: a.heldBytes, quotaBytes: a.quotaBytes, time: a.time, sig: a.sig,
    };
    if (!verify(p, DOMAINS.accountStatus, accountStatusBody(p, id.identityKey, status), status.sig)) {
      throw new ProviderError('BAD_SIGNATURE', 'the account status is not signed by the provider');
    }
    return status;
  }

  /** A new queue of `id`'s. `writeCap` null makes it public (anyone may deposit: first contact). */
  async createQueue(id: Identity, queue: Uint8Array, caps: { write: Uint8Array | null; read: Uint8Array }, opts: RequestOpts = {}): Promise<void> {
    const time = this.#o.clock.now();
    const writeHash = caps.write ? capabilityHash(caps.write) : null;
    const readHash = capabilityHash(caps.read);
    const sig = sign(id, DOMAINS.queue, queueBody('create', this.#o.providerKey, id.identityKey, time, queue, writeHash, readHash));
    await this.#expect({ type: 'CREATE_QUEUE', identity: id.identityKey, time, queue, writeHash, readHash, sig }, 'OK', opts);
  }

  async removeQueue(id: Identity, queue: Uint8Array, opts: RequestOpts = {}): Promise<void> {
    const time = this.#o.clock.now();
    const sig = sign(id, DOMAINS.queue, queueBody('remove', this.#o.providerKey, id.identityKey, time, queue, null, null));
    await this.#expect({ type: 'REMOVE_QUEUE', identity: id.identityKey, time, queue, sig }, 'OK', opts);
  }

  /** Deposits `envelope`; resolves with the provider's signed receipt, verified, only after it committed. */
  async deposit(queue: Uint8Array, writeCap: Uint8Array | null, envelope: Uint8Array, opts: RequestOpts = {}): Promise<DepositReceipt> {
    const d = await this.#expect({ type: 'DEPOSIT', queue, writeCap, envelope }, 'DEPOSITED', opts);
    const digest = new Uint8Array(createHash('sha256').update(envelope).digest());
    if (!bytesEqual(d.digest, digest) || !verify(this.#o.providerKey, DOMAINS.deposit, depositBody(this.#o.providerKey, queue, d.digest, d.depositedAt, d.expiresAt), d.sig)) {
      throw new ProviderError('BAD_SIGNATURE', 'the deposit receipt is not the provider’s signature over this envelope');
    }
    return { queue, seq: d.seq, digest: d.digest, depositedAt: d.depositedAt, expiresAt: d.expiresAt, sig: d.sig };
  }

  async fetch(queue: Uint8Array, readCap: Uint8Array, afterSeq = 0, limit = MAX_FETCH, opts: RequestOpts = {}): Promise<HeldItem[]> {
    return (await this.#expect({ type: 'FETCH', queue, readCap, afterSeq, limit }, 'HELD', opts)).items;
  }

  /** Asks to be told (onNotify) whenever mail comes for `queue` while this connection lasts. */
  async watch(queue: Uint8Array, readCap: Uint8Array, opts: RequestOpts = {}): Promise<void> {
    // #request takes the next id synchronously, before its first await.
    const id = this.#nextId;
    await this.#expect({ type: 'WATCH', queue, readCap }, 'OK', opts);
    this.#watches.set(id, toHex(queue));
  }

  async ack(queue: Uint8Array, readCap: Uint8Array, seqs: number[], opts: RequestOpts = {}): Promise<number> {
    return (await this.#expect({ type: 'ACK', queue, readCap, seqs }, 'ACKED', opts)).count;
  }

  /**
   * Keeps `bundle` (our signed key bundle) and `prekeys` (one-time prekeys, already marked handed
   * out in our own store) at the provider for first contacts while we are offline; `replace` drops
   * the prekeys it held for us first. Resolves with how many one-time prekeys it holds for us now.
   */
  async putBundle(id: Identity, bundle: Uint8Array, prekeys: readonly BundlePrekey[], replace: boolean, opts: RequestOpts = {}): Promise<number> {
    const time = this.#o.clock.now();
    const sig = sign(id, DOMAINS.putBundle, putBundleBody(this.#o.providerKey, id.identityKey, time, replace, bundle, prekeys));
    return (await this.#expect({ type: 'PUT_BUNDLE', identity: id.identityKey, time, replace, bundle, prekeys: [...prekeys], sig }, 'BUNDLE_KEPT', opts)).prekeys;
  }

  /**
   * The bundle the provider keeps for `identityKey`, as a bundle answer (PROTOCOL.md §3: bundle ‖ c ‖
   * prekey), with a one-time prekey no one else got if one is left. Not verified here: the caller
   * checks it against the identity it expects (the provider could hand out anything).
   */
  async getBundle(identityKey: Uint8Array, opts: RequestOpts = {}): Promise<Uint8Array> {
    const a = await this.#expect({ type: 'GET_BUNDLE', identity: identityKey }, 'BUNDLE', opts);
    const answer = new Uint8Array(a.bundle.length + (a.prekey ? 37 : 1));
    answer.set(a.bundle, 0);
    answer[a.bundle.length] = a.prekey ? 1 : 0;
    if (a.prekey) {
      new DataView(answer.buffer).setUint32(a.bundle.length + 1, a.prekey.id);
      answer.set(a.prekey.public, a.bundle.length + 5);
    }
    return answer;
  }

  /** Closes the channel; pending requests fail with CLOSED. */
  close(): Promise<void> {
    return this.#o.channel.close();
  }
}

/** True when `r` is a valid receipt of `providerKey` for exactly `envelope` (for later audits). */
export function verifyDepositReceipt(providerKey: Uint8Array, r: DepositReceipt, envelope: Uint8Array): boolean {
  const digest = new Uint8Array(createHash('sha256').update(envelope).digest());
  return bytesEqual(r.digest, digest) && verify(providerKey, DOMAINS.deposit, depositBody(providerKey, r.queue, r.digest, r.depositedAt, r.expiresAt), r.sig);
}
