/**
 * Trust lists: someone a user trusts (a friend, a community, an organisation) vouches for a set of
 * mailbox providers by signing a list of their onions with their onionpost identity key. A user
 * accepts lists only from signers they named. The file is JSON so people can read it:
 *
 *   { "onionpostTrustList": 1, "name": "…", "issuedAt": ms, "expiresAt": ms,
 *     "providers": ["<56>.onion", …], "signer": "<64 hex: Ed25519 identity key>", "signature": "<128 hex>" }
 *
 * The signature (domain "trust-list/v1") is over
 *   u8 version = 1 | u8 len + name (UTF-8) | u64 issuedAt | u64 expiresAt | u16 n | n × (u8 len + onion)
 * so the JSON's formatting and key order do not matter.
 */
import { ByteWriter, fromHex, toHex } from '../bytes.js';
import { parseOnionAddress, signDomain, verifyDomain, type Identity } from '../crypto/index.js';
import { ProviderError } from './errors.js';

export const MAX_TRUST_LIST_PROVIDERS = 256;

export interface TrustList {
  name: string;
  issuedAt: number;
  expiresAt: number;
  providers: string[];
  /** Hex identity key of the signer. */
  signer: string;
}

function body(l: Omit<TrustList, 'signer'>): Uint8Array {
  const w = new ByteWriter().u8(1).string(l.name, 8).u64(l.issuedAt).u64(l.expiresAt).u16(l.providers.length);
  for (const p of l.providers) w.string(p, 8);
  return w.finish();
}

function bad(msg: string, cause?: unknown): ProviderError {
  return new ProviderError('BAD_TRUST_LIST', `trust list: ${msg}`, cause === undefined ? undefined : { cause });
}

/** The signed file text of a list of `providers`, valid from `now` for `lifetimeMs`. */
export function signTrustList(signer: Identity, l: { name: string; providers: string[]; now: number; lifetimeMs: number }): string {
  const providers = l.providers.map((p) => parseOnionAddress(p).onion);
  const unsigned = { name: l.name, issuedAt: l.now, expiresAt: l.now + l.lifetimeMs, providers };
  const signature = signDomain(signer.signingKey, 'trust-list/v1', body(unsigned));
  return JSON.stringify({ onionpostTrustList: 1, ...unsigned, signer: toHex(signer.identityKey), signature: toHex(signature) }, null, 2) + '\n';
}

/** Parses and verifies a trust list file against the signers the user trusts (hex identity keys). */
export function verifyTrustList(text: string, opts: { trustedSigners: ReadonlySet<string>; now: number }): TrustList {
  let j: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('not an object');
    j = parsed as Record<string, unknown>;
  } catch (err) {
    throw bad('not JSON', err);
  }
  if (j['onionpostTrustList'] !== 1) throw bad('not a version 1 onionpost trust list');
  const { name, issuedAt, expiresAt, providers, signer, signature } = j;
  if (typeof name !== 'string' || name.length > 200) throw bad('name');
  if (!Number.isSafeInteger(issuedAt) || !Number.isSafeInteger(expiresAt)) throw bad('issuedAt/expiresAt');
  if (!Array.isArray(providers) || providers.length > MAX_TRUST_LIST_PROVIDERS || providers.some((p) => typeof p !== 'string')) throw bad('providers');
  if (typeof signer !== 'string' || !/^[0-9a-f]{64}$/.test(signer)) throw bad('signer');
  if (typeof signature !== 'string' || !/^[0-9a-f]{128}$/.test(signature)) throw bad('signature');
  let onions: string[];
  try {
    onions = (providers as string[]).map((p) => parseOnionAddress(p).onion);
  } catch (err) {
    throw bad('a provider is not an onion address', err);
  }
  const l = { name, issuedAt: issuedAt as number, expiresAt: expiresAt as number, providers: onions };
  if (!verifyDomain(fromHex(signer), 'trust-list/v1', body(l), fromHex(signature))) throw bad('the signature does not verify');
  if (!opts.trustedSigners.has(signer)) throw new ProviderError('UNTRUSTED_SIGNER', `trust list "${name}" is signed by ${signer.slice(0, 16)}…, whom you do not trust`);
  if (l.expiresAt <= opts.now) throw bad(`"${name}" expired`);
  return { ...l, signer };
}
