/**
 * PeerConnection: one conversation with one peer over a MessageChannel. The only protocol code
 * that touches a channel; the decisions it takes (version choice, rate limit, heartbeat, what a
 * decode failure is answered with) are the pure helpers at the top of this file.
 *
 *   construct ──▶ send HELLO ──▶ handshaking ──peer HELLO, common version──▶ open ──close()/error──▶ closing ──▶ closed
 *                                   │                                          │
 *                                   ├─ no HELLO in handshakeTimeoutMs ─────────┼──▶ closed (HANDSHAKE_TIMEOUT)
 *                                   └─ no common version ─▶ REJECT ────────────┘
 *
 * Roles (a node dials as client, accepts as server):
 *   client ── DELIVER(id, envelope) ──────▶ server   handlers.onDeliver commits, then:
 *          ◀─ RECEIPT((id, mac)…) | REJECT(id, code) ──   receipts answered together share a frame
 *   client ── BUNDLE_REQUEST ─────────────▶ server   handlers.onBundleRequest()
 *          ◀─ BUNDLE(bytes) | REJECT(zero id, INTERNAL) ─
 *   client ── RECEIPT((id, mac)…) ────────▶ server   handlers.onReceipts(): receipts for mail the
 *                                                    server sent us through a mailbox; no answer
 *   client ── BUNDLE(bytes) ──────────────▶ server   handlers.onBundlePush(): our own signed bundle,
 *                                                    announcing changed providers; no answer
 *   either ── PING(nonce) ◀─▶ PONG(nonce)  when the other side has been silent heartbeatIntervalMs
 *
 * Misbehaviour costs the peer its connection, never the process: bytes that do not decode → REJECT
 * MALFORMED (or TOO_LARGE) and close; more than framesPerSecond/frameBurst → REJECT RATE_LIMITED
 * and close; more DELIVERs unanswered than the window we announced → REJECT RATE_LIMITED and close;
 * a frame the role or state does not allow → REJECT UNEXPECTED_FRAME and close; more than
 * maxUnreadAnswerBytes of our answers left unread → destroy (SLOW_READER); no frame within
 * heartbeatTimeoutMs of our PING → destroy (PEER_TIMEOUT). Any inbound frame counts as a sign of
 * life, not only the matching PONG (a PONG can queue behind a large DELIVER on a slow circuit).
 * What of this only a misbehaving peer does (closedForMisbehaviour) also costs its circuit a
 * cooling period at the node's listener.
 *
 * Charging: every inbound frame takes a token from the rate limit the moment it arrives, before it
 * is decoded, except an answer we are owed: the PONG to our outstanding PING, one RECEIPT or REJECT
 * per DELIVER we sent, a BUNDLE (or zero-id REJECT) for an outstanding BUNDLE_REQUEST. The type byte
 * (and a REJECT's message id) are peeked, not decoded. So a busy sender is never
 * closed for its receiver's RECEIPTs, and a peer cannot flood with frames nobody asked for.
 *
 * Flow control: each side's HELLO carries the capability `window=N`, N = its maxPendingDelivers
 * (DELIVERs it takes at once on a connection; a client with more unanswered is closed, RATE_LIMITED).
 * A client keeps at most the peer's N DELIVERs unanswered on the wire and queues the rest in order,
 * so a sender with more messages in flight than the receiver takes waits instead of being refused.
 * A peer that does not say is assumed to take our own maxPendingDelivers.
 *
 * Receipt-after-commit: a server sends RECEIPT only with the MAC its onDeliver returned, so the node
 * must resolve onDeliver only after its database commit. Answers that resolve in the same turn (one
 * group commit) go out as one RECEIPT frame of up to maxReceiptsPerFrame pairs. A client gets each
 * MAC as received: checking it (src/session/) is the caller's job.
 */
import type { Clock, TimerHandle } from '../clock.js';
import { systemClock } from '../clock.js';
import { TokenBucket } from '../bucket.js';
import { resolveLimits, type Limits } from '../limits.js';
import { silentLogger, type Logger } from '../log.js';
import { toHex } from '../bytes.js';
import { hasCode } from '../errors.js';
import { CloseCode, TransportError, type ChannelCloseInfo, type MessageChannel } from '../transport/index.js';
import { ProtocolError, type ProtocolErrorCode, type RemoteReject } from './errors.js';
import {
  FRAME_TYPE_IDS, MESSAGE_ID_BYTES, NO_MESSAGE_ID, RECEIPT_MAC_BYTES, RejectCode, decodeFrame, encodeFrame,
  isRetryableByDefault, rejectCodeName, type Frame, type HelloFrame,
} from './frames.js';

export { TokenBucket };

/** Protocol versions this build speaks, best first (2: sessions, PROTOCOL.md). */
export const PROTOCOL_VERSIONS: readonly number[] = [2];
/** Default deadline of deliver() and requestBundle(), ms (includes waiting for the handshake). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------------
// Pure decisions.

/** The highest version both sides speak, or undefined. */
export function negotiateVersion(ours: readonly number[], theirs: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const v of theirs) if (ours.includes(v) && (best === undefined || v > best)) best = v;
  return best;
}

/** Frames we send only in answer to the peer: the ones a peer that does not read could pile up. */
const ANSWERS: ReadonlySet<Frame['type']> = new Set(['RECEIPT', 'REJECT', 'PONG', 'BUNDLE']);

/** Where REJECT carries its message id: right after the two header bytes. */
const ID_OFFSET = 2;

/** What to answer a frame that failed to decode with. */
export function rejectForDecodeError(err: ProtocolError): { code: RejectCode; closeCode: number } {
  if (err.code === 'TOO_LARGE') return { code: RejectCode.TOO_LARGE, closeCode: CloseCode.TOO_BIG };
  if (err.code === 'BAD_VERSION') return { code: RejectCode.UNSUPPORTED_VERSION, closeCode: CloseCode.PROTOCOL_ERROR };
  return { code: RejectCode.MALFORMED, closeCode: CloseCode.PROTOCOL_ERROR };
}

/** Why a connection was closed that only a misbehaving peer causes (see closedForMisbehaviour). */
const MISBEHAVIOUR: ReadonlySet<ProtocolErrorCode> = new Set(['PEER_MALFORMED', 'UNEXPECTED_FRAME', 'RATE_LIMITED']);

/**
 * Whether we closed the connection for what no honest peer does: bytes that do not decode (a frame
 * of another wire version included: peers negotiate in HELLO, which every version sends in wire
 * version 1, §1), a frame its role or the handshake state does not allow, more frames than
 * framesPerSecond/frameBurst or more DELIVERs than our window. The node then refuses the peer's
 * circuit for a while (transport/guard.ts, "Cooling"). Not: a handshake timeout, a silent peer, a
 * slow reader, no common protocol version (an older or newer peer), a REJECT from the peer.
 */
export function closedForMisbehaviour(info: PeerCloseInfo): boolean {
  return info.error instanceof ProtocolError && MISBEHAVIOUR.has(info.error.code);
}

export type HeartbeatAction =
  | { action: 'wait'; delayMs: number }
  | { action: 'ping'; delayMs: number }
  | { action: 'timeout' };

/**
 * The heartbeat, as a function of time. `lastRxAt`: when the last frame arrived; `pingSentAt`: when
 * our unanswered PING went out (undefined if none, or if a frame arrived since). Returns what to do
 * now and, for wait/ping, when to look again.
 */
export function heartbeatStep(
  now: number, lastRxAt: number, pingSentAt: number | undefined, limits: Pick<Limits, 'heartbeatIntervalMs' | 'heartbeatTimeoutMs'>,
): HeartbeatAction {
  if (pingSentAt !== undefined && lastRxAt < pingSentAt) {
    const waited = now - pingSentAt;
    if (waited >= limits.heartbeatTimeoutMs) return { action: 'timeout' };
    return { action: 'wait', delayMs: limits.heartbeatTimeoutMs - waited };
  }
  const idle = now - lastRxAt;
  if (idle >= limits.heartbeatIntervalMs) return { action: 'ping', delayMs: limits.heartbeatTimeoutMs };
  return { action: 'wait', delayMs: limits.heartbeatIntervalMs - idle };
}

/** The HELLO capability that states a peer's DELIVER window: `window=N`. */
export function windowCapability(n: number): string {
  return `window=${n}`;
}

/** The window a peer stated in its HELLO capabilities (1..65535), or undefined. */
export function parseWindow(capabilities: readonly string[]): number | undefined {
  for (const c of capabilities) {
    const m = /^window=([1-9][0-9]{0,4})$/.exec(c);
    if (m && Number(m[1]) <= 0xffff) return Number(m[1]);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------

/** What a server's onDeliver resolves with: the receipt MAC (only after commit) or a refusal. */
export type DeliverAnswer =
  | { receipt: Uint8Array }
  | { reject: { code: number; retryable: boolean; reason: string } };

/** The node's side of a server connection. */
export interface ServerHandlers {
  /**
   * One envelope from the peer. Resolve only after the message is durably stored (or was
   * already: re-send the same receipt). A throw or rejection is answered with REJECT INTERNAL
   * (retryable). Several calls may run at once (at most limits.maxPendingDelivers per connection).
   */
  onDeliver(messageId: Uint8Array, envelope: Uint8Array): Promise<DeliverAnswer>;
  /** Our signed key bundle. A throw is answered with REJECT INTERNAL. */
  onBundleRequest(): Uint8Array | Promise<Uint8Array>;
  /**
   * Receipts the client pushes for messages we sent it that reached it another way (fetched from
   * its mailbox provider, PROTOCOL.md §14.6). Unanswered; each MAC proves itself to the one sender
   * that holds its receipt key, so the connection needs no other authentication. Without this
   * handler a client's RECEIPT is UNEXPECTED_FRAME.
   */
  onReceipts?(receipts: { messageId: Uint8Array; mac: Uint8Array }[]): void;
  /**
   * The client's own signed bundle answer, pushed to tell us its mailbox providers changed
   * (PROTOCOL.md §14.6). Unanswered; the bundle's signature is its authentication. Without this
   * handler a client's BUNDLE is UNEXPECTED_FRAME.
   */
  onBundlePush?(answer: Uint8Array): void;
}

/** What deliver() resolves with. Anything else (timeout, closed, aborted) rejects: outcome unknown, retry. */
export type DeliverResult =
  | { kind: 'receipt'; mac: Uint8Array }
  | { kind: 'reject'; code: number; retryable: boolean; reason: string };

export interface RequestOptions {
  signal?: AbortSignal;
  /** Default DEFAULT_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** What the peer said in its HELLO, and the version chosen. */
export interface PeerHello {
  version: number;
  capabilities: string[];
  agent?: string;
}

export interface PeerCloseInfo {
  code: number;
  reason: string;
  /** Why, when it was not a clean close: a ProtocolError (HANDSHAKE_TIMEOUT, PEER_TIMEOUT, RATE_LIMITED,
   * PEER_MALFORMED, UNEXPECTED_FRAME, NO_COMMON_VERSION, REMOTE_REJECT) or the transport's error. */
  error?: Error;
}

export type PeerState = 'handshaking' | 'open' | 'closing' | 'closed';

export interface PeerConnectionOptions {
  channel: MessageChannel;
  role: 'client' | 'server';
  /** Required for role 'server'. */
  handlers?: ServerHandlers;
  limits?: Partial<Limits>;
  clock?: Clock;
  logger?: Logger;
  /** Sent in our HELLO. Default none. */
  capabilities?: string[];
  /** Software name sent in our HELLO; omitted by default (it is a fingerprint). */
  agent?: string;
  /** Versions offered; default PROTOCOL_VERSIONS (tests override). */
  versions?: readonly number[];
}

interface Tracker<T> {
  done: boolean;
  settle(value: T): void;
  fail(err: Error): void;
}

/** A DELIVER in the client's queue; `sent` once it went on the wire (and counts against the window). */
interface QueuedDeliver {
  tracker: Tracker<DeliverResult>;
  frame: Frame;
  sent: boolean;
}

export class PeerConnection {
  readonly role: 'client' | 'server';
  /** Resolves when the handshake completes; rejects (ProtocolError) if the connection ends first. */
  readonly ready: Promise<PeerHello>;
  /** Resolves once, when the connection has ended. Never rejects. */
  readonly closed: Promise<PeerCloseInfo>;

  readonly #channel: MessageChannel;
  readonly #handlers: ServerHandlers | undefined;
  readonly #limits: Limits;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #versions: readonly number[];
  readonly #bucket: TokenBucket;
  #state: PeerState = 'handshaking';
  #hello: PeerHello | undefined;
  #resolveReady!: (h: PeerHello) => void;
  #rejectReady!: (err: Error) => void;
  #resolveClosed!: (info: PeerCloseInfo) => void;
  #closePromise: Promise<void> | undefined;
  #handshakeTimer: TimerHandle | undefined;
  #heartbeatTimer: TimerHandle | undefined;
  #lastRxAt: number;
  #pingSentAt: number | undefined;
  #nonce = 0n;
  #localError: Error | undefined;
  #remoteReject: RemoteReject | undefined;
  #delivers = new Map<string, Tracker<DeliverResult>>();
  /** DELIVERs waiting for room in the peer's window, in call order. */
  #deliverQueue: QueuedDeliver[] = [];
  /** DELIVERs sent and not yet answered (nor given up on). */
  #deliversOnWire = 0;
  #peerWindow: number;
  #bundles: Tracker<Uint8Array>[] = [];
  /** True from our PING until the first PONG after it (that one PONG is owed, not charged). */
  #pongOwed = false;
  /** RECEIPT/REJECT frames the peer may still send us uncharged: one per DELIVER we sent. */
  #answersOwed = 0;
  #serverPending = 0;
  /** Receipts whose commits finished in this turn, sent together by #flushReceipts. */
  #receiptBatch: { messageId: Uint8Array; mac: Uint8Array }[] = [];
  #bundleChain: Promise<void> = Promise.resolve();
  readonly #onMessage = (bytes: Uint8Array) => this.#receive(bytes);
  readonly #onClose = (info: ChannelCloseInfo) => this.#finalize(info);

  constructor(opts: PeerConnectionOptions) {
    if (opts.role === 'server' && !opts.handlers) throw new TypeError('a server PeerConnection needs handlers');
    this.role = opts.role;
    this.#channel = opts.channel;
    this.#handlers = opts.handlers;
    this.#limits = resolveLimits(opts.limits);
    this.#clock = opts.clock ?? systemClock;
    this.#log = (opts.logger ?? silentLogger()).child({ peer: opts.channel.remote, role: opts.role });
    this.#versions = opts.versions ?? PROTOCOL_VERSIONS;
    this.#lastRxAt = this.#clock.now();
    this.#bucket = new TokenBucket(this.#limits.framesPerSecond, this.#limits.frameBurst, this.#lastRxAt);
    this.#peerWindow = this.#limits.maxPendingDelivers;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Callers who only await `closed` or a request must not get an unhandled rejection from `ready`;
    // the rejection is still delivered to anyone who awaits it.
    this.ready.catch(() => {});
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));

    this.#channel.on('message', this.#onMessage);
    this.#channel.on('close', this.#onClose);
    if (this.#channel.state !== 'open') {
      this.#localError = new ProtocolError('CLOSED', 'channel was not open');
      this.#finalize({ code: CloseCode.ABNORMAL, reason: '' });
      return;
    }
    this.#handshakeTimer = this.#clock.setTimeout(() => {
      this.#handshakeTimer = undefined;
      if (this.#state !== 'handshaking') return;
      this.#fail('HANDSHAKE_TIMEOUT', `no HELLO within ${this.#limits.handshakeTimeoutMs} ms`, CloseCode.POLICY_VIOLATION);
    }, this.#limits.handshakeTimeoutMs);
    const capabilities = [...(opts.capabilities ?? []).filter((c) => parseWindow([c]) === undefined), windowCapability(this.#limits.maxPendingDelivers)];
    const hello: HelloFrame = { type: 'HELLO', versions: [...this.#versions], capabilities };
    if (opts.agent !== undefined) hello.agent = opts.agent;
    this.#send(hello);
  }

  get state(): PeerState {
    return this.#state;
  }

  /** The peer's HELLO, once the handshake is done. */
  get peerHello(): PeerHello | undefined {
    return this.#hello;
  }

  /**
   * Client only. Sends one sealed envelope and resolves with the peer's RECEIPT or REJECT for that
   * messageId. Waits for the handshake first. Rejects with ProtocolError TIMEOUT, ABORTED, CLOSED
   * (outcome unknown: retry), DUPLICATE_REQUEST, WRONG_ROLE, BAD_FIELD or TOO_LARGE (envelope over
   * limits.maxEnvelope).
   */
  deliver(messageId: Uint8Array, envelope: Uint8Array, opts: RequestOptions = {}): Promise<DeliverResult> {
    if (this.role !== 'client') return Promise.reject(new ProtocolError('WRONG_ROLE', 'deliver() is for client connections'));
    if (!(messageId instanceof Uint8Array) || messageId.length !== MESSAGE_ID_BYTES) {
      return Promise.reject(new ProtocolError('BAD_FIELD', `messageId must be ${MESSAGE_ID_BYTES} bytes`));
    }
    if (envelope.length > this.#limits.maxEnvelope) {
      return Promise.reject(new ProtocolError('TOO_LARGE', `envelope of ${envelope.length} bytes exceeds maxEnvelope ${this.#limits.maxEnvelope}`));
    }
    if (envelope.length < 1) return Promise.reject(new ProtocolError('BAD_LENGTH', 'empty envelope'));
    const key = toHex(messageId);
    if (this.#delivers.has(key)) return Promise.reject(new ProtocolError('DUPLICATE_REQUEST', 'a DELIVER for this messageId is in flight'));
    const frame: Frame = { type: 'DELIVER', messageId: Uint8Array.from(messageId), envelope };
    // Its tracker is set once #track returns; the remove callback only reads `sent`.
    const queued = { frame, sent: false } as QueuedDeliver;
    const { promise, tracker } = this.#track<DeliverResult>(opts, 'deliver', () => {
      this.#delivers.delete(key);
      if (!queued.sent) return; // still queued: #pumpDelivers skips it
      this.#deliversOnWire--;
      this.#pumpDelivers();
    });
    if (tracker.done) return promise;
    queued.tracker = tracker;
    this.#delivers.set(key, tracker);
    this.#deliverQueue.push(queued);
    this.#whenOpen(tracker, () => this.#pumpDelivers());
    return promise;
  }

  /** Client only. Asks for the peer's signed key bundle (bytes as received; verify with crypto/). */
  requestBundle(opts: RequestOptions = {}): Promise<Uint8Array> {
    if (this.role !== 'client') return Promise.reject(new ProtocolError('WRONG_ROLE', 'requestBundle() is for client connections'));
    // A timed-out request stays in the queue (marked done) so later answers still line up in order.
    const { promise, tracker } = this.#track<Uint8Array>(opts, 'bundle request', () => {});
    this.#bundles.push(tracker);
    this.#whenOpen(tracker, () => this.#send({ type: 'BUNDLE_REQUEST' }));
    return promise;
  }

  /**
   * Client only. Pushes receipts for messages the server sent us that reached us through a mailbox
   * (see ServerHandlers.onReceipts), in RECEIPT frames of at most maxReceiptsPerFrame pairs.
   * Resolves once they are handed to the channel (nothing answers them); CLOSED if the connection
   * ends before its handshake.
   */
  pushReceipts(receipts: readonly { messageId: Uint8Array; mac: Uint8Array }[], opts: RequestOptions = {}): Promise<void> {
    if (this.role !== 'client') return Promise.reject(new ProtocolError('WRONG_ROLE', 'pushReceipts() is for client connections'));
    for (const r of receipts) {
      if (r.messageId.length !== MESSAGE_ID_BYTES || r.mac.length !== RECEIPT_MAC_BYTES) return Promise.reject(new ProtocolError('BAD_FIELD', 'a receipt is a 16-byte id and a 16-byte MAC'));
    }
    const { promise, tracker } = this.#track<void>(opts, 'receipt push', () => {});
    this.#whenOpen(tracker, () => {
      const all = receipts.map((r) => ({ messageId: Uint8Array.from(r.messageId), mac: Uint8Array.from(r.mac) }));
      const n = this.#limits.maxReceiptsPerFrame;
      for (let i = 0; i < all.length; i += n) this.#send({ type: 'RECEIPT', receipts: all.slice(i, i + n) });
      tracker.settle();
    });
    return promise;
  }

  /**
   * Client only. Pushes our own bundle answer (see ServerHandlers.onBundlePush). Resolves once it
   * is handed to the channel; CLOSED if the connection ends before its handshake.
   */
  pushBundle(answer: Uint8Array, opts: RequestOptions = {}): Promise<void> {
    if (this.role !== 'client') return Promise.reject(new ProtocolError('WRONG_ROLE', 'pushBundle() is for client connections'));
    const { promise, tracker } = this.#track<void>(opts, 'bundle push', () => {});
    this.#whenOpen(tracker, () => {
      this.#send({ type: 'BUNDLE', bundle: answer });
      tracker.settle();
    });
    return promise;
  }

  /** Graceful close (1000). Requests still waiting fail with CLOSED. Same promise on every call. */
  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closePromise = this.closed.then(() => {});
    if (this.#state === 'closed') return this.#closePromise;
    this.#state = 'closing';
    this.#failAll(new ProtocolError('CLOSED', 'connection closed locally'));
    void this.#channel.close(CloseCode.NORMAL, '');
    return this.#closePromise;
  }

  /** Immediate close; `err` becomes `closed`'s error. */
  destroy(err?: Error): void {
    if (this.#state === 'closed') return;
    if (err && !this.#localError) this.#localError = err;
    this.#state = 'closing';
    this.#channel.destroy(err);
  }

  // --- inbound -------------------------------------------------------------------------------------

  #receive(bytes: Uint8Array): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const now = this.#clock.now();
    if (!this.#owed(bytes) && !this.#bucket.take(now)) {
      this.#violate(RejectCode.RATE_LIMITED, 'RATE_LIMITED', 'too many frames', CloseCode.POLICY_VIOLATION);
      return;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(bytes, this.#limits);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      const { code, closeCode } = rejectForDecodeError(err);
      this.#violate(code, 'PEER_MALFORMED', `undecodable frame: ${err.code}`, closeCode, err);
      return;
    }
    this.#lastRxAt = now;
    if (this.#state === 'handshaking') {
      if (frame.type !== 'HELLO') {
        this.#violate(RejectCode.UNEXPECTED_FRAME, 'UNEXPECTED_FRAME', `${frame.type} before HELLO`, CloseCode.PROTOCOL_ERROR);
        return;
      }
      this.#onHello(frame);
      return;
    }
    switch (frame.type) {
      case 'PING':
        this.#send({ type: 'PONG', nonce: frame.nonce });
        return;
      case 'PONG':
        return;
      case 'REJECT':
        this.#onReject(frame.messageId, { code: frame.code, retryable: frame.retryable, reason: frame.reason });
        return;
      case 'DELIVER':
        if (this.role === 'server') return this.#onDeliver(frame.messageId, frame.envelope);
        break;
      case 'BUNDLE_REQUEST':
        if (this.role === 'server') return this.#onBundleRequest();
        break;
      case 'RECEIPT':
        if (this.role === 'client') {
          for (const r of frame.receipts) {
            const key = toHex(r.messageId);
            const t = this.#delivers.get(key);
            if (!t) this.#log.debug({ messageId: key }, 'receipt for no pending delivery (timed out?)');
            t?.settle({ kind: 'receipt', mac: r.mac });
          }
          return;
        }
        if (this.#handlers?.onReceipts) {
          this.#handlers.onReceipts(frame.receipts);
          return;
        }
        break;
      case 'BUNDLE':
        if (this.role === 'client') {
          const t = this.#bundles.shift();
          if (!t) {
            this.#violate(RejectCode.UNEXPECTED_FRAME, 'UNEXPECTED_FRAME', 'BUNDLE without a request', CloseCode.PROTOCOL_ERROR);
            return;
          }
          t.settle(frame.bundle);
          return;
        }
        if (this.#handlers?.onBundlePush) {
          this.#handlers.onBundlePush(frame.bundle);
          return;
        }
        break;
      case 'HELLO':
        break;
    }
    this.#violate(RejectCode.UNEXPECTED_FRAME, 'UNEXPECTED_FRAME', `${frame.type} not allowed for a ${this.role === 'server' ? 'client' : 'server'}`, CloseCode.PROTOCOL_ERROR);
  }

  /** Whether these (undecoded) bytes are an answer we are owed, which is not charged; see the header. */
  #owed(bytes: Uint8Array): boolean {
    const type = bytes[1];
    if (type === FRAME_TYPE_IDS.PONG) {
      if (!this.#pongOwed) return false;
      this.#pongOwed = false;
      return true;
    }
    if (this.role !== 'client') return false;
    if (type === FRAME_TYPE_IDS.BUNDLE) return this.#bundles.length > 0;
    if (type !== FRAME_TYPE_IDS.RECEIPT && type !== FRAME_TYPE_IDS.REJECT) return false;
    if (type === FRAME_TYPE_IDS.REJECT && bytes.length >= ID_OFFSET + MESSAGE_ID_BYTES && bytes.subarray(ID_OFFSET, ID_OFFSET + MESSAGE_ID_BYTES).every((b) => b === 0)) {
      return this.#bundles.length > 0;
    }
    // One answer frame is owed per DELIVER we put on the wire (late ones included), whatever the
    // RECEIPT layout (a batched RECEIPT answers several and is owed once).
    if (this.#answersOwed === 0) return false;
    this.#answersOwed--;
    return true;
  }

  #onHello(frame: HelloFrame): void {
    const version = negotiateVersion(this.#versions, frame.versions);
    if (version === undefined) {
      this.#violate(
        RejectCode.UNSUPPORTED_VERSION, 'NO_COMMON_VERSION',
        `no common protocol version: you speak ${frame.versions.join(', ')}, this node speaks ${this.#versions.join(', ')}`, CloseCode.PROTOCOL_ERROR,
      );
      return;
    }
    if (this.#handshakeTimer !== undefined) this.#clock.clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#hello = { version, capabilities: frame.capabilities };
    this.#peerWindow = parseWindow(frame.capabilities) ?? this.#limits.maxPendingDelivers;
    if (frame.agent !== undefined) this.#hello.agent = frame.agent;
    this.#state = 'open';
    this.#log.debug({ version }, 'handshake complete');
    this.#resolveReady(this.#hello);
    this.#scheduleHeartbeat(this.#limits.heartbeatIntervalMs);
  }

  #onReject(messageId: Uint8Array, reject: RemoteReject): void {
    const zero = messageId.every((b) => b === 0);
    if (!zero) {
      const key = toHex(messageId);
      const t = this.role === 'client' ? this.#delivers.get(key) : undefined;
      if (t) t.settle({ kind: 'reject', ...reject });
      else this.#log.debug({ messageId: key, code: rejectCodeName(reject.code) }, 'reject for no pending delivery');
      return;
    }
    // About the connection, or the oldest bundle request (a server's failed onBundleRequest).
    this.#remoteReject = reject;
    this.#log.debug({ code: rejectCodeName(reject.code), reason: reject.reason }, 'peer sent a connection-level REJECT');
    const t = this.role === 'client' ? this.#bundles.shift() : undefined;
    t?.fail(new ProtocolError('REMOTE_REJECT', `peer refused: ${rejectCodeName(reject.code)} ${reject.reason}`, { remoteReject: reject }));
  }

  #onDeliver(messageId: Uint8Array, envelope: Uint8Array): void {
    const handlers = this.#handlers!;
    if (this.#serverPending >= this.#limits.maxPendingDelivers) {
      // We announced this window in our HELLO; a client that keeps more in flight ignores it.
      this.#violate(RejectCode.RATE_LIMITED, 'RATE_LIMITED', `more than ${this.#limits.maxPendingDelivers} DELIVERs in flight (our window)`, CloseCode.POLICY_VIOLATION);
      return;
    }
    this.#serverPending++;
    let answer: Promise<DeliverAnswer>;
    try {
      answer = Promise.resolve(handlers.onDeliver(messageId, envelope));
    } catch (err) {
      answer = Promise.reject(err);
    }
    answer.then(
      (a) => {
        this.#serverPending--;
        if ('receipt' in a) {
          if (a.receipt?.length !== RECEIPT_MAC_BYTES) {
            this.#log.error('onDeliver returned a malformed receipt');
            this.#sendReject(messageId, RejectCode.INTERNAL, 'internal error');
            return;
          }
          this.#queueReceipt(messageId, a.receipt);
        } else {
          const { code, retryable, reason } = a.reject;
          this.#sendReject(messageId, code, reason, retryable);
        }
      },
      (err: unknown) => {
        this.#serverPending--;
        this.#log.error({ err }, 'onDeliver failed');
        this.#sendReject(messageId, RejectCode.INTERNAL, 'internal error');
      },
    );
  }

  /**
   * Receipts of one group commit resolve together: they leave in one frame after this turn's
   * callbacks (setImmediate runs after the promise reactions that queue them).
   */
  #queueReceipt(messageId: Uint8Array, mac: Uint8Array): void {
    this.#receiptBatch.push({ messageId, mac });
    if (this.#receiptBatch.length === 1) setImmediate(() => this.#flushReceipts());
  }

  #flushReceipts(): void {
    const all = this.#receiptBatch;
    this.#receiptBatch = [];
    for (let i = 0; i < all.length; i += this.#limits.maxReceiptsPerFrame) {
      this.#send({ type: 'RECEIPT', receipts: all.slice(i, i + this.#limits.maxReceiptsPerFrame) });
    }
  }

  #onBundleRequest(): void {
    const handlers = this.#handlers!;
    // Answers go out in request order: a client pairs them with its requests by position.
    this.#bundleChain = this.#bundleChain.then(async () => {
      try {
        const bundle = await handlers.onBundleRequest();
        this.#send({ type: 'BUNDLE', bundle });
      } catch (err) {
        // Refused for want of budget is an answer, not a failure (and a flood must not flood the log).
        if (hasCode(err, 'BUSY')) {
          this.#sendReject(NO_MESSAGE_ID, RejectCode.BUSY, 'busy: ask again later');
          return;
        }
        this.#log.error({ err }, 'onBundleRequest failed');
        this.#sendReject(NO_MESSAGE_ID, RejectCode.INTERNAL, 'internal error');
      }
    });
  }

  // --- outbound and lifecycle ----------------------------------------------------------------------

  /** Sends a frame if the connection can still carry it; false otherwise (the close path handles the rest). */
  #send(frame: Frame): boolean {
    if (this.#state === 'closed') return false;
    // A server's send buffer holds nothing but its answers (a client's also holds its DELIVERs).
    if (this.role === 'server' && ANSWERS.has(frame.type) && this.#channel.bufferedAmount > this.#limits.maxUnreadAnswerBytes) {
      // The peer asks and does not read what we answer; its answers would pile up in our memory.
      this.#log.info({ buffered: this.#channel.bufferedAmount }, 'peer does not read our answers; cutting it');
      this.destroy(new ProtocolError('SLOW_READER', `more than ${this.#limits.maxUnreadAnswerBytes} bytes of answers unread`));
      return false;
    }
    try {
      this.#channel.send(encodeFrame(frame));
      return true;
    } catch (err) {
      if (err instanceof TransportError && err.code === 'CLOSED') return false;
      this.#log.error({ err, type: frame.type }, 'cannot send frame');
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
  }

  #sendReject(messageId: Uint8Array, code: number, reason: string, retryable = isRetryableByDefault(code)): void {
    // A handler's reason may be anything; the wire allows 200 bytes.
    let r = reason;
    while (new TextEncoder().encode(r).length > 200) r = Array.from(r).slice(0, -1).join('');
    this.#send({ type: 'REJECT', messageId, code, retryable, reason: r });
  }

  /** The peer broke a rule: tell it why (REJECT), then close. */
  #violate(code: RejectCode, errCode: ProtocolErrorCode, message: string, closeCode: number, cause?: unknown): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#log.info({ code: rejectCodeName(code), reason: message }, 'closing misbehaving peer');
    this.#sendReject(NO_MESSAGE_ID, code, message);
    this.#fail(errCode, message, closeCode, cause);
  }

  #fail(errCode: ProtocolErrorCode, message: string, closeCode: number, cause?: unknown): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    if (!this.#localError) this.#localError = new ProtocolError(errCode, message, { cause });
    this.#state = 'closing';
    this.#failAll(new ProtocolError('CLOSED', `connection closing: ${message}`, { cause: this.#localError }));
    void this.#channel.close(closeCode, message);
  }

  #scheduleHeartbeat(delayMs: number): void {
    if (this.#heartbeatTimer !== undefined) this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = this.#clock.setTimeout(() => {
      this.#heartbeatTimer = undefined;
      if (this.#state !== 'open') return;
      const now = this.#clock.now();
      const step = heartbeatStep(now, this.#lastRxAt, this.#pingSentAt, this.#limits);
      if (step.action === 'timeout') {
        this.#log.info('peer silent after PING; destroying');
        this.destroy(new ProtocolError('PEER_TIMEOUT', `no frame within ${this.#limits.heartbeatTimeoutMs} ms of PING`));
        return;
      }
      if (step.action === 'ping') {
        this.#pingSentAt = now;
        this.#pongOwed = true;
        this.#send({ type: 'PING', nonce: this.#nonce++ & 0xffff_ffff_ffff_ffffn });
      } else if (this.#pingSentAt !== undefined && this.#lastRxAt >= this.#pingSentAt) {
        this.#pingSentAt = undefined;
      }
      this.#scheduleHeartbeat(step.delayMs);
    }, delayMs);
  }

  /** Sends queued DELIVERs while the peer's window has room. */
  #pumpDelivers(): void {
    if (this.#state !== 'open') return;
    while (this.#deliversOnWire < this.#peerWindow && this.#deliverQueue.length > 0) {
      const q = this.#deliverQueue.shift()!;
      if (q.tracker.done) continue;
      q.sent = true;
      this.#deliversOnWire++;
      this.#answersOwed++;
      this.#send(q.frame);
    }
  }

  /** Runs `send` once the handshake is done, or fails the tracker if it never will be. */
  #whenOpen(tracker: Tracker<unknown>, send: () => void): void {
    if (this.#state === 'open') {
      send();
      return;
    }
    this.ready.then(
      () => {
        if (!tracker.done) send();
      },
      (err: Error) => tracker.fail(new ProtocolError('CLOSED', 'connection ended before the handshake completed', { cause: err })),
    );
  }

  #track<T>(opts: RequestOptions, what: string, remove: () => void): { promise: Promise<T>; tracker: Tracker<T> } {
    let resolve!: (v: T) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const signal = opts.signal;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    let timer: TimerHandle | undefined;
    const onAbort = () => tracker.fail(new ProtocolError('ABORTED', `${what} aborted`, { cause: signal?.reason }));
    const finish = () => {
      tracker.done = true;
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      remove();
    };
    const tracker: Tracker<T> = {
      done: false,
      settle: (v) => {
        if (tracker.done) return;
        finish();
        resolve(v);
      },
      fail: (e) => {
        if (tracker.done) return;
        finish();
        reject(e);
      },
    };
    if (this.#state === 'closing' || this.#state === 'closed') {
      tracker.fail(new ProtocolError('CLOSED', `connection is ${this.#state}`, { cause: this.#localError }));
      return { promise, tracker };
    }
    if (signal?.aborted) {
      onAbort();
      return { promise, tracker };
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    timer = this.#clock.setTimeout(() => {
      timer = undefined;
      tracker.fail(new ProtocolError('TIMEOUT', `${what} got no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    return { promise, tracker };
  }

  #failAll(err: Error): void {
    this.#deliverQueue = [];
    for (const t of [...this.#delivers.values()]) t.fail(err);
    for (const t of this.#bundles.splice(0)) t.fail(err);
  }

  #finalize(info: ChannelCloseInfo): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#handshakeTimer !== undefined) this.#clock.clearTimeout(this.#handshakeTimer);
    if (this.#heartbeatTimer !== undefined) this.#clock.clearTimeout(this.#heartbeatTimer);
    this.#handshakeTimer = this.#heartbeatTimer = undefined;
    this.#channel.off('message', this.#onMessage);
    this.#channel.off('close', this.#onClose);
    let error = this.#localError;
    if (!error && this.#remoteReject) {
      const r = this.#remoteReject;
      error = new ProtocolError('REMOTE_REJECT', `peer closed after REJECT ${rejectCodeName(r.code)}: ${r.reason}`, { remoteReject: r });
    }
    error ??= info.error;
    const out: PeerCloseInfo = { code: info.code, reason: info.reason };
    if (error) out.error = error;
    const closedErr = new ProtocolError('CLOSED', `connection closed (${info.code}${info.reason ? ` ${info.reason}` : ''})`, { cause: error });
    this.#failAll(closedErr);
    this.#rejectReady(error instanceof ProtocolError ? error : closedErr);
    this.#log.debug({ code: info.code, err: error?.message }, 'connection closed');
    this.#resolveClosed(out);
  }
}
