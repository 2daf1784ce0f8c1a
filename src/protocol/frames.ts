/**
 * The onionpost wire frames: pure codecs, no I/O. One WebSocket binary message carries exactly one
 * frame. Every multi-byte integer is big-endian; every length is checked against its field's maximum
 * *before* the bytes are looked for, and the whole frame against `limits.maxFrame` before anything.
 *
 * Every frame starts with the same two bytes:
 *
 *    0         1         2
 *   +---------+---------+----------------------+
 *   | version |  type   | body (per type)      |
 *   |  u8 =1  |   u8    |                      |
 *   +---------+---------+----------------------+
 *
 * `version` is the wire-format version (WIRE_VERSION). A decoder refuses any other value with
 * BAD_VERSION rather than guessing; the protocol versions a peer speaks are negotiated in HELLO.
 * Every field of every body is mandatory, so no proper prefix of a valid frame is itself valid
 * (a cut-off frame is always TRUNCATED, never a shorter frame).
 */
import { ByteWriter } from '../bytes.js';
import type { Limits } from '../limits.js';
import { ProtocolError, type ProtocolErrorCode } from './errors.js';

export const WIRE_VERSION = 1;
export const MESSAGE_ID_BYTES = 16;
/** A receipt MAC (PROTOCOL.md §10). */
export const RECEIPT_MAC_BYTES = 16;
export const NONCE_BYTES = 8;
export const MAX_VERSIONS = 16;
export const MAX_CAPABILITIES = 32;
export const MAX_CAPABILITY_BYTES = 32;
export const MAX_AGENT_BYTES = 64;
export const MAX_REASON_BYTES = 200;
/** Bytes before the body: version and type. */
export const HEADER_BYTES = 2;

/** The limits a decoder applies (maxReceiptsPerFrame defaults to DEFAULT_MAX_RECEIPTS_PER_FRAME). */
export type DecodeLimits = Pick<Limits, 'maxFrame' | 'maxEnvelope'> & Partial<Pick<Limits, 'maxReceiptsPerFrame'>>;

/** Receipts one RECEIPT frame may carry unless the decoder is told otherwise (PROTOCOL.md §10). */
export const DEFAULT_MAX_RECEIPTS_PER_FRAME = 256;

/** The 16 zero bytes a REJECT carries when it is about the connection, not a message. */
export const NO_MESSAGE_ID: Uint8Array = new Uint8Array(MESSAGE_ID_BYTES);

/**
 * Why a peer refused something, as sent in REJECT. The numbers are part of the wire format: never
 * renumber, only append. `retryable` below is what this node sends by default for each code; the
 * frame carries its own flag, and a receiver must act on the flag (a newer peer may send a code this
 * build does not name).
 */
export const RejectCode = Object.freeze({
  /** Bytes that do not decode as a frame. The connection is closed after it. */
  MALFORMED: 1,
  /** A frame over maxFrame or an envelope over maxEnvelope. Closed after it when it is the frame. */
  TOO_LARGE: 2,
  /** No common protocol version, or a wire version we do not decode. Closed after it. */
  UNSUPPORTED_VERSION: 3,
  /** A valid frame that this role or handshake state does not allow. Closed after it. */
  UNEXPECTED_FRAME: 4,
  /** The envelope opened but names another recipient. */
  WRONG_RECIPIENT: 10,
  /** The sender's signature inside the envelope does not verify. */
  BAD_SIGNATURE: 11,
  /** Past its expiry. */
  EXPIRED: 12,
  /** created_at too far from our clock. Retryable: one of the two clocks may be put right. */
  CLOCK_SKEW: 13,
  /** Not sealed to our key, or tampered with. */
  DECRYPT_FAILED: 14,
  /** A mailbox provider that keeps no mail for this recipient. */
  UNKNOWN_RECIPIENT: 15,
  /**
   * The envelope belongs to no session we hold (unknown tag, a prekey we no longer have, a seen tag
   * with other bytes). Not retryable as it is: the sender runs a new agreement and re-encrypts
   * (PROTOCOL.md §7.4).
   */
  UNKNOWN_SESSION: 16,
  /** The connection sent too fast. Retryable (later, on a new connection); closed after it. */
  RATE_LIMITED: 20,
  /** Too much in flight on this connection or node. Retryable. */
  BUSY: 21,
  /** The receiver cannot store more. Retryable: the sender keeps the message. */
  STORAGE_FULL: 22,
  /** The receiver failed for its own reasons. Retryable. */
  INTERNAL: 23,
  /** The receiver is stopping. Retryable. */
  SHUTTING_DOWN: 24,
});
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode];

const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  RejectCode.CLOCK_SKEW, RejectCode.RATE_LIMITED, RejectCode.BUSY, RejectCode.STORAGE_FULL, RejectCode.INTERNAL,
  RejectCode.SHUTTING_DOWN,
]);

/** Whether this node marks `code` retryable when it sends it. */
export function isRetryableByDefault(code: number): boolean {
  return RETRYABLE_CODES.has(code);
}

/** The name of a reject code, or `UNKNOWN_<n>` for a number this build does not name. */
export function rejectCodeName(code: number): string {
  for (const [name, n] of Object.entries(RejectCode)) if (n === code) return name;
  return `UNKNOWN_${code}`;
}

// ---------------------------------------------------------------------------------------------------
// Reading and writing helpers.

const utf8Encoder = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function fail(code: ProtocolErrorCode, message: string): ProtocolError {
  return new ProtocolError(code, message);
}

/** A bounds-checked reader whose failures are ProtocolErrors with decode codes. Copies what it returns. */
class FrameReader {
  #buf: Uint8Array;
  #off: number;
  constructor(buf: Uint8Array, offset: number) {
    this.#buf = buf;
    this.#off = offset;
  }
  get remaining(): number {
    return this.#buf.length - this.#off;
  }
  bytes(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw fail('TRUNCATED', `truncated ${what}`);
    // A copy, so a decoded frame never pins (or sees later writes to) the transport's buffer.
    const out = new Uint8Array(this.#buf.subarray(this.#off, this.#off + n));
    this.#off += n;
    return out;
  }
  u8(what: string): number {
    if (this.remaining < 1) throw fail('TRUNCATED', `truncated ${what}`);
    return this.#buf[this.#off++]!;
  }
  u16(what: string): number {
    return (this.u8(what) << 8) | this.u8(what);
  }
  u32(what: string): number {
    return this.u16(what) * 0x10000 + this.u16(what);
  }
  flag(what: string): boolean {
    const v = this.u8(what);
    if (v > 1) throw fail('BAD_FIELD', `${what} must be 0 or 1, got ${v}`);
    return v === 1;
  }
  /** A length-prefixed field: the declared length is checked against [min, max] before the bytes. */
  varBytes(prefix: 8 | 32, min: number, max: number, what: string, overCode: ProtocolErrorCode = 'BAD_LENGTH'): Uint8Array {
    const n = prefix === 8 ? this.u8(`${what} length`) : this.u32(`${what} length`);
    if (n > max) throw fail(overCode, `${what} length ${n} exceeds ${max}`);
    if (n < min) throw fail('BAD_LENGTH', `${what} length ${n} below ${min}`);
    return this.bytes(n, what);
  }
  utf8(max: number, what: string): string {
    const b = this.varBytes(8, 0, max, what);
    try {
      return utf8Strict.decode(b);
    } catch {
      throw fail('BAD_FIELD', `${what} is not UTF-8`);
    }
  }
}

function checkFixed(b: Uint8Array, n: number, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== n) throw fail('BAD_FIELD', `${what} must be ${n} bytes`);
}

function isCapability(s: string): boolean {
  return s.length >= 1 && s.length <= MAX_CAPABILITY_BYTES && /^[\x21-\x7e]+$/.test(s);
}

function utf8Within(s: string, max: number, what: string): Uint8Array {
  const b = utf8Encoder.encode(s);
  if (b.length > max) throw fail('BAD_LENGTH', `${what} is ${b.length} bytes, max ${max}`);
  return b;
}

/** A codec for one frame type's body (the two header bytes are handled by encodeFrame/decodeFrame). */
interface BodyCodec<F extends { type: string }> {
  readonly id: number;
  encode(frame: F, w: ByteWriter): void;
  decode(r: FrameReader, limits: DecodeLimits): F;
}

// ---------------------------------------------------------------------------------------------------
// HELLO (type 0x01). Both sides send it first. `versions`: protocol versions the sender speaks
// (u16, ≥ 1). `capabilities`: short printable-ASCII tokens (0x21–0x7e), unknown ones are ignored.
// `agent`: optional software name; a fingerprint, so nodes leave it out unless configured.
//
//   +-----------+------------------+--------+------------------------------+----------+-----------------------+
//   | nVersions | version × n      | nCaps  | (capLen u8 | cap) × nCaps    | hasAgent | [agentLen u8 | agent] |
//   | u8 1..16  | u16 each, ≥ 1    | u8 ≤32 | capLen 1..32, ASCII 21..7e  | u8 0|1   | ≤ 64 bytes UTF-8      |
//   +-----------+------------------+--------+------------------------------+----------+-----------------------+
export interface HelloFrame {
  type: 'HELLO';
  versions: number[];
  capabilities: string[];
  agent?: string;
}
const helloCodec: BodyCodec<HelloFrame> = {
  id: 0x01,
  encode(f, w) {
    if (f.versions.length < 1 || f.versions.length > MAX_VERSIONS) throw fail('BAD_LENGTH', `HELLO needs 1..${MAX_VERSIONS} versions`);
    if (f.capabilities.length > MAX_CAPABILITIES) throw fail('BAD_LENGTH', `HELLO allows ${MAX_CAPABILITIES} capabilities`);
    w.u8(f.versions.length);
    for (const v of f.versions) {
      if (!Number.isInteger(v) || v < 1 || v > 0xffff) throw fail('BAD_FIELD', `protocol version ${v} out of range`);
      w.u16(v);
    }
    w.u8(f.capabilities.length);
    for (const c of f.capabilities) {
      if (!isCapability(c)) throw fail('BAD_FIELD', 'capability must be 1..32 printable ASCII characters');
      w.string(c, 8);
    }
    if (f.agent === undefined) w.u8(0);
    else w.u8(1).varBytes(utf8Within(f.agent, MAX_AGENT_BYTES, 'agent'), 8);
  },
  decode(r) {
    const nv = r.u8('version count');
    if (nv < 1 || nv > MAX_VERSIONS) throw fail('BAD_LENGTH', `version count ${nv} not in 1..${MAX_VERSIONS}`);
    const versions: number[] = [];
    for (let i = 0; i < nv; i++) {
      const v = r.u16('version');
      if (v < 1) throw fail('BAD_FIELD', 'protocol version 0');
      versions.push(v);
    }
    const nc = r.u8('capability count');
    if (nc > MAX_CAPABILITIES) throw fail('BAD_LENGTH', `capability count ${nc} exceeds ${MAX_CAPABILITIES}`);
    const capabilities: string[] = [];
    for (let i = 0; i < nc; i++) {
      const b = r.varBytes(8, 1, MAX_CAPABILITY_BYTES, 'capability');
      for (const x of b) if (x < 0x21 || x > 0x7e) throw fail('BAD_FIELD', 'capability is not printable ASCII');
      capabilities.push(String.fromCharCode(...b));
    }
    const frame: HelloFrame = { type: 'HELLO', versions, capabilities };
    if (r.flag('agent flag')) frame.agent = r.utf8(MAX_AGENT_BYTES, 'agent');
    return frame;
  },
};

// ---------------------------------------------------------------------------------------------------
// BUNDLE_REQUEST (type 0x02), client → server: "send me your signed key bundle". Empty body.
export interface BundleRequestFrame {
  type: 'BUNDLE_REQUEST';
}
const bundleRequestCodec: BodyCodec<BundleRequestFrame> = {
  id: 0x02,
  encode() {},
  decode: () => ({ type: 'BUNDLE_REQUEST' }),
};

// ---------------------------------------------------------------------------------------------------
// BUNDLE (type 0x03), server → client, answering the oldest unanswered BUNDLE_REQUEST. The content
// is opaque here: in protocol 2 the bundle answer of PROTOCOL.md §3 (signed bundle v2 and at most
// one one-time prekey; src/session/ encodes and verifies it); bounded by limits.maxEnvelope.
//
//   +------------------------+------------------+
//   | bundleLen u32          | bundle answer    |
//   | 1..maxEnvelope         | bundleLen bytes  |
//   +------------------------+------------------+
export interface BundleFrame {
  type: 'BUNDLE';
  bundle: Uint8Array;
}
const bundleCodec: BodyCodec<BundleFrame> = {
  id: 0x03,
  encode(f, w) {
    if (f.bundle.length < 1) throw fail('BAD_LENGTH', 'empty bundle');
    w.varBytes(f.bundle, 32);
  },
  decode: (r, limits) => ({ type: 'BUNDLE', bundle: r.varBytes(32, 1, limits.maxEnvelope, 'bundle', 'TOO_LARGE') }),
};

// ---------------------------------------------------------------------------------------------------
// DELIVER (type 0x04), client → server: one envelope (INIT or SESSION, PROTOCOL.md §5, §7). Answered
// by a RECEIPT pair or a REJECT carrying the same messageId. `messageId` is the 128-bit id of the
// inner message (the receiving node checks that it matches the decrypted one).
//
//   +----------------+-----------------------+---------------------+
//   | messageId      | envelopeLen u32       | envelope            |
//   | 16 bytes       | 1..maxEnvelope        | envelopeLen bytes   |
//   +----------------+-----------------------+---------------------+
export interface DeliverFrame {
  type: 'DELIVER';
  messageId: Uint8Array;
  envelope: Uint8Array;
}
const deliverCodec: BodyCodec<DeliverFrame> = {
  id: 0x04,
  encode(f, w) {
    checkFixed(f.messageId, MESSAGE_ID_BYTES, 'messageId');
    if (f.envelope.length < 1) throw fail('BAD_LENGTH', 'empty envelope');
    w.bytes(f.messageId).varBytes(f.envelope, 32);
  },
  decode: (r, limits) => ({
    type: 'DELIVER',
    messageId: r.bytes(MESSAGE_ID_BYTES, 'messageId'),
    envelope: r.varBytes(32, 1, limits.maxEnvelope, 'envelope', 'TOO_LARGE'),
  }),
};

// ---------------------------------------------------------------------------------------------------
// RECEIPT (type 0x05), server → client: one or more receipts (protocol 2, PROTOCOL.md §10), each
// answering a DELIVER of this connection and sent only after that message was committed. A
// receipt is a 16-byte MAC under the message's receipt key; the client checks it (src/session/).
// A server may answer several DELIVERs that committed together in one frame.
//
//   +-------------+------------------------------------------+
//   | count u16   | count × ( messageId 16 ‖ mac 16 )        |
//   | 1..256      |                                          |
//   +-------------+------------------------------------------+
//
// count 0 or over maxReceiptsPerFrame is BAD_LENGTH.
export interface ReceiptFrame {
  type: 'RECEIPT';
  receipts: { messageId: Uint8Array; mac: Uint8Array }[];
}
const receiptCodec: BodyCodec<ReceiptFrame> = {
  id: 0x05,
  encode(f, w) {
    const n = f.receipts.length;
    if (n < 1 || n > 0xffff) throw fail('BAD_LENGTH', `RECEIPT carries 1..65535 receipts, got ${n}`);
    w.u16(n);
    for (const r of f.receipts) {
      checkFixed(r.messageId, MESSAGE_ID_BYTES, 'messageId');
      checkFixed(r.mac, RECEIPT_MAC_BYTES, 'mac');
      w.bytes(r.messageId).bytes(r.mac);
    }
  },
  decode(r, limits) {
    const n = r.u16('receipt count');
    const max = limits.maxReceiptsPerFrame ?? DEFAULT_MAX_RECEIPTS_PER_FRAME;
    if (n < 1 || n > max) throw fail('BAD_LENGTH', `receipt count ${n} not in 1..${max}`);
    const receipts: ReceiptFrame['receipts'] = [];
    for (let i = 0; i < n; i++) receipts.push({ messageId: r.bytes(MESSAGE_ID_BYTES, 'messageId'), mac: r.bytes(RECEIPT_MAC_BYTES, 'mac') });
    return { type: 'RECEIPT', receipts };
  },
};

// ---------------------------------------------------------------------------------------------------
// REJECT (type 0x06), either direction: a refusal. About one message when `messageId` is that
// message's id; about the connection (or the oldest BUNDLE_REQUEST) when it is NO_MESSAGE_ID.
// `code` is a RejectCode number (any u16 is accepted: act on `retryable`, not on knowing the code).
//
//   +----------------+----------+-----------+----------------+---------------------+
//   | messageId      | code     | retryable | reasonLen u8   | reason              |
//   | 16 bytes       | u16      | u8 0|1    | 0..200         | UTF-8               |
//   +----------------+----------+-----------+----------------+---------------------+
export interface RejectFrame {
  type: 'REJECT';
  messageId: Uint8Array;
  code: number;
  retryable: boolean;
  reason: string;
}
const rejectCodec: BodyCodec<RejectFrame> = {
  id: 0x06,
  encode(f, w) {
    checkFixed(f.messageId, MESSAGE_ID_BYTES, 'messageId');
    if (!Number.isInteger(f.code) || f.code < 0 || f.code > 0xffff) throw fail('BAD_FIELD', `reject code ${f.code} out of range`);
    w.bytes(f.messageId).u16(f.code).u8(f.retryable ? 1 : 0).varBytes(utf8Within(f.reason, MAX_REASON_BYTES, 'reason'), 8);
  },
  decode: (r) => ({
    type: 'REJECT',
    messageId: r.bytes(MESSAGE_ID_BYTES, 'messageId'),
    code: r.u16('code'),
    retryable: r.flag('retryable'),
    reason: r.utf8(MAX_REASON_BYTES, 'reason'),
  }),
};

// ---------------------------------------------------------------------------------------------------
// PING (type 0x07) and PONG (type 0x08), either direction: liveness. A PONG echoes its PING's nonce.
//
//   +--------------------------+
//   | nonce u64 (8 bytes, BE)  |
//   +--------------------------+
export interface PingFrame {
  type: 'PING';
  nonce: bigint;
}
export interface PongFrame {
  type: 'PONG';
  nonce: bigint;
}
function encodeNonce(nonce: bigint, w: ByteWriter): void {
  if (typeof nonce !== 'bigint' || nonce < 0n || nonce > 0xffff_ffff_ffff_ffffn) throw fail('BAD_FIELD', 'nonce must be a u64');
  const b = new Uint8Array(NONCE_BYTES);
  new DataView(b.buffer).setBigUint64(0, nonce);
  w.bytes(b);
}
function decodeNonce(r: FrameReader): bigint {
  const b = r.bytes(NONCE_BYTES, 'nonce');
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0);
}
const pingCodec: BodyCodec<PingFrame> = {
  id: 0x07,
  encode: (f, w) => encodeNonce(f.nonce, w),
  decode: (r) => ({ type: 'PING', nonce: decodeNonce(r) }),
};
const pongCodec: BodyCodec<PongFrame> = {
  id: 0x08,
  encode: (f, w) => encodeNonce(f.nonce, w),
  decode: (r) => ({ type: 'PONG', nonce: decodeNonce(r) }),
};

// ---------------------------------------------------------------------------------------------------

export type Frame =
  | HelloFrame | BundleRequestFrame | BundleFrame | DeliverFrame | ReceiptFrame | RejectFrame | PingFrame | PongFrame;
export type FrameType = Frame['type'];

type CodecTable = { readonly [K in FrameType]: BodyCodec<Extract<Frame, { type: K }>> };
const CODECS: CodecTable = {
  HELLO: helloCodec,
  BUNDLE_REQUEST: bundleRequestCodec,
  BUNDLE: bundleCodec,
  DELIVER: deliverCodec,
  RECEIPT: receiptCodec,
  REJECT: rejectCodec,
  PING: pingCodec,
  PONG: pongCodec,
};

/** Type byte of each frame type. */
export const FRAME_TYPE_IDS: Readonly<Record<FrameType, number>> = Object.freeze(
  Object.fromEntries(Object.entries(CODECS).map(([k, c]) => [k, c.id])) as Record<FrameType, number>,
);

const BY_ID: ReadonlyMap<number, BodyCodec<Frame>> = new Map(
  Object.values(CODECS).map((c) => [c.id, c as unknown as BodyCodec<Frame>]),
);

/**
 * Encodes a frame. Throws ProtocolError (BAD_FIELD, BAD_LENGTH) for a frame that would not decode,
 * so we never put on the wire what a peer must refuse. Size limits (maxEnvelope) are the sender's to
 * check: the encoder does not know them.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  const codec = CODECS[frame.type] as BodyCodec<Frame> | undefined;
  if (!codec) throw fail('UNKNOWN_TYPE', `unknown frame type ${String(frame.type)}`);
  const w = new ByteWriter().u8(WIRE_VERSION).u8(codec.id);
  codec.encode(frame, w);
  return w.finish();
}

/**
 * Decodes exactly one frame from `bytes`. Throws ProtocolError with TOO_LARGE (frame over
 * maxFrame, or a length over maxEnvelope), TRUNCATED, BAD_VERSION, UNKNOWN_TYPE, BAD_LENGTH,
 * BAD_FIELD or TRAILING_BYTES; never any other error. The frame's byte fields are copies.
 */
export function decodeFrame(bytes: Uint8Array, limits: DecodeLimits): Frame {
  if (bytes.length > limits.maxFrame) throw fail('TOO_LARGE', `frame of ${bytes.length} bytes exceeds ${limits.maxFrame}`);
  if (bytes.length < 1) throw fail('TRUNCATED', 'empty frame');
  if (bytes[0] !== WIRE_VERSION) throw fail('BAD_VERSION', `wire version ${bytes[0]} not supported`);
  if (bytes.length < HEADER_BYTES) throw fail('TRUNCATED', 'truncated frame type');
  const codec = BY_ID.get(bytes[1]!);
  if (!codec) throw fail('UNKNOWN_TYPE', `unknown frame type 0x${bytes[1]!.toString(16)}`);
  const r = new FrameReader(bytes, HEADER_BYTES);
  const frame = codec.decode(r, limits);
  if (r.remaining !== 0) throw fail('TRAILING_BYTES', `${r.remaining} bytes after ${frame.type}`);
  return frame;
}
