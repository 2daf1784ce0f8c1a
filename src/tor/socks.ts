/**
 * A small SOCKS5 client (RFC 1928, RFC 1929) that keeps Tor's reply byte, including Tor's extended
 * onion-service codes 0xF0–0xF7 (SocksPort … ExtendedErrors), so callers can tell "not published
 * yet" from "needs client auth" from "peer down". The hostname always goes to Tor (ATYP 3): we never
 * resolve names locally.
 *
 * Handshake, client → tor / tor → client:
 *
 *   05 01 <method>                       method 00 (no auth) or 02 (username/password, for isolation)
 *   05 <method>
 *   [01 <ulen> <user> <plen> <pass>]     only with method 02; tor's IsolateSOCKSAuth gives every
 *   [01 00]                              distinct user/pass pair its own circuits
 *   05 01 00 03 <len> <host> <port:2>    CONNECT to a domain name
 *   05 <rep> 00 <atyp> <addr> <port:2>   rep 00 = connected; anything else is a SocksError
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { OnionpostError } from '../errors.js';

export type SocksErrorCode =
  | 'GENERAL_FAILURE' // 0x01 (for an onion: descriptor cached but service gone)
  | 'NOT_ALLOWED' // 0x02
  | 'NETWORK_UNREACHABLE' // 0x03
  | 'HOST_UNREACHABLE' // 0x04
  | 'CONNECTION_REFUSED' // 0x05
  | 'TTL_EXPIRED' // 0x06 (tor: circuit or stream timed out)
  | 'COMMAND_NOT_SUPPORTED' // 0x07
  | 'ADDRESS_TYPE_NOT_SUPPORTED' // 0x08
  | 'ONION_DESC_NOT_FOUND' // 0xF0 not published (yet), or offline long enough for the descriptor to lapse
  | 'ONION_DESC_INVALID' // 0xF1
  | 'ONION_INTRO_FAILED' // 0xF2
  | 'ONION_REND_FAILED' // 0xF3
  | 'ONION_CLIENT_AUTH_MISSING' // 0xF4
  | 'ONION_CLIENT_AUTH_BAD' // 0xF5
  | 'ONION_BAD_ADDRESS' // 0xF6
  | 'ONION_INTRO_TIMEOUT' // 0xF7
  | 'UNKNOWN_REPLY' // a reply byte not listed here
  | 'PROXY_UNREACHABLE' // tor's SOCKS port refused the TCP connection
  | 'PROXY_PROTOCOL' // the proxy broke the SOCKS5 protocol, refused our auth method, or closed mid-handshake
  | 'TIMEOUT' // the whole dial exceeded timeoutMs
  | 'ABORTED'; // the caller's AbortSignal fired

/**
 * When a retry could help: 'soon' (seconds: a transient circuit failure or tor restarting), 'later'
 * (the peer looks offline: back off), 'never' (the address, auth or request is wrong).
 */
export type SocksRetry = 'soon' | 'later' | 'never';

const REPLIES: Record<number, [SocksErrorCode, SocksRetry, string]> = {
  0x01: ['GENERAL_FAILURE', 'later', 'general failure (for an onion: the service is gone)'],
  0x02: ['NOT_ALLOWED', 'never', 'connection not allowed by ruleset'],
  0x03: ['NETWORK_UNREACHABLE', 'later', 'network unreachable'],
  0x04: ['HOST_UNREACHABLE', 'later', 'host unreachable'],
  0x05: ['CONNECTION_REFUSED', 'later', 'connection refused'],
  0x06: ['TTL_EXPIRED', 'soon', 'TTL expired (circuit or stream timed out)'],
  0x07: ['COMMAND_NOT_SUPPORTED', 'never', 'command not supported'],
  0x08: ['ADDRESS_TYPE_NOT_SUPPORTED', 'never', 'address type not supported'],
  0xf0: ['ONION_DESC_NOT_FOUND', 'later', 'onion service descriptor not found (not published, or offline)'],
  0xf1: ['ONION_DESC_INVALID', 'later', 'onion service descriptor is invalid'],
  0xf2: ['ONION_INTRO_FAILED', 'soon', 'onion service introduction failed'],
  0xf3: ['ONION_REND_FAILED', 'soon', 'onion service rendezvous failed'],
  0xf4: ['ONION_CLIENT_AUTH_MISSING', 'never', 'onion service requires client authorization'],
  0xf5: ['ONION_CLIENT_AUTH_BAD', 'never', 'onion service client authorization was rejected'],
  0xf6: ['ONION_BAD_ADDRESS', 'never', 'invalid onion address'],
  0xf7: ['ONION_INTRO_TIMEOUT', 'soon', 'onion service introduction timed out'],
};

export class SocksError extends OnionpostError<SocksErrorCode> {
  /** The SOCKS5 reply byte when the proxy answered, else undefined. */
  readonly replyCode: number | undefined;
  readonly retry: SocksRetry;
  constructor(code: SocksErrorCode, message: string, opts: { replyCode?: number; retry: SocksRetry; cause?: unknown }) {
    // The retry advice a dialer wrapping this error adopts (see OnionpostError.retryAdvice).
    super(code, message, { ...(opts.cause === undefined ? {} : { cause: opts.cause }), retryAdvice: { retryClass: opts.retry, code } });
    this.replyCode = opts.replyCode;
    this.retry = opts.retry;
  }
}

/** The SocksError a given SOCKS5 reply byte (non-zero) stands for. */
export function socksReplyError(rep: number, target: string): SocksError {
  const known = REPLIES[rep];
  const hex = '0x' + rep.toString(16).padStart(2, '0').toUpperCase();
  if (!known) return new SocksError('UNKNOWN_REPLY', `SOCKS dial to ${target} failed: unknown reply ${hex}`, { replyCode: rep, retry: 'later' });
  return new SocksError(known[0], `SOCKS dial to ${target} failed: ${known[2]} (${hex})`, { replyCode: rep, retry: known[1] });
}

export interface SocksConnectOptions {
  socksHost?: string;
  socksPort: number;
  /** Destination hostname (e.g. `<56 chars>.onion`), resolved by tor. */
  host: string;
  port: number;
  /**
   * Circuit isolation key: sent as the SOCKS username (password fixed), so with IsolateSOCKSAuth
   * each distinct key gets its own circuits. 1–255 bytes. Omit for no authentication.
   */
  isolation?: string;
  signal?: AbortSignal;
  /** Deadline for TCP connect + handshake + tor's circuit building, ms. Default 60 000. */
  timeoutMs?: number;
}

const ISOLATION_PASSWORD = 'onionpost';

/** Opens a TCP stream to host:port through tor's SOCKS port. Rejects with SocksError only. */
export function socksConnect(opts: SocksConnectOptions): Promise<net.Socket> {
  const target = `${opts.host}:${opts.port}`;
  const hostBytes = Buffer.from(opts.host, 'utf8');
  const user = opts.isolation === undefined ? null : Buffer.from(opts.isolation, 'utf8');
  if (hostBytes.length < 1 || hostBytes.length > 255) {
    return Promise.reject(new SocksError('ADDRESS_TYPE_NOT_SUPPORTED', `hostname must be 1–255 bytes`, { retry: 'never' }));
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    return Promise.reject(new SocksError('ADDRESS_TYPE_NOT_SUPPORTED', `bad port ${opts.port}`, { retry: 'never' }));
  }
  if (user && (user.length < 1 || user.length > 255)) {
    return Promise.reject(new SocksError('PROXY_PROTOCOL', 'isolation key must be 1–255 bytes', { retry: 'never' }));
  }
  if (opts.signal?.aborted) return Promise.reject(new SocksError('ABORTED', `SOCKS dial to ${target} aborted`, { retry: 'soon' }));
  const timeoutMs = opts.timeoutMs ?? 60_000;

  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: opts.socksHost ?? '127.0.0.1', port: opts.socksPort });
    let buf: Buffer = Buffer.alloc(0);
    let stage: 'method' | 'auth' | 'reply' = 'method';
    let connected = false;
    let settled = false;

    const finish = (err: SocksError | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('connect', onConnect);
      if (err) {
        socket.destroy();
        reject(err);
        return;
      }
      // Bytes after tor's reply belong to the caller. With the 'readable' listener gone the stream is
      // neither flowing nor paused, so the caller's first 'data' listener receives them.
      if (buf.length) socket.unshift(buf);
      resolve(socket);
    };
    const onAbort = () => finish(new SocksError('ABORTED', `SOCKS dial to ${target} aborted`, { retry: 'soon' }));
    const onError = (err: Error) =>
      finish(
        connected
          ? new SocksError('PROXY_PROTOCOL', `SOCKS connection to tor broke: ${err.message}`, { retry: 'soon', cause: err })
          : new SocksError('PROXY_UNREACHABLE', `cannot reach tor's SOCKS port ${opts.socksPort}: ${err.message}`, { retry: 'soon', cause: err }),
      );
    const onClose = () => finish(new SocksError('PROXY_PROTOCOL', `tor closed the SOCKS connection during the handshake`, { retry: 'soon' }));
    const onConnect = () => {
      connected = true;
      socket.write(Buffer.from([0x05, 0x01, user ? 0x02 : 0x00]));
    };
    // 'readable' rather than 'data': a 'data' listener would switch the socket to flowing mode and
    // bytes unshifted after the handshake would be emitted to nobody.
    const onReadable = () => {
      let d: Buffer | null;
      while ((d = socket.read() as Buffer | null) !== null) buf = buf.length ? Buffer.concat([buf, d]) : d;
      try {
        step();
      } catch (err) {
        finish(err as SocksError);
      }
    };
    const take = (n: number): Buffer | null => {
      if (buf.length < n) return null;
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    };
    const protocol = (what: string) => new SocksError('PROXY_PROTOCOL', `SOCKS proxy ${what}`, { retry: 'later' });
    const step = (): void => {
      for (;;) {
        if (stage === 'method') {
          const m = take(2);
          if (!m) return;
          if (m[0] !== 0x05) throw protocol(`answered with version ${m[0]}`);
          if (m[1] !== (user ? 0x02 : 0x00)) throw protocol(`refused our authentication method (chose 0x${m[1]!.toString(16)})`);
          if (user) {
            const pass = Buffer.from(ISOLATION_PASSWORD);
            socket.write(Buffer.concat([Buffer.from([0x01, user.length]), user, Buffer.from([pass.length]), pass]));
            stage = 'auth';
          } else {
            sendConnect();
            stage = 'reply';
          }
        } else if (stage === 'auth') {
          const a = take(2);
          if (!a) return;
          if (a[1] !== 0x00) throw protocol('rejected our isolation username/password');
          sendConnect();
          stage = 'reply';
        } else {
          if (buf.length < 2) return;
          if (buf[0] !== 0x05) throw protocol(`replied with version ${buf[0]}`);
          const rep = buf[1]!;
          if (rep !== 0x00) throw socksReplyError(rep, target);
          if (buf.length < 5) return;
          const atyp = buf[3];
          const addrLen = atyp === 0x01 ? 4 : atyp === 0x04 ? 16 : atyp === 0x03 ? 1 + buf[4]! : -1;
          if (addrLen < 0) throw protocol(`replied with address type ${atyp}`);
          if (!take(4 + addrLen + 2)) return;
          finish(null);
          return;
        }
      }
    };
    const sendConnect = () => {
      const port = Buffer.alloc(2);
      port.writeUInt16BE(opts.port);
      socket.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00, 0x03, hostBytes.length]), hostBytes, port]));
    };
    const timer = setTimeout(
      () => finish(new SocksError('TIMEOUT', `SOCKS dial to ${target} timed out after ${timeoutMs} ms`, { retry: 'soon' })),
      timeoutMs,
    );
    socket.once('connect', onConnect);
    socket.on('readable', onReadable);
    socket.on('error', onError);
    socket.on('close', onClose);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface TorSocksAgentOptions extends http.AgentOptions {
  socksPort: number;
  socksHost?: string;
  /** This agent's circuit isolation key; default a fresh random one, so each agent gets its own circuits. */
  isolation?: string;
  /** Per-dial deadline, ms. Default 60 000. */
  connectTimeoutMs?: number;
}

/**
 * An http.Agent that dials through tor's SOCKS port with socksConnect, one isolation key per agent.
 * Works with `http.request({ agent })` and `new WebSocket(url, { agent })`. Dial failures surface as
 * the request's 'error' with the SocksError (code, replyCode, retry) intact.
 */
export class TorSocksAgent extends http.Agent {
  readonly socksPort: number;
  readonly socksHost: string;
  readonly isolation: string;
  readonly #timeoutMs: number;

  constructor(opts: TorSocksAgentOptions) {
    const { socksPort, socksHost, isolation, connectTimeoutMs, ...agentOpts } = opts;
    super(agentOpts);
    this.socksPort = socksPort;
    this.socksHost = socksHost ?? '127.0.0.1';
    this.isolation = isolation ?? randomBytes(16).toString('hex');
    this.#timeoutMs = connectTimeoutMs ?? 60_000;
  }

  // http.Agent calls this with (options, callback); returning undefined means "the callback will say".
  override createConnection(options: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): undefined {
    const host = options.hostname ?? options.host ?? 'localhost';
    const port = Number(options.port ?? 80);
    if (!cb) throw new TypeError('TorSocksAgent.createConnection needs a callback');
    const dial: SocksConnectOptions = { socksHost: this.socksHost, socksPort: this.socksPort, host, port, isolation: this.isolation, timeoutMs: this.#timeoutMs };
    if (options.signal) dial.signal = options.signal;
    socksConnect(dial).then((s) => cb(null, s), (err: Error) => cb(err, undefined as unknown as Duplex));
    return undefined;
  }
}
