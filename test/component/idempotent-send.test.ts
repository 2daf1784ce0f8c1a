/**
 * Idempotent send: a send repeated with the caller's key returns the first message (same id, one
 * row), also concurrently, also through the API, also after the node restarted on the same store.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { apiClient } from '../../src/api/index.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { loopbackNetwork } from '../../src/node/index.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-idempotent-');
});
after(() => t.cleanup());

test('the same key twice, concurrently, over the API and after a restart: one row, the same id', async () => {
  const id = generateIdentity();
  const network = loopbackNetwork(join(t.root, 'loopback'));
  const token = randomBytes(32).toString('hex');
  const alice = await t.make('alice', { identity: id, network, api: { token } });
  const offline = generateIdentity().onion; // nobody there: the message stays queued
  const outgoing = () => alice.store.listMessages({ direction: 'out', limit: 100 }).length;

  const first = await alice.send({ to: offline, subject: 'once', body: 'only once', idempotencyKey: 'order-17' });
  const again = await alice.send({ to: offline, subject: 'once', body: 'only once', idempotencyKey: 'order-17' });
  assert.equal(again.id, first.id, 'the retry returns the first message');
  assert.equal(outgoing(), 1);

  // Two calls in one turn race through the same group commit.
  const [a, b] = await Promise.all([1, 2].map(() => alice.send({ to: offline, body: 'raced', idempotencyKey: 'race' })));
  assert.equal(a!.id, b!.id);
  assert.equal(outgoing(), 2);

  // Through the API (schema included) as the CLI sends it.
  const api = apiClient(alice.apiUrl!, token);
  const viaApi = await api.call<{ id: string }>('messages.send', { to: offline, subject: 'once', body: 'only once', idempotencyKey: 'order-17' });
  assert.equal(viaApi.id, first.id);
  await assert.rejects(api.call('messages.send', { to: offline, body: 'x', idempotencyKey: 'k'.repeat(129) }), { code: 'INVALID_PARAMS' });
  assert.equal(outgoing(), 2);

  // The same key for a different message is a mistake, not a retry; a malformed key is refused.
  await assert.rejects(alice.send({ to: offline, subject: 'once', body: 'something else', idempotencyKey: 'order-17' }), { code: 'IDEMPOTENCY_CONFLICT' });
  await assert.rejects(alice.send({ to: offline, body: 'x', idempotencyKey: 'has space' }), { code: 'BAD_IDEMPOTENCY_KEY' });
  await assert.rejects(alice.send({ to: offline, body: 'x', idempotencyKey: '' }), { code: 'BAD_IDEMPOTENCY_KEY' });
  assert.equal(outgoing(), 2);

  // A restarted node (same store file) still knows the key.
  await alice.close();
  const restarted = await t.make('alice', { identity: id, network });
  const afterRestart = await restarted.send({ to: offline, subject: 'once', body: 'only once', idempotencyKey: 'order-17' });
  assert.equal(afterRestart.id, first.id);
  assert.equal(afterRestart.state, 'queued');
  assert.equal(restarted.store.listMessages({ direction: 'out', limit: 100 }).length, 2);
  // Without a key, every send is a new message.
  const plain = await restarted.send({ to: offline, subject: 'once', body: 'only once' });
  assert.notEqual(plain.id, first.id);
});
