/**
 * Signed statements about keys: the key bundle a node serves (BUNDLE frame) and records in the
 * registry, the rotation statement that moves a contact to a new identity key, and the registry
 * record signature. Each is signed under its own domain label (see `signDomain`).
 *
 * Key bundle, version 1 (big-endian):
 *
 *   off  size  field
 *   0    1     version = 1
 *   1    32    identity key (Ed25519 public)
 *   33   32    encryption key (X25519 public)
 *   65   8     created_at, ms since epoch
 *   73   8     expires_at, ms since epoch
 *   81   1     n = number of mailbox providers (0..8)
 *   82   …     n × (u8 length, ASCII onion address of a mailbox provider)
 *   …    64    Ed25519 signature by the identity key over every preceding byte, domain "bundle/v1"
 */
import { ByteReader, ByteWriter, bytesEqual } from '../bytes.js';
import { CryptoError } from './errors.js';
import { onionAddress, parseOnionAddress, signDomain, verifyDomain, type EncryptionKey, type Identity, type IdentityKey, type OnionAddress } from './keys.js';

export const BUNDLE_VERSION = 1;
export const MAX_MAILBOXES = 8;
/** How long a bundle is valid by default: 90 days. */
export const DEFAULT_BUNDLE_LIFETIME_MS = 90 * 24 * 3600 * 1000;

export interface KeyBundle {
  identityKey: IdentityKey;
  encryptionKey: EncryptionKey;
  createdAt: number;
  expiresAt: number;
  mailboxes: OnionAddress[];
  signature: Uint8Array;
  /** The onion address of `identityKey` (derived, not encoded). */
  onion: OnionAddress;
}

const bad = (what: string) => new CryptoError('BAD_BUNDLE', `bad key bundle: ${what}`);

function bundleBody(b: Omit<KeyBundle, 'signature' | 'onion'>): Uint8Array {
  if (b.mailboxes.length > MAX_MAILBOXES) throw bad(`more than ${MAX_MAILBOXES} mailboxes`);
  const w = new ByteWriter().u8(BUNDLE_VERSION).bytes(b.identityKey).bytes(b.encryptionKey).u64(b.createdAt).u64(b.expiresAt).u8(b.mailboxes.length);
  for (const m of b.mailboxes) w.string(parseOnionAddress(m).onion, 8);
  return w.finish();
}

export function signBundle(id: Identity, opts: { now: number; lifetimeMs?: number; mailboxes?: OnionAddress[] }): KeyBundle {
  const unsigned = {
    identityKey: id.identityKey,
    encryptionKey: id.encryptionKey,
    createdAt: opts.now,
    expiresAt: opts.now + (opts.lifetimeMs ?? DEFAULT_BUNDLE_LIFETIME_MS),
    mailboxes: opts.mailboxes ?? [],
  };
  const signature = signDomain(id.signingKey, 'bundle/v1', bundleBody(unsigned));
  return { ...unsigned, signature, onion: id.onion };
}

export function encodeBundle(b: KeyBundle): Uint8Array {
  return new ByteWriter().bytes(bundleBody(b)).bytes(b.signature).finish();
}

/** Parses a bundle. Does not check the signature or dates: call `verifyBundle`. */
export function decodeBundle(bytes: Uint8Array): KeyBundle {
  const r = new ByteReader(bytes, bad);
  const version = r.u8('version');
  if (version !== BUNDLE_VERSION) throw new CryptoError('UNSUPPORTED_VERSION', `key bundle version ${version} is not supported`);
  const identityKey = Uint8Array.from(r.bytes(32, 'identity key')) as IdentityKey;
  const encryptionKey = Uint8Array.from(r.bytes(32, 'encryption key')) as EncryptionKey;
  const createdAt = r.u64('created_at');
  const expiresAt = r.u64('expires_at');
  const n = r.u8('mailbox count');
  if (n > MAX_MAILBOXES) throw bad(`more than ${MAX_MAILBOXES} mailboxes`);
  const mailboxes: OnionAddress[] = [];
  for (let i = 0; i < n; i++) {
    const s = r.string(8, 62, 'mailbox');
    try {
      mailboxes.push(parseOnionAddress(s).onion);
    } catch (err) {
      throw new CryptoError('BAD_BUNDLE', `bad key bundle: mailbox ${i} is not an onion address`, { cause: err });
    }
  }
  const signature = Uint8Array.from(r.bytes(64, 'signature'));
  r.end('bundle');
  return { identityKey, encryptionKey, createdAt, expiresAt, mailboxes, signature, onion: onionAddress(identityKey) };
}

/**
 * Checks the signature and validity window. With `expectedIdentity`, also that the bundle belongs
 * to that identity (the onion we dialled), so a peer cannot hand us someone else's bundle.
 */
export function verifyBundle(b: KeyBundle, opts: { now: number; expectedIdentity?: Uint8Array; maxSkewMs?: number }): void {
  if (opts.expectedIdentity && !bytesEqual(opts.expectedIdentity, b.identityKey)) {
    throw new CryptoError('BUNDLE_SIGNATURE', 'key bundle belongs to another identity');
  }
  if (!verifyDomain(b.identityKey, 'bundle/v1', bundleBody(b), b.signature)) {
    throw new CryptoError('BUNDLE_SIGNATURE', 'key bundle signature does not verify');
  }
  const skew = opts.maxSkewMs ?? 24 * 3600 * 1000;
  if (b.expiresAt <= b.createdAt) throw new CryptoError('BUNDLE_EXPIRED', 'key bundle expires before it was created');
  if (b.createdAt > opts.now + skew) throw new CryptoError('CLOCK_SKEW', 'key bundle created in the future');
  if (b.expiresAt <= opts.now) throw new CryptoError('BUNDLE_EXPIRED', 'key bundle has expired');
}

/**
 * Rotation statement, version 1: the holder of an old identity key vouches for a new one, and the
 * new key proves possession, so a contact pinned to the old key can follow the move safely.
 *
 *   1 version | 32 old identity | 32 new identity | 32 new encryption key | 8 created_at
 *   | 64 signature by the OLD key (domain "rotation/v1") | 64 signature by the NEW key over the same body (domain "rotation-accept/v1")
 */
export interface RotationStatement {
  oldIdentity: IdentityKey;
  newIdentity: IdentityKey;
  newEncryptionKey: EncryptionKey;
  createdAt: number;
  oldSignature: Uint8Array;
  newSignature: Uint8Array;
}

function rotationBody(r: Pick<RotationStatement, 'oldIdentity' | 'newIdentity' | 'newEncryptionKey' | 'createdAt'>): Uint8Array {
  return new ByteWriter().u8(1).bytes(r.oldIdentity).bytes(r.newIdentity).bytes(r.newEncryptionKey).u64(r.createdAt).finish();
}

export function signRotation(oldId: Identity, newId: Identity, now: number): RotationStatement {
  const base = { oldIdentity: oldId.identityKey, newIdentity: newId.identityKey, newEncryptionKey: newId.encryptionKey, createdAt: now };
  const body = rotationBody(base);
  return { ...base, oldSignature: signDomain(oldId.signingKey, 'rotation/v1', body), newSignature: signDomain(newId.signingKey, 'rotation-accept/v1', body) };
}

export function encodeRotation(r: RotationStatement): Uint8Array {
  return new ByteWriter().bytes(rotationBody(r)).bytes(r.oldSignature).bytes(r.newSignature).finish();
}

export function decodeRotation(bytes: Uint8Array): RotationStatement {
  const fail = (what: string) => new CryptoError('BAD_ROTATION', `bad rotation statement: ${what}`);
  const rd = new ByteReader(bytes, fail);
  if (rd.u8('version') !== 1) throw fail('unsupported version');
  const r: RotationStatement = {
    oldIdentity: Uint8Array.from(rd.bytes(32)) as IdentityKey,
    newIdentity: Uint8Array.from(rd.bytes(32)) as IdentityKey,
    newEncryptionKey: Uint8Array.from(rd.bytes(32)) as EncryptionKey,
    createdAt: rd.u64(),
    oldSignature: Uint8Array.from(rd.bytes(64)),
    newSignature: Uint8Array.from(rd.bytes(64)),
  };
  rd.end('rotation statement');
  return r;
}

/** Throws BAD_ROTATION unless `r` moves `pinned` to a new key with both signatures valid. */
export function verifyRotation(r: RotationStatement, pinned: Uint8Array): void {
  if (!bytesEqual(r.oldIdentity, pinned)) throw new CryptoError('BAD_ROTATION', 'rotation statement is for another identity');
  const body = rotationBody(r);
  if (!verifyDomain(r.oldIdentity, 'rotation/v1', body, r.oldSignature)) throw new CryptoError('BAD_ROTATION', 'rotation not signed by the pinned key');
  if (!verifyDomain(r.newIdentity, 'rotation-accept/v1', body, r.newSignature)) throw new CryptoError('BAD_ROTATION', 'new key did not sign the rotation');
}

/**
 * The registry record an identity key signs before it is published on chain. Binding the owner
 * address, the chain and the contract means a copied signature is useless under any other owner,
 * name, network or deployment.
 *
 *   u8 len + name (UTF-8) | 21 owner (TRON 0x41-prefixed) | 32 identity | 32 encryption key
 *   | u16 len + mailboxes (UTF-8) | 8 version | 32 chain id (big-endian) | 21 contract (0x41-prefixed)
 *   signed under domain "registry-record/v1"
 */
export interface RegistryRecordFields {
  name: string;
  owner: Uint8Array;
  identityKey: Uint8Array;
  encryptionKey: Uint8Array;
  mailboxes: string;
  version: number;
  chainId: bigint;
  contract: Uint8Array;
}

export function registryRecordBody(f: RegistryRecordFields): Uint8Array {
  if (f.owner.length !== 21 || f.contract.length !== 21) throw new CryptoError('BAD_LENGTH', 'TRON addresses must be 21 bytes (0x41 prefix + 20)');
  const chain = new Uint8Array(32);
  let c = f.chainId;
  for (let i = 31; i >= 0 && c > 0n; i--) {
    chain[i] = Number(c & 0xffn);
    c >>= 8n;
  }
  return new ByteWriter().string(f.name, 8).bytes(f.owner).bytes(f.identityKey).bytes(f.encryptionKey).string(f.mailboxes, 16).u64(f.version).bytes(chain).bytes(f.contract).finish();
}

export function signRegistryRecord(id: Identity, f: Omit<RegistryRecordFields, 'identityKey' | 'encryptionKey'>): Uint8Array {
  return signDomain(id.signingKey, 'registry-record/v1', registryRecordBody({ ...f, identityKey: id.identityKey, encryptionKey: id.encryptionKey }));
}

export function verifyRegistryRecord(f: RegistryRecordFields, signature: Uint8Array): void {
  if (!verifyDomain(f.identityKey, 'registry-record/v1', registryRecordBody(f), signature)) {
    throw new CryptoError('BAD_RECORD', `registry record for "${f.name}" is not signed by its identity key`);
  }
}
