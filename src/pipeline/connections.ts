/**
 * The node's peer connections: client connections it dialled (one per onion, reused while open,
 * concurrent dials to one onion shared) and server connections peers opened to it. Dial timeouts
 * adapt to how long each peer took last time, and one attempt may dial twice (dial-policy.ts).
 *
 * Name claims: a node with a registry name says so in the HELLO of the connections it dials, as
 * the capability `name=<name>` (names of at most 27 characters fit the 32-byte capability; longer
 * ones are not claimed). It is only a hint: the receiver believes it after a forward lookup of the
 * name returns the identity key that signed the message (src/contacts/policy.ts).
 */
import { sleep, type Clock } from '../clock.js';
import { OnionpostError } from '../errors.js';
import type { Limits } from '../limits.js';
import type { Logger } from '../log.js';
import { MAX_CAPABILITY_BYTES, PeerConnection, type PeerHello, type ServerHandlers } from '../protocol/index.js';
import type { MessageChannel } from '../transport/index.js';
import { DEFAULT_DIAL_POLICY, dialTimeout, secondDial, type DialPolicy } from './dial-policy.js';

/** How to reach a peer (the node's PeerNetwork provides it). */
export interface Dialer {
  dial(onion: string, opts: { signal: AbortSignal; timeoutMs: number; limits: Partial<Limits> }): Promise<MessageChannel>;
}

export interface ConnectionsOptions {
  dialer: Dialer;
  limits: Limits;
  clock: Clock;
  logger: Logger;
  /** Overrides of DEFAULT_DIAL_POLICY (maxMs is the node's dialTimeoutMs). */
  dialPolicy?: Partial<DialPolicy>;
  /** HELLO capabilities of the connections we dial (e.g. our name claim), asked at each dial. */
  capabilities?: () => string[];
}

const NAME_PREFIX = 'name=';

/** Our HELLO capability claiming registry name `name`, or null when it does not fit. */
export function nameCapability(name: string): string | null {
  const c = `${NAME_PREFIX}${name}`;
  return c.length <= MAX_CAPABILITY_BYTES ? c : null;
}

/** The registry name a peer's HELLO claims (unverified), or null. */
export function claimedName(hello: PeerHello | undefined): string | null {
  const c = hello?.capabilities.find((x) => x.startsWith(NAME_PREFIX));
  return c ? c.slice(NAME_PREFIX.length) : null;
}

/** How many peers' last dial times are remembered (the oldest is forgotten first). */
const REMEMBERED_PEERS = 1024;

export class Connections {
  readonly #o: ConnectionsOptions;
  readonly #inbound = new Set<PeerConnection>();
  readonly #peers = new Map<string, PeerConnection>();
  readonly #dialing = new Map<string, Promise<PeerConnection>>();
  /** onion → how long its last successful dial took, ms (insertion order = age). */
  readonly #dialMs = new Map<string, number>();
  readonly #policy: DialPolicy;

  constructor(o: ConnectionsOptions) {
    this.#o = o;
    this.#policy = { ...DEFAULT_DIAL_POLICY, ...o.dialPolicy };
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
      const channel = await this.#dial(onion, signal);
      const capabilities = this.#o.capabilities?.() ?? [];
      const conn = new PeerConnection({ channel, role: 'client', limits: this.#o.limits, clock: this.#o.clock, logger: this.#o.logger, ...(capabilities.length ? { capabilities } : {}) });
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

  /** Dials with the adaptive timeout; a failed first dial may be followed by one more (see dial-policy.ts). */
  async #dial(onion: string, signal: AbortSignal): Promise<MessageChannel> {
    const { clock, dialer, limits } = this.#o;
    const timeoutMs = dialTimeout(this.#policy, this.#dialMs.get(onion));
    let started = clock.now();
    let channel: MessageChannel;
    try {
      channel = await dialer.dial(onion, { signal, timeoutMs, limits });
    } catch (err) {
      const failed = {
        elapsedMs: clock.now() - started, timeoutMs, code: err instanceof OnionpostError ? err.code : 'UNEXPECTED',
        retryClass: err instanceof OnionpostError ? err.retryAdvice?.retryClass : undefined,
      };
      const again = signal.aborted ? null : secondDial(this.#policy, failed);
      if (!again) throw err;
      this.#o.logger.debug({ code: failed.code, elapsedMs: failed.elapsedMs, ...again }, 'dial failed; dialling once more');
      await sleep(clock, again.pauseMs, signal);
      if (signal.aborted) throw err;
      started = clock.now();
      channel = await dialer.dial(onion, { signal, timeoutMs: again.timeoutMs, limits });
    }
    this.#dialMs.delete(onion);
    this.#dialMs.set(onion, clock.now() - started);
    if (this.#dialMs.size > REMEMBERED_PEERS) this.#dialMs.delete(this.#dialMs.keys().next().value!);
    return channel;
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
