/**
 * Where the provider role learns payments: this node's own listing in the provider directory (found
 * by its identity key) says whether it charges, and the directory's paidUntil(owner, tag) when a
 * subscriber is paid until. The listing is read at the first request and again after `listingTtlMs`
 * (terms may change; sooner while not listed); when a re-read fails the last one read stands. The provider layer sees only
 * the PaymentSource; this module is the one that knows both it and the registry.
 */
import type { Clock } from '../clock.js';
import type { PaymentSource } from '../provider/index.js';
import type { ProviderDirectory, ProviderListing } from '../registry/index.js';

export interface DirectoryPaymentsOptions {
  directory: ProviderDirectory;
  /** This node's identity key: what its listing is found by. */
  identityKey: Uint8Array;
  clock: Clock;
  /** How long a read listing is trusted before it is read again, ms. Default 1 h. */
  listingTtlMs?: number;
  /** The same when the node was not listed (it may be listed any moment), ms. Default 1 min. */
  unlistedTtlMs?: number;
}

export function directoryPayments(o: DirectoryPaymentsOptions): PaymentSource {
  const ttl = (l: ProviderListing | null) => (l ? o.listingTtlMs ?? 3600_000 : o.unlistedTtlMs ?? 60_000);
  let known: { at: number; listing: ProviderListing | null } | null = null;
  let reading: Promise<ProviderListing | null> | null = null;
  const listing = async (signal: AbortSignal): Promise<ProviderListing | null> => {
    if (known && o.clock.now() - known.at < ttl(known.listing)) return known.listing;
    reading ??= o.directory.byIdentity(o.identityKey, { signal }).then(
      (l) => {
        known = { at: o.clock.now(), listing: l };
        return l;
      },
      (err: unknown) => {
        if (known) return known.listing;
        throw err;
      },
    ).finally(() => {
      reading = null;
    });
    return reading;
  };
  return {
    priced: async (signal) => ((await listing(signal))?.terms.price ?? 0n) > 0n,
    paidUntil: async (tag, signal) => {
      const l = await listing(signal);
      return l ? o.directory.paidUntil(l.owner, tag, { signal }) : 0;
    },
  };
}
