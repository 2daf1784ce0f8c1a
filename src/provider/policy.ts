/**
 * Which mailbox providers a user's node uses: the user's own choices first, then what the user's
 * trust choices and the directory offer, filtered by the user's limits and ranked by measured
 * reputation (DESIGN §10). Pure: candidates and scores in, an ordered choice out.
 *
 *   1. own       providers the user named (their own always-on box, a friend's); always eligible
 *                unless the user drops them, ranked first.
 *   2. trusted   providers on a trust list the user accepted (signed by someone the user trusts).
 *   3. directory listed providers that pass the filters (stake, retention, quota, price, currency)
 *                and, when priced, that the user has paid (`paidUntil`): the node holds no TRON key,
 *                so a priced one that fits but is unpaid is `payable`, never used.
 *   Within 2 and 3: proven providers whose score fell below `minScore` are out; then by score
 *   (unproven ones count as `unprovenScore`), then stake, then price. With a `spread` key, ties on
 *   score are ordered by a hash of the key and the onion instead (see ProviderPolicy.spread).
 *   Providers in a cooling period (misbehaved recently) and dropped ones are out everywhere.
 */
import { createHash } from 'node:crypto';

export interface ProviderCandidate {
  onion: string;
  source: 'own' | 'trusted' | 'directory';
  /** From the directory listing (absent for own providers not listed there). */
  stakeSun?: bigint;
  retentionDays?: number;
  quotaMB?: number;
  /** Per 30 days, in `token` units (null token = sun); 0 = free. */
  price?: bigint;
  token?: string | null;
  /** Measured; absent = never used. */
  score?: number;
  proven?: boolean;
  /** ms since epoch until which this provider is not used (misbehaviour). */
  coolingUntil?: number;
  /** A priced directory listing: until when the user has paid it (ms since epoch; 0 or absent: not paid). */
  paidUntil?: number;
}

export interface ProviderPolicy {
  /** How many providers to use (replication). Default 2. */
  replicas: number;
  minStakeSun: bigint;
  minRetentionDays: number;
  minQuotaMB: number;
  /**
   * Highest price per 30 days the user pays, per currency (null key = TRX sun). Absent currency =
   * refused. null: no cap (a priced provider is still used only once paid).
   */
  maxPrice: ReadonlyMap<string | null, bigint> | null;
  /** Directory providers with a price are out, paid or not. */
  freeOnly?: boolean;
  /** A proven provider below this score is replaced. Default 0.6. */
  minScore: number;
  /** What an unproven provider is ranked as. Default 0.5. */
  unprovenScore: number;
  /** Onions the user dropped. */
  dropped: ReadonlySet<string>;
  /**
   * Optional, per user (e.g. its identity key): candidates that tie on source and score are ordered
   * by SHA-256(spread ‖ onion) instead of by stake and price. Without it, every user who sees the
   * same unproven candidates picks the same ones (the highest stakes): the simulation (test/sim)
   * found most providers never chosen, so never measured, and the load on a few. Stake and price
   * still filter (minStakeSun, maxPrice).
   */
  spread?: Uint8Array;
}

export const DEFAULT_POLICY: Readonly<ProviderPolicy> = Object.freeze({
  replicas: 2,
  minStakeSun: 0n,
  minRetentionDays: 7,
  minQuotaMB: 16,
  maxPrice: new Map<string | null, bigint>([[null, 0n]]),
  minScore: 0.6,
  unprovenScore: 0.5,
  dropped: new Set<string>(),
});

export interface PolicyVerdict {
  onion: string;
  eligible: boolean;
  /** Why not, in words a user reads. */
  reason?: string;
  /** Not eligible only because it is priced and not paid: paying it would make it eligible. */
  payable?: boolean;
}

/** Whether `c` may be used under `p` at `now`, and why not. */
export function judge(c: ProviderCandidate, p: ProviderPolicy, now: number): PolicyVerdict {
  const no = (reason: string): PolicyVerdict => ({ onion: c.onion, eligible: false, reason });
  if (p.dropped.has(c.onion)) return no('you dropped it');
  if (c.coolingUntil !== undefined && c.coolingUntil > now) return no('misbehaved recently; cooling off');
  if (c.source === 'own') return { onion: c.onion, eligible: true };
  if (c.proven && (c.score ?? 0) < p.minScore) return no(`measured score ${(c.score ?? 0).toFixed(2)} is below ${p.minScore}`);
  if (c.source === 'directory') {
    if ((c.stakeSun ?? 0n) < p.minStakeSun) return no('stake below your minimum');
    if ((c.retentionDays ?? 0) < p.minRetentionDays) return no('keeps mail for too short a time');
    if ((c.quotaMB ?? 0) < p.minQuotaMB) return no('quota below your minimum');
    const price = c.price ?? 0n;
    if (price > 0n) {
      if (p.freeOnly) return no('not free');
      const cap = p.maxPrice === null ? price : p.maxPrice.get(c.token ?? null);
      if (cap === undefined) return no('priced in a currency you do not pay in');
      if (price > cap) return no('costs more than your maximum');
      if ((c.paidUntil ?? 0) <= now) return { ...no(`not paid: pay with \`onionpost providers pay ${c.onion}\``), payable: true };
    }
  }
  return { onion: c.onion, eligible: true };
}

const SOURCE_RANK = { own: 0, trusted: 1, directory: 2 } as const;

/** The eligible candidates, best first (see the file comment for the order). */
export function rank(candidates: readonly ProviderCandidate[], p: ProviderPolicy, now: number): ProviderCandidate[] {
  const score = (c: ProviderCandidate) => (c.proven ? (c.score ?? 0) : p.unprovenScore);
  const spread = p.spread;
  const salted = new Map<string, string>();
  const salt = (c: ProviderCandidate): string => {
    let h = salted.get(c.onion);
    if (h === undefined) salted.set(c.onion, (h = createHash('sha256').update(spread!).update(c.onion).digest('hex')));
    return h;
  };
  const byHash = (a: ProviderCandidate, b: ProviderCandidate) => (spread ? (salt(a) < salt(b) ? -1 : salt(a) > salt(b) ? 1 : 0) : 0);
  return candidates
    .filter((c) => judge(c, p, now).eligible)
    .sort((a, b) =>
      SOURCE_RANK[a.source] - SOURCE_RANK[b.source] ||
      score(b) - score(a) ||
      byHash(a, b) ||
      Number((b.stakeSun ?? 0n) - (a.stakeSun ?? 0n)) ||
      Number((a.price ?? 0n) - (b.price ?? 0n)) ||
      (a.onion < b.onion ? -1 : a.onion > b.onion ? 1 : 0));
}

export interface Replacement {
  keep: string[];
  drop: { onion: string; reason: string }[];
  add: string[];
}

/**
 * What to change in the current provider set: drop those that are no longer eligible, add the
 * best eligible ones not in use until `replicas` are in use. What a dropped provider held is the
 * caller's to re-deposit at the added ones.
 */
export function replace(current: readonly string[], candidates: readonly ProviderCandidate[], p: ProviderPolicy, now: number): Replacement {
  const byOnion = new Map(candidates.map((c) => [c.onion, c]));
  const keep: string[] = [];
  const drop: { onion: string; reason: string }[] = [];
  for (const onion of current) {
    const c = byOnion.get(onion);
    const v = c ? judge(c, p, now) : { onion, eligible: false, reason: 'no longer offered' };
    if (v.eligible) keep.push(onion);
    else drop.push({ onion, reason: v.reason ?? 'not eligible' });
  }
  const add: string[] = [];
  for (const c of rank(candidates, p, now)) {
    if (keep.length + add.length >= p.replicas) break;
    if (!keep.includes(c.onion) && !add.includes(c.onion)) add.push(c.onion);
  }
  return { keep, drop, add };
}
