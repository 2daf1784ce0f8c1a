/**
 * What the mailbox protocol signs (Ed25519 via crypto's signDomain; each under its own domain), as
 * pure functions. A user signs its requests that change its account (so nobody else can subscribe
 * it, or create or remove its queues) and its request to see it (so nobody else learns what it
 * holds or how long it is paid); a provider signs its terms, every deposit it accepts (so a
 * depositor holds proof that the provider took the envelope, and the node can score a provider
 * that signed for mail it never delivered), and what it tells a user of its account. Nothing here is about message content: the mail itself
 * stays unsigned and deniable.
 *
 *   mailbox-subscribe/v1  provider 32 | subscriber 32 | time u64 | tag 32 (zeros: none)
 *   mailbox-queue/v1      op u8 (1 create, 2 remove) | provider 32 | owner 32 | time u64 | queue 16 | write hash 32 | read hash 32
 *   mailbox-terms/v1      provider 32 | subscriber 32 | retention ms u64 | quota bytes u64 | time u64
 *   mailbox-deposit/v1    provider 32 | queue 16 | digest 32 | deposited at u64 | expires at u64
 *   mailbox-account/v1    provider 32 | subscriber 32 | time u64                                    (by the subscriber)
 *   mailbox-account-status/v1  provider 32 | subscriber 32 | paid until u64 | grace ms u64 | held count u32
 *                         | held bytes u64 | quota bytes u64 | time u64                            (by the provider)
 *   mailbox-put-bundle/v1 provider 32 | subscriber 32 | time u64 | flags u8 | SHA-256(bundle) 32 | u8 n
 *                         | n × (prekey id u32 | prekey 32)                                        (by the subscriber)
 */
import { createHash } from 'node:crypto';
import { ByteWriter } from '../bytes.js';
import { signDomain, verifyDomain, type Identity } from '../crypto/index.js';
import { PUT_REPLACE, type AccountStatusFields, type BundlePrekey } from './wire.js';

const ZERO32 = new Uint8Array(32);

export function subscribeBody(provider: Uint8Array, subscriber: Uint8Array, time: number, tag: Uint8Array | null): Uint8Array {
  return new ByteWriter().bytes(provider).bytes(subscriber).u64(time).bytes(tag ?? ZERO32).finish();
}

export function queueBody(op: 'create' | 'remove', provider: Uint8Array, owner: Uint8Array, time: number, queue: Uint8Array, writeHash: Uint8Array | null, readHash: Uint8Array | null): Uint8Array {
  return new ByteWriter().u8(op === 'create' ? 1 : 2).bytes(provider).bytes(owner).u64(time).bytes(queue).bytes(writeHash ?? ZERO32).bytes(readHash ?? ZERO32).finish();
}

export function termsBody(provider: Uint8Array, subscriber: Uint8Array, retentionMs: number, quotaBytes: number, time: number): Uint8Array {
  return new ByteWriter().bytes(provider).bytes(subscriber).u64(retentionMs).u64(quotaBytes).u64(time).finish();
}

export function depositBody(provider: Uint8Array, queue: Uint8Array, digest: Uint8Array, depositedAt: number, expiresAt: number): Uint8Array {
  return new ByteWriter().bytes(provider).bytes(queue).bytes(digest).u64(depositedAt).u64(expiresAt).finish();
}

export function accountBody(provider: Uint8Array, subscriber: Uint8Array, time: number): Uint8Array {
  return new ByteWriter().bytes(provider).bytes(subscriber).u64(time).finish();
}

export function accountStatusBody(provider: Uint8Array, subscriber: Uint8Array, s: AccountStatusFields): Uint8Array {
  return new ByteWriter().bytes(provider).bytes(subscriber).u64(s.paidUntil).u64(s.graceMs).u32(s.heldCount).u64(s.heldBytes)
    .u64(s.quotaBytes).u64(s.time).finish();
}

export function putBundleBody(provider: Uint8Array, subscriber: Uint8Array, time: number, replace: boolean, bundle: Uint8Array, prekeys: readonly BundlePrekey[]): Uint8Array {
  const w = new ByteWriter().bytes(provider).bytes(subscriber).u64(time).u8(replace ? PUT_REPLACE : 0)
    .bytes(new Uint8Array(createHash('sha256').update(bundle).digest())).u8(prekeys.length);
  for (const k of prekeys) w.u32(k.id).bytes(k.public);
  return w.finish();
}

export const DOMAINS = Object.freeze({
  subscribe: 'mailbox-subscribe/v1',
  queue: 'mailbox-queue/v1',
  terms: 'mailbox-terms/v1',
  deposit: 'mailbox-deposit/v1',
  account: 'mailbox-account/v1',
  accountStatus: 'mailbox-account-status/v1',
  putBundle: 'mailbox-put-bundle/v1',
});

export function sign(id: Identity, domain: string, body: Uint8Array): Uint8Array {
  return signDomain(id.signingKey, domain, body);
}

export function verify(key: Uint8Array, domain: string, body: Uint8Array, sig: Uint8Array): boolean {
  return sig.length === 64 && verifyDomain(key, domain, body, sig);
}
