/**
 * The record as the contract stores it, and its verification into a VerifiedRecord. Nothing from the
 * chain is used before `verifyRecord` accepts it: the identity key must have signed (name, owner,
 * keys, metadata string, version, chain id, contract), the metadata must parse, a rotation statement
 * must be well signed and lead to this record's key, and the onion address is derived from the
 * identity key, never read from the chain.
 */
import {
  CryptoError, onionAddress, verifyRegistryRecord, verifyRotation,
  type EncryptionKey, type IdentityKey, type OnionAddress, type RotationStatement, type RegistryRecordFields,
} from '../crypto/index.js';
import { bytesEqual } from '../bytes.js';
import { parseTronAddress, type TronAddress } from './address.js';
import { RegistryError } from './errors.js';
import { decodeMetadata } from './metadata.js';
import { isValidName, normalizeName } from './name.js';

/** A record exactly as `lookup`/`lookupByOwner` return it (decoded ABI values, not yet trusted). */
export type RawRecord = Omit<RegistryRecordFields, 'chainId' | 'contract'> & {
  /** The identity key's signature over the record (see crypto's registryRecordBody). */
  signature: Uint8Array;
};

/** Where a record lives: it is signed for exactly this chain and contract. */
export interface RecordContext {
  chainId: bigint;
  /** The registry contract, 21 bytes, 0x41-prefixed. */
  contract: Uint8Array;
}

/** A registry record whose signature and metadata have been checked. */
export interface VerifiedRecord {
  /** Normalized name. */
  name: string;
  /** Owner account, base58 ("T…"). */
  owner: TronAddress;
  /** Owner account, hex ("41…"). */
  ownerHex: string;
  identityKey: IdentityKey;
  encryptionKey: EncryptionKey;
  /** Derived from `identityKey`. */
  onion: OnionAddress;
  mailboxes: OnionAddress[];
  /** The statement that moved this name to `identityKey` from an earlier key, if published. */
  rotation: RotationStatement | null;
  /** The user runs hidden (metadata `h=1`): nobody answers at `onion`; reach it through `mailboxes`. */
  hidden: boolean;
  /** 1 on registration, +1 on every update. */
  version: number;
  signature: Uint8Array;
  chainId: bigint;
  /** The registry contract, base58. */
  contract: TronAddress;
}

const bad = (name: string, what: string, cause?: unknown) => new RegistryError('BAD_RECORD', `registry record for "${name}" rejected: ${what}`, { cause });

export function verifyRecord(raw: RawRecord, ctx: RecordContext): VerifiedRecord {
  const owner = parseTronAddress(raw.owner);
  const contract = parseTronAddress(ctx.contract);
  if (!owner || !contract) throw bad(raw.name, 'owner or contract is not a TRON address');
  if (!isValidName(raw.name) || normalizeName(raw.name) !== raw.name) throw bad(raw.name.slice(0, 80), 'name is not in canonical form');
  if (raw.identityKey.length !== 32 || raw.encryptionKey.length !== 32) throw bad(raw.name, 'keys must be 32 bytes');
  try {
    verifyRegistryRecord(
      {
        name: raw.name, owner: owner.bytes, identityKey: raw.identityKey, encryptionKey: raw.encryptionKey,
        mailboxes: raw.mailboxes, version: raw.version, chainId: ctx.chainId, contract: contract.bytes,
      },
      raw.signature,
    );
  } catch (err) {
    if (err instanceof CryptoError) throw bad(raw.name, 'signature does not match the identity key', err);
    throw err;
  }
  const meta = decodeMetadata(raw.mailboxes);
  if (meta.rotation) {
    if (!bytesEqual(meta.rotation.newIdentity, raw.identityKey)) throw bad(raw.name, 'rotation statement is for another key');
    try {
      // Checks both signatures; whether the OLD key is one we trust is the pinning policy's question.
      verifyRotation(meta.rotation, meta.rotation.oldIdentity);
    } catch (err) {
      throw bad(raw.name, 'rotation statement does not verify', err);
    }
  }
  const identityKey = Uint8Array.from(raw.identityKey) as IdentityKey;
  return {
    name: raw.name,
    owner: owner.base58,
    ownerHex: owner.hex,
    identityKey,
    encryptionKey: Uint8Array.from(raw.encryptionKey) as EncryptionKey,
    onion: onionAddress(identityKey),
    mailboxes: meta.mailboxes,
    rotation: meta.rotation,
    hidden: meta.hidden,
    version: raw.version,
    signature: Uint8Array.from(raw.signature),
    chainId: ctx.chainId,
    contract: contract.base58,
  };
}
