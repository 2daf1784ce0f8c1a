/**
 * Envelope kinds and the SESSION envelope (PROTOCOL.md §7). An envelope's whole length is a padding
 * bucket; its first byte is 0x2K: high nibble the envelope version (2), low nibble the kind.
 *
 * SESSION envelope:
 *
 *   off  size    field
 *   0    1       type = 0x22
 *   1    16      tag = HMAC(TK_s, u64be(k))[0..16]
 *   17   68      encrypted header: HN (12) ‖ ChaCha20-Poly1305(HKs, HN, DHs ‖ u32 PN ‖ u32 N, "")
 *   85   P + 16  body: ChaCha20-Poly1305(AK, HN, u32 n ‖ inner ‖ zeros, IK_A ‖ IK_B ‖ bytes 0..85)
 */
import { ByteWriter, bytesEqual } from '../bytes.js';
import { secureRandomBytes, type RandomBytes } from '../crypto/index.js';
import { PADDING_BUCKETS, SEAL_OVERHEAD } from '../limits.js';
import { SessionError } from './errors.js';
import { checkTimes, decodeMessage, encodeMessage, type SessionMessage } from './message.js';
import { sha256 } from './primitives.js';
import { MAX_SKIP, TAG_BYTES, ratchetOpen, ratchetSeal, tagFor, type SessionState, type SkippedKey } from './ratchet.js';

export const ENVELOPE_VERSION = 2;
export const KIND_INIT = 0x21;
export const KIND_SESSION = 0x22;
/** Bytes of a SESSION envelope before its body: type, tag, encrypted header. */
export const SESSION_PREFIX_BYTES = 1 + TAG_BYTES + 68;

export type EnvelopeKind = 'init' | 'session';

/** True when `n` is a length a version-2 envelope can have. The cheapest check of all. */
export function isEnvelopeLength(n: number): boolean {
  return (PADDING_BUCKETS as readonly number[]).includes(n);
}

/**
 * The kind of an envelope, from its length and first byte. Throws UNSUPPORTED_VERSION for a
 * version-1 sealed envelope (a bucket + 48 bytes) or another version's type byte, BAD_ENVELOPE for
 * anything else that is not a version-2 envelope.
 */
export function envelopeKind(envelope: Uint8Array): EnvelopeKind {
  if (!isEnvelopeLength(envelope.length)) {
    if ((PADDING_BUCKETS as readonly number[]).includes(envelope.length - SEAL_OVERHEAD)) {
      throw new SessionError('UNSUPPORTED_VERSION', `envelope version 1 is not supported; this node speaks version ${ENVELOPE_VERSION}`);
    }
    throw new SessionError('BAD_ENVELOPE', `envelope of ${envelope.length} bytes is not a bucket size`);
  }
  const type = envelope[0]!;
  if (type >> 4 !== ENVELOPE_VERSION) {
    throw new SessionError('UNSUPPORTED_VERSION', `envelope version ${type >> 4} is not supported; this node speaks version ${ENVELOPE_VERSION}`);
  }
  if (type === KIND_INIT) return 'init';
  if (type === KIND_SESSION) return 'session';
  throw new SessionError('BAD_ENVELOPE', `unknown envelope kind 0x${type.toString(16)}`);
}

/** The tag of a SESSION envelope (a view into it). Call after `envelopeKind` said 'session'. */
export function sessionTag(envelope: Uint8Array): Uint8Array {
  return envelope.subarray(1, 1 + TAG_BYTES);
}

/**
 * The key under which a receiver records an accepted envelope for dedup (PROTOCOL.md §8.2): a
 * SESSION envelope's tag, an INIT's SHA256(envelope)[0..16].
 */
export function seenKey(envelope: Uint8Array): Uint8Array {
  return envelopeKind(envelope) === 'session' ? Uint8Array.from(sessionTag(envelope)) : sha256(envelope).slice(0, 16);
}

export interface Encrypted {
  state: SessionState;
  envelope: Uint8Array;
  envelopeHash: Uint8Array;
  /** Keep with the queued message until its receipt arrives (PROTOCOL.md §10). */
  receiptKey: Uint8Array;
  /** The message's tag counter and tag. */
  k: number;
  tag: Uint8Array;
}

/** Encrypts one message as a SESSION envelope. `state` is unchanged; store the returned one. */
export function encrypt(state: SessionState, message: SessionMessage, opts: { random?: RandomBytes } = {}): Encrypted {
  const random = opts.random ?? secureRandomBytes;
  const inner = encodeMessage(message);
  let tag: Uint8Array = new Uint8Array(0);
  const sealed = ratchetSeal(state, (k) => {
    tag = tagFor(state.sendTagKey, k);
    return new ByteWriter().u8(KIND_SESSION).bytes(tag).finish();
  }, inner, random);
  return { state: sealed.state, envelope: sealed.envelope, envelopeHash: sha256(sealed.envelope), receiptKey: sealed.receiptKey, k: sealed.k, tag };
}

export interface ReceiveOptions {
  /** The counter the tag window gave for this envelope's tag. */
  k: number;
  /** The stored skipped key for k (needed when k ≤ state.recvHighest). */
  skipped?: SkippedKey | null;
  now: number;
  maxClockSkewMs: number;
  maxTtlMs: number;
  /** MAX_SKIP; default 1000. */
  maxSkip?: number;
  random?: RandomBytes;
}

export interface Decrypted {
  state: SessionState;
  message: SessionMessage;
  envelopeHash: Uint8Array;
  /** The receipt key; compute the receipt only after committing (PROTOCOL.md §10). */
  receiptKey: Uint8Array;
  k: number;
  tag: Uint8Array;
  /** Keys to store (this message skipped them). */
  skippedAdded: SkippedKey[];
  /** The stored skipped key that was used (delete it), or null. */
  skippedUsed: number | null;
}

/**
 * Decrypts a SESSION envelope of `state`'s session. Nothing changes unless it returns: on any
 * failure it throws a SessionError and the caller keeps its state.
 */
export function decrypt(state: SessionState, envelope: Uint8Array, opts: ReceiveOptions): Decrypted {
  if (envelopeKind(envelope) !== 'session') throw new SessionError('BAD_ENVELOPE', 'not a SESSION envelope');
  const tag = sessionTag(envelope);
  if (!Number.isSafeInteger(opts.k) || opts.k < 0 || !bytesEqual(tag, tagFor(state.recvTagKey, opts.k))) {
    throw new SessionError('BAD_TAG', `the envelope's tag is not this session's tag for message ${opts.k}`);
  }
  const opened = ratchetOpen(state, envelope, 1 + TAG_BYTES, {
    k: opts.k,
    skipped: opts.skipped ?? null,
    skippedExpiresAt: opts.now + opts.maxTtlMs + opts.maxClockSkewMs,
    maxSkip: opts.maxSkip ?? MAX_SKIP,
    random: opts.random ?? secureRandomBytes,
  });
  const message = decodeMessage(opened.inner);
  checkTimes(message, opts);
  return {
    state: opened.state, message, envelopeHash: sha256(envelope), receiptKey: opened.receiptKey, k: opts.k, tag: Uint8Array.from(tag),
    skippedAdded: opened.skippedAdded, skippedUsed: opened.skippedUsed,
  };
}
