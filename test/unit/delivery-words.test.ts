/** The outbox's plain words (src/api/delivery.ts) from stored attempts, not raw codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliveryLine, deliveryView } from '../../src/api/delivery.js';
import type { Attempt, StoredMessage } from '../../src/store/index.js';

const T0 = Date.UTC(2026, 10, 29, 14, 2);
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16);

function msg(over: Partial<StoredMessage>): StoredMessage {
  return {
    id: 'a'.repeat(32), direction: 'out', kind: 'mail', peerIdentity: 'b'.repeat(64), peerOnion: 'x.onion', peerLabel: 'bob', subject: 's', body: 'b',
    threadId: 'a'.repeat(32), inReplyTo: null, createdAt: T0, expiresAt: T0 + 1e9, receivedAt: null, deliveredAt: null, state: 'queued',
    stateReason: null, envelope: null, envelopeHash: null, receipt: null, read: false, attempts: 0, nextAttemptAt: T0, lastErrorCode: null,
    archived: false, attachmentCount: 0, mailboxes: [], peerReadAt: null, ...over,
  };
}
const attempt = (i: number, startedAt: number, outcome: Attempt['outcome'], errorCode: string | null = null): Attempt =>
  ({ id: i, messageId: 'a'.repeat(32), startedAt, finishedAt: startedAt + 100, outcome, errorCode, detail: null });

test('a peer offline for a while: since the first failure of the run, next try counted down', () => {
  const attempts = [attempt(1, T0 - 60_000, 'delivered'), attempt(2, T0, 'retry', 'ONION_DESC_NOT_FOUND'), attempt(3, T0 + 60_000, 'retry', 'ONION_INTRO_FAILED')];
  const m = msg({ attempts: 3, lastErrorCode: 'ONION_INTRO_FAILED', nextAttemptAt: T0 + 240_000 });
  const d = deliveryView(m, attempts, 'bob')!;
  assert.deepEqual(d, { words: "bob's node has been offline", since: T0, nextAttemptAt: T0 + 240_000, code: 'ONION_INTRO_FAILED' });
  assert.equal(deliveryLine(d, 'queued', T0 + 60_000, clock), "bob's node has been offline since 14:02; next try in 3 min");
  assert.equal(deliveryLine(d, 'queued', T0 + 250_000, clock), "bob's node has been offline since 14:02; trying again now");
  assert.doesNotMatch(deliveryLine(d, 'queued', T0, clock), /[A-Z]{2,}_/, 'no raw code in the words');
});

test('our own tor down, busy peer, waiting, held, cancelled, failed, expired, delivered', () => {
  const own = deliveryView(msg({ attempts: 1 }), [attempt(1, T0, 'retry', 'PROXY_UNREACHABLE')], 'bob')!;
  assert.equal(own.words, 'your Tor connection has been down');
  assert.match(deliveryView(msg({ attempts: 1 }), [attempt(1, T0, 'retry', 'BUSY')], 'bob')!.words, /busy/);
  assert.equal(deliveryView(msg({}), [], 'bob')!.words, 'waiting to be sent');
  assert.match(deliveryView(msg({ state: 'held', stateReason: 'key change: x' }), [], 'bob')!.words, /review bob's key change/);
  assert.equal(deliveryView(msg({ state: 'failed', lastErrorCode: 'CANCELLED' }), [], 'bob')!.words, 'cancelled by you');
  assert.match(deliveryView(msg({ state: 'failed', lastErrorCode: 'KEY_REJECTED' }), [], 'bob')!.words, /rejected bob's new key/);
  assert.equal(deliveryView(msg({ state: 'failed', stateReason: 'recipient refused it' }), [], 'bob')!.words, 'not delivered: recipient refused it');
  assert.match(deliveryView(msg({ state: 'expired', attempts: 9 }), [attempt(9, T0, 'retry', 'TIMEOUT')], 'bob')!.words, /after 9 attempts; bob's node has been offline/);
  assert.equal(deliveryView(msg({ state: 'delivered' }), [], 'bob'), null);
  assert.equal(deliveryView(msg({ direction: 'in', state: 'received' }), [], 'bob'), null);
});
