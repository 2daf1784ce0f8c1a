/**
 * The mailboxes.* part of the method table (methods.ts includes it): the mailbox providers this
 * user subscribed at (issue 11). Handlers: handlers.ts, over the node's UserMailboxes.
 */
import type { JsonSchema, MethodSpec } from './schema.js';

const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string): JsonSchema => ({ type: 'integer', description });
const open = (description: string): JsonSchema => ({ type: 'object', description });
const obj = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });

const onion = str('the provider\'s v3 onion address', { minLength: 1, maxLength: 100 });

const num = (description: string): JsonSchema => ({ type: 'number', description });

/** What this node measured of a provider (node/provider-scores.ts ReputationView). */
export const reputationView: JsonSchema = obj({
  onion: str('the provider\'s onion address'),
  score: num('(good + 1) / (good + bad + 2), 0..1: 0.5 knowing nothing; each event\'s weight halves every 14 days'),
  proven: { type: 'boolean', description: 'enough weighted events (10) to act on the score' },
  belowThreshold: { type: 'boolean', description: 'proven and below 0.6: mail is left at the recipient\'s other providers, and one of ours is replaced' },
  good: num('decayed weight of good events (deposit taken 1, fetch worked 1, delivered 2)'),
  bad: num('decayed weight of bad events (refused 1, unreachable 1, malformed 5, lost 20: signed for a message that expired undelivered)'),
  counts: open('events of each kind ever seen: deposit_ok, deposit_refused, unreachable, fetch_ok, delivered, lost, malformed'),
  lastEventAt: { description: 'the newest event, ms since epoch; null: none' },
  ours: { type: 'boolean', description: 'one of our own providers' },
  history: { type: 'array', items: open('{ provider, at, kind, detail }'), description: 'with `onion`: its newest events, newest first' },
}, ['onion', 'score', 'proven', 'belowThreshold', 'good', 'bad', 'counts', 'lastEventAt']);

/** A trust list as accepted (src/provider/trust-list.ts TrustList). */
const trustListView: JsonSchema = obj({
  name: str('its name'),
  signer: str('the signer\'s identity key, hex'),
  issuedAt: int('ms since epoch'),
  expiresAt: int('ms since epoch'),
  providers: { type: 'array', items: str('onion') },
  valid: { type: 'boolean', description: 'still holds (not expired)' },
  problem: { description: 'why not, or null' },
}, ['name', 'signer', 'issuedAt', 'expiresAt', 'providers']);

/** A provider as the API shows it (node/mailboxes.ts mailboxView); also in node.status's `mailboxes`. */
export const mailboxView: JsonSchema = obj({
  onion: str('the provider\'s onion address'),
  identityKey: str('its Ed25519 identity key, hex (the key its onion is derived from)'),
  terms: obj({
    retentionMs: int('how long it keeps mail that is not fetched, ms'),
    quotaBytes: int('how many bytes it holds for us at most'),
    time: int('when it signed these terms, ms since epoch'),
    signature: str('its Ed25519 signature over the terms (domain mailbox-terms/v1), hex'),
  }, ['retentionMs', 'quotaBytes', 'time', 'signature']),
  subscribedAt: int('when we subscribed, ms since epoch'),
  lastFetchAt: { description: 'when we last fetched mail from it; null: never' },
  fetchFailingSince: { description: 'the first failed fetch since the last good one, ms since epoch; null: fetching works' },
  reputation: reputationView,
  paidUntil: { description: 'what it last said of our account (ACCOUNT_STATUS, asked at each fetch round): paid until, ms since epoch; 0: a free provider; null: not asked yet' },
  graceMs: { description: 'how long past paidUntil it still holds and hands out our mail, ms; null: not asked yet' },
  held: { description: '{ count, bytes, quotaBytes }: what it holds for us and the most it will; null: not asked yet' },
  accountCheckedAt: { description: 'when we last asked it how our account stands, ms since epoch; null: never' },
  warning: { description: 'a priced provider paid for 7 days or less, or no longer: what to do, in words; null otherwise' },
}, ['onion', 'identityKey', 'terms', 'subscribedAt', 'lastFetchAt', 'paidUntil', 'graceMs', 'held', 'accountCheckedAt', 'warning']);

/** The directory policy (node/mailbox-policy.ts MailboxPolicy). */
export const mailboxPolicy: JsonSchema = obj({
  directory: { type: 'boolean', description: 'take providers from the directory automatically: as replacements after your spares and trust lists, and to fill up to `target` (default false)' },
  target: { type: 'integer', minimum: 1, maximum: 8, description: 'with `directory`: how many providers to keep (default 2)' },
  minStakeSun: str('least stake a listing must lock, in sun, decimal (default "0")', { pattern: '^[0-9]{1,30}$', maxLength: 30 }),
  minRetentionDays: { type: 'integer', minimum: 0, maximum: 3650, description: 'least retention a listing must promise, days (default 7)' },
  maxPrice: {
    description: '{ amount, token }: the highest price per 30 days, amount in sun (token null) or the TRC-20 token\'s smallest unit, decimal; null: no cap. A priced listing is used only once paid (`onionpost providers pay`)',
    oneOf: [{ type: 'null' }, obj({
      amount: str('decimal', { pattern: '^[0-9]{1,30}$', maxLength: 30 }),
      token: { oneOf: [{ type: 'null' }, str('TRC-20 token address (base58)', { maxLength: 64 })], description: 'TRC-20 token address (base58); null: TRX' },
    }, ['amount'])],
  },
  freeOnly: { type: 'boolean', description: 'only free listings (default false)' },
});

export const MAILBOX_METHODS: readonly MethodSpec[] = [
  {
    name: 'mailboxes.add',
    summary: 'Subscribe at a mailbox provider (a request signed by our identity key; its signed terms are verified) and list it in the bundle we hand out. '
      + 'A refusal comes back with the provider\'s code (NOT_PAID, TOO_MANY_USERS, …) and nothing is stored. At most 8 providers.',
    params: obj({ onion }, ['onion']),
    result: mailboxView,
  },
  { name: 'mailboxes.list', summary: 'The mailbox providers we subscribed at, in the order added.', params: obj({}), result: { type: 'array', items: mailboxView } },
  {
    name: 'mailboxes.remove', summary: 'Stop listing a mailbox provider (forgotten here; the provider drops the account when its retention passes). NOT_FOUND if it is not ours.',
    params: obj({ onion }, ['onion']), result: mailboxView,
  },
  {
    name: 'mailboxes.spares', summary: 'The providers named as replacements: when one of ours falls below the score line or stays unreachable, the node subscribes at the best of these and drops it.',
    params: obj({}), result: { type: 'array', items: str('onion') },
  },
  { name: 'mailboxes.addSpare', summary: 'Name a provider as a replacement (not subscribed until needed). At most 16.', params: obj({ onion }, ['onion']), result: { type: 'array', items: str('onion') } },
  { name: 'mailboxes.removeSpare', summary: 'Stop naming a provider as a replacement. NOT_FOUND if it is not one.', params: obj({ onion }, ['onion']), result: { type: 'array', items: str('onion') } },
  {
    name: 'mailboxes.trustLists', summary: 'Trust lists accepted as sources of replacements: providers someone you trust vouches for (signed lists, src/provider/trust-list.ts), each with whether it still holds.',
    params: obj({}), result: { type: 'array', items: trustListView },
  },
  {
    name: 'mailboxes.addTrustList',
    summary: 'Accept a trust list file signed by `signer` (an identity key, 64 hex, or a contact\'s alias): its signature, signer and expiry are checked (BAD_TRUST_LIST, UNTRUSTED_SIGNER). One with the same signer and name is replaced. At most 8.',
    params: obj({ text: str('the trust list file\'s text (JSON)', { minLength: 1, maxLength: 64_000 }), signer: str('who must have signed it: identity key (hex) or contact alias', { minLength: 1, maxLength: 200 }) }, ['text', 'signer']),
    result: trustListView,
  },
  {
    name: 'mailboxes.removeTrustList', summary: 'Forget the trust list with this name. NOT_FOUND if none.',
    params: obj({ name: str('the list\'s name', { minLength: 1, maxLength: 200 }) }, ['name']), result: obj({ removed: { type: 'boolean' } }),
  },
  {
    name: 'mailboxes.policy',
    summary: 'The directory policy: whether the node takes mailbox providers from the provider directory by itself, and the filters a listing must pass (stake, retention, price). Off by default.',
    params: obj({}), result: { ...mailboxPolicy, required: ['directory', 'target', 'minStakeSun', 'minRetentionDays', 'maxPrice', 'freeOnly'] },
  },
  {
    name: 'mailboxes.setPolicy',
    summary: 'Change the fields given of the directory policy; the others stay. The next review (every 10 minutes, or mailboxes.review) acts on it. BAD_POLICY for a field out of range.',
    params: mailboxPolicy, result: { ...mailboxPolicy, required: ['directory', 'target', 'minStakeSun', 'minRetentionDays', 'maxPrice', 'freeOnly'] },
  },
  {
    name: 'mailboxes.scores',
    summary: 'What this node measured of mailbox providers, ours and those it left mail at, best first; with `onion`, that one with its newest events.',
    params: obj({ onion }), result: { type: 'array', items: reputationView },
  },
  {
    name: 'mailboxes.review',
    summary: 'Count deposits whose messages were delivered or expired, replace our providers below the line (or unreachable for 2 days) with the best spare '
      + '(or, with the directory policy on, the best eligible directory listing), fill up to the policy\'s target, and move mail held at bad providers. Also runs every 10 minutes.',
    params: obj({}),
    result: obj({
      settled: open('{ delivered, lost, void }: deposits counted now'),
      replaced: { type: 'array', items: open('{ dropped, added, reason, at }') },
      kept: { type: 'array', items: open('{ provider, reason }: ours and bad, kept for want of a replacement') },
      redeposited: int('messages left at another provider because the one holding them scored bad or was dropped'),
      added: { type: 'array', items: str('onion'), description: 'directory policy on: providers subscribed at to reach its target' },
      payable: { type: 'array', items: open('{ provider, message }'), description: 'priced listings that fit the policy but are unpaid, named when a replacement or fill-up found none' },
    }, ['settled', 'replaced', 'kept', 'redeposited', 'added', 'payable']),
  },
];
