/**
 * The message pipeline (DESIGN §5): what happens to a message between the user and the wire.
 *
 *   send:     resolve (contacts) → draft → [one store transaction: prepare (encrypt on the peer's
 *             session, or nothing without one) → insert 'queued'] → outbox
 *   attempt:  (the outbox's Deliver) unsealed? → seal step, one per peer at a time: with a session,
 *             encrypt what waits; without, BUNDLE → agree (the oldest message becomes the INIT) →
 *             pin. Then: a SESSION envelope of a session whose INIT is not receipted waits for it
 *             (PROTOCOL.md §7.3). Then deliver.
 *   deliver:  dial (reused connection) → DELIVER bytes → RECEIPT MAC checked → outcome. It only
 *             sends bytes; every failure becomes an outcome by its typed classification
 *             (outcome.ts). REJECT UNKNOWN_SESSION resets the session: its undelivered messages
 *             lose their envelopes and the next attempt agrees anew (§7.4).
 *   receive:  DELIVER → cheap checks → group commit [open (find the session, decrypt against the
 *             state this transaction sees) → message row → session writes] → RECEIPT (never
 *             before the commit)
 *
 * Sends queued in the same turn share one transaction (one fsync); so do DELIVERs received in one.
 */
import { bytesEqual, fromHex, toHex } from '../bytes.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Recipient } from '../contacts/index.js';
import { onionAddress, sha256, type RandomBytes } from '../crypto/index.js';
import { OnionpostError, describeError } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../log.js';
import { DEFAULT_TTL_MS, type DeliveryOutcome } from '../outbox/index.js';
import { RejectCode, type DeliverAnswer } from '../protocol/index.js';
import {
  KIND_INIT, MESSAGE_CAPACITY, SessionError, directOnionBody, messageContentSize, parseDirectOnion, newMessageId, parseQueueHandout, parseReadReceipt, queueHandoutBody, readReceiptBody,
  type HandedQueue,
} from '../session/index.js';
import { StoreError, isControlKind, type MessageState, type NewOutgoing, type Store, type StoredMessage } from '../store/index.js';
import type { Connections } from './connections.js';
import type { Draft, Envelopes, Opened, OpenedMessage, PrepareBatch } from './envelopes.js';
import { KeyedRerun } from '../rerun.js';
import { GroupCommitter } from './group-commit.js';
import { failureOutcome, looksOffline, rejectOutcome } from './outcome.js';

export interface SendParams {
  to: string;
  subject?: string;
  body?: string;
  kind?: 'mail' | 'chat';
  threadId?: string;
  inReplyTo?: string;
  /** Files to carry (at most 16; subject, body and files together at most MESSAGE_CAPACITY bytes). */
  attachments?: { name: string; mediaType: string; data: Uint8Array }[];
  ttlMs?: number;
  wait?: boolean;
  waitMs?: number;
  /**
   * The caller's key for this send (1–128 printable ASCII characters, no spaces). A send repeated
   * with the same key returns the first message (same id, its current state) instead of queueing
   * another; the same key with a different message is refused (IDEMPOTENCY_CONFLICT).
   */
  idempotencyKey?: string;
}

export interface SendResult {
  id: string;
  state: MessageState;
  to: string;
  reason?: string;
}

export type PipelineErrorCode =
  | 'SELF' // sending to our own address
  | 'BAD_IDEMPOTENCY_KEY' // not 1–128 printable ASCII characters
  | 'IDEMPOTENCY_CONFLICT' // the key was first used for a different message
  | 'TOO_LARGE' // subject, body and files over MESSAGE_CAPACITY
  | 'NOT_SEALED'; // the seal step left the message without an envelope (it is no longer queued)

/** Longest idempotency key, characters. */
export const MAX_IDEMPOTENCY_KEY = 128;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/**
 * What a send asked for, as a hash: a key reused with the same request is a retry, with another a
 * mistake. `wait`/`waitMs` are not part of it (a retry may wait where the first call did not).
 */
export function requestHash(p: SendParams): Uint8Array {
  const files = (p.attachments ?? []).map((a) => [a.name, a.mediaType, toHex(sha256(a.data))]);
  return sha256(new TextEncoder().encode(JSON.stringify([
    p.to.trim(), p.subject ?? '', p.body ?? '', p.kind ?? 'mail', p.threadId ?? null, p.inReplyTo ?? null, p.ttlMs ?? null, files,
  ])));
}

export class PipelineError extends OnionpostError<PipelineErrorCode> {}

/** An event the pipeline reports (the node's event bus carries it to the API). */
export interface PipelineEvent {
  type: string;
  [k: string]: unknown;
}

export interface PipelineEvents {
  emit(ev: PipelineEvent): void;
  subscribe(listener: (ev: PipelineEvent) => void): () => void;
}

/** Where recipients and their keys come from (src/contacts/). */
export interface RecipientSource {
  resolve(to: string, signal: AbortSignal): Promise<Recipient>;
  /** The encryption key and bundle a peer's own bundle answer showed (pinned if none was). */
  pinFetchedKeys(peerIdentity: string, keys: { encryptionKey: Uint8Array; bundle: Uint8Array }): void;
  /** A sender (identity key, hex) claimed a registry name; verify it in the background. */
  verifyClaimedName?(identityKey: string, name: string): void;
}

export interface PipelineOptions {
  /** Our own identity key (a send to it is refused). */
  identityKey: Uint8Array;
  store: Store;
  envelopes: Envelopes;
  recipients: RecipientSource;
  connections: Connections;
  events: PipelineEvents;
  /** Asks the outbox to look at the queue (called once per turn of sends); with a peer, its queued messages are due now. */
  kick: (peerIdentity?: string) => void;
  /** Tells the outbox that a peer reached us (a new message from it): its backoff, if any, ends. */
  peerSeen?: (peerIdentity: string) => void;
  clock: Clock;
  random: RandomBytes;
  limits: Limits;
  logger: Logger;
  /** DELIVER → RECEIPT (and BUNDLE) deadline, ms. */
  deliverTimeoutMs: number;
  /** Aborted when the node closes. */
  signal: AbortSignal;
  /** Fault injection for tests: runs after an inbound batch committed, before its receipts go out. */
  afterInboundCommit?: (ids: string[]) => void;
  /**
   * Offline delivery (issue 11): leaves a message at its recipient's mailbox providers and returns
   * the providers holding it ([]: none could). Without it, an offline recipient's mail waits here.
   */
  depositor?: { deposit(m: StoredMessage, signal: AbortSignal, only?: readonly string[]): Promise<string[]> };
  /**
   * A key for our own mailbox providers' list as it is now (changes when it changes). With it, the
   * first delivery to each peer after it changed (and after each start) pushes our bundle on that
   * connection, so peers deposit at the providers we have now (PROTOCOL.md §14.6).
   */
  ownMailboxesKey?: () => string;
  /**
   * First contact with an offline peer (PROTOCOL.md §14.8): the peer's bundle answer from one of
   * its mailbox providers, verified as the peer's, or null when none has one. Asked when the seal
   * step's BUNDLE dial finds the peer looking offline; the INIT then goes to the providers at once.
   */
  bundles?: { fromProviders(peer: Uint8Array, signal: AbortSignal): Promise<Uint8Array | null> };
}

/** States a `send --wait` stops at. */
const TERMINAL: ReadonlySet<string> = new Set(['delivered', 'failed', 'expired', 'held']);

/** What the outgoing group commit takes: a message to prepare and insert. */
interface Outgoing {
  to: Recipient;
  draft: Draft;
  idempotency?: { key: string; requestHash: Uint8Array };
}

const EMPTY = new Uint8Array(0);

/** How long a read receipt is tried before it is given up (it is a courtesy, not mail), ms. */
const READ_RECEIPT_TTL_MS = 7 * 24 * 3600_000;

/** What the group commit does with an opened envelope once it decides to keep it. */
type OpenedCommit = Extract<Opened, { message: unknown }>;

/** One inbound DELIVER in the group commit. */
interface Incoming {
  /** The DELIVER frame's message id; null for an envelope fetched from a mailbox (it has no frame). */
  messageId: Uint8Array | null;
  envelope: Uint8Array;
  /** The registry name the connection's HELLO claimed (unverified), or null. */
  claimedName: string | null;
}

/** An answer, with the message id and sender (hex) when it committed a message (new or again). */
export type HeldAnswer = DeliverAnswer & { id?: string; peer?: string };

/** What the group commit answers for one DELIVER, and what to do once the transaction committed. */
interface Received {
  answer: HeldAnswer;
  after?: () => void;
  /** The sender of a new message (hex): it reached us, so the outbox may stop backing off from it. */
  seen?: string;
}

export class MessagePipeline {
  readonly #o: PipelineOptions;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #incoming: GroupCommitter<Incoming, HeldAnswer>;
  readonly #outgoing: GroupCommitter<Outgoing, StoredMessage>;
  #kickScheduled = false;
  /** Per peer: the seal step running now (one agreement per peer at a time; waiters share its outcome). */
  readonly #sealing = new Map<string, Promise<void>>();
  /** Attempts running now, by message id: a SESSION envelope waiting for its INIT awaits the INIT's. */
  readonly #attempts = new Map<string, Promise<DeliveryOutcome>>();
  /** Per peer: the key of our providers' list we last pushed to it (see #announceOn). */
  readonly #announced = new Map<string, string>();
  /** Checked receipts that came another way for messages whose attempt was running (see attempt()). */
  readonly #receiptsInFlight = new Map<string, Uint8Array>();
  /** Peers that got a message queued this turn (see #queuedFor). */
  readonly #queuedPeers = new Set<string>();
  /** Per peer: the sweep of its queue into its mailboxes (see #sweep), one at a time. */
  readonly #sweeps = new KeyedRerun<string>({
    maxRuns: 1_000, onError: (_peer, err) => this.#log.warn({ err: describeError(err) }, 'depositing the queue for an offline peer failed'),
  });
  /** Per peer: why its seal step agreed on a bundle from a provider (the peer looked offline); taken by the next attempt. */
  readonly #sealedOffline = new Map<string, OnionpostError>();
    /** What the node's closing aborts (the sends' deadlines): one listener on the close signal for all. */
  readonly #onClose = new Set<() => void>();

  constructor(o: PipelineOptions) {
    this.#o = o;
    o.signal.addEventListener('abort', () => {
      for (const f of [...this.#onClose]) f();
    }, { once: true });
    this.#store = o.store;
    this.#log = o.logger;
    const store = o.store;
    this.#incoming = new GroupCommitter((items) => {
      // Each open reads the session state the previous items of this batch wrote: two messages of
      // one session chain. In-memory bookkeeping (the tag window) only once it committed.
      const results = store.batch(() => items.map((i) => this.#commitOne(i)));
      if (o.afterInboundCommit) o.afterInboundCommit(items.flatMap((i) => (i.messageId ? [toHex(i.messageId)] : [])));
      const seen = new Set<string>();
      for (const r of results) {
        r.after?.();
        if (r.seen) seen.add(r.seen);
      }
      for (const peer of seen) o.peerSeen?.(peer);
      return results.map((r) => r.answer);
    });
    // Each message is encrypted inside the transaction that queues it; each send() still resolves
    // only after its own row committed.
    this.#outgoing = new GroupCommitter((items) => store.batch(() => {
      const batch = o.envelopes.batch();
      const rows = items.map((m) => this.#insert(m, batch));
      batch.finish();
      return rows;
    }));
  }

  // ── sending ────────────────────────────────────────────────────────────────

  /** Queues a message; with `wait`, resolves when it reaches a final state or `waitMs` passes. */
  async send(p: SendParams): Promise<SendResult> {
    let idempotency: Outgoing['idempotency'];
    if (p.idempotencyKey !== undefined) {
      if (typeof p.idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(p.idempotencyKey)) {
        throw new PipelineError('BAD_IDEMPOTENCY_KEY', `an idempotency key is 1–${MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces`);
      }
      idempotency = { key: p.idempotencyKey, requestHash: requestHash(p) };
      const first = this.#sentWithKey(idempotency);
      if (first) return this.#result(first, p);
    }
    const size = messageContentSize({ subject: p.subject ?? '', body: p.body ?? '', attachments: p.attachments ?? [] });
    if (size > MESSAGE_CAPACITY) {
      throw new PipelineError('TOO_LARGE', `subject, text and files take ${size} bytes; a message carries at most ${MESSAGE_CAPACITY}`);
    }
    const deadline = this.#deadline(60_000);
    let r: Recipient;
    try {
      r = await this.resolve(p.to, deadline.signal);
    } finally {
      deadline.clear();
    }
    let row: StoredMessage;
    try {
      // Resolves once the row is committed (group commit with the other sends of this turn).
      row = await this.#outgoing.commit({ to: r, draft: this.#draft(p), ...(idempotency ? { idempotency } : {}) });
    } catch (err) {
      // The same key raced in from another call and committed first.
      const first = idempotency && err instanceof StoreError && err.code === 'CONSTRAINT' ? this.#sentWithKey(idempotency) : null;
      if (first) return this.#result(first, p);
      throw err;
    }
    const result = this.#result(row, p);
    this.#o.events.emit({ type: 'message.state', id: row.id, state: row.state });
    this.#kickSoon();
    if (this.#o.depositor) this.#queuedFor(row.peerIdentity);
    return result;
  }

  /**
   * Queues a read receipt (PROTOCOL.md §9.2) for `ids`, chat messages of `peerIdentity`'s that the
   * user read: a control message, sent, retried and deposited like mail but listed nowhere, and
   * deleted once final. The caller checked that the user allows read receipts.
   */
  sendReadReceipt(peerIdentity: string, peerOnion: string, ids: readonly string[]): Promise<void> {
    return this.#sendControl(peerIdentity, peerOnion, 'read', readReceiptBody(ids), READ_RECEIPT_TTL_MS);
  }

  /**
   * Queues a queue handout (PROTOCOL.md §9.2 kind 4): the private queues we made for this contact at
   * our providers, replacing those we handed it before. A control message like a read receipt.
   */
  sendQueueHandout(peerIdentity: string, peerOnion: string, queues: readonly HandedQueue[]): Promise<void> {
    return this.#sendControl(peerIdentity, peerOnion, 'queues', queueHandoutBody(queues), this.#o.limits.maxTtlMs);
  }

  /**
   * Tells a contact the onion we are reachable at directly (PROTOCOL.md §9.2 kind 5: we run hidden,
   * not publishing the onion our identity key names), or null: that one again.
   */
  sendDirectOnion(peerIdentity: string, peerOnion: string, onion: string | null): Promise<void> {
    return this.#sendControl(peerIdentity, peerOnion, 'onion', directOnionBody(onion), this.#o.limits.maxTtlMs);
  }

  /** The onion to dial for `peerIdentity` (hex): the one it told us (it runs hidden), else `fallback`. */
  #onionOf(peerIdentity: string, fallback: string): string {
    return this.#store.contactQueues.theirOnion(peerIdentity) ?? fallback;
  }

  async #sendControl(peerIdentity: string, peerOnion: string, kind: 'read' | 'queues' | 'onion', body: string, ttlMs: number): Promise<void> {
    const createdAt = this.#o.clock.now();
    const draft: Draft = {
      id: newMessageId(createdAt, this.#o.random), kind, subject: '', body, createdAt, expiresAt: createdAt + Math.min(ttlMs, this.#o.limits.maxTtlMs),
    };
    const to: Recipient = { identityKey: fromHex(peerIdentity), onion: peerOnion, label: null, encryptionKey: null, held: null };
    await this.#outgoing.commit({ to, draft });
    this.#kickSoon();
    if (this.#o.depositor) this.#queuedFor(peerIdentity);
  }

  /**
   * A deadline that also ends when the node closes. Not deadlineSignal(…, this.#o.signal): that adds
   * a listener to the one close signal per send, and with thousands of sends in flight (a burst)
   * each addEventListener scans all the others.
   */
  #deadline(ms: number): { signal: AbortSignal; clear(): void } {
    const ctl = new AbortController();
    if (this.#o.signal.aborted) ctl.abort(this.#o.signal.reason);
    const onClose = () => ctl.abort(this.#o.signal.reason);
    this.#onClose.add(onClose);
    const timer = this.#o.clock.setTimeout(() => ctl.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')), ms);
    return {
      signal: ctl.signal,
      clear: () => {
        this.#o.clock.clearTimeout(timer);
        this.#onClose.delete(onClose);
      },
    };
  }

  /** The message first sent with this key (null if none); IDEMPOTENCY_CONFLICT if it asked for another. */
  #sentWithKey(k: NonNullable<Outgoing['idempotency']>): StoredMessage | null {
    const first = this.#store.sentWithKey(k.key);
    if (!first) return null;
    if (!bytesEqual(first.requestHash, k.requestHash)) {
      throw new PipelineError('IDEMPOTENCY_CONFLICT', 'this idempotency key was already used for a different message');
    }
    return this.#store.getMessage(first.messageId);
  }

  /** A send's answer for `row`; with `wait`, once it reaches a final state or `waitMs` passes. */
  async #result(row: StoredMessage, p: SendParams): Promise<SendResult> {
    // #waitFor subscribes synchronously, before the caller emits 'queued' and kicks the outbox
    // (deferred by #kickSoon), so no state change is missed.
    const final = p.wait ? await this.#waitFor(row.id, p.waitMs ?? 120_000) : row;
    return { id: row.id, state: final.state, to: row.peerOnion ?? '', ...(final.stateReason && final.state !== 'delivered' ? { reason: final.stateReason } : {}) };
  }

  /** Resolves a recipient as send() does (onion, contact or registry name), refusing our own address. */
  async resolve(to: string, signal: AbortSignal): Promise<Recipient> {
    const r = await this.#o.recipients.resolve(to, signal);
    if (bytesEqual(r.identityKey, this.#o.identityKey)) throw new PipelineError('SELF', 'that is your own address');
    return r;
  }

  /**
   * Re-sends every message held for `previousIdentity` to `to` (the user approved a contact's new
   * keys, or they rotated with a valid statement: held mail was encrypted to the old ones). Each
   * old copy becomes failed with `reason`, so it shows why it did not go out itself.
   */
  resendHeld(previousIdentity: string, to: Recipient, reason = 'superseded: re-sent to the approved new key'): void {
    this.#resend(previousIdentity, 'held', to, reason);
    this.#o.kick();
  }

  /**
   * A contact moved to a new identity key with a valid rotation statement: what waits for the old
   * identity (held, or queued and not being sent right now) is re-sent to the new one, whose first
   * message starts a fresh key agreement (INIT): sessions are per identity, so none carries over.
   * A message mid-attempt to the old onion goes back to 'queued' when that attempt ends; the next
   * recheck of the contact (recheckContacts) moves it then.
   */
  followRotation(previousIdentity: string, to: Recipient): void {
    const reason = `superseded: ${to.label ?? 'the contact'} moved to a new key with a valid rotation statement; re-sent`;
    this.#resend(previousIdentity, 'held', to, reason);
    this.#resend(previousIdentity, 'queued', to, reason);
    this.#o.kick();
  }

  /** Re-sends `previousIdentity`'s messages in `state` to `to`; each old copy fails, naming the new one. */
  #resend(previousIdentity: string, state: 'held' | 'queued', to: Recipient, reason: string): void {
    const now = this.#o.clock.now();
    // Each page leaves `state`, so the loop ends when none is left.
    for (let page = this.#waitingFor(previousIdentity, state); page.length > 0; page = this.#waitingFor(previousIdentity, state)) {
      this.#store.batch(() => {
        for (const m of page) {
          // Listings pass over control messages, so a page holds none; were one there, it would
          // still leave `state` (not re-sent: it told the old key something), so the loop ends.
          if (isControlKind(m.kind)) {
            this.#store.transition(m.id, 'failed', { from: [state], reason });
            continue;
          }
          const attachments = this.#store.getAttachments(m.id);
          const copy = this.#insert({ to, draft: this.#draft({ to: '', subject: m.subject ?? '', body: m.body, kind: m.kind, ttlMs: Math.max(60_000, m.expiresAt - now), ...(attachments.length ? { attachments } : {}) }) });
          this.#store.transition(m.id, 'failed', { from: [state], reason: `${reason} (${copy.id})` });
        }
      });
    }
  }

  /**
   * The cause of a hold went away (a contact's key change cleared by itself): held mail whose bytes
   * still fit the contact's keys goes back to 'queued' and out; mail encrypted to keys the contact
   * no longer has is re-sent (resendHeld), and the held copy says so.
   */
  releaseHeld(previous: { identityKey: string; encryptionKey: string | null }, to: Recipient): void {
    const sameKeys = previous.identityKey === toHex(to.identityKey)
      && previous.encryptionKey === (to.encryptionKey ? toHex(to.encryptionKey) : null);
    if (!sameKeys) {
      this.resendHeld(previous.identityKey, to, 'superseded: the contact\'s keys changed with a valid record; re-sent');
      return;
    }
    const ids = this.#store.listMessages({ direction: 'out', state: 'held', peer: previous.identityKey, limit: 1000 }).map((m) => m.id);
    this.#store.releaseHeld(previous.identityKey);
    for (const id of ids) this.#o.events.emit({ type: 'message.state', id, state: 'queued', reason: 'released' });
    this.#o.kick();
  }

  #waitingFor(peerIdentity: string, state: 'held' | 'queued'): StoredMessage[] {
    return this.#store.listMessages({ direction: 'out', state, peer: peerIdentity, limit: 500 });
  }

  #draft(p: SendParams): Draft {
    const createdAt = this.#o.clock.now();
    const ttl = Math.min(p.ttlMs ?? DEFAULT_TTL_MS, this.#o.limits.maxTtlMs);
    return {
      id: newMessageId(createdAt, this.#o.random), kind: p.kind ?? 'mail', subject: p.subject ?? '', body: p.body ?? '', createdAt, expiresAt: createdAt + ttl,
      ...(p.threadId ? { threadId: fromHex(p.threadId) } : {}), ...(p.inReplyTo ? { inReplyTo: fromHex(p.inReplyTo) } : {}),
      ...(p.attachments?.length ? { attachments: p.attachments } : {}),
    };
  }

  /**
   * Encrypts (when a session with the recipient exists and the message is not held) and inserts;
   * runs inside a store transaction.
   */
  #insert(o: Outgoing, batch?: PrepareBatch): StoredMessage {
    const { to: r, draft: d } = o;
    const prepared = r.held ? null : this.#o.envelopes.prepare(r.identityKey, d, batch);
    const row: NewOutgoing = {
      id: toHex(d.id), kind: d.kind, peerIdentity: toHex(r.identityKey), peerOnion: r.onion, peerLabel: r.label, subject: d.subject,
      body: d.body, threadId: d.threadId ? toHex(d.threadId) : null, inReplyTo: d.inReplyTo ? toHex(d.inReplyTo) : null,
      createdAt: d.createdAt, expiresAt: d.expiresAt, envelope: prepared?.envelope ?? EMPTY, envelopeHash: prepared?.envelopeHash ?? EMPTY,
      ...(d.attachments?.length ? { attachments: d.attachments } : {}), ...(o.idempotency ? { idempotency: o.idempotency } : {}),
      ...(r.held ? { state: 'held' as const, stateReason: `key change: ${r.held}` } : {}),
    };
    const stored = this.#store.insertOutgoing(row);
    prepared?.recorded();
    return stored;
  }

  /**
   * A message was queued for `peer`: if the outbox is backing off from it with its mail at its
   * providers, this one goes there too now rather than at the next probe. Once per peer per turn.
   */
  #queuedFor(peer: string): void {
    if (this.#queuedPeers.size === 0) {
      queueMicrotask(() => {
        const peers = [...this.#queuedPeers];
        this.#queuedPeers.clear();
        for (const p of peers) {
          const ps = this.#store.peerState(p);
          if (ps && ps.failures > 0 && ps.lastErrorCode === 'IN_MAILBOX') this.#sweep(p);
        }
      });
    }
    this.#queuedPeers.add(peer);
  }

  /** One outbox kick for all the sends that committed together (each kick queries the store). */
  #kickSoon(): void {
    if (this.#kickScheduled) return;
    this.#kickScheduled = true;
    queueMicrotask(() => {
      this.#kickScheduled = false;
      this.#o.kick();
    });
  }

  #waitFor(id: string, ms: number): Promise<StoredMessage> {
    const clock = this.#o.clock;
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const check = () => {
        const m = this.#store.getMessage(id);
        if (m && TERMINAL.has(m.state)) finish(m);
      };
      const finish = (m: StoredMessage) => {
        off();
        if (timer !== undefined) clock.clearTimeout(timer);
        resolve(m);
      };
      const off = this.#o.events.subscribe((ev) => {
        if (ev.type === 'message.state' && ev.id === id) check();
      });
      timer = clock.setTimeout(() => finish(this.#store.getMessage(id)!), ms);
      queueMicrotask(check);
    });
  }

  // ── delivering ─────────────────────────────────────────────────────────────

  /**
   * One delivery attempt, as the outbox calls it: a message without an envelope is sealed first
   * (seal step), a SESSION envelope waits for its session's INIT, then its bytes are delivered.
   * Never throws.
   */
  attempt(m: StoredMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const p = this.#attempt(m, signal).then((outcome) => {
      // A receipt that came another way while this attempt ran (pushed, or fetched from our
      // mailbox) makes it delivered whatever the attempt itself got.
      const mac = this.#receiptsInFlight.get(m.id);
      this.#receiptsInFlight.delete(m.id);
      return mac && outcome.kind !== 'delivered' ? { kind: 'delivered' as const, receipt: mac } : outcome;
    });
    this.#attempts.set(m.id, p);
    void p.finally(() => {
      if (this.#attempts.get(m.id) === p) this.#attempts.delete(m.id);
    });
    return p;
  }

  async #attempt(m: StoredMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    if (!m.peerOnion) return { kind: 'failed', code: 'NO_ADDRESS', reason: 'message has no recipient onion' };
    let offline: OnionpostError | undefined;
    try {
      if (!m.envelope || m.envelope.length === 0) {
        m = await this.#seal(m, signal);
        offline = this.#sealedOffline.get(m.peerIdentity);
      }
      let can = this.#o.envelopes.sendable(m.id);
      if (!can.send && can.init !== null) {
        // The INIT is being attempted now: its outcome is moments away, so wait for it rather than the backoff.
        const init = this.#attempts.get(can.init);
        if (init) {
          await init;
          can = this.#o.envelopes.sendable(m.id);
        }
      }
      if (!can.send) {
        // The INIT waits at the recipient's providers: this message can wait there behind it (a
        // fetch reads a queue in order), while a direct delivery would meet an unknown session.
        const wait: DeliveryOutcome = { kind: 'retry', code: 'SESSION_WAIT', when: 'busy' };
        const only = this.#depositTargets(m, can);
        return only !== null ? await this.#depositInstead(m, signal, wait, only) : wait;
      }
    } catch (err) {
      return this.#failure(err);
    }
    if (offline) {
      // Sealed on a bundle from the peer's providers because it looked offline: straight to them.
      this.#sealedOffline.delete(m.peerIdentity);
      return this.#depositInstead(m, signal, this.#failure(offline));
    }
    return this.deliver(m, signal);
  }

  /**
   * The recipient looks offline (or `m` waits behind a deposited INIT): `m` is left at the
   * recipient's providers, once per envelope, and the direct path is retried on the slow schedule.
   * `otherwise` when there is no provider to leave it at.
   */
  async #depositInstead(m: StoredMessage, signal: AbortSignal, otherwise: DeliveryOutcome, only?: readonly string[]): Promise<DeliveryOutcome> {
    const d = this.#o.depositor;
    if (!d || !m.envelope || m.envelope.length === 0) return otherwise;
    const before = m.mailboxes.length;
    let held: string[];
    try {
      held = await d.deposit(m, signal, only);
    } catch (err) {
      this.#log.warn({ err: describeError(err) }, 'deposit failed');
      return otherwise;
    }
    if (held.length === 0) return otherwise;
    if (held.length > before) this.#stateChanged(m, { state: 'in_mailbox', mailboxes: held });
    this.#sweep(m.peerIdentity);
    return { kind: 'retry', code: 'IN_MAILBOX', when: 'later' };
  }

  /**
   * Leaves every other queued message to `peer` that no provider holds yet at its providers too:
   * while the outbox backs off from an offline peer it tries one message per step, and the rest
   * would otherwise wait for their turn at the direct path. In order, oldest first (an INIT before
   * its session's other messages); a sweep already running for the peer runs once more after.
   */
  #sweep(peer: string): void {
    this.#sweeps.request(peer, async () => {
      let progressed = false;
      for (const id of this.#store.deposits.undeposited(peer, 256)) {
        if (this.#o.signal.aborted) return false;
        const m = this.#store.getMessage(id);
        if (!m || m.state !== 'queued' || !m.envelope || m.envelope.length === 0) continue;
        const only = this.#depositTargets(m);
        if (only === null) continue;
        const held = await this.#o.depositor!.deposit(m, this.#o.signal, only);
        if (held.length === 0) return false; // no provider takes anything now: the next probe tries again
        progressed = true;
        // It may have been delivered meanwhile (its receipt came through another provider).
        const now = this.#store.getMessage(id);
        if (now?.state === 'queued') this.#stateChanged(now, { state: 'in_mailbox', mailboxes: held });
      }
      return progressed;
    }, () => this.#o.signal.aborted);
  }

  /**
   * Where the peer could read `m` from its mailbox: anywhere (undefined) when it is sendable; only
   * at the providers holding its session's INIT when it waits behind one (a queue is read in order,
   * so the INIT opens the session first there; elsewhere it would meet an unknown session and be
   * dropped); null when it cannot be left anywhere yet.
   */
  #depositTargets(m: StoredMessage, can = this.#o.envelopes.sendable(m.id)): readonly string[] | undefined | null {
    if (can.send) return undefined;
    const init = can.init !== null ? this.#store.getMessage(can.init) : null;
    return init !== null && init.mailboxes.length > 0 ? init.mailboxes : null;
  }

  /**
   * The seal step: encrypts what waits for `m`'s peer, on its session or after a new agreement
   * (BUNDLE → agree → pin). One per peer at a time; a caller that waited finds its message sealed.
   */
  async #seal(m: StoredMessage, signal: AbortSignal): Promise<StoredMessage> {
    const peer = m.peerIdentity;
    // Round 1 joins a step already running (its failure is ours too: one dial, not one per waiting
    // message); a message queued after that step began needs a step of its own (round 2).
    for (let round = 0; round < 3; round++) {
      const running = this.#sealing.get(peer);
      if (running) await running;
      else {
        const step = this.#sealStep(m, signal);
        this.#sealing.set(peer, step);
        try {
          await step;
        } finally {
          if (this.#sealing.get(peer) === step) this.#sealing.delete(peer);
        }
      }
      const sealed = this.#store.getMessage(m.id);
      if (sealed?.envelope && sealed.envelope.length > 0) return { ...m, envelope: sealed.envelope, envelopeHash: sealed.envelopeHash };
      if (!sealed || (sealed.state !== 'queued' && sealed.state !== 'sending')) break;
    }
    throw new PipelineError('NOT_SEALED', `message ${m.id} is no longer waiting to be sent`);
  }

  /** Encrypts what waits for the peer: on the current session, or after BUNDLE → agree → pin. */
  async #sealStep(m: StoredMessage, signal: AbortSignal): Promise<void> {
    const peer = fromHex(m.peerIdentity);
    if (this.#o.envelopes.hasSession(peer)) {
      this.#o.envelopes.sealQueued(peer);
      return;
    }
    let answer: Uint8Array;
    try {
      const conn = await this.#o.connections.connect(this.#onionOf(m.peerIdentity, m.peerOnion!), signal);
      answer = await conn.requestBundle({ signal, timeoutMs: this.#o.deliverTimeoutMs });
    } catch (err) {
      const held = err instanceof OnionpostError && looksOffline(err) ? await this.#bundleFromProviders(peer, signal) : null;
      if (!held) throw err;
      answer = held;
      this.#sealedOffline.set(m.peerIdentity, err as OnionpostError);
    }
    const agreed = this.#o.envelopes.agree(peer, answer);
    this.#o.recipients.pinFetchedKeys(m.peerIdentity, agreed);
  }

  /** The peer's bundle from its providers (first contact while it is offline), or null. Never throws. */
  async #bundleFromProviders(peer: Uint8Array, signal: AbortSignal): Promise<Uint8Array | null> {
    try {
      return (await this.#o.bundles?.fromProviders(peer, signal)) ?? null;
    } catch (err) {
      this.#log.info({ err: describeError(err) }, 'no bundle from the peer\'s mailbox providers');
      return null;
    }
  }

    /** Sends a sealed message's bytes and maps the answer (or the failure) to an outcome. Never throws. */
  async deliver(m: StoredMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    try {
      const conn = await this.#o.connections.connect(this.#onionOf(m.peerIdentity, m.peerOnion!), signal);
      const res = await conn.deliver(fromHex(m.id), m.envelope!, { signal, timeoutMs: this.#o.deliverTimeoutMs });
      if (res.kind === 'reject') {
        if (res.code === RejectCode.UNKNOWN_SESSION) return this.#unknownSession(m, res.reason);
        return rejectOutcome(res);
      }
      const check = this.#o.envelopes.checkReceipt(m.id, m.envelopeHash ?? EMPTY, res.mac);
      if (!check.valid) return { kind: 'retry', code: 'BAD_RECEIPT', when: 'soon' };
      this.#announceOn(conn, m.peerIdentity);
      // The INIT is receipted: the session's other messages (deferred meanwhile) may go now.
      if (check.confirmed) queueMicrotask(() => this.#o.kick(m.peerIdentity));
      return { kind: 'delivered', receipt: res.mac };
    } catch (err) {
      const outcome = this.#failure(err);
      // Tor says the onion is not there (descriptor not found, introduction failed): leave the
      // message at the recipient's providers now rather than after the backoff.
      if (outcome.kind === 'retry' && err instanceof OnionpostError && looksOffline(err)) {
        return this.#depositInstead(m, signal, outcome);
      }
      return outcome;
    }
  }

  /** Pushes our bundle on `conn` to `peer` unless it has our providers' current list from us already. */
  #announceOn(conn: { pushBundle(answer: Uint8Array): Promise<void> }, peer: string): void {
    const key = this.#o.ownMailboxesKey?.();
    const own = this.#o.envelopes.ownBundleAnswer;
    if (key === undefined || !own || this.#announced.get(peer) === key) return;
    if (this.#announced.size >= 65_536) this.#announced.clear();
    this.#announced.set(peer, key);
    // Best effort, never the delivery's failure: it was receipted already.
    let answer: Uint8Array;
    try {
      answer = own.call(this.#o.envelopes);
    } catch (err) {
      this.#announced.delete(peer);
      this.#log.warn({ err: describeError(err) }, 'could not make our bundle to announce our providers');
      return;
    }
    conn.pushBundle(answer).catch(() => this.#announced.delete(peer));
  }

  /**
   * Our providers changed: push our bundle to every peer we have a session with that is online
   * now (at most `max`, a few at a time). Peers offline now get it with our next delivery to them.
   */
  async announceMailboxes(signal: AbortSignal, max = 256): Promise<number> {
    const key = this.#o.ownMailboxesKey?.();
    if (key === undefined) return 0;
    const peers = [...new Set(this.#store.sessions.listSessions().filter((s) => s.current).map((s) => s.peerIdentity))]
      .filter((p) => this.#announced.get(p) !== key).slice(0, max);
    let told = 0;
    const one = async (peer: string) => {
      try {
        const conn = await this.#o.connections.connect(this.#onionOf(peer, onionAddress(fromHex(peer))), signal);
        this.#announceOn(conn, peer);
        told++;
      } catch {
        // Offline now: it learns with our next delivery.
      }
    };
    for (let i = 0; i < peers.length && !signal.aborted; i += 4) await Promise.all(peers.slice(i, i + 4).map(one));
    return told;
  }

  /** REJECT UNKNOWN_SESSION: wait for the INIT (§7.3), or reset the session and encrypt again (§7.4). */
  #unknownSession(m: StoredMessage, reason: string): DeliveryOutcome {
    const verdict = this.#o.envelopes.unknownSession(m.id);
    if (verdict.action === 'wait') return { kind: 'retry', code: 'SESSION_UNCONFIRMED', when: 'busy' };
    if (verdict.reset) {
      const label = this.#store.getContact(m.peerIdentity)?.alias ?? m.peerOnion;
      this.#log.info({ peer: m.peerOnion, messages: verdict.reset.messages, reason }, 'session reset: the peer does not know our session');
      this.#o.events.emit({ type: 'session.reset', peer: m.peerOnion, alias: label, messages: verdict.reset.messages, reason });
    }
    // An INIT refused again backs off (a peer that keeps refusing is not asked twice a second).
    return { kind: 'retry', code: 'UNKNOWN_SESSION', when: m.attempts > 1 ? 'soon' : 'busy' };
  }

  #failure(err: unknown): DeliveryOutcome {
    if (!(err instanceof OnionpostError) || err instanceof StoreError) this.#log.warn({ err: describeError(err) }, 'delivery attempt failed unexpectedly');
    return failureOutcome(err);
  }

  // ── receiving ──────────────────────────────────────────────────────────────

  /**
   * One inbound DELIVER: cheap checks, then open and commit (group commit), and only then the
   * receipt. `from.claimedName` is the registry name the connection's HELLO claimed (a hint, verified
   * in the background).
   */
  receive(messageId: Uint8Array, envelope: Uint8Array, from: { claimedName?: string | null } = {}): Promise<DeliverAnswer> {
    return this.#receiveOne(messageId, envelope, from.claimedName ?? null);
  }

  async #receiveOne(messageId: Uint8Array | null, envelope: Uint8Array, claimedName: string | null): Promise<HeldAnswer> {
    const bad = this.#o.envelopes.check(envelope);
    if (bad) return { reject: bad };
    try {
      return await this.#incoming.commit({ messageId, envelope, claimedName });
    } catch (err) {
      if (err instanceof StoreError && err.code === 'DISK_FULL') {
        this.#log.error('disk full: refusing inbound mail until space is freed (senders keep it and retry)');
        return { reject: { code: RejectCode.STORAGE_FULL, retryable: true, reason: 'recipient storage full' } };
      }
      throw err;
    }
  }

  /**
   * Envelopes fetched from our mailbox providers, in the order the provider held them: each is
   * opened and committed like a DELIVER (same dedup, same receipt stored), without a frame id.
   * INITs go one at a time (a later SESSION envelope of the same session is found by a tag the
   * INIT's commit adds); runs of other envelopes share one transaction. Answers in input order.
   */
  async receiveHeld(envelopes: readonly Uint8Array[]): Promise<HeldAnswer[]> {
    const answers: HeldAnswer[] = [];
    let run: Uint8Array[] = [];
    const flush = async () => {
      answers.push(...await Promise.all(run.map((e) => this.#receiveOne(null, e, null))));
      run = [];
    };
    for (const e of envelopes) {
      if (e[0] === KIND_INIT) {
        await flush();
        answers.push(await this.#receiveOne(null, e, null));
      } else run.push(e);
    }
    await flush();
    return answers;
  }

  /** Tells subscribers that `m`'s state changed, unless it is a control message (shown nowhere, PROTOCOL.md §9.2). */
  #stateChanged(m: Pick<StoredMessage, 'id' | 'kind'>, ev: { state: string; [k: string]: unknown }): void {
    if (!isControlKind(m.kind)) this.#o.events.emit({ type: 'message.state', id: m.id, ...ev });
  }

  /**
   * Receipts a recipient pushed (ServerHandlers.onReceipts) for messages of ours it fetched from a
   * mailbox provider: each MAC that checks against the receipt key we hold makes its message
   * delivered, as a receipt on our own DELIVER would. Only messages waiting in the queue: one in
   * flight gets its receipt from its own attempt. The recipient is evidently online, so the
   * outbox's backoff from it ends and the rest of its queue goes now. Returns how many it applied.
   */
  receiptsPushed(receipts: readonly { messageId: Uint8Array; mac: Uint8Array }[]): number {
    const now = this.#o.clock.now();
    const valid = new Map<string, { mac: Uint8Array; peer: string; kind: StoredMessage['kind'] }>();
    for (const r of receipts) {
      const id = toHex(r.messageId);
      if (valid.has(id)) continue;
      const m = this.#store.getMessage(id);
      if (!m || m.direction !== 'out' || !m.envelopeHash) continue;
      if (m.state === 'sending' && this.#attempts.has(id)) {
        // An attempt is running: the outbox records its outcome, so the receipt waits for it.
        if (this.#o.envelopes.checkReceipt(id, m.envelopeHash, r.mac).valid) this.#receiptsInFlight.set(id, r.mac);
        continue;
      }
      if (m.state !== 'queued') continue;
      if (!this.#o.envelopes.checkReceipt(id, m.envelopeHash, r.mac).valid) continue;
      valid.set(id, { mac: r.mac, peer: m.peerIdentity, kind: m.kind });
    }
    if (valid.size === 0) return 0;
    // One transaction for the frame (up to maxReceiptsPerFrame): a recipient catching up pushes
    // thousands at once, and a commit each cost the sender one fsync per message (bench: mailbox).
    this.#store.batch(() => {
      for (const [id, v] of valid) this.#store.markDelivered(id, v.mac, now);
    });
    const peers = new Set<string>();
    for (const [id, v] of valid) {
      this.#stateChanged({ id, kind: v.kind }, { state: 'delivered', via: 'mailbox' });
      peers.add(v.peer);
    }
    for (const peer of peers) this.#o.peerSeen?.(peer);
    return valid.size;
  }

  /**
   * A control message (PROTOCOL.md §9.2), applied in the transaction that commits its receipt; no
   * message row. A read receipt marks which of our messages to its sender they read (ids not ours
   * to them mark nothing); a queue handout replaces the queues its sender handed us before; a
   * direct onion is where we dial its sender from now on.
   */
  #commitControl(m: OpenedMessage, id: string, senderHex: string, opened: OpenedCommit, now: number): Received {
    let marked: string[] = [];
    try {
      if (m.kind === 'read') marked = this.#store.markPeerRead(senderHex, parseReadReceipt(m), now);
      else if (m.kind === 'queues') this.#store.contactQueues.setTheirs(senderHex, parseQueueHandout(m), m.createdAt, now);
      else this.#store.contactQueues.setTheirOnion(senderHex, parseDirectOnion(m), m.createdAt, now);
    } catch (err) {
      if (err instanceof SessionError) return { answer: { reject: { code: RejectCode.MALFORMED, retryable: false, reason: err.message } } };
      throw err;
    }
    opened.commit();
    return {
      answer: { receipt: opened.receipt, id, peer: senderHex },
      seen: senderHex,
      after: () => {
        opened.after();
        for (const read of marked) this.#o.events.emit({ type: 'message.peerRead', id: read, at: now });
      },
    };
  }

  /** Opens one DELIVER and writes it with its session's writes; inside the group commit's transaction. */
  #commitOne(item: Incoming): Received {
    const now = this.#o.clock.now();
    const opened = this.#o.envelopes.open(item.envelope, now);
    if ('reject' in opened) return { answer: { reject: opened.reject } };
    if ('duplicate' in opened) return { answer: { receipt: opened.receipt } };
    const m = opened.message;
    if (item.messageId && !bytesEqual(m.id, item.messageId)) return { answer: { reject: { code: RejectCode.MALFORMED, retryable: false, reason: 'frame message id differs from the sealed one' } } };
    const id = toHex(m.id);
    const senderHex = toHex(m.sender);
    if (m.kind === 'read' || m.kind === 'queues' || m.kind === 'onion') return this.#commitControl(m, id, senderHex, opened, now);
    const contact = this.#store.getContact(senderHex);
    const result = this.#store.commitIncoming({
      id, kind: m.kind, peerIdentity: senderHex, peerOnion: m.senderOnion, peerLabel: contact?.alias ?? null,
      subject: m.subject, body: m.body, threadId: m.threadId ? toHex(m.threadId) : null, inReplyTo: m.inReplyTo ? toHex(m.inReplyTo) : null,
      createdAt: m.createdAt, expiresAt: m.expiresAt, receivedAt: now, envelopeHash: opened.envelopeHash, receipt: opened.receipt,
      attachments: m.attachments,
    });
    // The same id with other bytes is the same message encrypted again after a reset (same sender):
    // no second row, and this envelope's own receipt. From anyone else it is a collision.
    if (result.conflict && this.#store.getMessage(id)?.peerIdentity !== senderHex) {
      return { answer: { reject: { code: RejectCode.MALFORMED, retryable: false, reason: 'message id already used for another message' } } };
    }
    opened.commit();
    return {
      answer: { receipt: opened.receipt, id, peer: senderHex },
      after: () => {
        opened.after();
        if (!result.duplicate) {
          if (item.claimedName && !contact) this.#o.recipients.verifyClaimedName?.(senderHex, item.claimedName);
          const fromName = contact?.alias ?? this.#store.getPeerName(senderHex)?.name ?? null;
          this.#o.events.emit({ type: 'message.received', id, from: m.senderOnion, subject: m.subject, kind: m.kind, peerLabel: contact?.alias, fromName });
        }
      },
      ...(result.duplicate ? {} : { seen: senderHex }),
    };
  }
}
