/**
 * A typed client for Tor's control port (control-spec), layered as socket → ReplyParser → commands.
 *
 *   const control = await connectControl({ port, signal });
 *   await control.authenticate({ cookieFile });        // SAFECOOKIE, else COOKIE, else NULL
 *   await control.getInfo(['version']);                // Map { 'version' => '0.4.9.11' }
 *   control.on('bootstrap', (b) => …);                 // after addEvents(['STATUS_CLIENT'])
 *   await control.close();
 *
 * Commands are serialized: one is written only after the previous reply arrived (FIFO). A non-2xx
 * reply rejects with TorOperationError; a malformed reply with TorProtocolError (and the connection
 * is destroyed); a broken or closed socket rejects every pending and queued command with
 * TorSocketError. Asynchronous 650 events never resolve a command; they are emitted as 'event'
 * (every event), 'bootstrap' (STATUS_CLIENT … BOOTSTRAP) and 'hsDesc' (HS_DESC).
 *
 * Closing a connection that ran TAKEOWNERSHIP makes tor exit; a non-detached onion service added on
 * a connection is removed when that connection closes.
 */
import { EventEmitter } from 'node:events';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as net from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { TorError, TorOperationError, TorProtocolError, TorSocketError } from './errors.js';
import { ReplyParser, isEvent, parseArgs, parseGetInfo, type Reply, type ReplyLine } from './reply.js';

/** An asynchronous event: `type` is its first word (STATUS_CLIENT, HS_DESC, …), `text` the first line after it. */
export interface ControlEvent {
  type: string;
  text: string;
  lines: ReplyLine[];
}

/** Bootstrap state, from `STATUS_CLIENT … BOOTSTRAP …` events and `GETINFO status/bootstrap-phase`. */
export interface BootstrapStatus {
  /** 0–100. */
  progress: number;
  /** Tor's phase tag, e.g. `conn_done`, `done`. */
  tag: string;
  summary: string;
  /** Present when tor reports a problem (`WARNING=`), e.g. "Connection refused". */
  warning?: string;
}

/** One `HS_DESC` event (control-spec §4.1.25). For v3 services `address` is the ServiceID (no ".onion"). */
export interface HsDescEvent {
  action: 'REQUESTED' | 'UPLOAD' | 'RECEIVED' | 'UPLOADED' | 'IGNORE' | 'FAILED' | 'CREATED' | string;
  address: string;
  authType: string;
  hsDir: string;
  descriptorId?: string;
  reason?: string;
}

export interface AddOnionOptions {
  /** `ED25519-V3:` + base64 of the 64-byte expanded secret key (88 characters). Never logged. */
  keyBlob: string;
  /** Virtual port → local target (`127.0.0.1:<port>` or `unix:/path`). At least one. */
  ports: { virtPort: number; target: string }[];
  /** Enable the proof-of-work DoS defense (`PoWDefensesEnabled=1`, tor ≥ 0.4.9.2). */
  pow?: boolean;
  /** Maximum concurrent streams per rendezvous circuit (0 = unlimited). */
  maxStreams?: number;
  /** Close the circuit, not just the stream, when maxStreams is exceeded. */
  maxStreamsCloseCircuit?: boolean;
  /** Keep the service after this control connection closes (then only DEL_ONION removes it). */
  detach?: boolean;
}

export interface ControlConnectOptions {
  port: number;
  /** Always loopback; only here to make the assumption visible. */
  host?: '127.0.0.1';
  signal?: AbortSignal;
  /** Connect deadline, ms. Default 10 000. */
  timeoutMs?: number;
  /** A command without a reply for this long destroys the connection, ms. Default 60 000. */
  commandTimeoutMs?: number;
  logger?: Logger;
  /** Times the connect and command deadlines. Default systemClock. */
  clock?: Clock;
}

interface Pending {
  command: string;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

const SAFECOOKIE_SERVER = 'Tor safe cookie authentication server-to-controller hash';
const SAFECOOKIE_CLIENT = 'Tor safe cookie authentication controller-to-server hash';
const KEY_BLOB_RE = /^ED25519-V3:[A-Za-z0-9+/]{86}==$/;
const SERVICE_ID_RE = /^[a-z2-7]{56}$/;

/** SAFECOOKIE hashes (control-spec §3.24): HMAC-SHA256 keyed by the constant, over cookie ‖ clientNonce ‖ serverNonce. */
export function safeCookieHashes(cookie: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array): { serverHash: Buffer; clientHash: Buffer } {
  const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
  return {
    serverHash: createHmac('sha256', SAFECOOKIE_SERVER).update(msg).digest(),
    clientHash: createHmac('sha256', SAFECOOKIE_CLIENT).update(msg).digest(),
  };
}

/** Parses `[STATUS_CLIENT] NOTICE BOOTSTRAP PROGRESS=n TAG=t SUMMARY="…"`; null when it is not a bootstrap line. */
export function parseBootstrap(text: string): BootstrapStatus | null {
  const { positional, kv } = parseArgs(text);
  if (!positional.includes('BOOTSTRAP')) return null;
  const progress = Number(kv.get('PROGRESS'));
  if (!Number.isInteger(progress) || progress < 0 || progress > 100) return null;
  const out: BootstrapStatus = { progress, tag: kv.get('TAG') ?? '', summary: kv.get('SUMMARY') ?? '' };
  const warning = kv.get('WARNING');
  if (warning !== undefined) out.warning = warning;
  return out;
}

/** Parses the text of an `HS_DESC …` event line; null when it is not one. */
export function parseHsDesc(text: string): HsDescEvent | null {
  const { positional, kv } = parseArgs(text);
  if (positional[0] !== 'HS_DESC' || positional.length < 5) return null;
  const ev: HsDescEvent = { action: positional[1]!, address: positional[2]!, authType: positional[3]!, hsDir: positional[4]! };
  if (positional[5] !== undefined) ev.descriptorId = positional[5];
  const reason = kv.get('REASON');
  if (reason !== undefined) ev.reason = reason;
  return ev;
}

/** Quotes a value as a control-protocol QuotedString. */
export function quote(value: string): string {
  return '"' + value.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

function noNewlines(what: string, s: string): void {
  if (/[\r\n\0]/.test(s)) throw new TorError('BAD_ARGUMENT', `${what} contains a line break or NUL`);
}

export interface TorControlEvents {
  event: [ControlEvent];
  bootstrap: [BootstrapStatus];
  hsDesc: [HsDescEvent];
  /** The connection is gone; `error` is why when it was not our own close(). */
  close: [Error | undefined];
}

export class TorControl extends EventEmitter<TorControlEvents> {
  readonly #socket: net.Socket;
  readonly #parser = new ReplyParser();
  readonly #log: Logger;
  readonly #commandTimeoutMs: number;
  /** The command whose reply we await (at most one), then those not yet written. */
  #inflight: Pending | null = null;
  #queue: { line: string; p: Pending }[] = [];
  #events = new Set<string>();
  #closed: Error | null = null;
  #closePromise: Promise<void> | null = null;
  readonly #clock: Clock;
  #timer: TimerHandle | null = null;
  #closedPromise: Promise<void>;

  /** Use connectControl(). */
  constructor(socket: net.Socket, opts: { logger?: Logger; commandTimeoutMs?: number; clock?: Clock } = {}) {
    super();
    this.#socket = socket;
    this.#log = opts.logger ?? silentLogger();
    this.#commandTimeoutMs = opts.commandTimeoutMs ?? 60_000;
    this.#clock = opts.clock ?? systemClock;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', (err) => this.#fail(new TorSocketError('CONNECTION_CLOSED', `control connection failed: ${err.message}`, { cause: err })));
    this.#closedPromise = new Promise((resolve) => {
      socket.once('close', () => {
        this.#fail(new TorSocketError('CONNECTION_CLOSED', 'control connection closed'));
        resolve();
      });
    });
  }

  /** True once the connection is closed or broken; every command then rejects with TorSocketError. */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /**
   * Sends one command line (without CRLF) and resolves with its reply when the status is 2xx.
   * Rejects with TorOperationError (4xx/5xx), TorProtocolError or TorSocketError.
   */
  command(line: string): Promise<Reply> {
    try {
      noNewlines('command', line);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#closed) return Promise.reject(this.#closed);
    const name = line.split(' ', 1)[0] ?? line;
    return new Promise<Reply>((resolve, reject) => {
      this.#queue.push({ line, p: { command: name, resolve, reject } });
      this.#pump();
    });
  }

  /**
   * Authenticates using the best method tor offers: SAFECOOKIE (verifying tor's server hash, so a
   * process that is not tor learns nothing), else COOKIE, else NULL. `cookieFile` overrides the path
   * tor reports. Throws TorError AUTH_FAILED when no method is possible or tor's proof is wrong.
   */
  async authenticate(opts: { cookieFile?: string } = {}): Promise<void> {
    const info = await this.command('PROTOCOLINFO 1');
    let methods: string[] = [];
    let cookieFile = opts.cookieFile;
    for (const l of info.lines) {
      if (!l.text.startsWith('AUTH ')) continue;
      const { kv } = parseArgs(l.text.slice(5));
      methods = (kv.get('METHODS') ?? '').split(',').filter(Boolean);
      cookieFile ??= kv.get('COOKIEFILE');
    }
    if (methods.includes('SAFECOOKIE') && cookieFile) {
      const cookie = await readCookie(cookieFile);
      const clientNonce = randomBytes(32);
      const ch = await this.command(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString('hex')}`);
      const { positional, kv } = parseArgs(ch.lines[ch.lines.length - 1]!.text);
      const serverHashHex = kv.get('SERVERHASH') ?? '';
      const serverNonceHex = kv.get('SERVERNONCE') ?? '';
      if (positional[0] !== 'AUTHCHALLENGE' || !/^[0-9A-Fa-f]{64}$/.test(serverHashHex) || !/^[0-9A-Fa-f]+$/.test(serverNonceHex)) {
        throw new TorProtocolError('malformed AUTHCHALLENGE reply');
      }
      const { serverHash, clientHash } = safeCookieHashes(cookie, clientNonce, Buffer.from(serverNonceHex, 'hex'));
      if (!timingSafeEqual(serverHash, Buffer.from(serverHashHex, 'hex'))) {
        this.destroy();
        throw new TorError('AUTH_FAILED', 'tor\'s SAFECOOKIE server hash does not match our cookie (not our tor?)');
      }
      await this.#auth(`AUTHENTICATE ${clientHash.toString('hex')}`);
      return;
    }
    if (methods.includes('COOKIE') && cookieFile) {
      const cookie = await readCookie(cookieFile);
      await this.#auth(`AUTHENTICATE ${cookie.toString('hex')}`);
      return;
    }
    if (methods.includes('NULL')) {
      await this.#auth('AUTHENTICATE');
      return;
    }
    throw new TorError('AUTH_FAILED', `no usable control-port authentication method (tor offers ${methods.join(',') || 'none'})`);
  }

  async #auth(line: string): Promise<void> {
    try {
      await this.command(line);
    } catch (err) {
      if (err instanceof TorOperationError) throw new TorError('AUTH_FAILED', `tor rejected authentication: ${err.status} ${err.text}`, { cause: err });
      throw err;
    }
  }

  /** GETINFO for several keys; the map holds each key's value (data blocks included). */
  async getInfo(keys: readonly string[]): Promise<Map<string, string>> {
    for (const k of keys) if (!/^[A-Za-z0-9/_.:@-]+$/.test(k)) throw new TorError('BAD_ARGUMENT', `bad GETINFO key ${JSON.stringify(k)}`);
    return parseGetInfo(await this.command(`GETINFO ${keys.join(' ')}`));
  }

  /** Replaces the set of events this connection receives (SETEVENTS). */
  async setEvents(names: readonly string[]): Promise<void> {
    for (const n of names) if (!/^[A-Z_]+$/.test(n)) throw new TorError('BAD_ARGUMENT', `bad event name ${JSON.stringify(n)}`);
    await this.command(names.length ? `SETEVENTS ${names.join(' ')}` : 'SETEVENTS');
    this.#events = new Set(names);
  }

  /** Adds events to the current set (SETEVENTS with the union), so helpers do not clobber each other. */
  async addEvents(names: readonly string[]): Promise<void> {
    const next = new Set([...this.#events, ...names]);
    if (next.size !== this.#events.size) await this.setEvents([...next]);
  }

  /** SETCONF key=value …; an array value sets the option several times; null resets it to default. */
  async setConf(entries: Record<string, string | readonly string[] | null>): Promise<void> {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(entries)) {
      if (!/^[A-Za-z0-9_]+$/.test(k)) throw new TorError('BAD_ARGUMENT', `bad option name ${JSON.stringify(k)}`);
      if (v === null) parts.push(k);
      else for (const one of typeof v === 'string' ? [v] : v) {
        noNewlines(k, one);
        parts.push(`${k}=${quote(one)}`);
      }
    }
    if (parts.length) await this.command(`SETCONF ${parts.join(' ')}`);
  }

  /** RESETCONF: options back to their defaults. */
  async resetConf(keys: readonly string[]): Promise<void> {
    for (const k of keys) if (!/^[A-Za-z0-9_]+$/.test(k)) throw new TorError('BAD_ARGUMENT', `bad option name ${JSON.stringify(k)}`);
    if (keys.length) await this.command(`RESETCONF ${keys.join(' ')}`);
  }

  /** SIGNAL NEWNYM / RELOAD / SHUTDOWN / HALT / … */
  async signal(name: string): Promise<void> {
    if (!/^[A-Z]+$/.test(name)) throw new TorError('BAD_ARGUMENT', `bad signal ${JSON.stringify(name)}`);
    await this.command(`SIGNAL ${name}`);
  }

  /** TAKEOWNERSHIP: tor exits when this connection closes. */
  async takeOwnership(): Promise<void> {
    await this.command('TAKEOWNERSHIP');
  }

  /** ADD_ONION with our own ED25519-V3 key; resolves with the ServiceID (56 base32 chars, no ".onion"). */
  async addOnion(opts: AddOnionOptions): Promise<{ serviceId: string }> {
    if (!KEY_BLOB_RE.test(opts.keyBlob)) throw new TorError('BAD_ARGUMENT', 'keyBlob must be ED25519-V3: and 88 base64 characters (64-byte expanded key)');
    if (opts.ports.length === 0) throw new TorError('BAD_ARGUMENT', 'ADD_ONION needs at least one port');
    const parts = ['ADD_ONION', opts.keyBlob];
    const flags = ['DiscardPK'];
    if (opts.detach) flags.push('Detach');
    if (opts.maxStreamsCloseCircuit) flags.push('MaxStreamsCloseCircuit');
    parts.push(`Flags=${flags.join(',')}`);
    if (opts.maxStreams !== undefined) {
      if (!Number.isInteger(opts.maxStreams) || opts.maxStreams < 0 || opts.maxStreams > 65535) throw new TorError('BAD_ARGUMENT', 'maxStreams must be 0..65535');
      parts.push(`MaxStreams=${opts.maxStreams}`);
    }
    if (opts.pow) parts.push('PoWDefensesEnabled=1');
    for (const p of opts.ports) {
      if (!Number.isInteger(p.virtPort) || p.virtPort < 1 || p.virtPort > 65535) throw new TorError('BAD_ARGUMENT', `bad virtual port ${p.virtPort}`);
      if (!/^(127\.0\.0\.1:[0-9]{1,5}|unix:\/[^\s,]+)$/.test(p.target)) throw new TorError('BAD_ARGUMENT', `onion target must be 127.0.0.1:<port> or unix:/path, got ${JSON.stringify(p.target)}`);
      parts.push(`Port=${p.virtPort},${p.target}`);
    }
    const reply = await this.command(parts.join(' '));
    for (const l of reply.lines) {
      if (l.text.startsWith('ServiceID=')) {
        const serviceId = l.text.slice('ServiceID='.length);
        if (!SERVICE_ID_RE.test(serviceId)) throw new TorProtocolError(`ADD_ONION returned a malformed ServiceID`);
        return { serviceId };
      }
    }
    throw new TorProtocolError('ADD_ONION reply without ServiceID');
  }

  /** DEL_ONION: removes a service this connection added (or a detached one). */
  async delOnion(serviceId: string): Promise<void> {
    if (!SERVICE_ID_RE.test(serviceId)) throw new TorError('BAD_ARGUMENT', 'serviceId must be 56 base32 characters without ".onion"');
    await this.command(`DEL_ONION ${serviceId}`);
  }

  /** Closes the connection (pending commands reject with TorSocketError). Same promise on every call. */
  close(): Promise<void> {
    if (!this.#closePromise) {
      this.#closePromise = (async () => {
        if (!this.#closed) this.#fail(new TorSocketError('CONNECTION_CLOSED', 'control connection closed by us'), true);
        this.#socket.end();
        const t = this.#clock.setTimeout(() => this.#socket.destroy(), 1000);
        await this.#closedPromise;
        this.#clock.clearTimeout(t);
      })();
    }
    return this.#closePromise;
  }

  /** Drops the connection at once. */
  destroy(err?: Error): void {
    this.#fail(err ?? new TorSocketError('CONNECTION_CLOSED', 'control connection destroyed'), true);
    this.#socket.destroy();
  }

  #pump(): void {
    if (this.#inflight || this.#closed) return;
    const next = this.#queue.shift();
    if (!next) return;
    this.#inflight = next.p;
    this.#socket.write(next.line + '\r\n');
    this.#timer = this.#clock.setTimeout(() => {
      this.destroy(new TorSocketError('CONNECTION_CLOSED', `no reply to ${next.p.command} within ${this.#commandTimeoutMs} ms`));
    }, this.#commandTimeoutMs);
  }

  #onData(d: Buffer): void {
    let replies: Reply[];
    try {
      replies = this.#parser.feed(d);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    for (const r of replies) {
      if (isEvent(r)) {
        this.#emitEvent(r);
        continue;
      }
      const p = this.#inflight;
      if (!p) {
        this.destroy(new TorProtocolError(`unsolicited reply ${r.status}`));
        return;
      }
      this.#inflight = null;
      if (this.#timer) this.#clock.clearTimeout(this.#timer);
      this.#timer = null;
      if (r.status >= 200 && r.status < 300) p.resolve(r);
      else p.reject(new TorOperationError(p.command, r.status, r.lines[r.lines.length - 1]!.text));
      this.#pump();
    }
  }

  #emitEvent(r: Reply): void {
    const first = r.lines[0]!;
    const sp = first.text.indexOf(' ');
    const ev: ControlEvent = { type: sp < 0 ? first.text : first.text.slice(0, sp), text: sp < 0 ? '' : first.text.slice(sp + 1), lines: r.lines };
    this.emit('event', ev);
    try {
      if (ev.type === 'STATUS_CLIENT') {
        const b = parseBootstrap(ev.text);
        if (b) this.emit('bootstrap', b);
      } else if (ev.type === 'HS_DESC') {
        const h = parseHsDesc(first.text);
        if (h) this.emit('hsDesc', h);
      }
    } catch (err) {
      this.#log.warn({ err, type: ev.type }, 'unparsable tor event');
    }
  }

  #fail(err: Error, ours = false): void {
    if (this.#closed) return;
    this.#closed = err;
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    const pending = [...(this.#inflight ? [this.#inflight] : []), ...this.#queue.map((q) => q.p)];
    this.#inflight = null;
    this.#queue = [];
    for (const p of pending) p.reject(err);
    if (!ours) this.#log.debug({ err: err.message }, 'control connection ended');
    this.emit('close', ours && err instanceof TorSocketError ? undefined : err);
  }
}

async function readCookie(path: string): Promise<Buffer> {
  let cookie: Buffer;
  try {
    cookie = await readFile(path);
  } catch (err) {
    throw new TorError('AUTH_FAILED', `cannot read tor's control cookie at ${path}`, { cause: err });
  }
  if (cookie.length !== 32) throw new TorError('AUTH_FAILED', `tor's control cookie at ${path} is ${cookie.length} bytes, expected 32`);
  return cookie;
}

/** Connects to tor's control port on 127.0.0.1 within a deadline. Authenticate next. */
export function connectControl(opts: ControlConnectOptions): Promise<TorControl> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const clock = opts.clock ?? systemClock;
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new TorSocketError('ABORTED', 'aborted before connecting to tor'));
      return;
    }
    const socket = net.connect({ host: '127.0.0.1', port: opts.port });
    const done = (err: Error | null) => {
      clock.clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        const ctlOpts: { logger?: Logger; commandTimeoutMs?: number; clock: Clock } = { clock };
        if (opts.logger) ctlOpts.logger = opts.logger;
        if (opts.commandTimeoutMs !== undefined) ctlOpts.commandTimeoutMs = opts.commandTimeoutMs;
        resolve(new TorControl(socket, ctlOpts));
      }
    };
    const onError = (err: Error) => done(new TorSocketError('CONNECT_FAILED', `cannot connect to tor's control port 127.0.0.1:${opts.port}: ${err.message}`, { cause: err }));
    const onConnect = () => done(null);
    const onAbort = () => done(new TorSocketError('ABORTED', 'aborted while connecting to tor'));
    const timer = clock.setTimeout(() => done(new TorSocketError('CONNECT_TIMEOUT', `no connection to tor's control port within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', onError);
    socket.once('connect', onConnect);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
