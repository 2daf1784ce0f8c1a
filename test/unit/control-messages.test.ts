/**
 * Control messages (PROTOCOL.md §9.2, src/session/control.ts). The read receipt: exactly the ids, one per line,
 * 32 lowercase hex each, 1..MAX_READ_IDS, distinct; nothing else set. Anything else is BAD_MESSAGE.
 */
import { test } from 'node:test';
import { onionAddress } from '../../src/crypto/index.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  MAX_HANDED_QUEUES, MAX_READ_IDS, SessionError, decodeMessage, directOnionBody, encodeMessage, parseDirectOnion, parseQueueHandout, parseReadReceipt,
  queueHandoutBody, readReceiptBody,
  type SessionMessage,
} from '../../src/session/index.js';
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

const handed = (_?: string) => ({ provider: onionAddress(new Uint8Array(randomBytes(32))), queue: new Uint8Array(randomBytes(16)), writeCap: new Uint8Array(randomBytes(32)) });

test('a queue handout (kind 4) round-trips; an empty one means "use my public queues"', () => {
  const qs = [handed('a'), handed('b')];
  const m = msg({ kind: 'queues', body: queueHandoutBody(qs) });
  assert.deepEqual(parseQueueHandout(decodeMessage(encodeMessage(m))), qs);
  assert.deepEqual(parseQueueHandout(msg({ kind: 'queues', body: '' })), []);
  const most = Array.from({ length: MAX_HANDED_QUEUES }, (_, i) => handed('abcdefgh'[i]!));
  assert.equal(parseQueueHandout(msg({ kind: 'queues', body: queueHandoutBody(most) })).length, MAX_HANDED_QUEUES);
});

test('a malformed queue handout is BAD_MESSAGE', () => {
  const line = queueHandoutBody([handed('a')]);
  const cases: [string, Partial<SessionMessage>][] = [
    ['a trailing newline', { body: `${line}\n` }],
    ['a provider twice', { body: `${line}\n${line}` }],
    ['nine queues', { body: Array.from({ length: 9 }, (_, i) => queueHandoutBody([handed('abcdefghi'[i]!)])).join('\n') }],
    ['not an onion', { body: line.replace('.onion', '.com__') }],
    ['an onion with a bad checksum', { body: line.replace(/^(.{53})(.)/, (_, head: string, c: string) => head + (c === 'a' ? 'b' : 'a')) }],
    ['upper-case hex', { body: line.replace(/ ([0-9a-f]{32}) /, (_, q: string) => ` ${q.toUpperCase()} `) }],
    ['a short capability', { body: line.slice(0, -2) }],
    ['a fourth field', { body: `${line} x` }],
    ['a subject', { kind: 'queues', subject: 's', body: line }],
    ['a read receipt kind', { kind: 'read', body: line }],
  ];
  for (const [what, over] of cases) assert.equal(code(() => parseQueueHandout(msg({ kind: 'queues', ...over }))), 'BAD_MESSAGE', what);
  const one = handed();
  assert.equal(code(() => queueHandoutBody([one, one])), 'BAD_MESSAGE');
});

test('a direct onion (kind 5): a valid v3 onion or empty; anything else is BAD_MESSAGE', () => {
  const onion = onionAddress(new Uint8Array(randomBytes(32)));
  assert.equal(parseDirectOnion(decodeMessage(encodeMessage(msg({ kind: 'onion', body: directOnionBody(onion) })))), onion);
  assert.equal(parseDirectOnion(msg({ kind: 'onion', body: directOnionBody(null) })), null);
  const cases: [string, Partial<SessionMessage>][] = [
    ['upper case', { body: onion.toUpperCase() }],
    ['without .onion', { body: onion.slice(0, 56) }],
    ['a bad checksum', { body: onion.replace(/^(.{53})(.)/, (_, head: string, c: string) => head + (c === 'a' ? 'b' : 'a')) }],
    ['a trailing newline', { body: `${onion}\n` }],
    ['a subject', { body: onion, subject: 'x' }],
    ['another kind', { kind: 'queues', body: onion }],
  ];
  for (const [what, over] of cases) assert.equal(code(() => parseDirectOnion(msg({ kind: 'onion', ...over }))), 'BAD_MESSAGE', what);
  assert.equal(code(() => directOnionBody('nope.onion')), 'BAD_MESSAGE');
});
