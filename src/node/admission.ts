/**
 * Inbound DELIVER admission: the node's budget for the expensive checks (decryption, signature) of
 * what peers deliver, served by who the peer has proven to be.
 *
 *   DELIVER ─▶ size already checked by the protocol ─▶ in-flight bytes ≤ maxInflightDeliverBytes? (else BUSY)
 *     ├─ contact  (its scope delivered a valid message from a contact) ─▶ opened at once
 *     ├─ proven   (a valid message from someone else) ─▶ provenDecrypts bucket, FIFO
 *     └─ unproven ─▶ unprovenDecrypts bucket, one scope after another (round robin)
 *   a waiting DELIVER beyond maxQueuedDelivers is refused BUSY (retryable: the sender keeps it)
 *
 * After the pipeline answered: a RECEIPT promotes the scope (contact if the message's sender is in
 * the contact book, else proven); a DELIVER that did not open (DECRYPT_FAILED, UNKNOWN_SESSION, BAD_SIGNATURE,
 * MALFORMED) demotes a proven scope to unproven. The scope and its trust are the listener's (a Tor
 * circuit when tor names it, else the connection); channels from elsewhere (the in-memory network)
 * are tracked here per channel.
 *
 * A BUNDLE_REQUEST from an unproven scope waits for the same budget (it hands out a one-time prekey).
 *
 * Trust is an optimisation of *cost*, never of *acceptance*: every DELIVER is opened and verified in
 * full whatever its scope's trust.
 */
import { TokenBucket } from '../bucket.js';
import { OnionpostError } from '../errors.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { Limits } from '../limits.js';
import { RejectCode, type DeliverAnswer } from '../protocol/index.js';
import type { MessageChannel, Trust, WsListener } from '../transport/index.js';

export type DeliverClass = Trust;

/** A request refused for want of budget right now (the peer may ask again later). */
export class AdmissionBusyError extends OnionpostError<'BUSY'> {}

export interface AdmissionStats {
  /** DELIVERs waiting for a decryption slot, by class. */
  queued: { proven: number; unproven: number };
  inflightBytes: number;
  /** DELIVERs refused BUSY since start (queue full or bytes over the cap). */
  busy: number;
  /** DELIVERs admitted since start, by class. */
  admitted: Record<DeliverClass, number>;
}

interface Waiter {
  scope: string;
  /** False once nobody waits for the answer any more (its connection closed): skipped, no token spent. */
  alive(): boolean;
  go(ok: boolean): void;
}

/** Token buckets and queues for decryption work, by class. Pure scheduling; no I/O but the clock's timers. */
export class DeliverScheduler {
  readonly #l: Limits;
  readonly #clock: Clock;
  readonly #proven: TokenBucket;
  readonly #unproven: TokenBucket;
  readonly #provenQueue: Waiter[] = [];
  /** Unproven waiters per scope, and the scopes in turn order. */
  readonly #byScope = new Map<string, Waiter[]>();
  #turns: string[] = [];
  #unprovenCount = 0;
  #timer: TimerHandle | undefined;
  #inflight = 0;
  #busy = 0;
  readonly #admitted: Record<DeliverClass, number> = { contact: 0, proven: 0, unproven: 0 };
  #closed = false;

  constructor(limits: Limits, clock: Clock) {
    this.#l = limits;
    this.#clock = clock;
    const now = clock.now();
    this.#proven = new TokenBucket(limits.provenDecryptsPerSecond, limits.provenDecryptBurst, now);
    this.#unproven = new TokenBucket(limits.unprovenDecryptsPerSecond, limits.unprovenDecryptBurst, now);
  }

  /**
   * Waits for a slot for one DELIVER of `bytes` from `scope`. Resolves true when it may be opened (the
   * caller then calls release(bytes) once answered), false when it must be refused BUSY.
   */
  admit(cls: DeliverClass, scope: string, bytes: number, alive: () => boolean = () => true): Promise<boolean> | boolean {
    if (this.#closed || this.#inflight + bytes > this.#l.maxInflightDeliverBytes) return this.#refuse();
    const now = this.#clock.now();
    const queued = this.#provenQueue.length + this.#unprovenCount;
    let ok = false;
    if (cls === 'contact') ok = true;
    else if (cls === 'proven') ok = this.#provenQueue.length === 0 && this.#proven.take(now);
    else ok = this.#unprovenCount === 0 && this.#unproven.take(now);
    if (ok) return this.#start(cls, bytes);
    if (queued >= this.#l.maxQueuedDelivers) return this.#refuse();
    this.#inflight += bytes;
    return new Promise<boolean>((resolve) => {
      const w: Waiter = {
        scope,
        alive,
        go: (yes) => {
          if (!yes) this.#inflight -= bytes;
          else this.#admitted[cls]++;
          resolve(yes);
        },
      };
      if (cls === 'proven') this.#provenQueue.push(w);
      else {
        let q = this.#byScope.get(scope);
        if (!q) {
          q = [];
          this.#byScope.set(scope, q);
          this.#turns.push(scope);
        }
        q.push(w);
        this.#unprovenCount++;
      }
      this.#arm();
    });
  }

  /** An admitted DELIVER was answered: its bytes no longer count. */
  release(bytes: number): void {
    this.#inflight = Math.max(0, this.#inflight - bytes);
  }

  stats(): AdmissionStats {
    return {
      queued: { proven: this.#provenQueue.length, unproven: this.#unprovenCount }, inflightBytes: this.#inflight, busy: this.#busy,
      admitted: { ...this.#admitted },
    };
  }

  /** Refuses everything still waiting (BUSY) and stops the timer. Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const w of this.#provenQueue.splice(0)) w.go(false);
    for (const q of this.#byScope.values()) for (const w of q) w.go(false);
    this.#byScope.clear();
    this.#turns = [];
    this.#unprovenCount = 0;
  }

  #refuse(): false {
    this.#busy++;
    return false;
  }

  #start(cls: DeliverClass, bytes: number): true {
    this.#inflight += bytes;
    this.#admitted[cls]++;
    return true;
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const now = this.#clock.now();
    const waits: number[] = [];
    if (this.#provenQueue.length > 0) waits.push(this.#proven.waitMs(now));
    if (this.#unprovenCount > 0) waits.push(this.#unproven.waitMs(now));
    if (waits.length === 0) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#serve();
    }, Math.max(1, Math.min(...waits)));
  }

  #serve(): void {
    const now = this.#clock.now();
    for (let i = 0; i < 100_000 && this.#provenQueue.length > 0; i++) {
      const w = this.#provenQueue[0]!;
      if (w.alive()) {
        if (!this.#proven.take(now)) break;
        this.#provenQueue.shift();
        w.go(true);
      } else {
        this.#provenQueue.shift();
        w.go(false);
      }
    }
    for (let i = 0; i < 100_000 && this.#unprovenCount > 0; i++) {
      const scope = this.#turns[0]!;
      const q = this.#byScope.get(scope)!;
      const w = q[0]!;
      const alive = w.alive();
      if (alive && !this.#unproven.take(now)) break;
      this.#turns.shift();
      q.shift();
      this.#unprovenCount--;
      if (q.length > 0) this.#turns.push(scope);
      else this.#byScope.delete(scope);
      w.go(alive);
    }
    this.#arm();
  }
}

const DEMOTING: ReadonlySet<number> = new Set([RejectCode.DECRYPT_FAILED, RejectCode.UNKNOWN_SESSION, RejectCode.BAD_SIGNATURE, RejectCode.MALFORMED]);

export interface InboundAdmissionOptions {
  limits: Limits;
  clock: Clock;
  /** The listener whose channels carry scope and trust; channels it does not know are tracked here. */
  listener: () => WsListener | undefined;
  /** Whether the sender of the inbound message with this id (hex) is a contact. */
  senderIsContact(messageIdHex: string): boolean;
}

/** The node's side of admission: which class a channel's DELIVER is, and what the answer teaches. */
export class InboundAdmission {
  readonly scheduler: DeliverScheduler;
  readonly #o: InboundAdmissionOptions;
  readonly #local = new WeakMap<MessageChannel, Trust>();

  constructor(o: InboundAdmissionOptions) {
    this.#o = o;
    this.scheduler = new DeliverScheduler(o.limits, o.clock);
  }

  #peer(channel: MessageChannel): { scope: string; trust: Trust } {
    return this.#o.listener()?.peerOf(channel) ?? { scope: `local:${channel.remote}`, trust: this.#local.get(channel) ?? 'unproven' };
  }

  #setTrust(channel: MessageChannel, trust: Trust): void {
    const listener = this.#o.listener();
    if (listener?.peerOf(channel)) listener.setTrust(channel, trust);
    else this.#local.set(channel, trust);
  }

  /** The peer on `channel` finished its handshake. */
  handshakeDone(channel: MessageChannel): void {
    this.#o.listener()?.handshakeDone(channel);
  }

  /**
   * Runs `answer` for one BUNDLE_REQUEST: free for proven peers; for unproven ones it waits for the
   * same budget as their decryptions (each answer hands out a one-time prekey in a transaction, and
   * draining the pool is an attack of its own). Throws AdmissionBusyError when refused.
   */
  async bundle<T>(channel: MessageChannel, answer: () => T | Promise<T>): Promise<T> {
    const { scope, trust } = this.#peer(channel);
    if (trust === 'unproven') {
      const admitted = await this.scheduler.admit('unproven', scope, 0, () => channel.state === 'open');
      if (!admitted) throw new AdmissionBusyError('BUSY', 'busy: ask for the bundle again later');
    }
    return answer();
  }

  /** Runs `open` (the pipeline's receive) for one DELIVER once admitted; BUSY when not. */
  async deliver(channel: MessageChannel, messageIdHex: string, bytes: number, open: () => Promise<DeliverAnswer>): Promise<DeliverAnswer> {
    const { scope, trust } = this.#peer(channel);
    const admitted = await this.scheduler.admit(trust, scope, bytes, () => channel.state === 'open');
    if (!admitted) return { reject: { code: RejectCode.BUSY, retryable: true, reason: 'busy: try again later' } };
    try {
      const answer = await open();
      if ('receipt' in answer) {
        if (trust !== 'contact') this.#setTrust(channel, this.#o.senderIsContact(messageIdHex) ? 'contact' : 'proven');
      } else if (trust !== 'unproven' && DEMOTING.has(answer.reject.code)) {
        this.#setTrust(channel, 'unproven');
      }
      return answer;
    } finally {
      this.scheduler.release(bytes);
    }
  }

  close(): void {
    this.scheduler.close();
  }
}
