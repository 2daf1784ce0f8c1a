/**
 * Every inbound limit the node enforces, in one place. Each is an option of the layer that enforces
 * it (the node passes `Partial<Limits>` down); these are the defaults.
 */
export interface Limits {
  /** Largest padded inner message, bytes. The top size bucket. */
  maxPlaintext: number;
  /** Largest sealed envelope on the wire: maxPlaintext + crypto_box_seal overhead. */
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
  /** DELIVER frames one connection may have awaiting the node's answer; beyond it the answer is REJECT BUSY. */
  maxPendingDelivers: number;
  /** Accepted skew between a message's created_at and our clock, ms. */
  maxClockSkewMs: number;
  /** Longest TTL a sender may ask for, ms. */
  maxTtlMs: number;
}

/** Size buckets the inner message is padded to, ascending. The last is `maxPlaintext`. */
export const PADDING_BUCKETS = [1024, 4096, 16384, 65536, 262144] as const;

/** crypto_box_seal adds an ephemeral public key (32) and a MAC (16). */
export const SEAL_OVERHEAD = 48;

/** Room for the frame header and DELIVER's routing fields around an envelope. */
export const FRAME_OVERHEAD = 256;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxPlaintext: PADDING_BUCKETS[PADDING_BUCKETS.length - 1]!,
  maxEnvelope: PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! + SEAL_OVERHEAD,
  maxFrame: PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! + SEAL_OVERHEAD + FRAME_OVERHEAD,
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
});

export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  return { ...DEFAULT_LIMITS, ...overrides };
}
