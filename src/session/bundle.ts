/**
 * Key bundle version 2 and the bundle answer (PROTOCOL.md §3), and the prekeys they publish.
 *
 * Bundle v2 (big-endian), signed by the identity key under domain "bundle/v2":
 *
 *   off   size  field
 *   0     1     version = 2
 *   1     32    identity key (Ed25519)
 *   33    32    long-term encryption key (X25519)
 *   65    4     signed prekey id (u32)
 *   69    32    signed prekey (X25519)
 *   101   4     PQ prekey id (u32)
 *   105   1184  PQ prekey (ML-KEM-768 encapsulation key)
 *   1289  8     created_at, ms
 *   1297  8     expires_at, ms
 *   1305  1     n mailbox providers (0..8)
 *   1306  …     n × (u8 length, ASCII onion address)
 *   …     64    Ed25519 signature over every preceding byte, domain "bundle/v2"
 *
 * Bundle answer (BUNDLE frame content): bundle ‖ u8 c (0|1) ‖ c × (u32 one-time prekey id ‖ 32 key).
 * The one-time prekey is not signed: the onion connection it arrives on is the owner's.
 */
import { ByteReader, ByteWriter, bytesEqual } from '../bytes.js';
import {
  onionAddress, parseOnionAddress, secureRandomBytes, signDomain, verifyDomain,
  type EncryptionKey, type Identity, type IdentityKey, type OnionAddress, type RandomBytes,
} from '../crypto/index.js';
import { SessionError } from './errors.js';
import { KEM_PUBLIC_BYTES, KEM_SEED_BYTES, KEY_BYTES, checkLength, kemKeyPair, x25519Public } from './primitives.js';

export const BUNDLE_V2 = 2;
export const MAX_MAILBOXES = 8;
export const BUNDLE_SIGNATURE_DOMAIN = 'bundle/v2';
/** Smallest and largest encoded bundle v2 (0 and 8 mailboxes). */
export const MIN_BUNDLE_BYTES = 1370;
export const MAX_BUNDLE_BYTES = MIN_BUNDLE_BYTES + 63 * MAX_MAILBOXES;
export const DEFAULT_BUNDLE_LIFETIME_MS = 90 * 24 * 3600 * 1000;

/** A signed X25519 prekey we hold. */
export interface SignedPrekey {
  id: number;
  secret: Uint8Array;
  public: Uint8Array;
}

/** A signed ML-KEM-768 prekey we hold, kept as its 64-byte seed (the 2400-byte key derives from it). */
export interface PqPrekey {
  id: number;
  seed: Uint8Array;
  public: Uint8Array;
  /** The 2400-byte decapsulation key, when the holder keeps it expanded (saves a key generation per INIT). */
  secretKey?: Uint8Array;
}

/** A one-time X25519 prekey we hold. */
export type OneTimePrekey = SignedPrekey;

/** The public half of a one-time prekey, as a bundle answer carries it. */
export interface OneTimePrekeyPublic {
  id: number;
  public: Uint8Array;
}

export interface BundleV2 {
  identityKey: IdentityKey;
  encryptionKey: EncryptionKey;
  signedPrekeyId: number;
  signedPrekey: Uint8Array;
  pqPrekeyId: number;
  pqPrekey: Uint8Array;
  createdAt: number;
  expiresAt: number;
  mailboxes: OnionAddress[];
  signature: Uint8Array;
  /** The onion address of identityKey (derived, not encoded). */
  onion: OnionAddress;
  /** The exact encoded bytes (what INIT embeds and a registry records). */
  bytes: Uint8Array;
}

export interface BundleAnswer {
  bundle: BundleV2;
  oneTimePrekey: OneTimePrekeyPublic | null;
}

const bad = (what: string, cause?: unknown) => new SessionError('BAD_BUNDLE', `bad key bundle: ${what}`, cause === undefined ? undefined : { cause });

function checkId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new SessionError('BAD_LENGTH', `${what} id ${id} is not a u32`);
}

export function newSignedPrekey(id: number, random: RandomBytes = secureRandomBytes): SignedPrekey {
  checkId(id, 'signed prekey');
  const secret = random(KEY_BYTES);
  return { id, secret, public: x25519Public(secret) };
}

export function newOneTimePrekeys(firstId: number, count: number, random: RandomBytes = secureRandomBytes): OneTimePrekey[] {
  const out: OneTimePrekey[] = [];
  for (let i = 0; i < count; i++) out.push(newSignedPrekey(firstId + i, random));
  return out;
}

export function newPqPrekey(id: number, random: RandomBytes = secureRandomBytes): PqPrekey {
  checkId(id, 'PQ prekey');
  const seed = random(KEM_SEED_BYTES);
  const kp = kemKeyPair(seed);
  return { id, seed, public: kp.publicKey, secretKey: kp.secretKey };
}

type BundleFields = Omit<BundleV2, 'signature' | 'onion' | 'bytes'>;

function bundleBody(b: BundleFields): Uint8Array {
  if (b.mailboxes.length > MAX_MAILBOXES) throw bad(`more than ${MAX_MAILBOXES} mailboxes`);
  checkLength(b.identityKey, KEY_BYTES, 'identity key');
  checkLength(b.encryptionKey, KEY_BYTES, 'encryption key');
  checkLength(b.signedPrekey, KEY_BYTES, 'signed prekey');
  checkLength(b.pqPrekey, KEM_PUBLIC_BYTES, 'PQ prekey');
  checkId(b.signedPrekeyId, 'signed prekey');
  checkId(b.pqPrekeyId, 'PQ prekey');
  const w = new ByteWriter()
    .u8(BUNDLE_V2).bytes(b.identityKey).bytes(b.encryptionKey)
    .u32(b.signedPrekeyId).bytes(b.signedPrekey).u32(b.pqPrekeyId).bytes(b.pqPrekey)
    .u64(b.createdAt).u64(b.expiresAt).u8(b.mailboxes.length);
  for (const m of b.mailboxes) w.string(parseOnionAddress(m).onion, 8);
  return w.finish();
}

/** Signs a bundle v2 publishing `identity`'s encryption key and the given prekeys. */
export function signBundle(
  identity: Identity,
  opts: { signedPrekey: OneTimePrekeyPublic; pqPrekey: OneTimePrekeyPublic; now: number; lifetimeMs?: number; mailboxes?: OnionAddress[] },
): BundleV2 {
  const fields: BundleFields = {
    identityKey: identity.identityKey,
    encryptionKey: identity.encryptionKey,
    signedPrekeyId: opts.signedPrekey.id,
    signedPrekey: Uint8Array.from(opts.signedPrekey.public),
    pqPrekeyId: opts.pqPrekey.id,
    pqPrekey: Uint8Array.from(opts.pqPrekey.public),
    createdAt: opts.now,
    expiresAt: opts.now + (opts.lifetimeMs ?? DEFAULT_BUNDLE_LIFETIME_MS),
    mailboxes: (opts.mailboxes ?? []).map((m) => parseOnionAddress(m).onion),
  };
  const body = bundleBody(fields);
  const signature = signDomain(identity.signingKey, BUNDLE_SIGNATURE_DOMAIN, body);
  const bytes = new ByteWriter().bytes(body).bytes(signature).finish();
  return { ...fields, signature, onion: identity.onion, bytes };
}

function readBundle(r: ByteReader, start: Uint8Array, offset: number): BundleV2 {
  const version = r.u8('version');
  if (version !== BUNDLE_V2) {
    throw new SessionError('UNSUPPORTED_VERSION', `key bundle version ${version} is not supported; this node speaks version ${BUNDLE_V2}`);
  }
  const identityKey = Uint8Array.from(r.bytes(32, 'identity key')) as IdentityKey;
  const encryptionKey = Uint8Array.from(r.bytes(32, 'encryption key')) as EncryptionKey;
  const signedPrekeyId = r.u32('signed prekey id');
  const signedPrekey = Uint8Array.from(r.bytes(32, 'signed prekey'));
  const pqPrekeyId = r.u32('PQ prekey id');
  const pqPrekey = Uint8Array.from(r.bytes(KEM_PUBLIC_BYTES, 'PQ prekey'));
  const createdAt = r.u64('created_at');
  const expiresAt = r.u64('expires_at');
  const n = r.u8('mailbox count');
  if (n > MAX_MAILBOXES) throw bad(`more than ${MAX_MAILBOXES} mailboxes`);
  const mailboxes: OnionAddress[] = [];
  for (let i = 0; i < n; i++) {
    const s = r.string(8, 62, 'mailbox');
    let parsed: OnionAddress;
    try {
      parsed = parseOnionAddress(s).onion;
    } catch (err) {
      throw bad(`mailbox ${i} is not an onion address`, err);
    }
    if (parsed !== s) throw bad(`mailbox ${i} is not in canonical form`);
    mailboxes.push(parsed);
  }
  const signature = Uint8Array.from(r.bytes(64, 'signature'));
  const bytes = Uint8Array.from(start.subarray(offset, r.offset));
  return {
    identityKey, encryptionKey, signedPrekeyId, signedPrekey, pqPrekeyId, pqPrekey, createdAt, expiresAt, mailboxes, signature,
    onion: onionAddress(identityKey), bytes,
  };
}

/** Parses a bundle v2 (no trailing bytes). Does not check the signature or dates: `verifyBundle`. */
export function decodeBundle(bytes: Uint8Array): BundleV2 {
  const r = new ByteReader(bytes, (what) => bad(what));
  const b = readBundle(r, bytes, 0);
  r.end('bundle');
  return b;
}

export function encodeBundleAnswer(a: { bundle: Uint8Array | BundleV2; oneTimePrekey: OneTimePrekeyPublic | null }): Uint8Array {
  const bundle = a.bundle instanceof Uint8Array ? a.bundle : a.bundle.bytes;
  const w = new ByteWriter().bytes(bundle);
  if (!a.oneTimePrekey) return w.u8(0).finish();
  checkId(a.oneTimePrekey.id, 'one-time prekey');
  checkLength(a.oneTimePrekey.public, KEY_BYTES, 'one-time prekey');
  return w.u8(1).u32(a.oneTimePrekey.id).bytes(a.oneTimePrekey.public).finish();
}

/** Parses a bundle answer. Does not verify: call `verifyBundle` on its bundle. */
export function decodeBundleAnswer(bytes: Uint8Array): BundleAnswer {
  const r = new ByteReader(bytes, (what) => bad(what));
  const bundle = readBundle(r, bytes, 0);
  const c = r.u8('one-time prekey count');
  if (c > 1) throw bad('more than one one-time prekey');
  const oneTimePrekey = c === 0 ? null : { id: r.u32('one-time prekey id'), public: Uint8Array.from(r.bytes(32, 'one-time prekey')) };
  r.end('bundle answer');
  return { bundle, oneTimePrekey };
}

/**
 * Checks the signature and validity window; with `expectedIdentity`, also that the bundle is that
 * identity's (the onion we dialled), so a peer cannot hand us someone else's bundle.
 */
export function verifyBundle(b: BundleV2, opts: { now: number; maxClockSkewMs: number; expectedIdentity?: Uint8Array }): void {
  if (opts.expectedIdentity && !bytesEqual(opts.expectedIdentity, b.identityKey)) throw bad('it belongs to another identity');
  if (!verifyDomain(b.identityKey, BUNDLE_SIGNATURE_DOMAIN, b.bytes.subarray(0, b.bytes.length - 64), b.signature)) {
    throw bad('signature does not verify');
  }
  if (b.expiresAt <= b.createdAt) throw new SessionError('BUNDLE_EXPIRED', 'key bundle expires before it was created');
  if (b.createdAt > opts.now + opts.maxClockSkewMs) throw new SessionError('BUNDLE_EXPIRED', 'key bundle created in the future');
  if (b.expiresAt <= opts.now) throw new SessionError('BUNDLE_EXPIRED', 'key bundle has expired');
}

export { KEM_SEED_BYTES };
