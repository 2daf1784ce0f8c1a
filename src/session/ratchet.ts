/**
 * The Double Ratchet with header encryption (Signal's specification, §4), with the changes of
 * PROTOCOL.md §6.4: skipped keys are found by their tag counter, and the body nonce is the random
 * header nonce. Pure functions: a step returns a new state and never changes the one it was given,
 * so a message that fails anywhere leaves the caller's state exactly as it was.
 *
 *   KDF_RK(rk, dh)  = HKDF(salt = rk, ikm = dh, info = "onionpost/v2/ratchet", 96) → rk' ‖ ck ‖ nhk
 *   KDF_CK(ck)      = (HMAC(ck, 0x02), mk = HMAC(ck, 0x01))
 *   MSG_KEYS(mk)    = HKDF(salt = 0^32, ikm = mk, info = "onionpost/v2/message", 64) → AK ‖ RCK
 *   header          = ratchet public (32) ‖ u32 PN ‖ u32 N
 *   encrypted header = HN (12, random) ‖ ChaCha20-Poly1305(HK, HN, header, "")     68 bytes
 *   body            = ChaCha20-Poly1305(AK, HN, padded, IK_A ‖ IK_B ‖ every envelope byte before it)
 *   tag(k)          = HMAC(TK, u64be(k))[0..16]
 */
import { ByteReader, ByteWriter } from '../bytes.js';
import type { IdentityKey, RandomBytes } from '../crypto/index.js';
import { SessionError } from './errors.js';
import { pad, paddedLength, unpad } from './message.js';
import {
  KEY_BYTES, NONCE_BYTES, ZERO32, aeadOpen, aeadSeal, dh, hkdf, hmac, label, u64be, x25519KeyPair, type DhKeyPair,
} from './primitives.js';

export const HEADER_BYTES = 40;
export const ENCRYPTED_HEADER_BYTES = NONCE_BYTES + HEADER_BYTES + 16;
export const TAG_BYTES = 16;
/** Default MAX_SKIP: most message keys one message may make us skip (and store, per session). */
export const MAX_SKIP = 1000;

const RATCHET_INFO = label('onionpost/v2/ratchet');
const MESSAGE_INFO = label('onionpost/v2/message');
const CK_MESSAGE = Uint8Array.of(0x01);
const CK_NEXT = Uint8Array.of(0x02);
const EMPTY = new Uint8Array(0);

export type Role = 'initiator' | 'responder';

/**
 * One side's state of one session. Immutable by convention: functions return a new object. Byte
 * arrays are never written in place, so two states may share them.
 */
export interface SessionState {
  readonly role: Role;
  /** 16 bytes naming the session locally (the first bytes of the agreement's transcript hash). */
  readonly id: Uint8Array;
  readonly initiatorIdentity: IdentityKey;
  readonly responderIdentity: IdentityKey;
  readonly rootKey: Uint8Array;
  /** Our current ratchet key pair (DHs). */
  readonly dhSelf: DhKeyPair;
  /** The peer's current ratchet public key (DHr); null until we received one. */
  readonly dhRemote: Uint8Array | null;
  readonly sendChain: Uint8Array | null;
  readonly recvChain: Uint8Array | null;
  readonly ns: number;
  readonly nr: number;
  readonly pn: number;
  readonly headerKeySend: Uint8Array | null;
  readonly headerKeyRecv: Uint8Array | null;
  readonly nextHeaderKeySend: Uint8Array;
  readonly nextHeaderKeyRecv: Uint8Array;
  /** Ks: the tag counter of the next message we send (all chains together). */
  readonly sendCounter: number;
  /** RH: the highest tag counter received from the peer, −1 before any. */
  readonly recvHighest: number;
  readonly sendTagKey: Uint8Array;
  readonly recvTagKey: Uint8Array;
}

/** The key of a message that was skipped (sent, not yet received), stored until it arrives or expires. */
export interface SkippedKey {
  /** Tag counter of the skipped message. */
  k: number;
  /** Its tag, TAG(recvTagKey, k), under which the receiver's window lists it. */
  tag: Uint8Array;
  headerKey: Uint8Array;
  /** Its N in its chain. */
  n: number;
  messageKey: Uint8Array;
  /** When the store may drop it: no message sent before it can still be valid then. */
  expiresAt: number;
}

export function kdfRoot(rootKey: Uint8Array, dhOut: Uint8Array): { rootKey: Uint8Array; chainKey: Uint8Array; nextHeaderKey: Uint8Array } {
  const okm = hkdf(rootKey, dhOut, RATCHET_INFO, 96);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64), nextHeaderKey: okm.slice(64, 96) };
}

export function kdfChain(chainKey: Uint8Array): { chainKey: Uint8Array; messageKey: Uint8Array } {
  return { chainKey: hmac(chainKey, CK_NEXT), messageKey: hmac(chainKey, CK_MESSAGE) };
}

export function messageKeys(messageKey: Uint8Array): { aeadKey: Uint8Array; receiptKey: Uint8Array } {
  const okm = hkdf(ZERO32, messageKey, MESSAGE_INFO, 64);
  return { aeadKey: okm.slice(0, 32), receiptKey: okm.slice(32, 64) };
}

export function tagFor(tagKey: Uint8Array, k: number): Uint8Array {
  return hmac(tagKey, u64be(k)).slice(0, TAG_BYTES);
}

export interface Header {
  dh: Uint8Array;
  pn: number;
  n: number;
}

export function encodeHeader(h: Header): Uint8Array {
  return new ByteWriter().bytes(h.dh).u32(h.pn).u32(h.n).finish();
}

function decodeHeader(b: Uint8Array): Header {
  const r = new ByteReader(b, (what) => new SessionError('BAD_HEADER', `bad header: ${what}`));
  const h = { dh: Uint8Array.from(r.bytes(32, 'ratchet key')), pn: r.u32('PN'), n: r.u32('N') };
  r.end('header');
  return h;
}

function tryHeader(headerKey: Uint8Array | null, encrypted: Uint8Array): Header | null {
  if (!headerKey) return null;
  let plain: Uint8Array;
  try {
    plain = aeadOpen(headerKey, encrypted.subarray(0, NONCE_BYTES), encrypted.subarray(NONCE_BYTES), EMPTY, 'header');
  } catch (err) {
    if (err instanceof SessionError) return null;
    throw err;
  }
  return decodeHeader(plain);
}

/** Associated data of every body: both identity keys, initiator first, then the envelope bytes before the body. */
function bodyAd(s: SessionState, head: Uint8Array): Uint8Array {
  return new ByteWriter().bytes(s.initiatorIdentity).bytes(s.responderIdentity).bytes(head).finish();
}

export interface Sealed {
  state: SessionState;
  envelope: Uint8Array;
  receiptKey: Uint8Array;
  /** Tag counter of the message. */
  k: number;
}

/**
 * One ratchet send (PROTOCOL.md §6.3): `prefix(k)` returns the envelope bytes before the encrypted
 * header for tag counter k; the envelope is padded so its whole length is a bucket.
 */
export function ratchetSeal(s: SessionState, prefix: (k: number) => Uint8Array, inner: Uint8Array, random: RandomBytes): Sealed {
  if (!s.sendChain || !s.headerKeySend) throw new SessionError('NOT_READY', 'this session cannot send before it received its first message');
  const { chainKey, messageKey } = kdfChain(s.sendChain);
  const { aeadKey, receiptKey } = messageKeys(messageKey);
  const header = encodeHeader({ dh: s.dhSelf.public, pn: s.pn, n: s.ns });
  const nonce = random(NONCE_BYTES);
  const k = s.sendCounter;
  const head = new ByteWriter().bytes(prefix(k)).bytes(nonce).bytes(aeadSeal(s.headerKeySend, nonce, header, EMPTY)).finish();
  const padded = pad(inner, paddedLength(head.length, inner.length));
  const body = aeadSeal(aeadKey, nonce, padded, bodyAd(s, head));
  const envelope = new ByteWriter().bytes(head).bytes(body).finish();
  return { state: { ...s, sendChain: chainKey, ns: s.ns + 1, sendCounter: k + 1 }, envelope, receiptKey, k };
}

export interface Opened {
  state: SessionState;
  /** The inner message bytes (padding removed). */
  inner: Uint8Array;
  receiptKey: Uint8Array;
  /** Keys of messages this one made us skip, to store (each under its tag). */
  skippedAdded: SkippedKey[];
  /** The counter of the stored skipped key this message used (delete it), or null. */
  skippedUsed: number | null;
}

export interface OpenOptions {
  /** The message's tag counter, from the receiver's tag window. */
  k: number;
  /** The stored skipped key for k, when k ≤ state.recvHighest. */
  skipped?: SkippedKey | null;
  /** expires_at given to keys skipped now. */
  skippedExpiresAt: number;
  maxSkip?: number;
  random: RandomBytes;
}

/**
 * One ratchet receive (PROTOCOL.md §6.4). `headerAt` is the offset of the encrypted header in
 * `envelope`; the body is everything after it.
 */
export function ratchetOpen(s0: SessionState, envelope: Uint8Array, headerAt: number, opts: OpenOptions): Opened {
  const maxSkip = opts.maxSkip ?? MAX_SKIP;
  const bodyAt = headerAt + ENCRYPTED_HEADER_BYTES;
  if (envelope.length < bodyAt + 16) throw new SessionError('BAD_ENVELOPE', 'envelope shorter than its header and body tag');
  const encryptedHeader = envelope.subarray(headerAt, bodyAt);
  const nonce = encryptedHeader.subarray(0, NONCE_BYTES);
  const head = envelope.subarray(0, bodyAt);
  const body = envelope.subarray(bodyAt);
  const openBody = (aeadKey: Uint8Array) => unpad(aeadOpen(aeadKey, nonce, body, bodyAd(s0, head), 'message body'));

  if (opts.k <= s0.recvHighest) {
    const sk = opts.skipped;
    if (!sk || sk.k !== opts.k) throw new SessionError('BAD_TAG', `no key is kept for message ${opts.k} (already received, or dropped)`);
    const h = tryHeader(sk.headerKey, encryptedHeader);
    if (!h || h.n !== sk.n) throw new SessionError('DECRYPT_FAILED', 'header does not open with the skipped key of this counter');
    const { aeadKey, receiptKey } = messageKeys(sk.messageKey);
    return { state: s0, inner: openBody(aeadKey), receiptKey, skippedAdded: [], skippedUsed: sk.k };
  }

  let s: { -readonly [K in keyof SessionState]: SessionState[K] } = { ...s0 };
  let step = false;
  let h = tryHeader(s.headerKeyRecv, encryptedHeader);
  if (!h) {
    h = tryHeader(s.nextHeaderKeyRecv, encryptedHeader);
    step = true;
  }
  if (!h) throw new SessionError('DECRYPT_FAILED', 'header opens with neither the current nor the next header key');
  const header = h;
  const skipped: SkippedKey[] = [];
  const skip = (until: number) => {
    if (until - s.nr > maxSkip) throw new SessionError('TOO_MANY_SKIPPED', `message would skip ${until - s.nr} keys (at most ${maxSkip})`);
    if (!s.recvChain) return;
    while (s.nr < until) {
      const { chainKey, messageKey } = kdfChain(s.recvChain);
      const k = s0.recvHighest + 1 + skipped.length;
      skipped.push({ k, tag: tagFor(s.recvTagKey, k), headerKey: s.headerKeyRecv!, n: s.nr, messageKey, expiresAt: opts.skippedExpiresAt });
      s.recvChain = chainKey;
      s.nr += 1;
    }
  };
  if (step) {
    skip(header.pn);
    const remote = header.dh;
    const recv = kdfRoot(s.rootKey, dh(s.dhSelf.secret, remote, 'BAD_HEADER', 'ratchet step'));
    const self = x25519KeyPair(opts.random(KEY_BYTES));
    const send = kdfRoot(recv.rootKey, dh(self.secret, remote, 'BAD_HEADER', 'ratchet step'));
    s = {
      ...s,
      pn: s.ns, ns: 0, nr: 0,
      headerKeySend: s.nextHeaderKeySend, headerKeyRecv: s.nextHeaderKeyRecv,
      dhRemote: remote,
      recvChain: recv.chainKey, nextHeaderKeyRecv: recv.nextHeaderKey,
      dhSelf: self,
      rootKey: send.rootKey, sendChain: send.chainKey, nextHeaderKeySend: send.nextHeaderKey,
    };
  }
  skip(header.n);
  if (s.nr !== header.n) throw new SessionError('BAD_HEADER', `header N ${header.n} is behind the chain (at ${s.nr})`);
  if (opts.k !== s0.recvHighest + 1 + skipped.length) {
    throw new SessionError('BAD_HEADER', `tag counter ${opts.k} does not match the header (expected ${s0.recvHighest + 1 + skipped.length})`);
  }
  const { chainKey, messageKey } = kdfChain(s.recvChain!);
  const { aeadKey, receiptKey } = messageKeys(messageKey);
  const inner = openBody(aeadKey);
  s.recvChain = chainKey;
  s.nr += 1;
  s.recvHighest = opts.k;
  return { state: s, inner, receiptKey, skippedAdded: skipped, skippedUsed: null };
}

/** The peer's identity key in a session. */
export function peerIdentity(s: SessionState): IdentityKey {
  return s.role === 'initiator' ? s.responderIdentity : s.initiatorIdentity;
}
