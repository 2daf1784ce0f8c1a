/**
 * The one thing the protocol sees of a connection: an ordered, reliable channel of binary messages.
 *
 *            send(bytes)                      'message'(bytes)
 *   ┌──────┐ ───────────────────────────────▶ ┌──────┐
 *   │  A   │                                  │  B   │
 *   └──────┘ ◀─────────────────────────────── └──────┘
 *
 *   state:  open ──close()──▶ closing ──peer echoes / fallback timer──▶ closed
 *             │                                                          ▲
 *             └──────────destroy(err) / peer vanished / peer closed──────┘
 *
 * Guarantees every implementation keeps (checked by test/fixtures/channel-contract.ts):
 * - messages arrive whole, in order, byte for byte; 'message' is never emitted after 'close';
 * - send() of more than `limits.maxFrame` bytes throws TransportError TOO_LARGE and changes nothing;
 *   a peer that sends more than our maxFrame is closed with code 1009;
 * - send() when not open throws TransportError CLOSED;
 * - close(code, reason) is graceful (messages already sent still arrive, then both sides see 'close'
 *   with that code and reason), falls back to destroy after a timer, and returns the same promise on
 *   every call; destroy(err) is immediate: our 'close' carries `err`, the peer's has code 1006;
 * - 'close' is emitted exactly once per side, asynchronously;
 * - messages that arrive before the first 'message' listener is attached are held (at most
 *   MAX_HELD_MESSAGES, beyond that the channel is destroyed) and delivered, in order, just after
 *   it is attached: a consumer may attach after an `await` (e.g. after dialWs resolves) without
 *   losing the peer's first frames.
 */
import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../clock.js';
import { TransportError } from './errors.js';

/** Close codes, the WebSocket numbering (RFC 6455 §7.4), used by every channel. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  /** Reported, never sent: the close frame carried no code. */
  NO_STATUS: 1005,
  /** Reported, never sent: the connection ended without a close frame (destroy, crash, network). */
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
});

/** Longest close reason a WebSocket close frame can carry, bytes of UTF-8. */
export const MAX_CLOSE_REASON_BYTES = 123;
/** Messages a channel keeps for a consumer that has not attached its 'message' listener yet. */
export const MAX_HELD_MESSAGES = 64;
/** How long a graceful close waits for the peer before destroying, ms. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 3_000;

export interface ChannelCloseInfo {
  /** The close code both sides agreed on, or 1006 when the connection just ended. */
  code: number;
  reason: string;
  /** Set when this side failed or was destroyed with an error. */
  error?: Error;
}

export type ChannelState = 'open' | 'closing' | 'closed';

export interface ChannelEvents {
  message: [bytes: Uint8Array];
  close: [info: ChannelCloseInfo];
}

export interface MessageChannel {
  /** Who is on the other side, for logs only (e.g. `ws-in#3`, `ws://abc….onion/`, `memory#1/a`). */
  readonly remote: string;
  readonly state: ChannelState;
  /** Bytes queued but not yet written to the network (0 for the memory pair). */
  readonly bufferedAmount: number;
  /** Queues one message. Throws TransportError CLOSED or TOO_LARGE; a later write failure destroys the channel with SEND_FAILED. */
  send(bytes: Uint8Array): void;
  /** Graceful close; `code` 1000 by default (1000–1003, 1007–1014 or 3000–4999), `reason` cut to 123 bytes. Same promise on every call; never rejects. */
  close(code?: number, reason?: string): Promise<void>;
  /** Immediate close without a handshake; `err` is reported in this side's 'close'. */
  destroy(err?: Error): void;
  on<E extends keyof ChannelEvents>(event: E, listener: (...args: ChannelEvents[E]) => void): this;
  once<E extends keyof ChannelEvents>(event: E, listener: (...args: ChannelEvents[E]) => void): this;
  off<E extends keyof ChannelEvents>(event: E, listener: (...args: ChannelEvents[E]) => void): this;
}

export function isValidCloseCode(code: number): boolean {
  return Number.isInteger(code) && ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999));
}

/** Cuts `reason` to at most 123 bytes of UTF-8 without splitting a character. */
export function clampCloseReason(reason: string): string {
  const enc = new TextEncoder();
  let s = reason;
  while (enc.encode(s).length > MAX_CLOSE_REASON_BYTES) s = Array.from(s).slice(0, -1).join('');
  return s;
}

export interface BaseChannelOptions {
  remote: string;
  maxFrame: number;
  clock: Clock;
  closeTimeoutMs?: number;
}

/**
 * The state machine every channel shares; subclasses supply the three primitives `write`,
 * `beginClose` and `terminate`, and call `emitMessage` and `finish` as their transport reports.
 */
export abstract class BaseChannel implements MessageChannel {
  readonly remote: string;
  protected readonly maxFrame: number;
  protected readonly clock: Clock;
  readonly #closeTimeoutMs: number;
  readonly #events = new EventEmitter<ChannelEvents>();
  #state: ChannelState = 'open';
  #closePromise: Promise<void> | undefined;
  #resolveClosed!: () => void;
  readonly #closed: Promise<void>;
  #fallback: TimerHandle | undefined;
  /** The error this side will report in 'close', if any. */
  protected failure: Error | undefined;
  /** Messages received before anyone listened; undefined once released. */
  #held: Uint8Array[] | undefined = [];
  #releasing = false;
  #closeEmitted = false;

  constructor(opts: BaseChannelOptions) {
    this.remote = opts.remote;
    this.maxFrame = opts.maxFrame;
    this.clock = opts.clock;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get state(): ChannelState {
    return this.#state;
  }

  abstract get bufferedAmount(): number;
  protected abstract write(bytes: Uint8Array): void;
  protected abstract beginClose(code: number, reason: string): void;
  protected abstract terminate(): void;

  send(bytes: Uint8Array): void {
    if (this.#state !== 'open') throw new TransportError('CLOSED', `channel to ${this.remote} is ${this.#state}`);
    if (!(bytes instanceof Uint8Array)) throw new TypeError('send() takes a Uint8Array');
    if (bytes.length > this.maxFrame) throw new TransportError('TOO_LARGE', `message of ${bytes.length} bytes exceeds maxFrame ${this.maxFrame}`);
    this.write(bytes);
  }

  close(code: number = CloseCode.NORMAL, reason = ''): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    if (this.#state === 'open' && !isValidCloseCode(code)) throw new RangeError(`invalid close code ${code}`);
    this.#closePromise = this.#closed;
    if (this.#state !== 'open') return this.#closePromise;
    this.#state = 'closing';
    // The peer may never echo our close (Tor circuit gone, peer wedged): then we cut the socket.
    this.#fallback = this.clock.setTimeout(() => {
      this.#fallback = undefined;
      if (this.#state !== 'closed') this.terminate();
    }, this.#closeTimeoutMs);
    this.beginClose(code, clampCloseReason(reason));
    return this.#closePromise;
  }

  destroy(err?: Error): void {
    if (this.#state === 'closed') return;
    if (err && !this.failure) this.failure = err;
    this.terminate();
  }

  /** A peer-initiated close frame arrived while we were open. */
  protected markClosing(): void {
    if (this.#state === 'open') this.#state = 'closing';
  }

  protected emitMessage(bytes: Uint8Array): void {
    if (this.#state === 'closed') return;
    if (!this.#held) this.#events.emit('message', bytes);
    // Nobody will read what arrives after close() with no listener; don't keep it.
    else if (this.#state === 'open') {
      // The consumer is expected within a tick or two; a peer cannot make us hoard beyond this.
      if (this.#held.length >= MAX_HELD_MESSAGES) this.destroy(new TransportError('TOO_LARGE', 'messages arrived with no listener'));
      else this.#held.push(bytes);
    }
  }

  #release(): void {
    if (this.#releasing) return;
    this.#releasing = true;
    queueMicrotask(() => {
      const held = this.#held ?? [];
      this.#held = undefined;
      for (const m of held) {
        if (this.#closeEmitted) break;
        this.#events.emit('message', m);
      }
    });
  }

  /** Reports the end of the connection; the first call wins. */
  protected finish(info: ChannelCloseInfo): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#fallback !== undefined) this.clock.clearTimeout(this.#fallback);
    this.#fallback = undefined;
    const out: ChannelCloseInfo = { code: info.code, reason: info.reason };
    const error = this.failure ?? info.error;
    if (error) out.error = error;
    queueMicrotask(() => {
      this.#closeEmitted = true;
      this.#held = undefined;
      this.#resolveClosed();
      this.#events.emit('close', out);
    });
  }

  on<E extends keyof ChannelEvents>(event: E, listener: (...args: ChannelEvents[E]) => void): this {
    this.#events.on(event, listener as never);
    if (event === 'message') this.#release();
    return this;
  }
  once<E extends keyof ChannelEvents>(event: E, listener: (...args: ChannelEvents[E]) => void): this {
    this.#events.once(event, listener as never);
    if (event === 'message') this.#release();
    return this;
  }
  off<E extends keyof ChannelEvents>(event: E, listener: (...args: ChannelEvents[E]) => void): this {
    this.#events.off(event, listener as never);
    return this;
  }
}
