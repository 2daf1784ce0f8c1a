/**
 * InboundGuard: what an anonymous peer can make the listener spend, decided per connection before
 * the HTTP parser, `ws` or the protocol see its bytes. One per listener; the listener reports each
 * socket's life to it and routes the socket's reads through `data()`.
 *
 * Scope and trust. Counters are kept per *scope*: the Tor circuit when the listener reads tor's PROXY
 * line (so they survive reconnects on that circuit), else the connection. A scope is
 *
 *   unproven ──(a DELIVER opened with a valid signature)──▶ proven ──(its sender is a contact)──▶ contact
 *       ▲                                                      │
 *       └──────────────(a DELIVER that did not open)───────────┘
 *
 * (the node decides and calls setTrust). A connection is *pending* from TCP accept until its HELLO.
 *
 * Frames are charged when they arrive: the meter (meter.ts) finds the first byte of every WebSocket
 * frame (data, continuation, control) in each socket read; each costs one token of its scope's
 * bucket (unprovenFramesPerSecond/Burst, or framesPerSecond/frameBurst once proven) and, while
 * unproven, one of the global unproven bucket. An empty scope bucket cuts the connection. An empty
 * global bucket makes the connection wait: the rest of the read is kept, the socket paused (TCP
 * pushes back on the peer, nothing more is read or parsed), and waiting connections are resumed in
 * turn, at most UNPROVEN_QUANTUM frames each, as the bucket refills. Proven scopes never wait for it.
 * Accepting a connection is charged the same way (connectionCostFrames), before its HTTP request is
 * read: so reconnecting costs a circuit its budget too, and churn cannot take more than the global
 * budget's share of the CPU.
 *
 * Admission. A new connection is *queued* until its cost is paid: unread, holding no slot, first
 * come first admitted (frames of admitted connections go before admissions: they hold slots and
 * deadlines). At most maxQueuedConnections wait; past it the newest of the circuit queueing the most
 * is closed, or the newcomer when no circuit queues more than one. The line is longer than the
 * slots, so an attacker who holds every slot and reopens each one closed joins the line behind a
 * newcomer instead of racing it for a slot; and a connection is judged (evicted, timed out) only
 * for the time since it was admitted, never for the time we kept it waiting.
 *
 *   accept ──▶ arrived ──(PROXY line read, admitConnection)──▶ queued ──(cost paid)──▶ admitted: pending ──(HELLO)──▶ open
 *
 * Slots. On each admission: pending connections beyond maxPendingHandshakes, unproven beyond
 * maxUnprovenConnections, all beyond maxConnections make room by closing a pending one (one that
 * sent nothing first, then one that never upgraded, then any; within each the crowded circuit's,
 * else the oldest), then the oldest unproven. Proven connections are never closed for room, so when
 * all slots are proven the new connection is refused (503). While pending connections fill half
 * their cap or more, a pending connection has handshakeTimeoutUnderPressureMs to send HELLO instead
 * of handshakeTimeoutMs; an arrived connection has handshakeTimeoutMs to finish tor's PROXY line.
 *
 * Buffers. The bytes of every partly received message (plus PER_CHUNK_OVERHEAD_BYTES per read and per
 * fragment it spans) are counted per connection and in total; over maxUnprovenBufferedBytes (unproven
 * connections) or maxBufferedBytes (all), the connection holding the most is cut, unproven first.
 * ws enforces maxFragments and maxFrame per message itself (close 1008 / 1009).
 *
 * Cooling. A connection closed for misbehaviour costs its scope more than the connection: the scope
 * is refused for coolingMs (doubling on each further offence while remembered, up to maxCoolingMs;
 * at most maxCoolingScopes remembered; cooling.ts), its other connections are cut, and its new ones
 * are closed at admission, once tor's PROXY line has named the circuit and before anything is
 * charged, parsed or queued. Misbehaviour is what no honest peer does, whatever its speed or its
 * circuit's (`Misbehaviour`):
 *
 *   rate       over its scope's frame budget, or reconnecting faster than it pays for (the guard's own cut)
 *   http       a request that does not parse as HTTP (the listener)
 *   websocket  broken WebSocket framing: bad opcode or mask, a text message, a message over maxFrame,
 *              more than maxFragments or maxFrameChunks (the listener, from ws's error)
 *   protocol   a frame that does not decode, a frame its role or state does not allow, more frames
 *              than framesPerSecond or more DELIVERs than its window (the node, from
 *              PeerConnection's close: closedForMisbehaviour in protocol/peer.ts)
 *   mailbox    a mailbox request that does not decode (the node, from the mailbox service)
 *
 * Not misbehaviour: a handshake not finished in time, a connection closed to make room or for
 * holding the most buffered bytes, a slow reader, a silent peer, no common version, DELIVERs that do
 * not open (the decryption budget prices those). Only a circuit can come back: without PROXY lines
 * (loopback tests) the scope is the connection, so an offence is counted and nothing is refused.
 * A circuit is one Tor client's: another circuit's offences never touch a contact's.
 */
import type { Duplex } from 'node:stream';
import { TokenBucket } from '../bucket.js';
import type { Clock, TimerHandle } from '../clock.js';
import { Cooling } from '../cooling.js';
import { PER_CHUNK_OVERHEAD_BYTES, type Limits } from '../limits.js';
import { createLogThrottle, type LogThrottle, type Logger } from '../log.js';
import { WsFrameMeter } from './meter.js';

export type Trust = 'unproven' | 'proven' | 'contact';

/** What a connection may send before it is admitted (an HTTP upgrade request is well under 1 KiB). */
export const MAX_EARLY_BYTES = 16 * 1024;

/** Frames a connection resumed from the global wait may take before the next one's turn. */
export const UNPROVEN_QUANTUM = 16;

/** Why the guard closed a connection (counted in stats().cut). */
export type CutReason = 'rate' | 'handshake-timeout' | 'room' | 'buffers' | 'refused' | 'line-full' | 'cooling';

/** What a connection was closed for that makes its scope cool (see the header). */
export type Misbehaviour = 'rate' | 'http' | 'websocket' | 'protocol' | 'mailbox';

const CUT_WHY: Readonly<Record<CutReason, string>> = {
  rate: 'over its frame budget',
  'handshake-timeout': 'no HELLO in time',
  room: 'room made for a newer connection',
  buffers: 'holding the most of too many buffered bytes',
  refused: 'every slot held by proven peers',
  'line-full': 'too many connections waiting for admission',
  cooling: 'its circuit misbehaved and is refused for a while',
};

export interface GuardStats {
  /** Admitted connections (the ones holding slots). */
  connections: number;
  pending: number;
  unproven: number;
  /** Connections waiting in line for admission right now. */
  queued: number;
  /** Admitted connections whose frames wait for the global unproven budget right now. */
  waiting: number;
  bufferedBytes: number;
  unprovenBufferedBytes: number;
  /** Connections closed by the guard since start, by reason. */
  cut: Record<CutReason, number>;
  /** Scopes remembered (with or without connections). */
  scopes: number;
  /** Connections closed for misbehaviour since start, by kind (each counted once). */
  offences: Record<Misbehaviour, number>;
  /** Scopes (circuits) refused right now for misbehaviour. */
  cooling: number;
  underPressure: boolean;
}

interface Scope {
  readonly key: string;
  trust: Trust;
  bucket: TokenBucket;
  /** Its connections in every state. */
  readonly conns: Set<Conn>;
  /** Of them, admitted and pending, and queued. */
  pending: number;
  queued: number;
  lastSeen: number;
}

/** The guard's record of one socket. Opaque to the listener apart from `scope`. */
export interface GuardedConnection {
  readonly id: number;
  readonly socket: Duplex;
  readonly scope: { readonly key: string; readonly trust: Trust };
}

interface Conn extends GuardedConnection {
  scope: Scope;
  /** Accept time until admitted, then admission time: what deadlines count from. */
  openedAt: number;
  admitted: boolean;
  pending: boolean;
  meter: WsFrameMeter | undefined;
  forward: ((chunk: Buffer) => void) | undefined;
  held: Buffer | undefined;
  /** Bytes read before the HTTP request (tor's PROXY line): not a sign the peer spoke. */
  preamble: number;
  /** Hands the accepted socket on (to the HTTP parser) once its connection cost is paid. */
  proceed: ((early: Buffer | undefined) => void) | undefined;
  /** In a wait list: the admission line (not admitted) or the frame wait (admitted). */
  waiting: boolean;
  quantum: number;
  reads: number;
  buffered: number;
  bufferedUnproven: boolean;
  cut: boolean;
  gone: boolean;
  /** Its misbehaviour was counted (once per connection, whoever reports it). */
  offended: boolean;
}

export interface InboundGuardOptions {
  limits: Limits;
  clock: Clock;
  log: Logger;
  /** Called when a new connection must be refused outright (every slot is proven): answer 503 on it. */
  refuse(socket: Duplex): void;
}

export class InboundGuard {
  readonly #l: Limits;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Closing connections is what a flood makes us do thousands of times a second: counted, not logged each time. */
  readonly #warn: LogThrottle;
  readonly #refuse: (socket: Duplex) => void;
  /** Admitted connections, in admission order, so the first match is the oldest. */
  readonly #conns = new Set<Conn>();
  /** Connections not yet admitted (arrived or queued), in accept order. */
  readonly #arrivals = new Set<Conn>();
  /** Least recently seen first (re-inserted on use). */
  readonly #scopes = new Map<string, Scope>();
  readonly #global: TokenBucket;
  /** Scopes refused for misbehaviour. */
  readonly #cooling: Cooling;
  readonly #offences: Record<Misbehaviour, number> = { rate: 0, http: 0, websocket: 0, protocol: 0, mailbox: 0 };
  /** Admitted connections waiting to have their frames paid for; served before the line. */
  #frameWait: Conn[] = [];
  /** Connections waiting to have their admission paid for, first come first. */
  #line: Conn[] = [];
  #resumeTimer: TimerHandle | undefined;
  #sweepTimer: TimerHandle | undefined;
  #pending = 0;
  #unproven = 0;
  #buffered = 0;
  #unprovenBuffered = 0;
  #seq = 0;
  #pressure = false;
  #closed = false;
  readonly #cut: Record<CutReason, number> = { rate: 0, 'handshake-timeout': 0, room: 0, buffers: 0, refused: 0, 'line-full': 0, cooling: 0 };

  constructor(opts: InboundGuardOptions) {
    this.#l = opts.limits;
    this.#clock = opts.clock;
    this.#log = opts.log;
    this.#warn = createLogThrottle({ logger: opts.log, clock: opts.clock });
    this.#refuse = opts.refuse;
    this.#global = new TokenBucket(this.#l.unprovenGlobalFramesPerSecond, this.#l.unprovenGlobalFrameBurst, this.#clock.now());
    this.#cooling = new Cooling({ baseMs: this.#l.coolingMs, maxMs: this.#l.maxCoolingMs, maxKeys: this.#l.maxCoolingScopes });
  }

  /**
   * A new TCP connection: registered as arrived (no slot yet; admitConnection admits it). Returns
   * undefined once the guard is closed. `scopeKey` names its circuit or source; without one the
   * connection is its own scope.
   */
  accept(socket: Duplex, scopeKey?: string): GuardedConnection | undefined {
    if (this.#closed) {
      socket.destroy();
      return undefined;
    }
    const now = this.#clock.now();
    this.#sweep(now);
    const scope = this.#scope(scopeKey ?? `conn:${this.#seq + 1}`, now);
    const conn: Conn = {
      id: ++this.#seq, socket, scope, openedAt: now, admitted: false, pending: true, meter: undefined, forward: undefined, held: undefined,
      preamble: 0, proceed: undefined, waiting: false, quantum: 0, reads: 0, buffered: 0, bufferedUnproven: false, cut: false, gone: false,
      offended: false,
    };
    this.#arrivals.add(conn);
    scope.conns.add(conn);
    this.#armSweep();
    return conn;
  }

  /**
   * Charges an accepted connection's cost (connectionCostFrames) to its scope and, while unproven, to
   * the global budget, then admits it (makes room as the slot rules say; refused with 503 if every
   * slot is proven) and runs `proceed` (hand the socket to the HTTP parser): at once, or once the
   * line ahead of it has been admitted and the budget pays (the socket stays paused, unread, until
   * then). A scope over its own budget is cut instead, and one that is cooling is cut before
   * anything is charged. Call with the scope final (after rescope).
   */
  admitConnection(c: GuardedConnection, proceed: (early: Buffer | undefined) => void): void {
    const conn = c as Conn;
    if (conn.cut || conn.admitted) return;
    conn.proceed = proceed;
    this.#tryProceed(conn);
  }

  /**
   * Bytes a connection sent before it was admitted (its HTTP request, usually): kept and counted as
   * buffered until admission hands them to `proceed`; past MAX_EARLY_BYTES the connection is cut.
   * The listener keeps reading queued sockets into here, so a peer that leaves the line is seen to go.
   */
  hold(c: GuardedConnection, chunk: Buffer): void {
    const conn = c as Conn;
    if (conn.cut || conn.admitted) return;
    conn.held = conn.held ? Buffer.concat([conn.held, chunk]) : chunk;
    if (conn.held.length > MAX_EARLY_BYTES) return this.#cutConn(conn, 'buffers');
    this.#account(conn, conn.held.length + PER_CHUNK_OVERHEAD_BYTES);
    this.#relieveBuffers();
  }

  #tryProceed(conn: Conn): void {
    if (this.#cooling.refusedUntil(conn.scope.key, this.#clock.now()) !== undefined) return this.#cutConn(conn, 'cooling');
    const v = this.#charge(conn, this.#l.connectionCostFrames);
    if (v === 'cut') return this.#cutConn(conn, 'rate');
    if (v === 'wait') return this.#queue(conn);
    this.#admit(conn);
  }

  #admit(conn: Conn): void {
    while (this.#pending >= this.#l.maxPendingHandshakes && this.#evict((c) => c.pending)) { /* made room */ }
    while (this.#unproven >= this.#l.maxUnprovenConnections && this.#evict((c) => c.scope.trust === 'unproven')) { /* made room */ }
    while (this.#conns.size >= this.#l.maxConnections) {
      if (!this.#evict((c) => c.scope.trust === 'unproven')) {
        this.#cut.refused++;
        this.#warn.warn('refused', { connections: this.#conns.size }, 'every inbound slot is held by a proven peer: refusing a connection (503)');
        conn.proceed = undefined;
        this.#refuse(conn.socket);
        this.closed(conn);
        return;
      }
    }
    const proceed = conn.proceed!;
    const early = conn.held;
    conn.proceed = conn.held = undefined;
    this.#account(conn, 0);
    this.#arrivals.delete(conn);
    conn.admitted = true;
    conn.openedAt = this.#clock.now();
    this.#conns.add(conn);
    conn.scope.pending++;
    this.#pending++;
    if (conn.scope.trust === 'unproven') this.#unproven++;
    this.#updatePressure();
    this.#armSweep();
    proceed(early);
  }

  /** Puts a connection in the admission line, or closes one if the line is full. */
  #queue(conn: Conn): void {
    if (this.#line.length >= this.#l.maxQueuedConnections) {
      let crowded: Scope | undefined;
      for (const c of this.#line) if (c.scope.queued > 1 && (!crowded || c.scope.queued > crowded.queued)) crowded = c.scope;
      if (crowded && conn.scope !== crowded) {
        const newest = this.#line.findLast((c) => c.scope === crowded)!;
        this.#cutConn(newest, 'line-full');
      } else {
        this.#cutConn(conn, 'line-full');
        return;
      }
    }
    conn.waiting = true;
    conn.quantum = 0;
    conn.scope.queued++;
    this.#line.push(conn);
    this.#armResume();
  }

  /** Moves a connection to the scope its PROXY line (`preambleBytes` long) names, before it is upgraded. */
  rescope(c: GuardedConnection, key: string, preambleBytes = 0): void {
    const conn = c as Conn;
    conn.preamble = preambleBytes;
    if (conn.gone || conn.scope.key === key) return;
    if (conn.waiting && !conn.admitted) throw new Error('rescope after admitConnection');
    const from = conn.scope;
    const to = this.#scope(key, this.#clock.now());
    from.conns.delete(conn);
    if (conn.admitted && from.trust === 'unproven') this.#unproven--;
    if (conn.admitted && conn.pending) from.pending--;
    if (from.conns.size === 0 && from.key.startsWith('conn:')) this.#scopes.delete(from.key);
    conn.scope = to;
    to.conns.add(conn);
    if (conn.admitted && to.trust === 'unproven') this.#unproven++;
    if (conn.admitted && conn.pending) to.pending++;
    this.#account(conn, conn.buffered);
  }

  /**
   * The connection became a WebSocket: from now on every read goes through data(), and what it lets
   * through is handed to `forward` (ws's own reader).
   */
  upgraded(c: GuardedConnection, forward: (chunk: Buffer) => void): void {
    const conn = c as Conn;
    conn.meter = new WsFrameMeter();
    conn.forward = forward;
  }

  /** The peer's HELLO arrived: the connection is no longer pending. */
  handshakeDone(c: GuardedConnection): void {
    const conn = c as Conn;
    if (!conn.admitted || !conn.pending || conn.gone) return;
    conn.pending = false;
    conn.scope.pending--;
    this.#pending--;
    this.#updatePressure();
  }

  /** What the node learned about the peer on this connection; applies to its whole scope. */
  setTrust(c: GuardedConnection, trust: Trust): void {
    const conn = c as Conn;
    const scope = conn.scope;
    if (scope.trust === trust) return;
    const wasUnproven = scope.trust === 'unproven';
    const nowUnproven = trust === 'unproven';
    scope.trust = trust;
    if (wasUnproven !== nowUnproven) {
      const now = this.#clock.now();
      scope.bucket = nowUnproven
        ? new TokenBucket(this.#l.unprovenFramesPerSecond, this.#l.unprovenFrameBurst, now)
        : new TokenBucket(this.#l.framesPerSecond, this.#l.frameBurst, now);
      const live = [...scope.conns].filter((x) => x.admitted && !x.gone).length;
      this.#unproven += nowUnproven ? live : -live;
      for (const x of scope.conns) this.#account(x, x.buffered);
    }
    // A proven connection no longer waits for the anonymous budget (nor in line).
    if (!nowUnproven) for (const x of [...scope.conns]) if (x.waiting) this.#resume(x);
  }

  /**
   * The connection was closed, or is being closed, for misbehaviour the guard cannot see itself
   * (`why`, see the header): its scope (circuit) is refused for a while and its other connections
   * are cut. Counted once per connection; may come after closed().
   */
  misbehaved(c: GuardedConnection, why: Misbehaviour): void {
    if (this.#closed) return;
    this.#offend(c as Conn, why);
  }

  /** The socket closed (for whatever reason): forget the connection. Idempotent. */
  closed(c: GuardedConnection): void {
    const conn = c as Conn;
    if (conn.gone) return;
    conn.gone = true;
    conn.cut = true;
    conn.held = undefined;
    this.#account(conn, 0);
    this.#unwait(conn);
    const scope = conn.scope;
    scope.conns.delete(conn);
    if (!conn.admitted) this.#arrivals.delete(conn);
    else {
      this.#conns.delete(conn);
      if (conn.pending) {
        scope.pending--;
        this.#pending--;
      }
      if (scope.trust === 'unproven') this.#unproven--;
    }
    scope.lastSeen = this.#clock.now();
    // A connection's own scope cannot come back; a circuit's can, so its counters are kept a while.
    if (scope.conns.size === 0 && scope.key.startsWith('conn:')) this.#scopes.delete(scope.key);
    this.#updatePressure();
  }

  /** One socket read of an upgraded connection. */
  data(c: GuardedConnection, chunk: Buffer): void {
    const conn = c as Conn;
    if (conn.cut) return;
    if (conn.waiting) {
      // ws resumed a socket we had paused (its own backpressure); keep the bytes and pause again.
      conn.held = conn.held ? Buffer.concat([conn.held, chunk]) : chunk;
      conn.socket.pause();
      return;
    }
    this.#process(conn, chunk);
  }

  stats(): GuardStats {
    return {
      connections: this.#conns.size, pending: this.#pending, unproven: this.#unproven, queued: this.#line.length, waiting: this.#frameWait.length,
      bufferedBytes: this.#buffered, unprovenBufferedBytes: this.#unprovenBuffered, cut: { ...this.#cut }, scopes: this.#scopes.size,
      offences: { ...this.#offences }, cooling: this.#cooling.refused(this.#clock.now()), underPressure: this.#pressure,
    };
  }

  /** Stops the timers; connections are the listener's to close. Idempotent. */
  close(): void {
    if (!this.#closed) this.#warn.close();
    this.#closed = true;
    if (this.#resumeTimer !== undefined) this.#clock.clearTimeout(this.#resumeTimer);
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer);
    this.#resumeTimer = this.#sweepTimer = undefined;
    this.#frameWait = [];
    this.#line = [];
  }

  // ── reads ──────────────────────────────────────────────────────────────────

  #process(conn: Conn, chunk: Buffer): void {
    const meter = conn.meter!;
    const st: { verdict: 'ok' | 'cut' | 'wait' } = { verdict: 'ok' };
    const r = meter.feed(chunk, 0, {
      frameStart: () => (st.verdict = this.#charge(conn)) === 'ok',
      header: () => true,
    });
    if (st.verdict === 'cut') {
      this.#cutConn(conn, 'rate');
      return;
    }
    // Bytes of a message still incomplete stay in ws until it completes: count them before ws has them.
    if (meter.inMessage && r.at > 0) conn.reads++;
    else if (!meter.inMessage) conn.reads = 0;
    const buffered = meter.inMessage ? meter.messageBytes + (conn.reads + meter.fragments) * PER_CHUNK_OVERHEAD_BYTES : 0;
    this.#account(conn, buffered);
    if (buffered > 0) this.#relieveBuffers();
    if (conn.cut) return;
    if (r.at > 0) conn.forward!(r.at === chunk.length ? chunk : chunk.subarray(0, r.at));
    if (conn.cut || st.verdict !== 'wait') return;
    conn.held = Buffer.from(chunk.subarray(r.at));
    this.#wait(conn);
  }

  #charge(conn: Conn, n = 1): 'ok' | 'cut' | 'wait' {
    const now = this.#clock.now();
    const unproven = conn.scope.trust === 'unproven';
    if (unproven) {
      // Behind others already waiting, unless this one was just resumed and has quantum left: frames
      // behind frames; an admission behind frames and the whole line.
      const ahead = (this.#frameWait.length > 0 || (!conn.admitted && this.#line.length > 0)) && conn.quantum <= 0;
      if (ahead || this.#global.available(now) < n) return 'wait';
    }
    if (!conn.scope.bucket.take(now, n)) return 'cut';
    if (unproven) {
      this.#global.take(now, n);
      if (conn.quantum > 0) conn.quantum--;
    }
    return 'ok';
  }

  /** Global tokens the waiting connection needs to make progress. */
  #need(conn: Conn): number {
    return conn.proceed ? this.#l.connectionCostFrames : 1;
  }

  #wait(conn: Conn): void {
    conn.waiting = true;
    conn.quantum = 0;
    conn.socket.pause();
    this.#frameWait.push(conn);
    // The timer may be set for the line's head, which needs more than a frame: look again.
    if (this.#frameWait.length === 1 && this.#resumeTimer !== undefined) {
      this.#clock.clearTimeout(this.#resumeTimer);
      this.#resumeTimer = undefined;
    }
    this.#armResume();
  }

  /** Takes a connection out of whichever wait list holds it. */
  #unwait(conn: Conn): void {
    if (!conn.waiting) return;
    conn.waiting = false;
    if (conn.admitted) this.#frameWait = this.#frameWait.filter((x) => x !== conn);
    else {
      this.#line = this.#line.filter((x) => x !== conn);
      conn.scope.queued--;
    }
  }

  /** The next connection to resume: frames before admissions. */
  #nextWaiting(): Conn | undefined {
    return this.#frameWait[0] ?? this.#line[0];
  }

  #armResume(): void {
    const next = this.#nextWaiting();
    if (this.#resumeTimer !== undefined || next === undefined || this.#closed) return;
    const delay = Math.max(1, this.#global.waitMs(this.#clock.now(), this.#need(next)));
    this.#resumeTimer = this.#clock.setTimeout(() => {
      this.#resumeTimer = undefined;
      this.#resumeSome();
    }, delay);
  }

  /** Gives waiting connections their turns while the global bucket has tokens. */
  #resumeSome(): void {
    const now = this.#clock.now();
    for (let turns = 0; turns < 10_000; turns++) {
      const conn = this.#nextWaiting();
      if (conn === undefined || this.#global.available(now) < this.#need(conn)) break;
      this.#resume(conn);
    }
    this.#armResume();
  }

  #resume(conn: Conn): void {
    this.#unwait(conn);
    conn.quantum = UNPROVEN_QUANTUM;
    if (conn.proceed) {
      this.#tryProceed(conn);
      return;
    }
    const held = conn.held;
    conn.held = undefined;
    if (held && held.length > 0) this.#process(conn, held);
    if (!conn.cut && !conn.waiting) conn.socket.resume();
  }

  // ── accounting and eviction ────────────────────────────────────────────────

  #account(conn: Conn, buffered: number): void {
    this.#buffered -= conn.buffered;
    if (conn.bufferedUnproven) this.#unprovenBuffered -= conn.buffered;
    conn.buffered = buffered;
    conn.bufferedUnproven = conn.scope.trust === 'unproven';
    this.#buffered += buffered;
    if (conn.bufferedUnproven) this.#unprovenBuffered += buffered;
  }

  #relieveBuffers(): void {
    for (let i = 0; i < 10_000; i++) {
      const overUnproven = this.#unprovenBuffered > this.#l.maxUnprovenBufferedBytes;
      if (!overUnproven && this.#buffered <= this.#l.maxBufferedBytes) return;
      // The biggest holder among the unproven; over the total with none unproven holding, the biggest of all.
      const biggest = (unprovenOnly: boolean) => {
        let v: Conn | undefined;
        for (const c of [...this.#conns, ...this.#arrivals]) {
          if (c.cut || c.buffered === 0 || (unprovenOnly && c.scope.trust !== 'unproven')) continue;
          if (!v || c.buffered > v.buffered) v = c;
        }
        return v;
      };
      const victim = biggest(true) ?? (overUnproven ? undefined : biggest(false));
      if (!victim) return;
      this.#cutConn(victim, 'buffers');
    }
  }

  /**
   * Closes one connection matching `which` to make room, the one that has shown the least: a pending
   * connection that has sent nothing at all, then one that has not got as far as a WebSocket
   * upgrade, then any pending one; within each, one from the scope (circuit) holding the most
   * pending connections if it holds several, else the oldest. With none pending, the oldest. False
   * if none matched.
   */
  #evict(which: (c: Conn) => boolean): boolean {
    let oldest: Conn | undefined;
    const stages: { oldest?: Conn; crowded?: Conn }[] = [{}, {}, {}];
    for (const c of this.#conns) {
      if (c.cut || !which(c)) continue;
      oldest ??= c;
      if (!c.pending) continue;
      const read = (c.socket as { bytesRead?: number }).bytesRead ?? 0;
      const group = stages[c.meter ? 2 : read > c.preamble ? 1 : 0]!;
      group.oldest ??= c;
      if (c.scope.pending > 1 && (!group.crowded || c.scope.pending > group.crowded.scope.pending)) group.crowded = c;
    }
    const victim = stages.map((g) => g.crowded ?? g.oldest).find((v) => v !== undefined) ?? oldest;
    if (!victim) return false;
    this.#cutConn(victim, 'room');
    return true;
  }

  #cutConn(conn: Conn, reason: CutReason): void {
    if (conn.cut) return;
    conn.cut = true;
    this.#cut[reason]++;
    this.#warn.warn(reason, { reason, scope: conn.scope.key, cut: this.#cut[reason] }, `closing an inbound connection: ${CUT_WHY[reason]}`);
    // A paused socket may hold unread bytes that ws would parse on 'close'; they are the peer's
    // problem now, so read them away first.
    if (conn.waiting || conn.socket.isPaused()) for (let i = 0; i < 1000 && conn.socket.read() !== null; i++) { /* discard */ }
    conn.held = undefined;
    conn.socket.destroy();
    // 'close' comes later; free the slot and the accounting now so this turn's decisions see it.
    this.closed(conn);
    if (reason === 'rate') this.#offend(conn, 'rate');
  }

  #offend(conn: Conn, why: Misbehaviour): void {
    if (conn.offended) return;
    conn.offended = true;
    this.#offences[why]++;
    const scope = conn.scope;
    // A connection's own scope never comes back: there is nothing to refuse.
    if (scope.key.startsWith('conn:')) return;
    const now = this.#clock.now();
    if (this.#cooling.refusedUntil(scope.key, now) !== undefined) return;
    const until = this.#cooling.offend(scope.key, now);
    if (until === undefined) return;
    this.#warn.warn('offence', { scope: scope.key, why, refusedForMs: until - now }, 'a circuit misbehaved: refusing its connections for a while');
    for (const x of [...scope.conns]) if (x !== conn) this.#cutConn(x, 'cooling');
  }

  #scope(key: string, now: number): Scope {
    let s = this.#scopes.get(key);
    if (s) {
      this.#scopes.delete(key);
      if (s.conns.size === 0 && now - s.lastSeen > this.#l.scopeMemoryMs) s = undefined;
    }
    s ??= {
      key, trust: 'unproven', bucket: new TokenBucket(this.#l.unprovenFramesPerSecond, this.#l.unprovenFrameBurst, now),
      conns: new Set(), pending: 0, queued: 0, lastSeen: now,
    };
    s.lastSeen = now;
    this.#scopes.set(key, s);
    // Forget the least recently seen idle scopes beyond the cap.
    if (this.#scopes.size > this.#l.maxRememberedScopes) {
      for (const [k, v] of this.#scopes) {
        if (this.#scopes.size <= this.#l.maxRememberedScopes) break;
        if (v.conns.size === 0) this.#scopes.delete(k);
      }
    }
    return s;
  }

  // ── pending deadline ───────────────────────────────────────────────────────

  #updatePressure(): void {
    const pressure = this.#pending >= this.#l.maxPendingHandshakes / 2;
    if (pressure === this.#pressure) return;
    this.#pressure = pressure;
    // Logged on the change only: a flood of connections is one line each way, with counts.
    if (pressure) this.#log.warn({ pending: this.#pending, cut: { ...this.#cut } }, 'inbound connections under pressure: shorter handshake deadline, oldest unproven closed first');
    else this.#log.info({ cut: { ...this.#cut } }, 'inbound connections back to normal');
    // The deadline changed: look again at the new pace.
    if (this.#sweepTimer !== undefined) this.#clock.clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
    this.#armSweep();
  }

  #deadline(): number {
    return this.#pressure ? Math.min(this.#l.handshakeTimeoutMs, this.#l.handshakeTimeoutUnderPressureMs) : this.#l.handshakeTimeoutMs;
  }

  /** Connections that arrived and are neither admitted nor in line (reading tor's PROXY line). */
  #unplaced(): number {
    return this.#arrivals.size - this.#line.length;
  }

  #armSweep(): void {
    if (this.#sweepTimer !== undefined || (this.#pending === 0 && this.#unplaced() === 0) || this.#closed) return;
    this.#sweepTimer = this.#clock.setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#sweep(this.#clock.now());
      this.#armSweep();
    }, Math.max(50, Math.floor(this.#deadline() / 4)));
  }

  #sweep(now: number): void {
    if (this.#unplaced() > 0) {
      for (const c of [...this.#arrivals]) {
        if (c.openedAt > now - this.#l.handshakeTimeoutMs) break; // the rest are younger
        if (!c.waiting) this.#cutConn(c, 'handshake-timeout');
      }
    }
    if (this.#pending === 0) return;
    const deadline = this.#deadline();
    for (const c of [...this.#conns]) {
      if (c.openedAt > now - deadline) break; // the rest are younger (admission order)
      if (c.pending) this.#cutConn(c, 'handshake-timeout');
    }
  }
}
