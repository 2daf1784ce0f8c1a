/**
 * The outbound side: a WebSocket client, usually through Tor's SOCKS port via an `http.Agent`
 * (src/tor/ supplies one per destination, so each peer gets its own circuit). The whole dial — the
 * agent's connect (SOCKS, circuit build, onion rendezvous) plus the HTTP upgrade — runs under one
 * deadline and one AbortSignal.
 */
import type { Agent } from 'node:http';
import { WebSocket } from 'ws';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { resolveLimits, type Limits } from '../limits.js';
import type { MessageChannel } from './channel.js';
import { TransportError } from './errors.js';
import { WsChannel } from './ws-channel.js';

export interface DialWsOptions {
  /** `ws://<onion>.onion/` (or `ws://127.0.0.1:<port>/` in tests). */
  url: string;
  /** Carries the TCP connection (Tor's SOCKS agent). Without it: a direct TCP connection. */
  agent?: Agent;
  signal?: AbortSignal;
  /** Deadline for connect + upgrade, ms. Default 30000 (onion rendezvous can take tens of seconds). */
  timeoutMs?: number;
  limits?: Partial<Limits>;
  /** Extra request headers. Anything added here is visible to the peer: keep it free of identifying data. */
  headers?: Record<string, string>;
  clock?: Clock;
  closeTimeoutMs?: number;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 30_000;

/**
 * Opens a channel or rejects with TransportError: DIAL_TIMEOUT, DIAL_ABORTED (cause: the signal's
 * reason), DIAL_REJECTED (`status`: the HTTP status, 503 = server full), DIAL_FAILED (cause: the
 * agent's or socket's error object, unchanged, so a typed SOCKS error can be inspected).
 */
export function dialWs(opts: DialWsOptions): Promise<MessageChannel> {
  const limits = resolveLimits(opts.limits);
  const clock = opts.clock ?? systemClock;
  const signal = opts.signal;
  if (signal?.aborted) return Promise.reject(new TransportError('DIAL_ABORTED', 'dial aborted', { cause: signal.reason }));

  return new Promise<MessageChannel>((resolve, reject) => {
    let ws: WebSocket;
    try {
      ws = new WebSocket(opts.url, {
        agent: opts.agent,
        maxPayload: limits.maxFrame,
        perMessageDeflate: false,
        followRedirects: false,
        headers: opts.headers,
      });
    } catch (err) {
      reject(new TransportError('DIAL_FAILED', `cannot dial ${opts.url}`, { cause: err }));
      return;
    }
    let settled = false;
    let timer: TimerHandle | undefined;

    const cleanup = () => {
      settled = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ws.off('open', onOpen);
      ws.off('error', onError);
      ws.off('unexpected-response', onResponse);
    };
    const fail = (err: TransportError) => {
      if (settled) return;
      cleanup();
      // Errors from tearing down a failed handshake have nothing left to report: the dial already
      // rejected with the cause. The listener exists so they cannot crash the process.
      ws.on('error', () => {});
      ws.terminate();
      reject(err);
    };
    const onOpen = () => {
      if (settled) return;
      cleanup();
      resolve(new WsChannel(ws, { remote: opts.url, maxFrame: limits.maxFrame, clock, closeTimeoutMs: opts.closeTimeoutMs }));
    };
    const onError = (err: Error) => fail(new TransportError('DIAL_FAILED', `dial ${opts.url} failed: ${err.message}`, { cause: err }));
    const onResponse = (_req: unknown, res: { statusCode?: number }) => {
      const status = res.statusCode ?? 0;
      fail(new TransportError('DIAL_REJECTED', `${opts.url} answered the upgrade with HTTP ${status}`, { status }));
    };
    const onAbort = () => fail(new TransportError('DIAL_ABORTED', 'dial aborted', { cause: signal?.reason }));

    ws.on('open', onOpen);
    ws.on('error', onError);
    ws.on('unexpected-response', onResponse);
    signal?.addEventListener('abort', onAbort, { once: true });
    timer = clock.setTimeout(() => {
      timer = undefined;
      fail(new TransportError('DIAL_TIMEOUT', `dial ${opts.url} timed out after ${opts.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS} ms`));
    }, opts.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS);
  });
}
