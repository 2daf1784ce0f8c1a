// The node's JSON-RPC API, as the browser sees it: POST /rpc with the session's two halves (the
// HttpOnly cookie, which this code never sees, and the page secret header; see session.js), and /ws
// for pushed events. Nothing else is contacted. The API token never reaches the browser.
import { SECRET_SUBPROTOCOL_PREFIX, SUBPROTOCOL, pageSecret, sessionHeaders } from './session.js';

/** An API failure. `code` is the node's stable error code (UNAUTHORIZED, SESSION_ENDED, UNKNOWN_RECIPIENT, …). */
export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

let nextId = 1;

async function post(body) {
  let res;
  try {
    res = await fetch('/rpc', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', ...sessionHeaders() },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError('cannot reach the node (is it still running?)', 'OFFLINE', 0);
  }
  if (res.status === 401) {
    const out = await res.json().catch(() => null);
    throw new ApiError('not signed in', out?.error?.data?.code === 'SESSION_ENDED' ? 'SESSION_ENDED' : 'UNAUTHORIZED', 401);
  }
  if (res.status === 204) return null;
  const out = await res.json().catch(() => null);
  if (out === null) throw new ApiError(`the node answered HTTP ${res.status}`, 'HTTP', res.status);
  return out;
}

function unwrap(reply, status) {
  if (reply.error) throw new ApiError(reply.error.message, reply.error.data?.code ?? String(reply.error.code), status);
  return reply.result;
}

/** Calls one method; resolves with its result or throws ApiError. */
export async function rpc(method, params = {}) {
  const reply = await post({ jsonrpc: '2.0', id: nextId++, method, params });
  return unwrap(reply, 200);
}

/** Calls several methods in one request. Resolves with one entry per call: a result or an ApiError. */
export async function rpcBatch(calls) {
  if (calls.length === 0) return [];
  const ids = calls.map(() => nextId++);
  const replies = await post(calls.map(([method, params], i) => ({ jsonrpc: '2.0', id: ids[i], method, params: params ?? {} })));
  const byId = new Map((Array.isArray(replies) ? replies : [replies]).map((r) => [r.id, r]));
  return ids.map((id) => {
    const r = byId.get(id);
    if (!r) return new ApiError('no reply', 'INTERNAL', 200);
    try {
      return unwrap(r, 200);
    } catch (err) {
      return err;
    }
  });
}

/**
 * Keeps a WebSocket to /ws open and subscribed to every event, reconnecting with exponential
 * backoff (0.5 s doubling to 30 s, with jitter). Calls `onState('connecting'|'live'|'offline',
 * {reconnected})` and `onEvent(params)` for each pushed event. Returns `stop()`.
 */
export function connectLive({ onEvent, onState, minDelayMs = 500, maxDelayMs = 30_000 }) {
  let ws = null;
  let attempt = 0;
  let timer = null;
  let stopped = false;
  let everLive = false;

  function open() {
    onState('connecting', {});
    const secret = pageSecret();
    ws = new WebSocket(`ws://${location.host}/ws`, secret ? [SUBPROTOCOL, SECRET_SUBPROTOCOL_PREFIX + secret] : [SUBPROTOCOL]);
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 'sub', method: 'events.subscribe', params: {} }));
    });
    ws.addEventListener('message', (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      if (msg.id === 'sub' && msg.result) {
        attempt = 0;
        onState('live', { reconnected: everLive });
        everLive = true;
      } else if (msg.method === 'event' && msg.params && typeof msg.params.type === 'string') {
        onEvent(msg.params);
      }
    });
    ws.addEventListener('close', () => {
      ws = null;
      if (stopped) return;
      onState('offline', { attempt });
      const base = Math.min(maxDelayMs, minDelayMs * 2 ** attempt);
      attempt++;
      timer = setTimeout(open, base / 2 + Math.random() * (base / 2));
    });
  }

  open();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      ws?.close();
    },
  };
}
