/**
 * The provider directory as this node's API shows it (`providers.list`, `providers.show`): each
 * listing with its terms, price and stake, joined with what the node knows of it itself — whether
 * it is one of ours, the reputation it measured (provider-scores.ts) and, for ours, what the
 * provider last said of our account (paid until). The directory is read-only here: paying needs a
 * TRON key, which the node does not hold (`onionpost providers pay`).
 */
import { isOnionAddress, parseOnionAddress } from '../crypto/index.js';
import { parseTronAddress, priceWords, formatAmount, type ProviderDirectory, type ProviderListing } from '../registry/index.js';
import { toHex } from '../bytes.js';
import { ProvidersError } from './errors.js';
import type { MailboxView } from './mailboxes.js';
import type { ReputationView } from './provider-scores.js';

/** How long one `providers.*` call may wait for the chain, ms. */
export const DIRECTORY_READ_TIMEOUT_MS = 30_000;

/** A directory listing as the API returns it (api/provider-methods.ts). Amounts are decimal strings: bigints do not survive JSON. */
export interface ListingView {
  owner: string;
  onion: string;
  identityKey: string;
  status: 'listed' | 'leaving';
  terms: {
    retentionDays: number;
    quotaMB: number;
    /** The TRC-20 token the price is in; null: TRX. */
    token: string | null;
    /** Per 30 days, in sun (TRX) or the token's smallest unit; "0": free. */
    pricePer30Days: string;
    /** "free" or e.g. "5 TRX per 30 days". */
    price: string;
  };
  stakeSun: string;
  /** e.g. "100 TRX". */
  stake: string;
  withdrawableAt: number | null;
  version: number;
  /** One of the providers we subscribed at. */
  ours: boolean;
  /** What this node measured of it; null: it never saw it do anything. */
  reputation: ReputationView | null;
  /** Ours: what it last said our account is paid until (ms since epoch; 0: free to us); null: not ours or not asked yet. */
  paidUntil: number | null;
}

export interface ProviderListingsDeps {
  directory: ProviderDirectory | undefined;
  mailboxes(): MailboxView[];
  reputation(onion: string): ReputationView;
}

/** `providers.list` and `providers.show` over the node's directory client and its own records. */
export function providerListings(d: ProviderListingsDeps) {
  const directory = (): ProviderDirectory => {
    if (!d.directory) throw new ProvidersError('NO_DIRECTORY', 'this node has no provider directory: start it with --network (a network where the directory is deployed) or --directory <address>');
    return d.directory;
  };
  const view = (p: ProviderListing, ours: Map<string, MailboxView>): ListingView => {
    const mine = ours.get(p.onion);
    const rep = d.reputation(p.onion);
    return {
      owner: p.owner, onion: p.onion, identityKey: toHex(p.identityKey), status: p.status,
      terms: {
        retentionDays: p.terms.retentionDays, quotaMB: p.terms.quotaMB, token: p.terms.token,
        pricePer30Days: p.terms.price.toString(), price: priceWords(p.terms.price, p.terms.token),
      },
      stakeSun: p.stakeSun.toString(), stake: formatAmount(p.stakeSun, null), withdrawableAt: p.withdrawableAt, version: p.version,
      ours: mine !== undefined,
      reputation: rep.lastEventAt === null ? null : rep,
      paidUntil: mine?.paidUntil ?? null,
    };
  };
  const oursByOnion = () => new Map(d.mailboxes().map((m) => [m.onion, m]));
  return {
    async list(q: { offset?: number; limit?: number; includeLeaving?: boolean }, signal: AbortSignal) {
      const page = await directory().list({ ...q, signal });
      const ours = oursByOnion();
      return { total: page.total, providers: page.providers.map((p) => view(p, ours)), rejected: page.rejected };
    },
    /** One listing by TRON owner address or onion. */
    async show(who: string, signal: AbortSignal): Promise<ListingView> {
      const s = who.trim();
      const owner = parseTronAddress(s);
      if (!owner && !isOnionAddress(s)) throw new ProvidersError('BAD_PROVIDER', `"${who}" is neither a TRON address nor an onion address`);
      const dir = directory();
      const p = owner ? await dir.get(owner.base58, { signal }) : await dir.byIdentity(parseOnionAddress(s).identityKey, { signal });
      if (!p) throw new ProvidersError('NOT_FOUND', `${who} is not listed in the provider directory`);
      return view(p, oursByOnion());
    },
  };
}
