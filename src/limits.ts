/**
 * Every inbound limit the node enforces, in one place. Each is an option of the layer that enforces
 * it (the node passes `Partial<Limits>` down); these are the defaults.
 */
export interface Limits {
  /** Largest padded inner message, bytes. The top size bucket. */
  maxPlaintext: number;
  /** Largest envelope on the wire (an INIT or SESSION envelope is a whole bucket, PROTOCOL.md §9). */
  maxEnvelope: number;
  /** Largest wire frame: the largest envelope plus frame header and routing fields. */
  maxFrame: number;
  /** Concurrent inbound connections, all peers together. */
  maxConnections: number;
  /** Time a new connection has to complete HELLO, ms. */
  handshakeTimeoutMs: number;
  /** Frames a single connection may send per second (token bucket rate) and its burst. */
  framesPerSecond: number;
  frameBurst: number;
  /** Time without any frame before a PING is sent, and without a PONG before the peer is declared dead, ms. */
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** DELIVER frames one connection may have awaiting the node's answer (the window announced in HELLO); a client past it is closed. */
  maxPendingDelivers: number;
  /** Accepted skew between a message's created_at and our clock, ms. */
  maxClockSkewMs: number;
  /** Longest TTL a sender may ask for, ms. Also how long old prekeys and skipped keys are kept. */
  maxTtlMs: number;
  /** Sessions: expected tags kept per session ahead of the highest received (PROTOCOL.md §8.2, W). */
  tagWindow: number;
  /** Sessions: message keys one message may make us skip, and skipped keys stored per session (MAX_SKIP). */
  maxSkippedKeys: number;
  /** (id, MAC) pairs one RECEIPT frame may carry (PROTOCOL.md §10). */
  maxReceiptsPerFrame: number;

  // ── Inbound admission (transport/guard.ts). A peer is *unproven* until a DELIVER from it opened
  // with a valid signature; a *contact* is a proven peer whose sender is in the contact book. The
  // scope of these limits is the Tor circuit when the onion exports circuit ids (they survive
  // reconnects), else the connection.

  /** WebSocket frames (data, continuation and control alike) one unproven scope may send per second, and its burst. */
  unprovenFramesPerSecond: number;
  unprovenFrameBurst: number;
  /** WebSocket frames all unproven scopes together may send per second, and the burst; past it their sockets wait. */
  unprovenGlobalFramesPerSecond: number;
  unprovenGlobalFrameBurst: number;
  /**
   * What accepting a connection costs, in frames of the budgets above (TCP, HTTP and the WebSocket
   * handshake cost the node about as much as this many small frames); charged before the request is parsed.
   */
  connectionCostFrames: number;
  /**
   * Connections waiting, unread, for the global budget to pay their connectionCostFrames (first come,
   * first admitted). They hold no slot and no read buffer: a socket each. Past it the newcomer (or the
   * newest of the circuit queueing the most) is closed.
   */
  maxQueuedConnections: number;
  /** Admitted connections until the peer's HELLO. Past it the oldest is closed to make room. */
  maxPendingHandshakes: number;
  /** Connections not yet proven (pending handshakes included). Past it the oldest unproven is closed. */
  maxUnprovenConnections: number;
  /** The handshake deadline while pending handshakes are at half their cap or more, ms. */
  handshakeTimeoutUnderPressureMs: number;
  /** Fragments one WebSocket message may come in. */
  maxFragments: number;
  /** Socket reads one partly received WebSocket frame may be spread over (ws maxBufferedChunks). */
  maxFrameChunks: number;
  /**
   * Bytes of partly received messages, all connections together, and the share unproven ones may
   * hold. Each socket read and each fragment counts PER_CHUNK_OVERHEAD_BYTES on top of its bytes.
   */
  maxBufferedBytes: number;
  maxUnprovenBufferedBytes: number;
  /** Answers (RECEIPT, PONG, BUNDLE, REJECT) a peer may leave unread on its connection, bytes, before it is cut. */
  maxUnreadAnswerBytes: number;
  /** Decryption attempts for unproven peers, all together, per second and burst; the rest wait, then BUSY. */
  unprovenDecryptsPerSecond: number;
  unprovenDecryptBurst: number;
  /** The same for proven peers that are not contacts. Contacts' DELIVERs do not wait. */
  provenDecryptsPerSecond: number;
  provenDecryptBurst: number;
  /** DELIVERs waiting for a decryption slot, all peers together; past it, BUSY. */
  maxQueuedDelivers: number;
  /** Envelope bytes of every DELIVER the node holds (waiting, being opened or committed), all peers; past it, BUSY. */
  maxInflightDeliverBytes: number;
  /** Scopes whose counters are remembered after their last connection closed, and for how long, ms. */
  maxRememberedScopes: number;
  scopeMemoryMs: number;
  /**
   * Cooling (transport/guard.ts lists what counts as misbehaviour): a scope whose connection was
   * closed for misbehaviour is refused for coolingMs (its new connections closed at admission),
   * twice as long for each further offence while it is remembered, at most maxCoolingMs; it is
   * remembered for maxCoolingMs after its refusal ends, and at most maxCoolingScopes are remembered
   * (the least recently offending forgotten first). 0 turns it off. Only a Tor circuit's scope comes
   * back: without tor's PROXY line the scope is the connection, and cooling changes nothing. The
   * courier applies the same to a mailbox provider that answers what does not decode.
   */
  coolingMs: number;
  maxCoolingMs: number;
  maxCoolingScopes: number;
  /** Concurrent streams one Tor circuit may open to our onion (HiddenServiceMaxStreams); past it tor closes the circuit. */
  maxStreamsPerCircuit: number;
  /** Age at which our signed prekeys (X25519 and ML-KEM) are replaced, ms (PROTOCOL.md §2). */
  signedPrekeyRotationMs: number;
  /** One-time prekeys we keep ready, and the count below which the pool is refilled (§3). */
  oneTimePrekeyPool: number;
  oneTimePrekeyRefillBelow: number;
}

/** Size buckets the inner message is padded to, ascending. The last is `maxPlaintext`. */
export const PADDING_BUCKETS = [1024, 4096, 16384, 65536, 262144] as const;

/**
 * What a version-1 sealed box added to a bucket (an ephemeral public key and a MAC). Version-2
 * envelopes are whole buckets, so a bucket + this many bytes is a version-1 envelope, answered
 * UNSUPPORTED_VERSION (PROTOCOL.md §1).
 */
export const SEAL_OVERHEAD = 48;

/** Room for the frame header and DELIVER's routing fields around an envelope. */
export const FRAME_OVERHEAD = 256;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxPlaintext: PADDING_BUCKETS[PADDING_BUCKETS.length - 1]!,
  maxEnvelope: PADDING_BUCKETS[PADDING_BUCKETS.length - 1]!,
  maxFrame: PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! + FRAME_OVERHEAD,
  maxConnections: 256,
  handshakeTimeoutMs: 10_000,
  // Measured: one node processes ~800 DELIVERs/s at most (bench: pipeline), and a Tor circuit
  // carries far fewer; at 200/s an honest sender flushing a backlog hit the limit and lost its
  // connection (167 msgs/s in the bench). 1000/s only stops floods beyond what we could process.
  framesPerSecond: 1000,
  frameBurst: 2000,
  heartbeatIntervalMs: 5_000,
  heartbeatTimeoutMs: 10_000,
  maxPendingDelivers: 64,
  maxClockSkewMs: 24 * 60 * 60 * 1000,
  maxTtlMs: 30 * 24 * 60 * 60 * 1000,
  tagWindow: 128,
  maxSkippedKeys: 1000,
  maxReceiptsPerFrame: 256,
  signedPrekeyRotationMs: 7 * 24 * 60 * 60 * 1000,
  oneTimePrekeyPool: 100,
  oneTimePrekeyRefillBelow: 20,
  // An honest new peer's connection (24), its HELLO, maybe a BUNDLE_REQUEST, then at most its
  // window (64) of DELIVERs before the first answer (it is proven by the first that opens): 128.
  unprovenFramesPerSecond: 20,
  unprovenFrameBurst: 128,
  // A small frame costs ~10–30 µs to parse, decode and answer: 2000/s is a few % of a core.
  unprovenGlobalFramesPerSecond: 2_000,
  unprovenGlobalFrameBurst: 4_000,
  // Measured: 612 connections/s (connect, upgrade, HELLO, close) took 42 % of a core, ~0.7 ms each.
  connectionCostFrames: 24,
  // More than an attacker's held connections plus the slots: a newcomer then always finds a place in
  // line instead of racing reconnects for a slot (3 × maxConnections; 768 × 24 frames ≈ 9 s of line).
  maxQueuedConnections: 768,
  maxPendingHandshakes: 64,
  maxUnprovenConnections: 128,
  handshakeTimeoutUnderPressureMs: 2_000,
  // Our peers never fragment (one message, one frame); 16 leaves room for other WebSocket stacks.
  maxFragments: 16,
  // The largest frame in Tor-cell-sized reads (~498 bytes) is ~530 reads.
  maxFrameChunks: 1024,
  // 64 messages of the largest size arriving at once.
  maxBufferedBytes: 16 * 1024 * 1024,
  maxUnprovenBufferedBytes: 4 * 1024 * 1024,
  // ~500 RECEIPTs a slow reader has not taken yet.
  maxUnreadAnswerBytes: 64 * 1024,
  // An INIT that names our prekeys costs ~4 ms to find bogus (three X25519, an ML-KEM-768
  // decapsulation, AEAD): measured 100/s took 40 % of a core. 25/s is ~10 %.
  unprovenDecryptsPerSecond: 25,
  unprovenDecryptBurst: 50,
  provenDecryptsPerSecond: 300,
  provenDecryptBurst: 600,
  maxQueuedDelivers: 1024,
  maxInflightDeliverBytes: 16 * 1024 * 1024,
  maxRememberedScopes: 4096,
  scopeMemoryMs: 10 * 60 * 1000,
  // Long enough that a misbehaving circuit's reconnects cost it more than building a new circuit
  // (a rendezvous, seconds); short enough that a client with a bug is back within the minute.
  coolingMs: 60_000,
  maxCoolingMs: 30 * 60_000,
  maxCoolingScopes: 4096,
  // One connection per peer (plus one while reconnecting, plus our own reachability check).
  maxStreamsPerCircuit: 4,
});

export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  return { ...DEFAULT_LIMITS, ...overrides };
}

/** The mail bridge's inbound limits (SMTP and IMAP on 127.0.0.1; src/bridge/). */
export interface BridgeLimits {
  /** Concurrent connections, per server (SMTP and IMAP each). */
  maxConnections: number;
  /** RCPT TO per SMTP transaction (one onionpost message each). */
  maxRecipients: number;
  /** Commands before a successful login, per connection; then the connection is closed. */
  maxUnauthenticatedCommands: number;
  /** Failed logins per connection before it is closed. */
  maxAuthFailures: number;
  /** SMTP: time without a command before the connection is closed, ms. */
  smtpIdleTimeoutMs: number;
  /** IMAP: time without a command (IDLE included) before the connection is closed, ms (RFC 3501 asks ≥ 30 min). */
  imapIdleTimeoutMs: number;
  /** IMAP: longest command line without its literals, bytes. */
  imapMaxLineBytes: number;
  /** IMAP: largest literal (an APPENDed message), bytes. */
  imapMaxLiteralBytes: number;
  /** IMAP: largest command, lines and literals together, bytes. */
  imapMaxCommandBytes: number;
  /** IMAP: commands per second per connection (token bucket rate) and burst; beyond it, BYE and close. */
  imapCommandsPerSecond: number;
  imapCommandBurst: number;
  /** IMAP: bytes a client may leave unread before we stop reading its commands (back-pressure), bytes. */
  imapMaxPendingOutputBytes: number;
}

export const DEFAULT_BRIDGE_LIMITS: Readonly<BridgeLimits> = Object.freeze({
  maxConnections: 32,
  maxRecipients: 32,
  maxUnauthenticatedCommands: 10,
  maxAuthFailures: 3,
  smtpIdleTimeoutMs: 5 * 60_000,
  imapIdleTimeoutMs: 31 * 60_000,
  imapMaxLineBytes: 64 * 1024,
  imapMaxLiteralBytes: 2 * 1024 * 1024,
  imapMaxCommandBytes: 2 * 1024 * 1024 + 64 * 1024,
  imapCommandsPerSecond: 200,
  imapCommandBurst: 1000,
  imapMaxPendingOutputBytes: 8 * 1024 * 1024,
});

/**
 * Limits of the node's local API (src/api) and of the web UI's browser sessions. The API listens on
 * 127.0.0.1 only, but any local process (or a page the browser has open) can send it requests, so
 * every request, batch, answer and session is bounded.
 */
export interface ApiLimits {
  /** Largest request body, bytes (HTTP) and WebSocket message. A 256 KiB body JSON-escaped fits. */
  maxBodyBytes: number;
  /** Calls in one JSON-RPC batch. */
  maxBatch: number;
  /** Open connections to the API (HTTP keep-alive and WebSockets together); more are refused. */
  maxConnections: number;
  /** Largest answer to one HTTP request or WebSocket message (a whole batch together), bytes of JSON. */
  maxAnswerBytes: number;
  /** How long a login code (`onionpost ui`) can be redeemed, ms. Each is single-use. */
  loginCodeTtlMs: number;
  /** Login codes not yet redeemed; a new one beyond this evicts the oldest. */
  maxLoginCodes: number;
  /** A browser session ends after this long without a request, ms. */
  sessionIdleMs: number;
  /** …and this long after sign-in in any case, ms. */
  sessionMaxAgeMs: number;
  /** Browser sessions at once; a new one beyond this ends the least recently used. */
  maxSessions: number;
  /** On close, how long requests already running may take to finish before their sockets are cut, ms. */
  drainTimeoutMs: number;
}

export const DEFAULT_API_LIMITS: Readonly<ApiLimits> = Object.freeze({
  maxBodyBytes: 2 * 1024 * 1024,
  // The web UI's largest batch reads a thread's last 50 messages; scripts that need more make more requests.
  maxBatch: 64,
  // A browser keeps up to 6 connections per host plus a WebSocket per tab.
  maxConnections: 128,
  // One message read (messages.get) is at most ~1.6 MB of JSON (262 kB of body, \u-escaped at worst);
  // 50 ordinary ones fit many times over. An answer over it is refused, not truncated.
  maxAnswerBytes: 16 * 1024 * 1024,
  loginCodeTtlMs: 2 * 60_000,
  maxLoginCodes: 16,
  sessionIdleMs: 12 * 60 * 60_000,
  sessionMaxAgeMs: 7 * 24 * 60 * 60_000,
  maxSessions: 32,
  drainTimeoutMs: 10_000,
});

export function resolveApiLimits(overrides: Partial<ApiLimits> = {}): ApiLimits {
  return { ...DEFAULT_API_LIMITS, ...overrides };
}

/**
 * Bytes of a connection we do not account byte by byte: the socket, HTTP and WebSocket objects, the
 * PeerConnection, and their buffers when idle. Measured (2026-11-29): 256 connections past HELLO
 * added 9.3 MiB of RSS to a listener (≈ 37 KiB each); rounded up with room for busy ones.
 */
export const CONNECTION_OVERHEAD_BYTES = 96 * 1024;
/** What a paused socket can hold: one read the guard kept back (≤ 64 KiB) and the stream's buffer (16 KiB). */
export const PAUSED_READ_BYTES = 80 * 1024;
/**
 * A connection waiting in line for admission: its socket and the guard's record, rounded up, and
 * one socket read in flight. What it sent is kept by the guard (at most MAX_EARLY_BYTES) and counted
 * in the buffered bytes; a paused read's worth is counted here for the read arriving meanwhile.
 */
export const QUEUED_CONNECTION_BYTES = 8 * 1024 + PAUSED_READ_BYTES;
/** What ws keeps per socket read or fragment beyond its bytes (Buffer objects, ~100 B), rounded up. */
export const PER_CHUNK_OVERHEAD_BYTES = 256;
/**
 * Memory the listener has let go of that still counts in RSS: V8 collects the wrappers of dropped
 * socket buffers (and so returns their memory) only once external memory has grown by its soft limit,
 * 64 MiB (v8 `kExternalAllocationSoftLimit`). Measured: a fragment flood then a half-sent-frame flood
 * grew a node's peak RSS by 106–120 MiB, more than it can hold live (108 MiB).
 */
export const RUNTIME_SLACK_BYTES = 64 * 1024 * 1024;

export interface MemoryBound {
  /** The bound, bytes: the sum of the parts. */
  total: number;
  parts: Record<string, number>;
}

/**
 * The most memory the peer listener can make a node grow by, whatever peers send (the figure the
 * adversarial tier checks against the victim's peak RSS): what it can hold live,
 *
 *   maxConnections × (fixed overhead + a paused read + unread answers)
 *   + maxQueuedConnections × QUEUED_CONNECTION_BYTES   connections waiting in line for admission
 *   + maxBufferedBytes            partly received messages, all connections (chunk overhead included)
 *   + 2 × maxInflightDeliverBytes DELIVERs held, as envelope and again as opened plaintext
 *
 * plus RUNTIME_SLACK_BYTES for what it let go of and V8 has not collected yet. With the defaults:
 * 256 × 240 KiB + 768 × 88 KiB + 16 MiB + 32 MiB = 174 MiB held, + 64 MiB = 238 MiB.
 */
export function inboundMemoryBound(l: Limits = DEFAULT_LIMITS): MemoryBound {
  const parts = {
    connections: l.maxConnections * (CONNECTION_OVERHEAD_BYTES + PAUSED_READ_BYTES + l.maxUnreadAnswerBytes),
    queued: l.maxQueuedConnections * QUEUED_CONNECTION_BYTES,
    partialMessages: l.maxBufferedBytes,
    delivers: 2 * l.maxInflightDeliverBytes,
    runtimeSlack: RUNTIME_SLACK_BYTES,
  };
  return { total: Object.values(parts).reduce((a, b) => a + b, 0), parts };
}
