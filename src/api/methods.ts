/**
 * The node's API methods, as data. The CLI, the web UI and scripts all use exactly these; the
 * OpenRPC document served at /openrpc.json is generated from this table.
 */
import { DEFAULT_LIMITS } from '../limits.js';
import { MAIL_METHODS, SEND_EXTRA_PARAMS } from './mail-methods.js';
import { MAILBOX_METHODS, mailboxView } from './mailbox-methods.js';
import { PROVIDER_METHODS } from './provider-methods.js';
import type { JsonSchema, MethodSpec } from './schema.js';

const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'integer', description, ...extra });
const obj = (properties: Record<string, JsonSchema>, required: string[] = [], extra: Partial<JsonSchema> = {}): JsonSchema => ({
  type: 'object', properties, required, additionalProperties: false, ...extra,
});
const open = (description: string): JsonSchema => ({ type: 'object', description });
const none = obj({});
/**
 * Hex strings are checked at the door, not when first used: a thread id that is not hex used to be
 * queued and then fail on every delivery attempt until the message expired. Lower case only, as
 * every id this API hands out.
 */
const hex32 = (description: string): JsonSchema => str(`${description}, 32 lowercase hex characters`, { minLength: 32, maxLength: 32, pattern: '^[0-9a-f]{32}$' });
/** A point in time, ms since the epoch. */
const time = (description: string): JsonSchema => int(description, { minimum: 0, maximum: 8.64e15 });

/** `in_mailbox`: undelivered, and held for its offline recipient by their mailbox providers (`mailboxes`). */
export const MESSAGE_STATES = ['queued', 'sending', 'in_mailbox', 'delivered', 'expired', 'failed', 'held', 'received'] as const;

const messageSummary: JsonSchema = {
  type: 'object',
  properties: {
    id: str('message id, 32 hex characters'),
    direction: { type: 'string', enum: ['in', 'out'] },
    kind: { type: 'string', enum: ['mail', 'chat'] },
    from: str('sender onion address (inbox)'),
    to: str('recipient onion address (outbox)'),
    peerLabel: str('the name the message was sent to or received under, as stored then'),
    fromName: str('inbox: the contact alias, else the verified registry name; null for a stranger'),
    toName: str('outbox: the contact alias, else the verified registry name; null for a bare onion'),
    readAt: int('outbox: when the recipient read it (ms); only from contacts who send read receipts'),
    peerFingerprint: str('the start of the peer identity key, in groups of four hex digits (for strangers)'),
    preview: str('the start of the body, on one line'),
    attachmentCount: int('files carried'),
    archived: { type: 'boolean' },
    delivery: { type: 'object', description: 'outbox, not delivered: { words, since?, nextAttemptAt?, code? }: why, in plain words' },
    subject: str('subject line'),
    state: { type: 'string', enum: MESSAGE_STATES },
    reason: str('why a message is failed, held or retrying'),
    mailboxes: { type: 'array', items: { type: 'string' }, description: 'in_mailbox: the recipient\'s providers holding it (onions)' },
    createdAt: int('ms since epoch'),
    receivedAt: int('ms since epoch (inbox)'),
    deliveredAt: int('ms since epoch (outbox, once delivered)'),
    threadId: str('thread id, hex'),
    read: { type: 'boolean' },
    attempts: int('delivery attempts so far'),
  },
};

export const API_METHODS: readonly MethodSpec[] = [
  { name: 'rpc.discover', summary: 'This API as an OpenRPC document.', params: none, result: open('OpenRPC 1.2 document') },
  {
    name: 'node.address', summary: "This node's onion address and public keys.", params: none,
    result: obj({ onion: str('v3 onion address'), identityKey: str('Ed25519 public key, hex'), encryptionKey: str('X25519 public key, hex') }),
  },
  {
    name: 'node.status', summary: 'Tor, onion, queue and peer status.', params: none,
    result: {
      type: 'object',
      properties: {
        onion: str('v3 onion address'),
        reachable: { type: 'boolean', description: 'our own onion answered through Tor (or the listener, without Tor)' },
        tor: open('{ mode: "tor"|"none", bootstrap: 0-100, state, socksPort, version }'),
        counts: open('message counts by state'),
        peers: open('connected peers'),
        provider: open('what this node holds as a mailbox provider ({ users, queues, held, heldBytes }), or null'),
        mailboxes: { type: 'array', items: mailboxView, description: 'the mailbox providers this user subscribed at' },
        warnings: { type: 'array', items: open('{ type, message, alias? (contact.keyChange, contact.registryProblem), provider? (mailbox.lapsing) }') },
      },
    },
  },
  {
    name: 'messages.send', summary: 'Queue a message. Returns at once unless `wait` is set.',
    params: obj({
      to: str('recipient: onion address, contact alias or registry name', { minLength: 1, maxLength: 200 }),
      subject: str('subject', { maxLength: 998 }),
      body: str('body text', { maxLength: 262_000 }),
      kind: { type: 'string', enum: ['mail', 'chat'] },
      threadId: hex32('thread to continue'),
      inReplyTo: hex32('message replied to'),
      ttlMs: int('give up after this long, ms', { minimum: 60_000, maximum: DEFAULT_LIMITS.maxTtlMs }),
      wait: { type: 'boolean', description: 'resolve only when delivered, failed, held or expired' },
      waitMs: int('how long `wait` may take', { minimum: 1, maximum: 3_600_000 }),
      idempotencyKey: str('caller-chosen key, 1–128 printable ASCII characters without spaces: a send repeated with the same key (e.g. after a lost answer) returns the first message, same id, instead of queueing another; the same key with a different message is refused (IDEMPOTENCY_CONFLICT)', { minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$' }),
      ...SEND_EXTRA_PARAMS,
    }, ['to']),
    result: obj({ id: str('message id'), state: { type: 'string', enum: MESSAGE_STATES }, to: str('recipient onion'), reason: str('why, if not delivered') }),
  },
  {
    name: 'messages.inbox', summary: 'Received messages, newest first.',
    params: obj({
      limit: int('at most', { minimum: 1, maximum: 1000 }), before: time('received before, ms'), kind: { type: 'string', enum: ['mail', 'chat'] },
      archived: { type: 'boolean', description: 'true: the archive; default false: the inbox' },
    }),
    result: { type: 'array', items: messageSummary },
  },
  {
    name: 'messages.outbox', summary: 'Sent and queued messages with their delivery state, newest first.',
    params: obj({
      limit: int('at most', { minimum: 1, maximum: 1000 }), before: time('created before, ms'),
      view: { type: 'string', enum: ['all', 'pending', 'delivered'], description: 'pending: not delivered (waiting, held, failed, expired); delivered: the Sent view; default all' },
    }),
    result: { type: 'array', items: messageSummary },
  },
  {
    name: 'messages.get', summary: 'One message with its body and state history; marks an inbox message read.',
    params: obj({ id: str('message id or a unique prefix of it, 4–32 lowercase hex characters', { minLength: 4, maxLength: 32, pattern: '^[0-9a-f]+$' }) }, ['id']),
    result: open('message summary plus body, events[]'),
  },
  {
    name: 'messages.thread', summary: 'Every message of a thread, oldest first.',
    params: obj({ threadId: hex32('thread id') }, ['threadId']),
    result: { type: 'array', items: messageSummary },
  },
  {
    name: 'bridge.settings', summary: 'Where a mail client connects to the mail bridge (SMTP and IMAP on 127.0.0.1) and how it logs in. The password is a secret.',
    params: none,
    result: obj({
      smtp: obj({ host: str('always 127.0.0.1'), port: int('SMTP submission port') }, ['host', 'port']),
      imap: obj({ host: str('always 127.0.0.1'), port: int('IMAP port') }, ['host', 'port']),
      user: str('login name: your own address'), password: str('the bridge password (not the API token)'),
      address: str('your own address in the bridge scheme: mail@<onion>'),
    }, ['smtp', 'imap', 'user', 'password', 'address']),
  },
  {
    name: 'contacts.list', summary: 'Contacts with their pinned keys and any key-change warning.', params: none,
    result: { type: 'array', items: open('{ alias, onion, identityKey, encryptionKey, source, registryName, keyChange }') },
  },
  {
    name: 'contacts.add', summary: 'Add a contact by onion address or registry name, pinning its keys.',
    params: obj({ alias: str('local name', { minLength: 1, maxLength: 64 }), address: str('onion address or registry name', { minLength: 1, maxLength: 200 }) }, ['alias', 'address']),
    result: open('the contact'),
  },
  { name: 'contacts.remove', summary: 'Forget a contact.', params: obj({ alias: str('alias', { minLength: 1, maxLength: 64 }) }, ['alias']), result: obj({ removed: { type: 'boolean' } }) },
  {
    name: 'contacts.approveKeyChange', summary: "Accept a contact's new keys without a rotation statement, releasing held messages.",
    params: obj({ alias: str('alias', { minLength: 1, maxLength: 64 }) }, ['alias']), result: open('the contact'),
  },
  {
    name: 'registry.lookup', summary: 'Resolve and verify a registry name or TRON address.',
    params: obj({ name: str('name or T-address', { minLength: 1, maxLength: 64 }) }, ['name']),
    result: open('{ name, owner, onion, identityKey, encryptionKey, mailboxes, version }'),
  },
  ...MAIL_METHODS,
  ...MAILBOX_METHODS,
  ...PROVIDER_METHODS,
  {
    name: 'sessions.loginLink', summary: 'A fresh single-use sign-in link for the web UI (valid 2 minutes). API token only.', params: none, tokenOnly: true,
    result: obj({ url: str('http://127.0.0.1:<port>/login?code=…'), expiresAt: int('ms since epoch') }),
  },
  {
    name: 'sessions.revokeAll', summary: 'Sign every browser out of the web UI. API token only.', params: none, tokenOnly: true,
    result: obj({ revoked: int('browser sessions ended') }),
  },
  {
    name: 'events.subscribe', summary: 'WebSocket only: receive `event` notifications (message.received, message.state, tor.status, contact.keyChange, session.reset).',
    params: obj({ types: { type: 'array', maxItems: 32, items: str('event type', { minLength: 1, maxLength: 64 }) } }), result: open('{ subscribed }'), wsOnly: true,
  },
];
