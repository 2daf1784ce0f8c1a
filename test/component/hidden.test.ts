/**
 * Running hidden (issue 11, item 8; PROTOCOL.md §9.2 kind 5) with whole nodes over real ws on
 * 127.0.0.1: bob's node publishes a direct onion whose key is not his identity key, and tells his
 * contact alice inside their session. The onion his identity names (what the registry gives anyone)
 * is never online; alice's mail goes to the direct one; a stranger who knows only bob's identity
 * finds nobody there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { toHex } from '../../src/bytes.js';
import { onionOfSeed } from '../../src/crypto/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { loopbackNetwork, type OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
let alice: OnionpostNode;
let bob: OnionpostNode;
let direct: string;
const fast = { outbox: { policy: { fastBaseMs: 200, fastMaxMs: 500, busyMs: 50, slowBaseMs: 500, slowMaxMs: 500 } } };

before(async () => {
  t = await testNodes('onionpost-hidden-');
  direct = onionOfSeed(new Uint8Array(randomBytes(32)));
  alice = await t.make('alice', fast);
  bob = await t.make('bob', { ...fast, directOnion: direct });
});
after(() => t.cleanup());

test('a hidden node is reachable at its direct onion only, and says so in status', async () => {
  const net = loopbackNetwork(join(t.root, 'loopback'));
  await assert.rejects(net.dial(bob.identity.onion, { signal: AbortSignal.timeout(5_000), timeoutMs: 5_000, limits: DEFAULT_LIMITS }), (err: { code?: string }) => err.code === 'PEER_UNKNOWN',
    'the onion his identity names is not online');
  const ch = await net.dial(direct, { signal: AbortSignal.timeout(5_000), timeoutMs: 5_000, limits: DEFAULT_LIMITS });
  ch.destroy();
  assert.deepEqual(bob.status().hidden, { directOnion: direct });
  assert.equal(alice.status().hidden, undefined);
  await eventually(() => bob.reachable, 10_000, 'bob checks himself at the direct onion');
});

test('his contact learns the direct onion in their session, and her mail reaches him there', async () => {
  await bob.handlers['contacts.add']!({ alias: 'alice', address: alice.identity.onion });
  const first = await bob.send({ to: alice.identity.onion, subject: 'hi', body: 'I am hidden', kind: 'chat', wait: true, waitMs: 20_000 });
  assert.equal(first.state, 'delivered');
  const bobKey = toHex(bob.identity.identityKey);
  await eventually(() => alice.store.contactQueues.theirOnion(bobKey) === direct, 20_000, 'alice was told the direct onion');
  assert.equal((bob.handlers['messages.outbox']!({ limit: 100 }) as unknown[]).length, 1, 'the telling is no message of his');

  // She writes to his identity's onion, as the registry gives it; her node dials the direct one.
  const r = await alice.send({ to: bob.identity.onion, subject: 're', body: 'found you', wait: true, waitMs: 20_000 });
  assert.equal(r.state, 'delivered');
  assert.equal(bob.store.getMessage(r.id)?.body, 'found you');
});

test('a stranger who knows only his identity finds nobody there', async () => {
  const carol = await t.make('carol', fast);
  const r = await carol.send({ to: bob.identity.onion, subject: 'hello?', body: 'anyone there?' });
  await eventually(() => carol.store.getMessage(r.id)?.lastErrorCode === 'PEER_UNKNOWN', 20_000, "carol's attempt finds no onion");
  assert.notEqual(carol.store.getMessage(r.id)?.state, 'delivered');
  assert.equal(bob.store.getMessage(r.id), null);
});
