/**
 * The read receipt's body (PROTOCOL.md §9.2, src/session/control.ts): exactly the ids, one per line,
 * 32 lowercase hex each, 1..MAX_READ_IDS, distinct; nothing else set. Anything else is BAD_MESSAGE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MAX_READ_IDS, SessionError, decodeMessage, encodeMessage, parseReadReceipt, readReceiptBody, type SessionMessage } from '../../src/session/index.js';
import { errorCodeOf } from '../fixtures/codes.js';

const id = () => randomBytes(16).toString('hex');
const msg = (over: Partial<SessionMessage>): SessionMessage => ({
  kind: 'read', id: new Uint8Array(16), createdAt: 1, expiresAt: 2, threadId: null, inReplyTo: null, subject: '', body: '', attachments: [], ...over,
});
const code = (fn: () => unknown) => errorCodeOf(SessionError, fn);

test('a read receipt round-trips through the inner message', () => {
  const ids = [id(), id(), id()];
  const m = msg({ body: readReceiptBody(ids) });
  assert.equal(m.body, ids.join('\n'));
  assert.deepEqual(parseReadReceipt(decodeMessage(encodeMessage(m))), ids);
  const most = Array.from({ length: MAX_READ_IDS }, id);
  assert.deepEqual(parseReadReceipt(msg({ body: readReceiptBody(most) })), most);
});

test('a malformed read receipt is BAD_MESSAGE, on either side', () => {
  const a = id();
  const cases: [string, Partial<SessionMessage>][] = [
    ['no ids', { body: '' }],
    ['upper-case hex', { body: a.toUpperCase() }],
    ['a trailing newline', { body: `${a}\n` }],
    ['a short id', { body: a.slice(2) }],
    ['the same id twice', { body: `${a}\n${a}` }],
    ['too many ids', { body: Array.from({ length: MAX_READ_IDS + 1 }, id).join('\n') }],
    ['a subject', { body: a, subject: 'x' }],
    ['a thread', { body: a, threadId: new Uint8Array(16).fill(1) }],
    ['a file', { body: a, attachments: [{ name: 'f', mediaType: 'text/plain', data: new Uint8Array(1) }] }],
    ['another kind', { body: a, kind: 'chat' }],
  ];
  for (const [what, over] of cases) {
    assert.equal(code(() => parseReadReceipt(msg(over))), 'BAD_MESSAGE', what);
  }
  assert.equal(code(() => readReceiptBody([])), 'BAD_MESSAGE');
  assert.equal(code(() => readReceiptBody([a, a])), 'BAD_MESSAGE');
});
