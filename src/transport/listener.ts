/**
 * The inbound side: an HTTP server on 127.0.0.1 (Tor's onion service forwards to it) whose WebSocket
 * paths are `/` (the message protocol) and those in `routes` (e.g. `/mailbox/v1` on a mailbox
 * provider). Everything an unauthenticated peer can make us spend is bounded here before a channel
 * exists, for every path together:
 *
 *   TCP accept ─▶ HTTP request (headersTimeout = handshakeTimeoutMs)
 *     ├─ no Upgrade header ─▶ httpHandler(req, res) if given, else 404
 *     └─ Upgrade ─▶ path must be '/' or a route (else 404) ─▶ channels + upgrades in progress < maxConnections
 *                   (else 503) ─▶ ws handshake (maxPayload = maxFrame, no permessage-deflate)
 *                   ─▶ WsChannel (its 'error' listener attached first) ─▶ onChannel(channel) or the route's handler
 *
 * Every raw socket gets an 'error' listener as soon as we see it, so no peer can crash the process.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { systemClock, type Clock } from '../clock.js';
import { resolveLimits, type Limits } from '../limits.js';
import { silentLogger, type Logger } from '../log.js';
import { CloseCode, type MessageChannel } from './channel.js';
import { TransportError } from './errors.js';
import { WsChannel } from './ws-channel.js';

export interface WsListenerOptions {
  /** Interface to bind; keep loopback (Tor forwards to it). Default 127.0.0.1. */
  host?: string;
  /** Port; 0 (default) picks a free one, see `WsListener.port`. */
  port?: number;
  limits?: Partial<Limits>;
  logger?: Logger;
  clock?: Clock;
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

export interface WsListener {
  readonly port: number;
  readonly address: string;
  /** Open channels plus upgrades in progress. */
  readonly connections: number;
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

export async function createWsListener(opts: WsListenerOptions): Promise<WsListener> {
  const limits = resolveLimits(opts.limits);
  const log = opts.logger ?? silentLogger();
  const clock = opts.clock ?? systemClock;
  const channels = new Set<MessageChannel>();
  const upgrading = new Set<Duplex>();
  let accepted = 0;
  let closing: Promise<void> | undefined;

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrame,
    perMessageDeflate: false,
    clientTracking: false,
  });

  const server = createServer(
    {
      headersTimeout: limits.handshakeTimeoutMs,
      requestTimeout: limits.handshakeTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, limits.handshakeTimeoutMs),
    },
    (req, res) => {
      if (opts.httpHandler) {
        opts.httpHandler(req, res);
        return;
      }
      res.writeHead(404, { 'content-length': '0', connection: 'close' }).end();
    },
  );
  // Bounded so a flood of idle TCP connections cannot exhaust file descriptors; the slack lets
  // connections over the WebSocket cap still receive their 503.
  server.maxConnections = limits.maxConnections * 2;
  server.on('clientError', (err: Error, socket: Duplex) => {
    log.debug({ err: err.message }, 'bad HTTP request');
    refuse(socket, 400, 'Bad Request');
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err: Error) => log.debug({ err: err.message }, 'inbound socket error'));
    if (closing) return refuse(socket, 503, 'Service Unavailable');
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route = path === '/' ? opts.onChannel : opts.routes && Object.hasOwn(opts.routes, path) ? opts.routes[path] : undefined;
    if (!route) return refuse(socket, 404, 'Not Found');
    if (channels.size + upgrading.size >= limits.maxConnections) {
      log.warn({ cap: limits.maxConnections }, 'connection cap reached; refusing upgrade');
      return refuse(socket, 503, 'Service Unavailable');
    }
    upgrading.add(socket);
    socket.once('close', () => upgrading.delete(socket));
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      upgrading.delete(socket);
      const channel = new WsChannel(ws, {
        remote: `ws-in#${++accepted}`,
        maxFrame: limits.maxFrame,
        clock,
        closeTimeoutMs: opts.closeTimeoutMs,
      });
      channels.add(channel);
      channel.once('close', (info) => {
        channels.delete(channel);
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
    server.once('error', onError);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err: Error) => log.error({ err }, 'listener error'));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new TransportError('LISTEN_FAILED', 'listener has no TCP address');

  async function doClose(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of upgrading) s.destroy();
    const graceful = Promise.all([...channels].map((c) => c.close(CloseCode.GOING_AWAY, 'server stopping')));
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    await Promise.race([graceful, new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS)))]);
    if (timer !== undefined) clock.clearTimeout(timer);
    for (const c of channels) c.destroy();
    server.closeAllConnections();
    await serverClosed;
    wss.close();
  }

  return {
    port: addr.port,
    address: addr.address,
    get connections() {
      return channels.size + upgrading.size;
    },
    close: () => (closing ??= doClose()),
  };
}
