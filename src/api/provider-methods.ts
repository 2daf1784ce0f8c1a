/**
 * The providers.* part of the method table (methods.ts includes it): the mailbox-provider
 * directory on TRON as the node reads it, joined with what the node knows of each provider
 * (issue 12 item 3). Handlers: handlers.ts, over node/provider-listings.ts. Both answer
 * NO_DIRECTORY when the node was started without a directory. Paying is not here: it needs a TRON
 * key the node does not hold (`onionpost providers pay`).
 */
import { mailboxPolicy, reputationView } from './mailbox-methods.js';
import type { JsonSchema, MethodSpec } from './schema.js';

const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'integer', description, ...extra });
const obj = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });

/** A directory listing (node/provider-listings.ts ListingView). */
export const listingView: JsonSchema = obj({
  owner: str('the provider\'s TRON account (base58)'),
  onion: str('its onion address (bound to the listing by its signature)'),
  identityKey: str('its Ed25519 identity key, hex'),
  status: { type: 'string', enum: ['listed', 'leaving'] },
  terms: obj({
    retentionDays: int('how long it keeps mail that is not fetched, days'),
    quotaMB: int('how much it holds per user, MB'),
    token: { description: 'the TRC-20 token the price is in (base58); null: TRX' },
    pricePer30Days: str('per 30 days, in sun (TRX) or the token\'s smallest unit, decimal; "0": free'),
    price: str('the price in words: "free" or e.g. "5 TRX per 30 days"'),
  }, ['retentionDays', 'quotaMB', 'token', 'pricePer30Days', 'price']),
  stakeSun: str('TRX it has locked while listed, in sun, decimal'),
  stake: str('the stake in words, e.g. "100 TRX"'),
  withdrawableAt: { description: 'leaving: when its stake can be withdrawn, ms since epoch; null while listed' },
  version: int('how many times its listing changed'),
  ours: { type: 'boolean', description: 'one of the providers we subscribed at' },
  reputation: { description: 'what this node measured of it (as mailboxes.scores); null: it never saw it do anything' },
  paidUntil: { description: 'ours: what it last said our account is paid until, ms since epoch (0: free to us); null: not ours or not asked yet' },
  eligible: { type: 'boolean', description: 'passes the directory policy (mailboxes.policy) now: stake, retention, quota, price, measured score, not cooling, and paid if priced; the node picks from these when the policy is on' },
  reason: { description: 'why it is not eligible, in words (e.g. "stake below your minimum", "not paid: pay with `onionpost providers pay …`"); null when eligible' },
}, ['owner', 'onion', 'identityKey', 'status', 'terms', 'stakeSun', 'stake', 'withdrawableAt', 'version', 'ours', 'reputation', 'paidUntil', 'eligible', 'reason']);

export const PROVIDER_METHODS: readonly MethodSpec[] = [
  {
    name: 'providers.list',
    summary: 'Mailbox providers listed in the provider directory on TRON (each listing\'s signature binding its onion checked), with their terms, price and stake, '
      + 'whether each is one of ours, our measured reputation of it and what we have paid it. NO_DIRECTORY if the node has no directory.',
    params: obj({
      offset: int('first owner in the directory\'s order', { minimum: 0, maximum: 1_000_000 }),
      limit: int('owners to read at most', { minimum: 1, maximum: 100 }),
      includeLeaving: { type: 'boolean', description: 'also providers that deregistered and are waiting to withdraw their stake' },
    }),
    result: obj({
      total: int('owners ever registered (the paging space)'),
      providers: { type: 'array', items: listingView },
      rejected: { type: 'array', items: { type: 'object', description: '{ owner, reason }: listings whose binding does not verify, never offered' } },
      policy: { ...mailboxPolicy, description: 'the directory policy each listing\'s `eligible` is judged by (mailboxes.policy)' },
    }, ['total', 'providers', 'rejected', 'policy']),
  },
  {
    name: 'providers.show',
    summary: 'One listed provider by TRON owner address or onion, with everything this node measured of it and its newest events (as mailboxes.scores <onion>). '
      + 'NO_DIRECTORY, BAD_PROVIDER (neither address), NOT_FOUND (not listed).',
    params: obj({ provider: str('TRON owner address or onion address', { minLength: 1, maxLength: 100 }) }, ['provider']),
    result: { ...listingView, properties: { ...listingView.properties, measured: reputationView }, required: [...(listingView.required ?? []), 'measured'] },
  },
];
