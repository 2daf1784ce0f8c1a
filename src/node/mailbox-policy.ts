/**
 * The user's policy for taking mailbox providers from the directory (issue 12, item 3), as stored
 * (setting `mailboxes.policy`, JSON) and shown by `mailboxes.policy` / `onionpost mailboxes policy`.
 * Off by default: the node then uses only the providers the user named (ours, spares, trust lists).
 *
 * On, the review (mailbox-review.ts) also considers directory listings that pass these filters as
 * replacements, after the user's own candidates, ranked by measured reputation
 * (src/provider/policy.ts rank()), and fills up to `target` providers from them. A priced listing
 * is used only once the user has paid it (`onionpost providers pay`): the node holds no TRON key.
 * Pure: validation and conversion to the ProviderPolicy the ranking takes.
 */
import { MAX_MAILBOXES } from '../crypto/index.js';
import { DEFAULT_POLICY, type ProviderPolicy } from '../provider/index.js';
import { parseTronAddress } from '../registry/index.js';
import { MailboxesError } from './errors.js';

/** The stored policy. Amounts are decimal strings (bigints do not survive JSON). */
export interface MailboxPolicy {
  /** Take providers from the directory automatically. Default false. */
  directory: boolean;
  /** With `directory`: how many providers to keep, filling up from the directory. Default 2. */
  target: number;
  /** Least stake a listing must lock, sun. Default "0". */
  minStakeSun: string;
  /** Least retention a listing must promise, days. Default 7. */
  minRetentionDays: number;
  /** Highest price per 30 days (smallest unit of `token`; null token: TRX sun); null: no cap. */
  maxPrice: { amount: string; token: string | null } | null;
  /** Only free listings, paid or not. Default false. */
  freeOnly: boolean;
}

export const DEFAULT_MAILBOX_POLICY: Readonly<MailboxPolicy> = Object.freeze({
  directory: false,
  target: 2,
  minStakeSun: '0',
  minRetentionDays: DEFAULT_POLICY.minRetentionDays,
  maxPrice: null,
  freeOnly: false,
});

/** At most this many days of retention can be asked for (the contract's terms are uint32 days). */
const MAX_RETENTION_DAYS = 3650;

const bad = (message: string) => new MailboxesError('BAD_POLICY', message);

function amount(s: unknown, what: string): string {
  if (typeof s !== 'string' || !/^\d{1,30}$/.test(s)) throw bad(`${what} must be a whole number of the smallest unit (decimal string), got ${JSON.stringify(s)}`);
  return BigInt(s).toString();
}

/** `patch` over `current`, every field checked (MailboxesError BAD_POLICY otherwise). */
export function mergePolicy(current: MailboxPolicy, patch: Partial<MailboxPolicy>): MailboxPolicy {
  const p = { ...current, ...patch };
  if (typeof p.directory !== 'boolean') throw bad('directory must be true or false');
  if (typeof p.freeOnly !== 'boolean') throw bad('freeOnly must be true or false');
  if (!Number.isInteger(p.target) || p.target < 1 || p.target > MAX_MAILBOXES) throw bad(`target must be 1..${MAX_MAILBOXES}`);
  if (!Number.isInteger(p.minRetentionDays) || p.minRetentionDays < 0 || p.minRetentionDays > MAX_RETENTION_DAYS) throw bad(`minRetentionDays must be 0..${MAX_RETENTION_DAYS}`);
  let maxPrice: MailboxPolicy['maxPrice'] = null;
  if (p.maxPrice !== null && p.maxPrice !== undefined) {
    const token = p.maxPrice.token ?? null;
    const parsed = token === null ? null : parseTronAddress(token);
    if (token !== null && !parsed) throw bad(`maxPrice.token must be a TRON address, got "${token}"`);
    maxPrice = { amount: amount(p.maxPrice.amount, 'maxPrice.amount'), token: parsed ? parsed.base58 : null };
  }
  return {
    directory: p.directory, target: p.target, minStakeSun: amount(p.minStakeSun, 'minStakeSun'),
    minRetentionDays: p.minRetentionDays, maxPrice, freeOnly: p.freeOnly,
  };
}

/** The stored text as a policy; the default when none (or unreadable: it was written by mergePolicy). */
export function readPolicy(raw: string | null): MailboxPolicy {
  if (!raw) return { ...DEFAULT_MAILBOX_POLICY };
  try {
    return mergePolicy(DEFAULT_MAILBOX_POLICY, JSON.parse(raw) as Partial<MailboxPolicy>);
  } catch {
    return { ...DEFAULT_MAILBOX_POLICY };
  }
}

/** The filters a directory listing must pass under `p` (ProviderPolicy's part of them). */
export function filtersOf(p: MailboxPolicy): Pick<ProviderPolicy, 'minStakeSun' | 'minRetentionDays' | 'maxPrice' | 'freeOnly'> {
  return {
    minStakeSun: BigInt(p.minStakeSun),
    minRetentionDays: p.minRetentionDays,
    maxPrice: p.maxPrice === null ? null : new Map([[p.maxPrice.token, BigInt(p.maxPrice.amount)]]),
    freeOnly: p.freeOnly,
  };
}
