/**
 * Signed statements about keys: the rotation statement that moves a contact to a new identity key,
 * and the registry record signature. Each is signed under its own domain label (see `signDomain`).
 * (The key bundle a node serves is version 2, src/session/bundle.ts.)
 */
import { ByteReader, ByteWriter, bytesEqual } from '../bytes.js';
import { CryptoError } from './errors.js';
import { signDomain, verifyDomain, type EncryptionKey, type Identity, type IdentityKey } from './keys.js';

/** Mailbox providers a registry record (and a bundle) may list. */
export const MAX_MAILBOXES = 8;

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
