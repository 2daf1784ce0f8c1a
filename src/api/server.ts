/**
 * The node's local API: JSON-RPC 2.0 on 127.0.0.1.
 *
 *   POST /rpc            one request or a batch; Authorization: Bearer <token>, or the session cookie
 *   GET  /ws             WebSocket: the same requests, plus server-pushed notifications
 *                        {"jsonrpc":"2.0","method":"event","params":{type,…}} after `events.subscribe`
 *   GET  /login?token=T  sets the session cookie (HttpOnly, SameSite=Strict) and redirects to /
 *   GET  /openrpc.json   the machine-readable schema (also the `rpc.discover` method)
 *   anything else        handed to `web` (the UI), which must also pass the checks below
 *
 * Every request must name the node itself in Host (127.0.0.1:<port>, localhost:<port> or
 * [::1]:<port>), which defeats DNS rebinding; a request carrying an Origin must come from that same
 * origin, which defeats cross-site requests from pages the user visits. Everything except /login,
 * and the static UI shell, needs the token.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { OnionpostError } from '../errors.js';
import { createLogThrottle, type Logger } from '../log.js';
import { ApiError, JSONRPC_CODES } from './errors.js';
import { openRpcDocument, validate, type MethodSpec } from './schema.js';

export const SESSION_COOKIE = 'onionpost_session';

/** An event pushed to subscribed WebSocket clients. */
export interface ApiEvent {
  type: string;
  [k: string]: unknown;
}

export interface EventSource {
  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: (ev: ApiEvent) => void): () => void;
}

export type Handler = (params: Record<string, unknown>) => Promise<unknown> | unknown;

export interface ApiServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  token: string;
  methods: readonly MethodSpec[];
  handlers: Readonly<Record<string, Handler>>;
  events?: EventSource;
  /** Serves the UI for paths other than the API's. Returns false to fall through to 404. */
  web?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
  logger: Logger;
  info?: { title: string; version: string };
  /** Largest request body, bytes. Default 2 MiB (a 256 KiB message body JSON-escaped fits). */
  maxBodyBytes?: number;
}

export interface ApiServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

interface RpcRequest {
  jsonrpc: '2.0';
  id?: string | number | null;
  method: string;
  params?: unknown;
}

function tokenMatches(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

export async function createApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.logger;
  const maxBody = opts.maxBodyBytes ?? 2 * 1024 * 1024;
  // Refused requests are counted, not logged one by one: a local process could otherwise flood the log.
  const refusals = createLogThrottle({ logger: log });
  const specs = new Map(opts.methods.map((m) => [m.name, m]));
  const doc = openRpcDocument(opts.methods, opts.info ?? { title: 'onionpost', version: '0.1.0' });
  let port = 0;

  for (const m of opts.methods) if (!opts.handlers[m.name] && m.name !== 'rpc.discover' && m.name !== 'events.subscribe') throw new Error(`no handler for API method ${m.name}`);

  function allowedHosts(): Set<string> {
    return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  }

  /** Host and Origin checks; returns an error or null. */
  function checkOrigin(req: IncomingMessage): ApiError | null {
    const hosts = allowedHosts();
    if (!req.headers.host || !hosts.has(req.headers.host.toLowerCase())) return new ApiError('FORBIDDEN_HOST', 'request Host is not this node');
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let o: URL;
      try {
        o = new URL(origin);
      } catch {
        return new ApiError('FORBIDDEN_HOST', 'malformed Origin');
      }
      if (o.protocol !== 'http:' || !hosts.has(o.host.toLowerCase())) return new ApiError('FORBIDDEN_HOST', 'request Origin is not this node');
    }
    return null;
  }

  function authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization;
    const bearer = h?.startsWith('Bearer ') ? h.slice(7) : undefined;
    return tokenMatches(bearer, opts.token) || tokenMatches(cookieValue(req, SESSION_COOKIE), opts.token);
  }

  function errorObject(err: unknown): { code: number; message: string; data: { code: string } } {
    if (err instanceof ApiError) return { code: JSONRPC_CODES[err.code], message: err.message, data: { code: err.code } };
    if (err instanceof OnionpostError) return { code: -32000, message: err.message, data: { code: err.code } };
    log.error({ err }, 'API handler failed unexpectedly');
    return { code: JSONRPC_CODES.INTERNAL, message: 'internal error', data: { code: 'INTERNAL' } };
  }

  async function call(req: unknown): Promise<object | null> {
    const r = req as Partial<RpcRequest> | null;
    const id = r && typeof r === 'object' && 'id' in r ? (r.id ?? null) : null;
    try {
      if (!r || typeof r !== 'object' || r.jsonrpc !== '2.0' || typeof r.method !== 'string') throw new ApiError('INVALID_REQUEST', 'not a JSON-RPC 2.0 request');
      const params = (r.params ?? {}) as Record<string, unknown>;
      let result: unknown;
      if (r.method === 'rpc.discover') result = doc;
      else {
        const spec = specs.get(r.method);
        const handler = opts.handlers[r.method];
        if (!spec || !handler || spec.wsOnly) throw new ApiError('METHOD_NOT_FOUND', `no method ${r.method}`);
        const problems = validate(spec.params, params);
        if (problems.length > 0) throw new ApiError('INVALID_PARAMS', problems.join('; '));
        result = await handler(params);
      }
      return r.id === undefined ? null : { jsonrpc: '2.0', id, result: result ?? null };
    } catch (err) {
      return { jsonrpc: '2.0', id, error: errorObject(err) };
    }
  }

  async function dispatch(body: unknown): Promise<unknown> {
    if (Array.isArray(body)) {
      if (body.length === 0) return { jsonrpc: '2.0', id: null, error: errorObject(new ApiError('INVALID_REQUEST', 'empty batch')) };
      const out = (await Promise.all(body.map(call))).filter((x) => x !== null);
      return out.length ? out : null;
    }
    return call(body);
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === null ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
    res.end(text);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const bad = checkOrigin(req);
    if (bad) {
      refusals.warn('forbidden-host', { path: req.url?.slice(0, 64) }, 'API request refused: foreign Host or Origin');
      return send(res, 403, { jsonrpc: '2.0', id: null, error: errorObject(bad) });
    }
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    if (url.pathname === '/login' && req.method === 'GET') {
      if (!tokenMatches(url.searchParams.get('token') ?? undefined, opts.token)) return send(res, 401, { error: 'wrong token' });
      res.writeHead(303, {
        location: '/',
        'set-cookie': `${SESSION_COOKIE}=${encodeURIComponent(opts.token)}; HttpOnly; SameSite=Strict; Path=/`,
        'cache-control': 'no-store',
      });
      return void res.end();
    }
    if (url.pathname === '/rpc' || url.pathname === '/openrpc.json') {
      if (!authorized(req)) {
        refusals.warn('unauthorized', {}, 'API request refused: missing or wrong credential');
        return send(res, 401, { jsonrpc: '2.0', id: null, error: errorObject(new ApiError('UNAUTHORIZED', 'missing or wrong API token')) });
      }
      if (url.pathname === '/openrpc.json') return send(res, 200, doc);
      if (req.method !== 'POST') return send(res, 405, { error: 'POST only' }, { allow: 'POST' });
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return send(res, 415, { error: 'content-type must be application/json' });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > maxBody) {
          refusals.warn('body-too-large', { maxBody }, 'API request refused: body too large');
          return send(res, 413, { jsonrpc: '2.0', id: null, error: errorObject(new ApiError('INVALID_REQUEST', `request body over ${maxBody} bytes`)) });
        }
        chunks.push(c as Buffer);
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 200, { jsonrpc: '2.0', id: null, error: errorObject(new ApiError('PARSE_ERROR', 'body is not JSON')) });
      }
      const out = await dispatch(body);
      return out === null ? send(res, 204, null) : send(res, 200, out);
    }
    if (opts.web && (await opts.web(req, res))) return;
    send(res, 404, { error: 'not found' });
  }

  const server: Server = createServer((req, res) => {
    onRequest(req, res).catch((err) => {
      log.error({ err }, 'API request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxBody, perMessageDeflate: false });
  const sockets = new Set<WebSocket>();
  server.on('upgrade', (req, socket: Socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const bad = checkOrigin(req);
    const status = bad ? 403 : url.pathname !== '/ws' ? 404 : !authorized(req) ? 401 : 0;
    if (status) {
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws));
  });

  function onSocket(ws: WebSocket): void {
    sockets.add(ws);
    let unsubscribe: (() => void) | undefined;
    ws.on('error', (err) => log.debug({ err }, 'API websocket error'));
    ws.on('close', () => {
      sockets.delete(ws);
      unsubscribe?.();
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text only');
      let req: unknown;
      try {
        req = JSON.parse(data.toString());
      } catch {
        return ws.send(JSON.stringify({ jsonrpc: '2.0', id: null, error: errorObject(new ApiError('PARSE_ERROR', 'not JSON')) }));
      }
      const r = req as Partial<RpcRequest>;
      if (r && typeof r === 'object' && r.method === 'events.subscribe') {
        const types = (r.params as { types?: string[] } | undefined)?.types;
        unsubscribe?.();
        unsubscribe = opts.events?.subscribe((ev) => {
          if ((!types || types.includes(ev.type)) && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'event', params: ev }));
        });
        if (r.id !== undefined) ws.send(JSON.stringify({ jsonrpc: '2.0', id: r.id, result: { subscribed: types ?? 'all' } }));
        return;
      }
      void dispatch(req).then((out) => {
        if (out !== null && ws.readyState === ws.OPEN) ws.send(JSON.stringify(out));
      });
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        refusals.close();
        for (const ws of sockets) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
