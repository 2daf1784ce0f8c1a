/**
 * The RECEIPTS envelope (PROTOCOL.md §14.7): receipts (PROTOCOL.md §10) for messages a recipient
 * fetched from its mailbox, left in the public queue of the *sender's* providers when the sender's
 * node cannot be reached to take them as pushed RECEIPT frames. Sealed to the sender's identity
 * key, so its provider learns only that receipts came; the MACs inside prove themselves to the
 * sender and to nobody else, so the envelope needs no signature (it stays deniable). Pure.
 *
 *   off  size  field
 *   0    1     type = 0x23 (envelope version 2, kind RECEIPTS)
 *   1    32    E, an ephemeral X25519 public key (fresh per envelope)
 *   33   991   AEAD(K, nonce = 12 zero bytes, body, ad = envelope[0..33] ‖ S)
 *
 *   body = u16 n (1..30) ‖ n × (message id 16 ‖ MAC 16) ‖ zeros, 975 bytes in all
 *   S    = the X25519 form of the addressee's Ed25519 identity key (RFC 7748's birational map, as
 *          libsodium's crypto_sign_ed25519_pk_to_curve25519; the addressee's secret is
 *          crypto_sign_ed25519_sk_to_curve25519 of its seed)
 *   K    = HKDF-SHA256(salt = E ‖ S, ikm = X25519(e, S), info = "onionpost/v2/receipts-envelope", L = 32)
 *
 * 1 + 32 + 975 + 16 = 1024 bytes: the smallest padding bucket, like a short SESSION envelope.
 */
import { identityKeyToX25519, identitySecretToX25519 } from '../crypto/index.js';
import { SessionError } from './errors.js';
import { AEAD_TAG_BYTES, ZERO12, aeadOpen, aeadSeal, dh, hkdf, label, x25519Public } from './primitives.js';

export const KIND_RECEIPTS = 0x23;
export const RECEIPTS_ENVELOPE_BYTES = 1024;
const HEAD = 33;
const BODY_BYTES = RECEIPTS_ENVELOPE_BYTES - HEAD - AEAD_TAG_BYTES;
/** Receipts one RECEIPTS envelope carries at most. */
export const MAX_RECEIPTS_PER_ENVELOPE = Math.floor((BODY_BYTES - 2) / 32);
const INFO = label('onionpost/v2/receipts-envelope');

export interface PushedReceipt {
  messageId: Uint8Array;
  mac: Uint8Array;
}

function key(e: Uint8Array, ePub: Uint8Array, s: Uint8Array): Uint8Array {
  return hkdf(concat(ePub, s), dh(e, s, 'DECRYPT_FAILED', 'receipts envelope'), INFO, 32);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * One or more RECEIPTS envelopes for `addresseeIdentityKey` (the sender of the messages), at most
 * MAX_RECEIPTS_PER_ENVELOPE receipts each. `random(32)` gives each envelope's ephemeral secret.
 */
export function sealReceipts(addresseeIdentityKey: Uint8Array, receipts: readonly PushedReceipt[], random: (n: number) => Uint8Array): Uint8Array[] {
  const s = identityKeyToX25519(addresseeIdentityKey);
  const out: Uint8Array[] = [];
  for (let i = 0; i < receipts.length; i += MAX_RECEIPTS_PER_ENVELOPE) {
    const chunk = receipts.slice(i, i + MAX_RECEIPTS_PER_ENVELOPE);
    const body = new Uint8Array(BODY_BYTES);
    body[0] = chunk.length >> 8;
    body[1] = chunk.length & 0xff;
    chunk.forEach((r, j) => {
      if (r.messageId.length !== 16 || r.mac.length !== 16) throw new SessionError('BAD_MESSAGE', 'a receipt is a 16-byte id and a 16-byte MAC');
      body.set(r.messageId, 2 + 32 * j);
      body.set(r.mac, 2 + 32 * j + 16);
    });
    const e = random(32);
    const ePub = x25519Public(e);
    const head = concat(Uint8Array.of(KIND_RECEIPTS), ePub);
    out.push(concat(head, aeadSeal(key(e, ePub, s), ZERO12, body, concat(head, s))));
  }
  return out;
}

/**
 * The receipts in a RECEIPTS envelope sealed to `identity` (its Ed25519 seed and key). Throws
 * SessionError BAD_ENVELOPE (length, kind), DECRYPT_FAILED (not for us, or altered) or
 * BAD_MESSAGE (a count out of range, filler not zero).
 */
export function openReceipts(identity: { signingKey: Uint8Array; identityKey: Uint8Array }, envelope: Uint8Array): PushedReceipt[] {
  if (envelope.length !== RECEIPTS_ENVELOPE_BYTES || envelope[0] !== KIND_RECEIPTS) throw new SessionError('BAD_ENVELOPE', 'not a RECEIPTS envelope');
  const s = identityKeyToX25519(identity.identityKey);
  const secret = identitySecretToX25519(identity);
  const head = envelope.subarray(0, HEAD);
  const ePub = envelope.subarray(1, HEAD);
  const body = aeadOpen(hkdf(concat(ePub, s), dh(secret, ePub, 'DECRYPT_FAILED', 'receipts envelope'), INFO, 32), ZERO12, envelope.subarray(HEAD), concat(head, s), 'receipts envelope');
  const n = (body[0]! << 8) | body[1]!;
  if (n < 1 || n > MAX_RECEIPTS_PER_ENVELOPE) throw new SessionError('BAD_MESSAGE', `receipt count ${n} out of range`);
  for (let i = 2 + 32 * n; i < body.length; i++) if (body[i] !== 0) throw new SessionError('BAD_MESSAGE', 'non-zero filler');
  return Array.from({ length: n }, (_, j) => ({ messageId: body.slice(2 + 32 * j, 18 + 32 * j), mac: body.slice(18 + 32 * j, 34 + 32 * j) }));
}
