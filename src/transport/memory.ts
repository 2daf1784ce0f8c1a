/**
 * Two channels joined in memory, for unit and component tests of everything above the transport.
 * Delivery is asynchronous (one setImmediate per item, so FIFO) and keeps the contract of
 * channel.ts: sends over maxFrame throw TOO_LARGE, close is a two-way handshake, destroy is seen by
 * the peer as 1006.
 */
import { systemClock, type Clock } from '../clock.js';
import { resolveLimits, type Limits } from '../limits.js';
import { BaseChannel, CloseCode } from './channel.js';
import type { MessageChannel } from './channel.js';

export interface MemoryPairOptions {
  limits?: Partial<Limits>;
  clock?: Clock;
  /** Prefix of the two channels' `remote` names. */
  name?: string;
  closeTimeoutMs?: number;
}

type Item =
  | { kind: 'message'; bytes: Uint8Array }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'closeAck'; code: number; reason: string }
  | { kind: 'reset' };

class MemoryChannel extends BaseChannel {
  peer!: MemoryChannel;
  #closeSent: { code: number; reason: string } | undefined;

  get bufferedAmount(): number {
    return 0;
  }

  #post(item: Item): void {
    const peer = this.peer;
    setImmediate(() => peer.#receive(item));
  }

  #receive(item: Item): void {
    if (this.state === 'closed') return;
    switch (item.kind) {
      case 'message':
        if (item.bytes.length > this.maxFrame) {
          // What ws does with an over-maxPayload frame.
          this.#closeSent = { code: CloseCode.TOO_BIG, reason: 'message too big' };
          this.markClosing();
          this.#post({ kind: 'close', ...this.#closeSent });
          return;
        }
        this.emitMessage(item.bytes);
        return;
      case 'close':
        if (this.#closeSent) {
          // Both sides closed at once: each takes the other's close as the answer.
          this.finish({ code: item.code, reason: item.reason });
          return;
        }
        this.markClosing();
        this.#post({ kind: 'closeAck', code: item.code, reason: item.reason });
        this.finish({ code: item.code, reason: item.reason });
        return;
      case 'closeAck':
        this.finish({ code: item.code, reason: item.reason });
        return;
      case 'reset':
        this.finish({ code: CloseCode.ABNORMAL, reason: '' });
        return;
    }
  }

  protected write(bytes: Uint8Array): void {
    // A copy: the sender may reuse its buffer, as it may with a socket.
    this.#post({ kind: 'message', bytes: new Uint8Array(bytes) });
  }

  protected beginClose(code: number, reason: string): void {
    this.#closeSent = { code, reason };
    this.#post({ kind: 'close', code, reason });
  }

  protected terminate(): void {
    if (this.state === 'closed') return;
    this.#post({ kind: 'reset' });
    this.finish({ code: CloseCode.ABNORMAL, reason: '' });
  }
}


/** Two connected channels: what one sends, the other receives. */
export function createMemoryPair(opts: MemoryPairOptions = {}): [MessageChannel, MessageChannel] {
  const limits = resolveLimits(opts.limits);
  const clock = opts.clock ?? systemClock;
  const name = opts.name ?? 'memory';
  const base = { maxFrame: limits.maxFrame, clock, closeTimeoutMs: opts.closeTimeoutMs };
  const a = new MemoryChannel({ ...base, remote: `${name}/b` });
  const b = new MemoryChannel({ ...base, remote: `${name}/a` });
  a.peer = b;
  b.peer = a;
  return [a, b];
}
