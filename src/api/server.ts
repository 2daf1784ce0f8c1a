/**
 * The node's local API: JSON-RPC 2.0 on 127.0.0.1.
 *
 *   POST   /rpc           one request or a batch
 *   GET    /ws            WebSocket: the same requests, plus server-pushed notifications
 *                         {"jsonrpc":"2.0","method":"event","params":{type,…}} after `events.subscribe`
 *   POST   /session       {code}: redeems a login code for a browser session (see sessions.ts)
 *   DELETE /session       signs this browser session out
 *   GET    /openrpc.json  the machine-readable schema (also the `rpc.discover` method)
 *   anything else         handed to `web` (the UI and its sign-in page), which must also pass the
 *                         Host/Origin checks below
 *
 * Credentials: the API token (Authorization: Bearer, for the CLI and scripts, read from the 0600
 * file), or a browser session (its cookie plus its page secret, see sessions.ts). The token is
 * never accepted from a cookie or a URL. Methods marked `tokenOnly` (minting login links, revoking
 * sessions) refuse browser sessions.
 *
 * close() drains: requests already running finish and are answered (within a deadline) before any
 * connection is cut; new ones are refused with SHUTTING_DOWN.
 *
 * Every request must name the node itself in Host (127.0.0.1:<port>, localhost:<port> or
 * [::1]:<port>), which defeats DNS rebinding; a request carrying an Origin must come from that same
 * origin, which defeats cross-site requests from pages the user visits (pages on other ports of
 * 127.0.0.1 included).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { resolveApiLimits, type ApiLimits } from '../limits.js';
import type { AddressInfo, Socket } from 'node:net';
// ws is imported when a server is created: the CLI shares this layer (client.ts) and never serves.
import type { WebSocket } from 'ws';
import { OnionpostError } from '../errors.js';
import type { Logger } from '../log.js';
import { createLogThrottle } from '../log-throttle.js';
import { ApiError, JSONRPC_CODES } from './errors.js';
import { openRpcDocument, validate, type MethodSpec } from './schema.js';
import {
  API_SUBPROTOCOL, SESSION_HEADER, SESSION_SUBPROTOCOL_PREFIX, createBrowserSessions, sessionCookieName, type SessionCheck,
} from './sessions.js';

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
  limits?: Partial<ApiLimits>;
  clock?: Clock;
}

export interface ApiServer {
  readonly port: number;
  readonly url: string;
  /** A fresh single-use sign-in link for a browser (what `onionpost ui` prints). */
  loginLink(): { url: string; expiresAt: number };
  /** Ends every browser session (their open WebSockets too); returns how many ended. */
  revokeSessions(): number;
  close(): Promise<void>;
}

/** Methods the server answers itself; the node supplies handlers for the rest. */
const BUILT_IN = new Set(['rpc.discover', 'events.subscribe', 'sessions.loginLink', 'sessions.revokeAll']);

/** On a WebSocket: (re)subscribes it to events of these types (all when undefined). */
type Subscribe = (types: string[] | undefined) => unknown;

/** Who a request authenticated as. */
type Caller = { via: 'token' } | { via: 'session'; cookieSecret: string; pageSecret: string };

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
    if (k === name) return v.join('=');
  }
  return undefined;
}

/** The page secret: the X-Onionpost-Session header, or on a WebSocket upgrade the subprotocol. */
function pageSecretOf(req: IncomingMessage): string | undefined {
  const h = req.headers[SESSION_HEADER];
  if (typeof h === 'string') return h;
  const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return protocols.find((p) => p.startsWith(SESSION_SUBPROTOCOL_PREFIX))?.slice(SESSION_SUBPROTOCOL_PREFIX.length);
}

export async function createApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.logger;
  const limits = resolveApiLimits(opts.limits);
  const maxBody = limits.maxBodyBytes;
  const clock = opts.clock ?? systemClock;
  const sessions = createBrowserSessions({ clock, limits });
  // Refused requests are counted, not logged one by one: a local process could otherwise flood the log.
  const refusals = createLogThrottle({ logger: log });
  const specs = new Map(opts.methods.map((m) => [m.name, m]));
  const doc = openRpcDocument(opts.methods, opts.info ?? { title: 'onionpost', version: '0.1.0' });
  let port = 0;

  for (const m of opts.methods) if (!opts.handlers[m.name] && !BUILT_IN.has(m.name)) throw new Error(`no handler for API method ${m.name}`);
  let cookieName = '';

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

  /** The caller, or why there is none: 'absent' (no credential) or 'ended' (a dead session cookie). */
  function authenticate(req: IncomingMessage): Caller | Exclude<SessionCheck, 'ok'> {
    const h = req.headers.authorization;
    if (h !== undefined) return h.startsWith('Bearer ') && tokenMatches(h.slice(7), opts.token) ? { via: 'token' } : 'absent';
    const cookieSecret = cookieValue(req, cookieName);
    const pageSecret = pageSecretOf(req);
    const check = sessions.check(cookieSecret, pageSecret);
    return check === 'ok' ? { via: 'session', cookieSecret: cookieSecret!, pageSecret: pageSecret! } : check;
  }

  function refusal(why: 'absent' | 'ended'): ApiError {
    return why === 'ended'
      ? new ApiError('SESSION_ENDED', 'this browser session has ended (expired, signed out, or the node restarted); run `onionpost ui` for a new sign-in link')
      : new ApiError('UNAUTHORIZED', 'missing or wrong API token');
  }

  function loginLink(): { url: string; expiresAt: number } {
    const { code, expiresAt } = sessions.newLoginCode();
    return { url: `http://127.0.0.1:${port}/login?code=${code}`, expiresAt };
  }

  function revokeSessions(): number {
    const n = sessions.revokeAll();
    for (const [ws, caller] of sockets) if (caller.via === 'session') ws.close(4001, 'session ended');
    return n;
  }

  function errorObject(err: unknown): { code: number; message: string; data: { code: string } } {
    if (err instanceof ApiError) return { code: JSONRPC_CODES[err.code], message: err.message, data: { code: err.code } };
    if (err instanceof OnionpostError) return { code: -32000, message: err.message, data: { code: err.code } };
    log.error({ err }, 'API handler failed unexpectedly');
    return { code: JSONRPC_CODES.INTERNAL, message: 'internal error', data: { code: 'INTERNAL' } };
  }

  /** The answers of one HTTP request or WebSocket message share this many bytes (ApiLimits.maxAnswerBytes). */
  interface AnswerBudget {
    left: number;
    /** Set once an answer did not fit: later calls of the batch are not run. */
    spent: boolean;
  }

  const answer = (id: unknown, error: unknown) => JSON.stringify({ jsonrpc: '2.0', id, error: errorObject(error) });

  /**
   * Runs one call and returns its answer as JSON text, or null for a notification. Everything about
   * the request is checked before any work: its shape, the method, the credential's right to it, and
   * the params against the method's schema (own properties only, see schema.ts).
   */
  async function call(req: unknown, caller: Caller, budget: AnswerBudget, subscribe?: Subscribe): Promise<string | null> {
    const r = req as Partial<RpcRequest> | null;
    const hasId = r !== null && typeof r === 'object' && !Array.isArray(r) && Object.hasOwn(r, 'id');
    const rawId = hasId ? r.id : null;
    const id = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
    try {
      if (!r || typeof r !== 'object' || Array.isArray(r) || r.jsonrpc !== '2.0' || typeof r.method !== 'string' || id !== rawId) {
        throw new ApiError('INVALID_REQUEST', 'not a JSON-RPC 2.0 request');
      }
      const spec = specs.get(r.method);
      const handler = Object.hasOwn(opts.handlers, r.method) ? opts.handlers[r.method] : undefined;
      if (!spec || (spec.wsOnly && !subscribe) || (!handler && !BUILT_IN.has(r.method))) throw new ApiError('METHOD_NOT_FOUND', `no method ${r.method.slice(0, 64)}`);
      if (spec.tokenOnly && caller.via !== 'token') throw new ApiError('TOKEN_ONLY', `${r.method} needs the API token (the CLI), not a browser session`);
      const params = (r.params ?? {}) as Record<string, unknown>;
      const problems = validate(spec.params, params);
      if (problems.length > 0) throw new ApiError('INVALID_PARAMS', problems.slice(0, 8).join('; '));
      if (budget.spent) throw new ApiError('ANSWER_TOO_LARGE', 'not run: earlier answers of this batch used up the answer size limit');
      let result: unknown;
      if (r.method === 'rpc.discover') result = doc;
      else if (r.method === 'sessions.loginLink') result = loginLink();
      else if (r.method === 'sessions.revokeAll') result = { revoked: revokeSessions() };
      else if (r.method === 'events.subscribe') result = subscribe!(params.types as string[] | undefined);
      else result = await handler!(params);
      if (!hasId) return null;
      const text = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${JSON.stringify(result ?? null)}}`;
      const bytes = Buffer.byteLength(text);
      if (bytes > budget.left) {
        budget.spent = true;
        throw new ApiError('ANSWER_TOO_LARGE', `the answer would be over ${limits.maxAnswerBytes} bytes; ask for less (a smaller limit, fewer calls per batch)`);
      }
      budget.left -= bytes;
      return text;
    } catch (err) {
      // A notification gets no answer, not even an error, unless it was no valid request at all.
      return hasId || (err instanceof ApiError && err.code === 'INVALID_REQUEST') ? answer(id, err) : null;
    }
  }

  /**
   * One request or a batch, as JSON text (null when nothing is to be answered). A batch runs its
   * calls one after another, so the answer is built within its budget and no more than one result
   * is held unserialized at a time.
   */
  async function dispatch(body: unknown, caller: Caller, subscribe?: Subscribe): Promise<string | null> {
    const budget: AnswerBudget = { left: limits.maxAnswerBytes, spent: false };
    if (!Array.isArray(body)) return call(body, caller, budget, subscribe);
    if (body.length === 0) return answer(null, new ApiError('INVALID_REQUEST', 'empty batch'));
    if (body.length > limits.maxBatch) return answer(null, new ApiError('BATCH_TOO_LARGE', `a batch holds at most ${limits.maxBatch} calls`));
    const out: string[] = [];
    for (const r of body) {
      const a = await call(r, caller, budget, subscribe);
      if (a !== null) out.push(a);
    }
    return out.length ? `[${out.join(',')}]` : null;
  }

  /** Answers with `body` as JSON (a string is sent as it is: already JSON). */
  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === null ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    if (draining) res.shouldKeepAlive = false;
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
    if (url.pathname === '/session') return onSession(req, res);
    if (url.pathname === '/rpc' || url.pathname === '/openrpc.json') {
      const caller = authenticate(req);
      if (typeof caller === 'string') {
        refusals.warn('unauthorized', {}, 'API request refused: missing or wrong credential');
        return send(res, 401, { jsonrpc: '2.0', id: null, error: errorObject(refusal(caller)) });
      }
      if (url.pathname === '/openrpc.json') return send(res, 200, doc);
      if (req.method !== 'POST') return send(res, 405, { error: 'POST only' }, { allow: 'POST' });
      const body = await readJson(req, res, maxBody);
      if (body === NO_BODY) return;
      const out = await dispatch(body, caller);
      return out === null ? send(res, 204, null) : send(res, 200, out);
    }
    if (opts.web && (await opts.web(req, res))) return;
    send(res, 404, { error: 'not found' });
  }

  const NO_BODY = Symbol('answered');

  /** Reads a JSON body of at most `max` bytes; on any problem answers the request itself and returns NO_BODY. */
  async function readJson(req: IncomingMessage, res: ServerResponse, max: number): Promise<unknown> {
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      send(res, 415, { error: 'content-type must be application/json' });
      return NO_BODY;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > max) {
        refusals.warn('body-too-large', { max }, 'API request refused: body too large');
        send(res, 413, { jsonrpc: '2.0', id: null, error: errorObject(new ApiError('BODY_TOO_LARGE', `request body over ${max} bytes`)) }, { connection: 'close' });
        return NO_BODY;
      }
      chunks.push(c as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch {
      send(res, 200, { jsonrpc: '2.0', id: null, error: errorObject(new ApiError('PARSE_ERROR', 'body is not JSON')) });
      return NO_BODY;
    }
  }

  const sessionCookie = (value: string, maxAgeS: number) =>
    `${cookieName}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeS}`;

  /** POST /session {code} signs a browser in; DELETE /session signs it out. */
  async function onSession(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'DELETE') {
      const caller = authenticate(req);
      const signedOut = typeof caller === 'object' && caller.via === 'session' && sessions.revoke(caller.cookieSecret);
      if (signedOut) for (const [ws, c] of sockets) if (c.via === 'session' && c.cookieSecret === caller.cookieSecret) ws.close(4001, 'signed out');
      // The cookie is cleared either way, so a browser can always get rid of a dead one.
      return send(res, 200, { signedOut }, { 'set-cookie': sessionCookie('', 0) });
    }
    if (req.method !== 'POST') return send(res, 405, { error: 'POST or DELETE only' }, { allow: 'POST, DELETE' });
    const body = await readJson(req, res, 1024);
    if (body === NO_BODY) return;
    const code = (body as { code?: unknown } | null)?.code;
    try {
      if (typeof code !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(code)) throw new ApiError('LOGIN_CODE_UNKNOWN', 'this login link is not valid for this node');
      const s = sessions.redeem(code);
      send(res, 200, { pageSecret: s.pageSecret, expiresAt: s.expiresAt }, {
        'set-cookie': sessionCookie(s.cookieSecret, Math.floor(limits.sessionMaxAgeMs / 1000)),
      });
    } catch (err) {
      refusals.warn('login-refused', {}, 'browser sign-in refused: wrong, used or expired login code');
      send(res, 401, { error: errorObject(err) });
    }
  }

  /** Requests (HTTP) and messages (WebSocket) being answered; close() lets them finish. */
  const inflight = new Set<Promise<unknown>>();
  let draining = false;
  function track(p: Promise<unknown>): void {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
  const shuttingDown = () => new ApiError('SHUTTING_DOWN', 'the node is stopping');

  const server: Server = createServer((req, res) => {
    if (draining) {
      // A keep-alive connection's next request after close() began: not started, so safe to retry.
      res.shouldKeepAlive = false;
      return send(res, 503, { jsonrpc: '2.0', id: null, error: errorObject(shuttingDown()) }, { 'retry-after': '1' });
    }
    track(onRequest(req, res).catch((err) => {
      log.error({ err }, 'API request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    }));
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  server.maxConnections = limits.maxConnections;

  const { WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({
    noServer: true, maxPayload: maxBody, perMessageDeflate: false,
    // A browser offers `onionpost` plus its page secret as subprotocols; only `onionpost` is echoed.
    handleProtocols: (protocols) => (protocols.has(API_SUBPROTOCOL) ? API_SUBPROTOCOL : false),
  });
  /** Open sockets and who opened them (a session's sockets close when it ends). */
  const sockets = new Map<WebSocket, Caller>();
  server.on('upgrade', (req, socket: Socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const bad = checkOrigin(req);
    const caller = bad || url.pathname !== '/ws' ? undefined : authenticate(req);
    const status = bad ? 403 : url.pathname !== '/ws' ? 404 : typeof caller !== 'object' ? 401 : 0;
    if (status) {
      if (status !== 404) refusals.warn(status === 403 ? 'forbidden-host' : 'unauthorized', {}, 'API WebSocket refused');
      socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws, caller as Caller));
  });

  /** A socket's session is re-checked at every message and push: it may have expired or been revoked. */
  function stillValid(caller: Caller, touch: boolean): boolean {
    return caller.via === 'token' || sessions.check(caller.cookieSecret, caller.pageSecret, { touch }) === 'ok';
  }

  function onSocket(ws: WebSocket, caller: Caller): void {
    sockets.set(ws, caller);
    let unsubscribe: (() => void) | undefined;
    ws.on('error', (err) => log.debug({ err }, 'API websocket error'));
    ws.on('close', () => {
      sockets.delete(ws);
      unsubscribe?.();
    });
    /**
     * Sends unless the client has stopped reading: a socket whose unread answers and events pass
     * the answer size limit is cut, or a client that never reads would grow the node without bound.
     */
    const push = (text: string) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > limits.maxAnswerBytes) {
        refusals.warn('ws-slow-reader', { buffered: ws.bufferedAmount }, 'API WebSocket cut: its client does not read what it asked for');
        return ws.terminate();
      }
      ws.send(text);
    };
    const subscribe = (types: string[] | undefined) => {
      unsubscribe?.();
      unsubscribe = opts.events?.subscribe((ev) => {
        if ((types && !types.includes(ev.type)) || ws.readyState !== ws.OPEN) return;
        if (!stillValid(caller, false)) return ws.close(4001, 'session ended');
        push(JSON.stringify({ jsonrpc: '2.0', method: 'event', params: ev }));
      });
      return { subscribed: types ?? 'all' };
    };
    ws.on('message', (data, isBinary) => {
      if (isBinary) return ws.close(1003, 'text only');
      if (!stillValid(caller, true)) return ws.close(4001, 'session ended');
      let req: unknown;
      try {
        req = JSON.parse(data.toString());
      } catch {
        return push(answer(null, new ApiError('PARSE_ERROR', 'not JSON')));
      }
      if (draining) return push(answer(null, shuttingDown()));
      track(dispatch(req, caller, subscribe).then((out) => {
        if (out !== null) push(out);
      }));
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
  cookieName = sessionCookieName(port);

  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    loginLink,
    revokeSessions,
    /**
     * Graceful: stops listening and starting new requests (SHUTTING_DOWN, 503), lets the requests
     * already running finish and send their answers for up to `drainTimeoutMs` (so a send that
     * committed is answered, not cut), then closes every connection. Idempotent.
     */
    close() {
      closing ??= (async () => {
        draining = true;
        const listening = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (inflight.size > 0) {
          let timer: TimerHandle | undefined;
          await Promise.race([
            Promise.allSettled([...inflight]),
            new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, limits.drainTimeoutMs))),
          ]);
          if (timer !== undefined) clock.clearTimeout(timer);
          if (inflight.size > 0) log.warn({ requests: inflight.size }, 'API requests still running after the drain deadline; cutting them');
        }
        refusals.close();
        for (const ws of sockets.keys()) ws.terminate();
        wss.close();
        server.closeAllConnections();
        await listening;
      })();
      return closing;
    },
  };
}
