/**
 * A mailbox provider's binding and a subscriber's payment tag.
 *
 * Binding: the provider node's identity key signs the TRON account that lists it in the provider
 * directory, under domain "provider-binding/v1", over
 *
 *   21 owner (TRON, 0x41-prefixed) | 32 identity key | 32 chain id (big-endian) | 21 contract (0x41-prefixed)
 *
 * so a listing that names someone else's onion, or is copied to another chain or deployment, does
 * not verify.
 *
 * Subscriber tag: what a payment is recorded under on chain. It is
 *
 *   HMAC-SHA256(key = tagKey, "onionpost/subscriber-tag/v1" | provider identity key)
 *
 * where `tagKey` is a secret of the subscriber's, derived from its identity seed (subscriberTagKey). The
 * subscriber tells the provider its tag inside its signed subscription request; nobody else can link
 * the tag to the subscriber's onion, not even by trying every published identity key.
 */
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { ByteWriter } from '../bytes.js';
import { CryptoError } from './errors.js';
import { signDomain, verifyDomain, type Identity } from './keys.js';
import { checkLength } from './sodium.js';

export interface ProviderBindingFields {
  owner: Uint8Array;
  identityKey: Uint8Array;
  chainId: bigint;
  contract: Uint8Array;
}

function be32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let c = n;
  for (let i = 31; i >= 0 && c > 0n; i--) {
    out[i] = Number(c & 0xffn);
    c >>= 8n;
  }
  return out;
}

export function providerBindingBody(f: ProviderBindingFields): Uint8Array {
  if (f.owner.length !== 21 || f.contract.length !== 21) throw new CryptoError('BAD_LENGTH', 'TRON addresses must be 21 bytes (0x41 prefix + 20)');
  checkLength(f.identityKey, 32, 'identity key');
  return new ByteWriter().bytes(f.owner).bytes(f.identityKey).bytes(be32(f.chainId)).bytes(f.contract).finish();
}

export function signProviderBinding(id: Identity, f: Omit<ProviderBindingFields, 'identityKey'>): Uint8Array {
  return signDomain(id.signingKey, 'provider-binding/v1', providerBindingBody({ ...f, identityKey: id.identityKey }));
}

/** Throws BAD_RECORD unless `signature` is the identity key's binding to this owner, chain and contract. */
export function verifyProviderBinding(f: ProviderBindingFields, signature: Uint8Array): void {
  if (signature.length !== 64 || !verifyDomain(f.identityKey, 'provider-binding/v1', providerBindingBody(f), signature)) {
    throw new CryptoError('BAD_RECORD', 'provider listing is not signed by its identity key for this owner, chain and contract');
  }
}

/** The subscriber's tag key: derived from its identity seed, so it needs no storage of its own. */
export function subscriberTagKey(id: Identity): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', id.seed, new Uint8Array(32), 'onionpost/subscriber-tag-key/v1', 32));
}

export function subscriberTag(tagKey: Uint8Array, providerIdentityKey: Uint8Array): Uint8Array {
  checkLength(tagKey, 32, 'subscriber tag key');
  checkLength(providerIdentityKey, 32, 'provider identity key');
  return new Uint8Array(createHmac('sha256', tagKey).update('onionpost/subscriber-tag/v1').update(providerIdentityKey).digest());
}

/**
 * A user's public queue at one of its providers (PROTOCOL.md §14.2): where mail for the user is
 * deposited while it is offline. Its id is computable by anyone who knows both keys (a sender has
 * them from the user's bundle), so it needs no hand-out:
 *
 *   queue    = SHA-256("onionpost/public-queue/v1" | owner identity key | provider identity key)[0..16]
 *   read cap = HMAC-SHA256(key = readKey, "onionpost/public-queue-read/v1" | provider identity key)
 *
 * where `readKey` = HKDF-SHA256(ikm = identity seed, salt = 32 zero bytes,
 * info = "onionpost/queue-read-key/v1", L = 32): only the owner can fetch, and it stores nothing.
 */
export function publicQueueId(ownerIdentityKey: Uint8Array, providerIdentityKey: Uint8Array): Uint8Array {
  checkLength(ownerIdentityKey, 32, 'owner identity key');
  checkLength(providerIdentityKey, 32, 'provider identity key');
  return new Uint8Array(createHash('sha256').update('onionpost/public-queue/v1').update(ownerIdentityKey).update(providerIdentityKey).digest().subarray(0, 16));
}

/** The read capability of `id`'s public queue at the provider `providerIdentityKey`. */
export function publicQueueReadCap(id: Identity, providerIdentityKey: Uint8Array): Uint8Array {
  checkLength(providerIdentityKey, 32, 'provider identity key');
  const readKey = hkdfSync('sha256', id.seed, new Uint8Array(32), 'onionpost/queue-read-key/v1', 32);
  return new Uint8Array(createHmac('sha256', new Uint8Array(readKey)).update('onionpost/public-queue-read/v1').update(providerIdentityKey).digest());
}

/**
 * The read capability of a contact queue `queue` the user `id` made at the provider
 * `providerIdentityKey` (PROTOCOL.md §14.2): derived, so the user keeps no secret for it.
 *
 *   read cap = HMAC-SHA256(key = readKey, "onionpost/contact-queue-read/v1" | provider identity key | queue)
 */
export function contactQueueReadCap(id: Identity, providerIdentityKey: Uint8Array, queue: Uint8Array): Uint8Array {
  checkLength(providerIdentityKey, 32, 'provider identity key');
  checkLength(queue, 16, 'queue');
  const readKey = hkdfSync('sha256', id.seed, new Uint8Array(32), 'onionpost/queue-read-key/v1', 32);
  return new Uint8Array(createHmac('sha256', new Uint8Array(readKey)).update('onionpost/contact-queue-read/v1').update(providerIdentityKey).update(queue).digest());
}
