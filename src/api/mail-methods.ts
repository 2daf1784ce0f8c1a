/**
 * The everyday-use part of the method table (methods.ts includes it): search, archive, unread,
 * delete, retry now, cancel, attachments, drafts, conversations, safety numbers, rejecting a key
 * change. Handlers: mail-handlers.ts.
 */
import type { JsonSchema, MethodSpec } from './schema.js';

const str = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Partial<JsonSchema> = {}): JsonSchema => ({ type: 'integer', description, ...extra });
const bool = (description: string): JsonSchema => ({ type: 'boolean', description });
const obj = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({ type: 'object', properties, required, additionalProperties: false });
const open = (description: string): JsonSchema => ({ type: 'object', description });
const none = obj({});

/** A message id as the CLI prints it: the whole id or a unique prefix (lowercase hex, checked at the door like methods.ts's). */
export const messageId = str('message id or a unique prefix of it, 4–32 lowercase hex characters', { minLength: 4, maxLength: 32, pattern: '^[0-9a-f]+$' });
const hex32 = (description: string): JsonSchema => str(`${description}, 32 lowercase hex characters`, { minLength: 32, maxLength: 32, pattern: '^[0-9a-f]{32}$' });
/** At most this many files per message (crypto's MAX_ATTACHMENTS; the envelope's limit). */
const MAX_FILES = 16;
const alias = str('contact alias', { minLength: 1, maxLength: 64 });
const limit = int('at most', { minimum: 1, maximum: 1000 });

/** A file as the API carries it: name and media type as given, bytes in base64. */
export const attachmentParam: JsonSchema = obj({
  name: str('file name (display only; at most 255 bytes of UTF-8)', { minLength: 1, maxLength: 255 }),
  mediaType: str('media type, e.g. image/png (at most 255 bytes)', { minLength: 1, maxLength: 255 }),
  // 4/3 of the largest message, rounded up to whole base64 quads.
  data: str('the bytes, base64', { maxLength: 349_528, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
}, ['name', 'mediaType', 'data']);

/** What messages.send takes besides methods.ts's fields. */
export const SEND_EXTRA_PARAMS: Record<string, JsonSchema> = {
  attachments: { type: 'array', description: 'files to carry (at most 16; see messages.limits)', items: attachmentParam, maxItems: MAX_FILES },
  draftId: hex32('the draft this message was written in; removed once the message is queued'),
};

const result = (description: string) => open(description);

export const MAIL_METHODS: readonly MethodSpec[] = [
  {
    name: 'messages.search', summary: 'Messages whose sender, subject or body contain every word of the query (word prefixes; case and accents ignored), newest first.',
    params: obj({ query: str('words to look for', { minLength: 1, maxLength: 200 }), limit, direction: { type: 'string', enum: ['in', 'out'] } }, ['query']),
    result: { type: 'array', items: result('message summary') },
  },
  {
    name: 'messages.conversations', summary: 'Chat partners, most recent first: last message, unread count.',
    params: obj({ limit }),
    result: { type: 'array', items: result('{ peer, identityKey, name, contact, fingerprint, lastAt, lastDirection, preview, unread }') },
  },
  {
    name: 'messages.conversation', summary: 'The chat messages with one person, oldest first, with bodies.',
    params: obj({ peer: str('onion address, contact alias or identity key (hex)', { minLength: 1, maxLength: 200 }), limit, markRead: bool('mark their messages read') }, ['peer']),
    result: result('{ peer, identityKey, name, contact, fingerprint, messages[] }'),
  },
  {
    name: 'messages.attachment', summary: 'One file of a message, base64.',
    params: obj({ id: messageId, index: int('which file, from 0', { minimum: 0, maximum: 15 }) }, ['id', 'index']),
    result: obj({ name: str('file name'), mediaType: str('media type'), size: int('bytes'), data: str('base64') }),
  },
  {
    name: 'messages.archive', summary: 'Move a message out of the inbox (archived: true) or back.',
    params: obj({ id: messageId, archived: bool('default true') }, ['id']),
    result: obj({ id: str('message id'), archived: bool('now archived') }),
  },
  {
    name: 'messages.markRead', summary: 'Mark a received message read or unread.',
    params: obj({ id: messageId, read: bool('default true') }, ['id']),
    result: obj({ id: str('message id'), read: bool('now read') }),
  },
  {
    name: 'messages.delete', summary: 'Delete a message for good (secure delete). An outgoing one still queued or held must be cancelled first.',
    params: obj({ id: messageId }, ['id']),
    result: obj({ id: str('message id'), deleted: bool('it existed and is gone') }),
  },
  {
    name: 'messages.retryNow', summary: 'Try a waiting (queued) message again now instead of at its next scheduled try.',
    params: obj({ id: messageId }, ['id']),
    result: obj({ id: str('message id'), state: str('its state') }),
  },
  {
    name: 'messages.cancel', summary: 'Stop delivering a queued or held message (it becomes failed, "cancelled by you").',
    params: obj({ id: messageId }, ['id']),
    result: obj({ id: str('message id'), state: str('failed') }),
  },
  {
    name: 'messages.limits', summary: 'What one message may carry: how many files, and how many bytes subject, body and files take together.',
    params: none,
    result: obj({ maxAttachments: int('files per message'), capacity: int('bytes for subject, body and files, each file counting 6 + name + media type + data'), maxNameBytes: int('bytes per file name and media type') }),
  },
  {
    name: 'settings.get', summary: 'The user\'s settings: whether read receipts are sent.',
    params: none, result: obj({ readReceipts: bool('contacts are told when you read their chat messages (off by default)') }, ['readReceipts']),
  },
  {
    name: 'settings.set', summary: 'Change settings; answers all of them as they are now.',
    params: obj({ readReceipts: bool('tell contacts when you read their chat messages') }),
    result: obj({ readReceipts: bool('as now set') }, ['readReceipts']),
  },
  {
    name: 'drafts.list', summary: 'Drafts, most recently edited first (files listed without their data).',
    params: obj({ limit }), result: { type: 'array', items: result('{ id, kind, to, subject, preview, attachments[], updatedAt }') },
  },
  {
    name: 'drafts.get', summary: 'One draft with its files (base64).',
    params: obj({ id: hex32('draft id') }, ['id']), result: result('the draft'),
  },
  {
    name: 'drafts.save', summary: 'Create or replace a draft (kept on the node; survives restarts).',
    params: obj({
      id: hex32('draft id (the caller picks it)'),
      kind: { type: 'string', enum: ['mail', 'chat'] },
      to: str('recipient as typed', { maxLength: 200 }),
      subject: str('subject', { maxLength: 998 }),
      body: str('body', { maxLength: 262_000 }),
      threadId: hex32('thread to continue'),
      inReplyTo: hex32('message replied to'),
      attachments: { type: 'array', items: attachmentParam, maxItems: MAX_FILES },
    }, ['id']),
    result: obj({ id: str('draft id'), updatedAt: int('ms since epoch') }),
  },
  {
    name: 'drafts.delete', summary: 'Forget a draft.',
    params: obj({ id: hex32('draft id') }, ['id']), result: obj({ deleted: bool('it existed') }),
  },
  {
    name: 'contacts.get', summary: 'One contact with its pinned keys and any pending key change.',
    params: obj({ alias }, ['alias']), result: result('the contact'),
  },
  {
    name: 'contacts.safetyNumber', summary: 'The safety number to compare with a contact (60 digits; both sides compute the same).',
    params: obj({ alias }, ['alias']),
    result: obj({ alias: str('contact'), digits: str('60 digits'), groups: { type: 'array', items: str('5 digits') } }),
  },
  {
    name: 'contacts.rejectKeyChange', summary: "Refuse a contact's new keys: keep the pinned ones, cancel the messages held for them, and stop warning about that key.",
    params: obj({ alias }, ['alias']), result: result('the contact, plus cancelled (how many held messages were cancelled)'),
  },
];
