/**
 * The node's peer connections: client connections it dialled (one per onion, reused while open,
 * concurrent dials to one onion shared) and server connections peers opened to it.
 */
import type { Clock } from '../clock.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../log.js';
import { PeerConnection, type ServerHandlers } from '../protocol/index.js';
import type { MessageChannel } from '../transport/index.js';

/** How to reach a peer (the node's PeerNetwork provides it). */
export interface Dialer {
  dial(onion: string, opts: { signal: AbortSignal; timeoutMs: number; limits: Partial<Limits> }): Promise<MessageChannel>;
}

export interface ConnectionsOptions {
  dialer: Dialer;
  limits: Limits;
  clock: Clock;
  logger: Logger;
  /** Dial deadline, ms. */
  dialTimeoutMs: number;
}

export class Connections {
  readonly #o: ConnectionsOptions;
  readonly #inbound = new Set<PeerConnection>();
  readonly #peers = new Map<string, PeerConnection>();
  readonly #dialing = new Map<string, Promise<PeerConnection>>();

  constructor(o: ConnectionsOptions) {
    this.#o = o;
  }

  /** Open connections, both directions. */
  get count(): number {
    return this.#peers.size + this.#inbound.size;
  }

  /** A client connection to `onion`, reused while open. Rejects with the dialer's or the protocol's typed errors. */
  async connect(onion: string, signal: AbortSignal): Promise<PeerConnection> {
    const open = this.#peers.get(onion);
    if (open && open.state === 'open') return open;
    const pending = this.#dialing.get(onion);
    if (pending) return pending;
    const p = (async () => {
      const channel = await this.#o.dialer.dial(onion, { signal, timeoutMs: this.#o.dialTimeoutMs, limits: this.#o.limits });
      const conn = new PeerConnection({ channel, role: 'client', limits: this.#o.limits, clock: this.#o.clock, logger: this.#o.logger });
      await conn.ready;
      this.#peers.set(onion, conn);
      void conn.closed.then(() => {
        if (this.#peers.get(onion) === conn) this.#peers.delete(onion);
      });
      return conn;
    })();
    this.#dialing.set(onion, p);
    try {
      return await p;
    } finally {
      this.#dialing.delete(onion);
    }
  }

  /** An inbound channel: we are the server side of the protocol. */
  accept(channel: MessageChannel, handlers: ServerHandlers): PeerConnection {
    const conn = new PeerConnection({ channel, role: 'server', limits: this.#o.limits, clock: this.#o.clock, logger: this.#o.logger, handlers });
    this.#inbound.add(conn);
    void conn.closed.then(() => this.#inbound.delete(conn));
    return conn;
  }

  /** Forgets every client connection (our network restarted: their circuits are gone). */
  dropClients(): void {
    for (const c of this.#peers.values()) c.destroy();
    this.#peers.clear();
  }

  /** Drops every connection at once, as a crash would (no close handshake). */
  destroyAll(): void {
    for (const c of [...this.#peers.values(), ...this.#inbound]) c.destroy();
  }

  /** Closes every connection gracefully. */
  async close(): Promise<void> {
    await Promise.all([...this.#peers.values(), ...this.#inbound].map((c) => c.close()));
  }
}
