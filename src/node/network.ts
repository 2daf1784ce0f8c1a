/**
 * How a node is reached and how it reaches others. The node only sees this interface; three
 * implementations exist:
 *
 *   torNetwork       (tor-network.ts) the real thing: our own Tor publishes the listener as our
 *                    onion, and peers are dialled at ws://<onion>/ through Tor's SOCKS port
 *   loopbackNetwork  no Tor: each node writes "onion → ws://127.0.0.1:port" into a shared
 *                    directory, for component tests and quick local demos
 *   memoryNetwork    in-process: channels are in-memory pairs, for unit-level node tests
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnionpostError } from '../errors.js';
import type { Limits } from '../limits.js';
import { createMemoryPair, dialWs, type MessageChannel } from '../transport/index.js';

export interface NetworkStatus {
  mode: 'tor' | 'loopback' | 'memory';
  /** Tor bootstrap percentage (100 for the other modes). */
  bootstrap: number;
  /** Short human state: 'starting', 'bootstrapping', 'publishing', 'online', 'restarting', … */
  state: string;
  socksPort?: number;
  version?: string;
  /** Bumped each time the onion is (re-)published; > 1 means the network recovered from a fault. */
  generation?: number;
}

export interface PublishTarget {
  /** The WebSocket listener's port on 127.0.0.1 (ignored by the memory network). */
  port: number;
  /** Receives in-memory channels (memory network only). */
  onChannel(channel: MessageChannel): void;
  /** Other paths (e.g. `/mailbox/v1`) and their receivers (memory network only; the listener has its own). */
  routes?: Readonly<Record<string, (channel: MessageChannel) => void>>;
}

/** What a dial asks for. `path` is the WebSocket path at the peer; default `/` (the message protocol). */
export interface DialOptions {
  signal: AbortSignal;
  timeoutMs: number;
  limits: Partial<Limits>;
  path?: string;
}

export interface PeerNetwork {
  /**
   * Every connection this network brings to the listener starts with tor's PROXY protocol line
   * naming the circuit (the listener must then expect it: `proxyProtocol`).
   */
  readonly proxyProtocol?: boolean;
  /** Makes the listener reachable as `onion`. Resolves once published (not necessarily reachable yet). */
  publish(onion: string, target: PublishTarget, signal?: AbortSignal): Promise<void>;
  /** Opens a channel to a peer. Rejects with the transport's or Tor's typed errors. */
  dial(onion: string, opts: DialOptions): Promise<MessageChannel>;
  status(): NetworkStatus;
  /** Called with each status change (Tor bootstrap progress, restarts). */
  onStatus(listener: (s: NetworkStatus) => void): () => void;
  close(): Promise<void>;
}

export class NetworkError extends OnionpostError<'PEER_UNKNOWN' | 'CLOSED'> {}

/** The peer is not online here: what Tor's "descriptor not found" is on the real network. */
const OFFLINE = { retryClass: 'later', code: 'PEER_UNKNOWN' } as const;

function statusHub(initial: NetworkStatus) {
  let current = initial;
  const listeners = new Set<(s: NetworkStatus) => void>();
  return {
    get: () => current,
    set(s: Partial<NetworkStatus>) {
      current = { ...current, ...s };
      for (const l of listeners) l(current);
    },
    on(l: (s: NetworkStatus) => void) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
  };
}

/** A shared in-process switchboard; give the same one to every node of a test. */
export class MemorySwitchboard {
  readonly #nodes = new Map<string, PublishTarget>();
  register(onion: string, target: PublishTarget): void {
    this.#nodes.set(onion, target);
  }
  unregister(onion: string): void {
    this.#nodes.delete(onion);
  }
  lookup(onion: string): PublishTarget | undefined {
    return this.#nodes.get(onion);
  }
}

export function memoryNetwork(board: MemorySwitchboard): PeerNetwork {
  const hub = statusHub({ mode: 'memory', bootstrap: 100, state: 'online' });
  const mine = new Set<string>();
  return {
    async publish(onion, target) {
      board.register(onion, target);
      mine.add(onion);
    },
    async dial(onion, opts) {
      const target = board.lookup(onion);
      if (!target) throw new NetworkError('PEER_UNKNOWN', `no node ${onion} on this switchboard`, { retryAdvice: OFFLINE });
      const path = opts.path ?? '/';
      const receive = path === '/' ? target.onChannel : target.routes && Object.hasOwn(target.routes, path) ? target.routes[path] : undefined;
      if (!receive) throw new NetworkError('PEER_UNKNOWN', `${onion} serves nothing at ${path}`);
      const [a, b] = createMemoryPair({ limits: opts.limits });
      receive(b);
      return a;
    },
    status: hub.get,
    onStatus: hub.on,
    async close() {
      for (const o of mine) board.unregister(o);
      mine.clear();
    },
  };
}

/**
 * Nodes on one machine without Tor: `dir/<onion>.json` holds `{"url":"ws://127.0.0.1:<port>/"}`.
 * The same wire protocol and WebSocket transport as over Tor, minus Tor.
 */
export function loopbackNetwork(dir: string): PeerNetwork {
  const hub = statusHub({ mode: 'loopback', bootstrap: 100, state: 'online' });
  const mine = new Set<string>();
  return {
    async publish(onion, target) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, `${onion}.json`), JSON.stringify({ url: `ws://127.0.0.1:${target.port}/` }));
      mine.add(onion);
    },
    async dial(onion, opts) {
      let url: string;
      try {
        url = (JSON.parse(readFileSync(join(dir, `${onion}.json`), 'utf8')) as { url: string }).url;
      } catch (err) {
        throw new NetworkError('PEER_UNKNOWN', `${onion} is not online in ${dir}`, { cause: err, retryAdvice: OFFLINE });
      }
      return dialWs({ url: new URL(opts.path ?? '/', url).href, signal: opts.signal, timeoutMs: opts.timeoutMs, limits: opts.limits });
    },
    status: hub.get,
    onStatus: hub.on,
    async close() {
      for (const o of mine) rmSync(join(dir, `${o}.json`), { force: true });
      mine.clear();
    },
  };
}
