/**
 * The inbound side: a TCP server on 127.0.0.1 (Tor's onion service forwards to it) speaking HTTP whose
 * WebSocket paths are `/` (the message protocol) and those in `routes` (e.g. `/mailbox/v1` on a
 * mailbox provider). Everything an unauthenticated peer can make us spend is decided by the
 * InboundGuard (guard.ts), for every path together, before the bytes reach the HTTP parser, `ws` or
 * the protocol:
 *
 *   TCP accept ─▶ guard.accept (slots: make room or refuse 503) ─▶ [proxyProtocol: tor's PROXY line,
 *   scope = its circuit] ─▶ guard.admitConnection (its cost charged; may wait, unread) ─▶ HTTP request
 *   (pending deadline: guard's sweep)
 *     ├─ no Upgrade header ─▶ httpHandler(req, res) if given, else 404
 *     └─ Upgrade ─▶ path must be '/' or a route (else 404) ─▶ ws handshake (maxPayload = maxFrame, maxFragments,
 *        maxBufferedChunks = maxFrameChunks, no permessage-deflate) ─▶ every later socket read goes
 *        through guard.data (frames charged, buffers counted) before ws's reader
 *        ─▶ WsChannel (its 'error' listener attached first) ─▶ onChannel(channel) or the route's handler
 *
 * The owner of the channels tells the listener what it learns about each peer (handshakeDone,
 * setTrust, misbehaved): the guard's reserved capacity, budgets and cooling follow it. The listener
 * itself reports a request that does not parse as HTTP and a channel ws closed for broken framing
 * (TransportError BAD_FRAME, TOO_LARGE) as misbehaviour: the circuit is refused for a while
 * (guard.ts, "Cooling"). Every raw socket gets an 'error' listener as soon as we see it, so no peer
 * can crash the process.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { systemClock, type Clock } from '../clock.js';
import { resolveLimits, type Limits } from '../limits.js';
import { silentLogger, type Logger } from '../log.js';
import { CloseCode, DEFAULT_CLOSE_TIMEOUT_MS, type MessageChannel } from './channel.js';
import { TransportError } from './errors.js';
import { InboundGuard, type GuardStats, type GuardedConnection, type Misbehaviour, type Trust } from './guard.js';
import { parseProxyHeader, proxyScope } from './proxy-header.js';
import { WsChannel } from './ws-channel.js';

export interface WsListenerOptions {
  /** Interface to bind; keep loopback (Tor forwards to it). Default 127.0.0.1. */
  host?: string;
  /** Port; 0 (default) picks a free one, see `WsListener.port`. */
  port?: number;
  limits?: Partial<Limits>;
  logger?: Logger;
  clock?: Clock;
  /**
   * Every connection starts with tor's PROXY protocol v1 line (`HiddenServiceExportCircuitID
   * haproxy`); its circuit id becomes the connection's scope. A connection without one is closed.
   */
  proxyProtocol?: boolean;
  /** Receives each accepted channel; it owns the channel from then on. A throw destroys the channel. */
  onChannel(channel: MessageChannel): void;
  /** Other WebSocket paths and who receives their channels (same ownership rule as onChannel). */
  routes?: Readonly<Record<string, (channel: MessageChannel) => void>>;
  /** Serves plain HTTP requests (any path); without it they get 404. */
  httpHandler?: (req: IncomingMessage, res: ServerResponse) => void;
  /** How long close() lets channels close gracefully before cutting them, ms. Default 2000. */
  closeGraceMs?: number;
  /** Graceful-close fallback of each channel, ms. */
  closeTimeoutMs?: number;
}

/** What the listener knows of a peer behind one of its channels. */
export interface InboundPeer {
  /** `circuit:<id>` when tor said which circuit, else a per-connection key. */
  scope: string;
  trust: Trust;
}

export interface WsListener {
  readonly port: number;
  readonly address: string;
  /** Open channels plus connections not yet upgraded. */
  readonly connections: number;
  /** The peer completed the protocol handshake on this channel (it leaves the pending class). */
  handshakeDone(channel: MessageChannel): void;
  /** What the node learned of this channel's peer; applies to its whole scope (circuit). */
  setTrust(channel: MessageChannel, trust: Trust): void;
  /**
   * This channel's peer broke the protocol (`why`: 'protocol' or 'mailbox'; guard.ts lists what
   * counts): its circuit is refused for a while. Also after the channel closed; ignored for
   * channels this listener did not accept.
   */
  misbehaved(channel: MessageChannel, why: Misbehaviour): void;
  /** Scope and trust of a channel this listener accepted; undefined for others. */
  peerOf(channel: MessageChannel): InboundPeer | undefined;
  stats(): GuardStats;
  /** Stops accepting, closes every channel (1001) and cuts what is left after closeGraceMs. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_CLOSE_GRACE_MS = 2_000;

function refuse(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** ws's own socket reader, which the guard is put in front of. */
function takeWsReader(socket: Duplex): ((chunk: Buffer) => void) | undefined {
  const readers = socket.listeners('data').filter((f) => f.name === 'socketOnData');
  if (readers.length !== 1) return undefined;
  const reader = readers[0] as (this: Duplex, chunk: Buffer) => void;
  socket.removeListener('data', reader);
  return (chunk) => reader.call(socket, chunk);
}

export async function createWsListener(opts: WsListenerOptions): Promise<WsListener> {
  const limits = resolveLimits(opts.limits);
  const log = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  const channels = new Map<MessageChannel, GuardedConnection>();
  /** Every channel's connection, kept after it closed: misbehaviour is often reported then. */
  const connOf = new WeakMap<MessageChannel, GuardedConnection>();
  const bySocket = new WeakMap<Duplex, GuardedConnection>();
  const sockets = new Set<Socket>();
  let accepted = 0;
  let closing: Promise<void> | undefined;

  const guard = new InboundGuard({ limits, clock, log, refuse: (s) => refuse(s, 503, 'Service Unavailable') });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrame,
    maxFragments: limits.maxFragments,
    maxBufferedChunks: limits.maxFrameChunks,
    closeTimeout: opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
    perMessageDeflate: false,
    clientTracking: false,
  } as ConstructorParameters<typeof WebSocketServer>[0]);

  const http = createHttpServer(
    { headersTimeout: limits.handshakeTimeoutMs, requestTimeout: limits.handshakeTimeoutMs },
    (req, res) => {
      if (opts.httpHandler) {
        opts.httpHandler(req, res);
        return;
      }
      res.writeHead(404, { 'content-length': '0', connection: 'close' }).end();
    },
  );
  http.on('clientError', (err: Error, socket: Duplex) => {
    log.debug({ err: err.message }, 'bad HTTP request');
    // llhttp's parse errors (HPE_*), not timeouts or resets: bytes no HTTP client sends.
    const conn = bySocket.get(socket);
    if (conn && String((err as { code?: unknown }).code ?? '').startsWith('HPE_')) guard.misbehaved(conn, 'http');
    refuse(socket, 400, 'Bad Request');
  });

  const tcp = createTcpServer({ noDelay: true }, (socket: Socket) => {
    socket.on('error', (err: Error) => log.debug({ err: err.message }, 'inbound socket error'));
    if (closing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    const conn = guard.accept(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (conn) guard.closed(conn);
    });
    if (!conn) return;
    bySocket.set(socket, conn);
    // Until admitted, what the peer sends is kept by the guard (and counted), and reading on is how
    // we notice a peer that gives up its place in line.
    const early = (d: Buffer) => guard.hold(conn, d);
    const toHttp = (held: Buffer | undefined) => {
      socket.off('data', early);
      socket.pause();
      if (held) socket.unshift(held);
      http.emit('connection', socket);
      socket.resume();
    };
    if (!opts.proxyProtocol) {
      socket.on('data', early);
      guard.admitConnection(conn, toHttp);
      return;
    }
    // Tor writes its PROXY line as the stream opens; until it is complete nothing else is read.
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      let parsed;
      try {
        parsed = parseProxyHeader(buf);
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'connection without a valid PROXY line; closing');
        socket.destroy();
        return;
      }
      if (!parsed) return;
      socket.off('data', onData);
      const scope = proxyScope(parsed.header);
      if (scope) guard.rescope(conn, scope, parsed.length);
      const rest = buf.subarray(parsed.length);
      if (rest.length) guard.hold(conn, rest);
      socket.on('data', early);
      guard.admitConnection(conn, toHttp);
    };
    socket.on('data', onData);
  });
  // A backstop for file descriptors (slots, the admission line, and PROXY lines being read); the guard decides before this.
  tcp.maxConnections = limits.maxConnections + limits.maxQueuedConnections + limits.maxPendingHandshakes;

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (closing) return refuse(socket, 503, 'Service Unavailable');
    const conn = bySocket.get(socket);
    if (!conn) return socket.destroy();
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route = path === '/' ? opts.onChannel : opts.routes && Object.hasOwn(opts.routes, path) ? opts.routes[path] : undefined;
    if (!route) return refuse(socket, 404, 'Not Found');
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const forward = takeWsReader(socket);
      if (!forward) {
        // A ws version that reads its socket differently: refuse to run unguarded.
        log.error('cannot put the inbound guard in front of ws (unexpected ws internals); closing the connection');
        socket.destroy();
        return;
      }
      guard.upgraded(conn, forward);
      socket.on('data', (chunk: Buffer) => guard.data(conn, chunk));
      const channel = new WsChannel(ws, {
        remote: `ws-in#${++accepted}`,
        maxFrame: limits.maxFrame,
        clock,
        closeTimeoutMs: opts.closeTimeoutMs,
      });
      channels.set(channel, conn);
      connOf.set(channel, conn);
      channel.once('close', (info) => {
        channels.delete(channel);
        if (info.error instanceof TransportError && (info.error.code === 'BAD_FRAME' || info.error.code === 'TOO_LARGE')) guard.misbehaved(conn, 'websocket');
        log.debug({ remote: channel.remote, code: info.code, err: info.error?.message }, 'inbound channel closed');
      });
      if (closing) {
        void channel.close(CloseCode.GOING_AWAY, 'server stopping');
        return;
      }
      try {
        route(channel);
      } catch (err) {
        log.error({ err }, 'onChannel threw; dropping the channel');
        channel.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new TransportError('LISTEN_FAILED', `cannot listen: ${err.message}`, { cause: err }));
    tcp.once('error', onError);
    tcp.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      tcp.off('error', onError);
      resolve();
    });
  });
  tcp.on('error', (err: Error) => log.error({ err }, 'listener error'));
  const addr = tcp.address();
  if (addr === null || typeof addr === 'string') throw new TransportError('LISTEN_FAILED', 'listener has no TCP address');

  async function doClose(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => tcp.close(() => resolve()));
    guard.close();
    for (const s of sockets) if (![...channels.values()].some((c) => c.socket === s)) s.destroy();
    const graceful = Promise.all([...channels.keys()].map((c) => c.close(CloseCode.GOING_AWAY, 'server stopping')));
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    await Promise.race([graceful, new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS)))]);
    if (timer !== undefined) clock.clearTimeout(timer);
    for (const c of channels.keys()) c.destroy();
    for (const s of sockets) s.destroy();
    await serverClosed;
    http.close();
    wss.close();
  }

  return {
    port: addr.port,
    address: addr.address,
    get connections() {
      return guard.stats().connections;
    },
    handshakeDone(channel) {
      const c = channels.get(channel);
      if (c) guard.handshakeDone(c);
    },
    setTrust(channel, trust) {
      const c = channels.get(channel);
      if (c) guard.setTrust(c, trust);
    },
    misbehaved(channel, why) {
      const c = connOf.get(channel);
      if (c) guard.misbehaved(c, why);
    },
    peerOf(channel) {
      const c = channels.get(channel);
      return c ? { scope: c.scope.key, trust: c.scope.trust } : undefined;
    },
    stats: () => guard.stats(),
    close: () => (closing ??= doClose()),
  };
}
