/**
 * Identity and encryption keys, and the v3 onion address derived from the identity key.
 *
 * The identity key is an Ed25519 key pair; its public half *is* the onion address, because the node
 * publishes its onion service with that same key (ADD_ONION ED25519-V3), so Tor authenticates the
 * identity on every connection. Encryption uses a separate X25519 key pair, never the signing key.
 */
import { createHash } from 'node:crypto';
import { CryptoError } from './errors.js';
import { ed25519Sign, ed25519Verify } from './native.js';
import { checkLength, secureRandomBytes, sodium, type RandomBytes } from './sodium.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** 32-byte Ed25519 public key of a user: their identity. */
export type IdentityKey = Brand<Uint8Array, 'IdentityKey'>;
/** 32-byte X25519 public key envelopes are sealed to. */
export type EncryptionKey = Brand<Uint8Array, 'EncryptionKey'>;
/** `<56 base32 chars>.onion`, lower case. */
export type OnionAddress = Brand<string, 'OnionAddress'>;

export interface Identity {
  /** 32-byte Ed25519 seed: the one secret the identity key derives from. */
  readonly seed: Uint8Array;
  readonly identityKey: IdentityKey;
  /** libsodium's 64-byte signing key (seed ‖ public key). */
  readonly signingKey: Uint8Array;
  readonly encryptionKey: EncryptionKey;
  /** 32-byte X25519 secret key. */
  readonly encryptionSecret: Uint8Array;
  readonly onion: OnionAddress;
}

/** Builds an identity from its two secrets (the Ed25519 seed and the X25519 secret key). */
export function identityFromSecrets(seed: Uint8Array, encryptionSecret: Uint8Array): Identity {
  checkLength(seed, 32, 'identity seed');
  checkLength(encryptionSecret, 32, 'encryption secret key');
  const s = sodium();
  const kp = s.crypto_sign_seed_keypair(seed);
  const encryptionKey = s.crypto_scalarmult_base(encryptionSecret) as EncryptionKey;
  const identityKey = kp.publicKey as IdentityKey;
  return {
    seed: Uint8Array.from(seed),
    identityKey,
    signingKey: kp.privateKey,
    encryptionKey,
    encryptionSecret: Uint8Array.from(encryptionSecret),
    onion: onionAddress(identityKey),
  };
}

/**
 * The onion address of an onion-service key that is not an identity: the Ed25519 public key of
 * `seed` (a hidden node's direct onion, issue 11; published with `onionKeyBlob(seed)`).
 */
export function onionOfSeed(seed: Uint8Array): OnionAddress {
  checkLength(seed, 32, 'onion key seed');
  return onionAddress(sodium().crypto_sign_seed_keypair(seed).publicKey as IdentityKey);
}

/** A fresh identity from 64 random bytes. */
export function generateIdentity(random: RandomBytes = secureRandomBytes): Identity {
  return identityFromSecrets(random(32), random(32));
}

/** A new X25519 encryption key for the same identity (encryption-key rotation). */
export function withNewEncryptionKey(id: Identity, random: RandomBytes = secureRandomBytes): Identity {
  return identityFromSecrets(id.seed, random(32));
}

const ONION_CHECKSUM_PREFIX = new TextEncoder().encode('.onion checksum');
const ONION_VERSION = 0x03;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function onionChecksum(pub: Uint8Array): Uint8Array {
  const h = createHash('sha3-256');
  h.update(ONION_CHECKSUM_PREFIX);
  h.update(pub);
  h.update(Uint8Array.of(ONION_VERSION));
  return new Uint8Array(h.digest()).subarray(0, 2);
}

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

function unbase32(s: string): Uint8Array | undefined {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of s) {
    const v = BASE32.indexOf(c);
    if (v < 0) return undefined;
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

/** The v3 onion address of an identity key: base32(pubkey ‖ checksum[0..2] ‖ 0x03) + ".onion" (rend-spec-v3 §6). */
export function onionAddress(identityKey: Uint8Array): OnionAddress {
  checkLength(identityKey, 32, 'identity key');
  const raw = new Uint8Array(35);
  raw.set(identityKey, 0);
  raw.set(onionChecksum(identityKey), 32);
  raw[34] = ONION_VERSION;
  return `${base32(raw)}.onion` as OnionAddress;
}

/**
 * Parses `xxxx.onion` (or the bare 56 characters, any case) and returns the identity key it encodes.
 * Throws BAD_ONION_ADDRESS on a wrong length, alphabet, version byte or checksum.
 */
export function parseOnionAddress(input: string): { onion: OnionAddress; identityKey: IdentityKey } {
  const bare = input.trim().toLowerCase().replace(/\.onion$/, '');
  if (bare.length !== 56) throw new CryptoError('BAD_ONION_ADDRESS', `not a v3 onion address: expected 56 characters, got ${bare.length}`);
  const raw = unbase32(bare);
  if (!raw || raw.length !== 35) throw new CryptoError('BAD_ONION_ADDRESS', 'not a v3 onion address: invalid base32');
  if (raw[34] !== ONION_VERSION) throw new CryptoError('BAD_ONION_ADDRESS', `unsupported onion address version ${raw[34]}`);
  const pub = raw.subarray(0, 32);
  const sum = onionChecksum(pub);
  if (sum[0] !== raw[32] || sum[1] !== raw[33]) throw new CryptoError('BAD_ONION_ADDRESS', 'onion address checksum mismatch (mistyped?)');
  return { onion: `${bare}.onion` as OnionAddress, identityKey: Uint8Array.from(pub) as IdentityKey };
}

export function isOnionAddress(input: string): boolean {
  // Most inputs that are not (aliases, names) fail this at once, without building an error to catch.
  if (!/^[a-z2-7]{56}(\.onion)?$/i.test(input.trim())) return false;
  try {
    parseOnionAddress(input);
    return true;
  } catch {
    return false;
  }
}

/**
 * Tor's ED25519-V3 secret key for ADD_ONION: SHA-512(seed), clamped (h[0] &= 248, h[31] &= 127,
 * h[31] |= 64), all 64 bytes. Tor derives the same public key from it, so the ServiceID it returns
 * equals `onionAddress(identityKey)`.
 */
export function expandedSecretKey(seed: Uint8Array): Uint8Array {
  checkLength(seed, 32, 'identity seed');
  const h = new Uint8Array(createHash('sha512').update(seed).digest());
  h[0]! &= 248;
  h[31]! &= 127;
  h[31]! |= 64;
  return h;
}

/** The key argument of ADD_ONION: `ED25519-V3:<base64 of the expanded secret key>`. A secret. */
export function onionKeyBlob(seed: Uint8Array): string {
  const h = expandedSecretKey(seed);
  const blob = `ED25519-V3:${Buffer.from(h).toString('base64')}`;
  h.fill(0);
  return blob;
}

/** Ed25519 signature with a domain-separation label, so a signature made for one purpose is never valid for another. */
export function signDomain(signingKey: Uint8Array, domain: string, message: Uint8Array): Uint8Array {
  return ed25519Sign(signingKey, domainMessage(domain, message));
}

export function verifyDomain(identityKey: Uint8Array, domain: string, message: Uint8Array, signature: Uint8Array): boolean {
  return ed25519Verify(identityKey, domainMessage(domain, message), signature);
}

function domainMessage(domain: string, message: Uint8Array): Uint8Array {
  const d = new TextEncoder().encode(`onionpost/${domain}\0`);
  const out = new Uint8Array(d.length + message.length);
  out.set(d, 0);
  out.set(message, d.length);
  return out;
}

export function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

/**
 * The X25519 form of an Ed25519 identity key (RFC 7748's birational map; libsodium's
 * crypto_sign_ed25519_pk_to_curve25519): lets anyone seal something to an identity key alone.
 * CryptoError BAD_LENGTH for bytes that are not a point that maps.
 */
export function identityKeyToX25519(identityKey: Uint8Array): Uint8Array {
  checkLength(identityKey, 32, 'identity key');
  try {
    return sodium().crypto_sign_ed25519_pk_to_curve25519(identityKey);
  } catch (err) {
    throw new CryptoError('BAD_LENGTH', 'the identity key has no X25519 form (not a curve point)', { cause: err });
  }
}

/** The X25519 secret matching identityKeyToX25519(id.identityKey) (crypto_sign_ed25519_sk_to_curve25519). */
export function identitySecretToX25519(id: Pick<Identity, 'signingKey'>): Uint8Array {
  return sodium().crypto_sign_ed25519_sk_to_curve25519(id.signingKey);
}
