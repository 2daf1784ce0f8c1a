/**
 * The provider directory as this node's API shows it (`providers.list`, `providers.show`): each
 * listing with its terms, price and stake, joined with what the node knows of it itself — whether
 * it is one of ours, the reputation it measured (provider-scores.ts) and, for ours, what the
 * provider last said of our account (paid until) — and whether it passes the user's directory policy
 * (mailbox-policy.ts, judged by src/provider/policy.ts judge()), with the reason when not. The same
 * judging gives the review its directory candidates (candidates()). The directory is read-only
 * here: paying needs a TRON key, which the node does not hold (`onionpost providers pay`); the node
 * only reads whether we paid (paidUntil under our subscriber tag).
 */
import { isOnionAddress, parseOnionAddress, subscriberTag } from '../crypto/index.js';
import { judge, type PolicyVerdict, type ProviderCandidate, type ProviderPolicy } from '../provider/index.js';
import { parseTronAddress, priceWords, formatAmount, type ProviderDirectory, type ProviderListing } from '../registry/index.js';
import { toHex } from '../bytes.js';
import { ProvidersError } from './errors.js';
import type { MailboxPolicy } from './mailbox-policy.js';
import type { MailboxView } from './mailboxes.js';
import type { ReputationView } from './provider-scores.js';

/** How long one `providers.*` call may wait for the chain, ms. */
export const DIRECTORY_READ_TIMEOUT_MS = 30_000;
/** Directory owners read at most for the review's candidates (pages of 100). */
export const MAX_CANDIDATE_OWNERS = 500;
const PAGE = 100;

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
  /** Passes the user's directory policy now (filters, score, cooling, paid if priced): the node may pick it when the policy is on. */
  eligible: boolean;
  /** Why not, in words; null when eligible. */
  reason: string | null;
}

export interface ProviderListingsDeps {
  directory: ProviderDirectory | undefined;
  mailboxes(): MailboxView[];
  reputation(onion: string): ReputationView;
  /** The user's stored directory policy, and the policy listings are judged by (mailbox-review.ts choicePolicy). */
  policy(): { stored: MailboxPolicy; judgeBy: ProviderPolicy };
  /** Until when the courier skips `onion` for misbehaving, ms since epoch; undefined: it does not. */
  coolingUntil(onion: string): number | undefined;
  /** Our subscriber-tag key (crypto/provider.ts): what we paid is recorded under the tag it derives per provider. */
  tagKey: Uint8Array;
  now(): number;
}

/** `providers.list` and `providers.show` over the node's directory client and its own records. */
export function providerListings(d: ProviderListingsDeps) {
  const directory = (): ProviderDirectory => {
    if (!d.directory) throw new ProvidersError('NO_DIRECTORY', 'this node has no provider directory: start it with --network (a network where the directory is deployed) or --directory <address>');
    return d.directory;
  };
  /** A listing as a candidate, judged; the chain is asked whether we paid only when that is all it lacks. */
  const judged = async (p: ProviderListing, policy: ProviderPolicy, signal: AbortSignal): Promise<{ candidate: ProviderCandidate; verdict: PolicyVerdict }> => {
    const rep = d.reputation(p.onion);
    const cooling = d.coolingUntil(p.onion);
    let candidate: ProviderCandidate = {
      onion: p.onion, source: 'directory', stakeSun: p.stakeSun, retentionDays: p.terms.retentionDays, quotaMB: p.terms.quotaMB,
      price: p.terms.price, token: p.terms.token, score: rep.score, proven: rep.proven, ...(cooling !== undefined ? { coolingUntil: cooling } : {}),
    };
    if (p.status !== 'listed') return { candidate, verdict: { onion: p.onion, eligible: false, reason: 'leaving the directory' } };
    let verdict = judge(candidate, policy, d.now());
    if (verdict.payable) {
      candidate = { ...candidate, paidUntil: await directory().paidUntil(p.owner, subscriberTag(d.tagKey, p.identityKey), { signal }) };
      verdict = judge(candidate, policy, d.now());
    }
    return { candidate, verdict };
  };
  const view = (p: ProviderListing, ours: Map<string, MailboxView>, verdict: PolicyVerdict): ListingView => {
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
      eligible: verdict.eligible, reason: verdict.eligible ? null : verdict.reason ?? 'not eligible',
    };
  };
  const viewAll = async (listings: ProviderListing[], signal: AbortSignal): Promise<ListingView[]> => {
    const policy = d.policy().judgeBy;
    const ours = oursByOnion();
    return Promise.all(listings.map(async (p) => view(p, ours, (await judged(p, policy, signal)).verdict)));
  };
  const oursByOnion = () => new Map(d.mailboxes().map((m) => [m.onion, m]));
  return {
    async list(q: { offset?: number; limit?: number; includeLeaving?: boolean }, signal: AbortSignal) {
      const page = await directory().list({ ...q, signal });
      return { total: page.total, providers: await viewAll(page.providers, signal), rejected: page.rejected, policy: d.policy().stored };
    },
    /** One listing by TRON owner address or onion. */
    async show(who: string, signal: AbortSignal): Promise<ListingView> {
      const s = who.trim();
      const owner = parseTronAddress(s);
      if (!owner && !isOnionAddress(s)) throw new ProvidersError('BAD_PROVIDER', `"${who}" is neither a TRON address nor an onion address`);
      const dir = directory();
      const p = owner ? await dir.get(owner.base58, { signal }) : await dir.byIdentity(parseOnionAddress(s).identityKey, { signal });
      if (!p) throw new ProvidersError('NOT_FOUND', `${who} is not listed in the provider directory`);
      return (await viewAll([p], signal))[0]!;
    },
    /**
     * The review's directory candidates (mailbox-review.ts): the first MAX_CANDIDATE_OWNERS owners'
     * listings, each with its terms, our measurements, cooling and (when all it lacks is payment)
     * whether we paid. Without a directory: none.
     */
    async candidates(policy: ProviderPolicy, signal: AbortSignal): Promise<ProviderCandidate[]> {
      if (!d.directory) return [];
      const out: ProviderCandidate[] = [];
      for (let offset = 0; offset < MAX_CANDIDATE_OWNERS; offset += PAGE) {
        const page = await d.directory.list({ offset, limit: PAGE, signal });
        for (const p of page.providers) out.push((await judged(p, policy, signal)).candidate);
        if (offset + PAGE >= page.total) break;
      }
      return out;
    },
  };
}
