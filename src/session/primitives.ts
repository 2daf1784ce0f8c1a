/**
 * The primitives sessions are built from, all from node:crypto except ML-KEM-768
 * (@noble/post-quantum), behind small functions over Uint8Array with their length checks. Nothing
 * here is hand-written cryptography: X25519, HKDF-SHA256, HMAC-SHA256, ChaCha20-Poly1305 and
 * SHA-256 are OpenSSL's; ML-KEM is noble's FIPS 203 implementation.
 */
import {
  createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { SessionError, type SessionErrorCode } from './errors.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;
export const KEM_PUBLIC_BYTES = 1184;
export const KEM_CIPHERTEXT_BYTES = 1088;
export const KEM_SEED_BYTES = 64;
export const ZERO32 = new Uint8Array(32);
export const FF32 = new Uint8Array(32).fill(0xff);
export const ZERO12 = new Uint8Array(12);

const ascii = new TextEncoder();
/** The ASCII bytes of a label (no NUL, no length prefix). */
export const label = (s: string): Uint8Array => ascii.encode(s);

export function checkLength(b: Uint8Array, n: number, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== n) {
    throw new SessionError('BAD_LENGTH', `${what} must be ${n} bytes, got ${b instanceof Uint8Array ? b.length : typeof b}`);
  }
}

const u8 = (b: Buffer | ArrayBuffer): Uint8Array => (b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return u8(h.digest());
}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return u8(h.digest());
}

/** HKDF-SHA256 (RFC 5869). */
export function hkdf(salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  return u8(hkdfSync('sha256', ikm, salt, info, length));
}

/** ChaCha20-Poly1305: ciphertext ‖ 16-byte tag. */
export function aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  const out = new Uint8Array(plaintext.length + AEAD_TAG_BYTES);
  out.set(c.update(plaintext), 0);
  c.final();
  out.set(c.getAuthTag(), plaintext.length);
  return out;
}

/** Inverse of aeadSeal; throws `code` (DECRYPT_FAILED unless said otherwise) when the tag does not verify. */
export function aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array, what: string, code: SessionErrorCode = 'DECRYPT_FAILED'): Uint8Array {
  if (sealed.length < AEAD_TAG_BYTES) throw new SessionError(code, `${what} shorter than its tag`);
  const n = sealed.length - AEAD_TAG_BYTES;
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: AEAD_TAG_BYTES });
  d.setAAD(ad, { plaintextLength: n });
  d.setAuthTag(sealed.subarray(n));
  const plain = d.update(sealed.subarray(0, n));
  try {
    d.final();
  } catch (err) {
    plain.fill(0);
    throw new SessionError(code, `${what} does not authenticate`, { cause: err });
  }
  return u8(plain);
}

// X25519 keys as DER, so a raw 32-byte secret (RFC 7748 clamps it) imports without its public half.
const PKCS8_X25519 = Uint8Array.from(Buffer.from('302e020100300506032b656e04220420', 'hex'));
const SPKI_X25519 = Uint8Array.from(Buffer.from('302a300506032b656e032100', 'hex'));

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function x25519Private(secret: Uint8Array): KeyObject {
  checkLength(secret, KEY_BYTES, 'X25519 secret key');
  return createPrivateKey({ key: Buffer.from(concat(PKCS8_X25519, secret)), format: 'der', type: 'pkcs8' });
}

function x25519PublicObject(pub: Uint8Array): KeyObject {
  checkLength(pub, KEY_BYTES, 'X25519 public key');
  return createPublicKey({ key: Buffer.from(concat(SPKI_X25519, pub)), format: 'der', type: 'spki' });
}

const BASE_POINT = (() => {
  const b = new Uint8Array(32);
  b[0] = 9;
  return b;
})();

/** pub(sk) = X25519(sk, 9). */
export function x25519Public(secret: Uint8Array): Uint8Array {
  return u8(diffieHellman({ privateKey: x25519Private(secret), publicKey: x25519PublicObject(BASE_POINT) }));
}

export interface DhKeyPair {
  secret: Uint8Array;
  public: Uint8Array;
}

export function x25519KeyPair(secret: Uint8Array): DhKeyPair {
  return { secret: Uint8Array.from(secret), public: x25519Public(secret) };
}

/**
 * X25519(secret, pub). Throws `code` when the result is all zeros (a small-order public key), which
 * OpenSSL refuses to derive; the explicit check below keeps that true whatever the library does.
 */
export function dh(secret: Uint8Array, pub: Uint8Array, code: SessionErrorCode, what: string): Uint8Array {
  let out: Uint8Array;
  try {
    out = u8(diffieHellman({ privateKey: x25519Private(secret), publicKey: x25519PublicObject(pub) }));
  } catch (err) {
    if (err instanceof SessionError) throw err;
    throw new SessionError(code, `${what}: the public key gives an all-zero shared secret`, { cause: err });
  }
  let acc = 0;
  for (const b of out) acc |= b;
  if (acc === 0) throw new SessionError(code, `${what}: all-zero shared secret`);
  return out;
}

/** ML-KEM-768 key pair from its 64-byte seed d ‖ z (FIPS 203 KeyGen_internal). */
export function kemKeyPair(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  checkLength(seed, KEM_SEED_BYTES, 'ML-KEM seed');
  return ml_kem768.keygen(Uint8Array.from(seed));
}

/** ML-KEM-768 Encaps_internal(ek, m): (shared secret, ciphertext). */
export function kemEncapsulate(publicKey: Uint8Array, m: Uint8Array): { sharedSecret: Uint8Array; cipherText: Uint8Array } {
  checkLength(publicKey, KEM_PUBLIC_BYTES, 'ML-KEM public key');
  checkLength(m, 32, 'ML-KEM encapsulation randomness');
  try {
    return ml_kem768.encapsulate(publicKey, Uint8Array.from(m));
  } catch (err) {
    throw new SessionError('BAD_BUNDLE', 'ML-KEM public key is not valid (FIPS 203 modulus check)', { cause: err });
  }
}

/** ML-KEM-768 Decaps: implicit rejection, so a wrong ciphertext gives an unrelated secret, not an error. */
export function kemDecapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  checkLength(cipherText, KEM_CIPHERTEXT_BYTES, 'ML-KEM ciphertext');
  return ml_kem768.decapsulate(cipherText, secretKey);
}

export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (const x of b) acc |= x;
  return acc === 0;
}

export function u64be(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}
