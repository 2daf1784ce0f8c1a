/**
 * registry/: resolves a name ("alice") or a TRON account to a VERIFIED key record through the
 * IdentityRegistry contract on TRON, and publishes our own record.
 *
 * Trust model. Nothing read from the chain is returned before `verifyRecord` accepts it: the record's
 * identity key must have signed (name, owner, identity key, encryption key, metadata string,
 * version, chain id, contract address); the onion address is derived from the identity key, never
 * read from the chain. With several `fullHosts`, each read goes to every host and all must return
 * the same bytes. Whether a verified record may replace what we knew about a contact is the pinning
 * policy's question (`comparePin`), applied by the node to its contact store.
 *
 *   const reg = createTronRegistry({ fullHosts: [a, b], contractAddress, tronPrivateKey, agent });
 *   const rec = await reg.resolveName('alice', { signal });      // VerifiedRecord | null
 *   await reg.register(identity, 'bob', { mailboxes, signal });  // commit → wait → register
 *   reg.close();
 */
import type { Identity, OnionAddress, RotationStatement } from '../crypto/index.js';
import { parseTronAddress, type TronAddress } from './address.js';
import type { VerifiedRecord } from './record.js';

export interface ResolveOptions {
  signal?: AbortSignal;
  /** Skip the cache (e.g. after a delivery failure); the fresh record is cached again. */
  fresh?: boolean;
}

export type RegisterProgress =
  | { stage: 'committed'; txId: string }
  /** The commitment must age until `readyAt` (chain time, ms) before the name can be revealed. */
  | { stage: 'waiting'; txId: string; readyAt: number }
  | { stage: 'registered'; txId: string };

export interface RegisterOptions {
  /** Mailbox providers to publish (at most 8). */
  mailboxes?: OnionAddress[];
  /** A statement moving contacts from an earlier identity key to this one. */
  rotation?: RotationStatement;
  /** Publish `h=1`: the user runs hidden (its identity's onion is never online). Default false. */
  hidden?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: RegisterProgress) => void;
}

export interface UpdateOptions {
  /**
   * The name to update; must be owned by this client's account (else NOT_OWNER). Default: the
   * account's own record (NOT_FOUND if it has none).
   */
  name?: string;
  /** New mailbox list; default: keep the published one. */
  mailboxes?: OnionAddress[];
  /**
   * Rotation statement to publish with a new identity key; null removes it. Default: keep the
   * published one if it leads to `identity`'s key, else drop it.
   */
  rotation?: RotationStatement | null;
  /** Whether to publish `h=1` (the user runs hidden); default: keep the published flag. */
  hidden?: boolean;
  signal?: AbortSignal;
}

export interface WriteResult {
  /** The final transaction (register or update). */
  txId: string;
  /** The record version now on chain. */
  version: number;
}

export interface IdentityRegistry {
  /** The account writes are signed with (base58), or null for a read-only client. */
  readonly address: TronAddress | null;
  /**
   * The verified record for a name, or null when it is free. Throws NAME_INVALID before any network
   * call, BAD_RECORD for a record that does not verify, UNREACHABLE / ENDPOINTS_DISAGREE / ABORTED.
   */
  resolveName(name: string, opts?: ResolveOptions): Promise<VerifiedRecord | null>;
  /** The verified record owned by a TRON account (base58 or 41-hex; anything else is a TypeError), or null. */
  resolveOwner(owner: string, opts?: ResolveOptions): Promise<VerifiedRecord | null>;
  /**
   * Claims `name` for `identity` under this client's account: commit, wait until the commitment is
   * `minCommitmentAge` old (about 60 s on real networks, bounded by `commitSlackMs`), register.
   * Throws NO_KEY, NAME_INVALID, NAME_TAKEN, ALREADY_REGISTERED, UNFUNDED, TX_FAILED, TIMEOUT, ABORTED.
   */
  register(identity: Identity, name: string, opts?: RegisterOptions): Promise<WriteResult>;
  /**
   * Publishes `identity`'s keys (a new encryption key, mailboxes, or a new identity key with a
   * rotation statement) as the next version of this account's record. Throws NO_KEY, NOT_FOUND,
   * NOT_OWNER, UNFUNDED, TX_FAILED, TIMEOUT, ABORTED.
   */
  update(identity: Identity, opts?: UpdateOptions): Promise<WriteResult>;
  /** Drops the cached record for a name or an owner address (and its other key). */
  invalidate(nameOrOwner: string): void;
  /** Releases the HTTP agent the client created (not one passed in). Idempotent. */
  close(): void;
}

/** Resolves a TRON account (base58 or 41-hex) by owner, anything else as a name. */
export function resolveNameOrOwner(registry: IdentityRegistry, input: string, opts?: ResolveOptions): Promise<VerifiedRecord | null> {
  return parseTronAddress(input) ? registry.resolveOwner(input, opts) : registry.resolveName(input, opts);
}

export { RegistryError, type RegistryErrorCode } from './errors.js';
export { MAX_NAME_LENGTH, isValidName, normalizeName } from './name.js';
export { MAX_METADATA_LENGTH, decodeMetadata, encodeMetadata, type RecordMetadata } from './metadata.js';
export { comparePin, type Pin, type PinVerdict } from './pin.js';
export { verifyRecord, type RawRecord, type RecordContext, type VerifiedRecord } from './record.js';
export { parseTronAddress, type ParsedTronAddress, type TronAddress } from './address.js';
export { DEFAULT_CACHE_TTL_MS, TtlCache } from './cache.js';
export { formatAmount, priceWords } from './amount.js';
// The factories load tronweb at their first chain call, not when this module is imported: lazy.ts.
export { createProviderDirectory, createTronRegistry } from './lazy.js';
export type { TronRegistryOptions } from './client.js';
export type { DirectoryOptions, DirectoryPage, Payment, ProviderDirectory, ProviderListing, ProviderTerms } from './directory.js';
