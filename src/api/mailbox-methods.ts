/**
 * The mailboxes.* part of the method table (methods.ts includes it): the mailbox providers this
 * user subscribed at (issue 11). Handlers: handlers.ts, over the node's UserMailboxes.
 */
import type { JsonSchema, MethodSpec } from './schema.js';

const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string): JsonSchema => ({ type: 'integer', description });
const obj = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });

const onion = str('the provider\'s v3 onion address', { minLength: 1, maxLength: 100 });

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
  lastFetchAt: { description: 'when we last fetched mail from it; null: never (fetching comes in a later release)' },
}, ['onion', 'identityKey', 'terms', 'subscribedAt', 'lastFetchAt']);

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
];
