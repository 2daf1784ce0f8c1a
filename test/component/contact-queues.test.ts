/**
 * Contact queues (issue 11, item 3; PROTOCOL.md §9.2 kind 4, §14.2) through whole nodes over real
 * ws on 127.0.0.1: dave makes a private queue for his contact alice at each of his providers and
 * hands them to her inside their session; while he is offline her mail goes there (each provider's
 * signed receipt names the queue), not to his public queue, which a stranger still uses. A queue he
 * drops makes her fall back to the public one; a provider he removes leaves her handout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { toHex } from '../../src/bytes.js';
import { systemClock } from '../../src/clock.js';
import { publicQueueId } from '../../src/crypto/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { MAILBOX_PATH, MailboxClient } from '../../src/provider/index.js';
import { DOMAINS, depositBody, verify } from '../../src/provider/statements.js';
import { dialWs } from '../../src/transport/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
let p1: OnionpostNode;
let p2: OnionpostNode;
let alice: OnionpostNode;
let dave: OnionpostNode;
const key = (n: OnionpostNode) => toHex(n.identity.identityKey);
const state = (n: OnionpostNode, id: string) => n.store.getMessage(id)?.state;

before(async () => {
  t = await testNodes('onionpost-contact-queues-');
  p1 = await t.make('p1', { provider: { dbPath: join(t.root, 'p1-held.db') } });
  p2 = await t.make('p2', { provider: { dbPath: join(t.root, 'p2-held.db') } });
  alice = await t.make('alice');
  dave = await t.make('dave');
  await dave.mailboxes.add(p1.identity.onion);
  await dave.mailboxes.add(p2.identity.onion);
  await dave.handlers['contacts.add']!({ alias: 'alice', address: alice.identity.onion });
  const first = await alice.send({ to: dave.identity.onion, subject: 'hello', body: 'first', wait: true, waitMs: 20_000 });
  assert.equal(first.state, 'delivered');
});
after(() => t.cleanup());

/** Which queue at `provider` the deposit of message `id` went to, from the provider's signed receipt. */
function depositedQueue(id: string, provider: OnionpostNode, candidates: Uint8Array[]): Uint8Array | undefined {
  const d = alice.store.deposits.list(id).find((x) => x.provider === provider.identity.onion);
  assert.ok(d, `a deposit at ${provider.identity.onion}`);
  const pk = provider.identity.identityKey;
  return candidates.find((q) => verify(pk, DOMAINS.deposit, depositBody(pk, q, d.envelopeHash, d.depositedAt, d.expiresAt), d.receipt));
}

test('dave hands his contact a private queue at each provider; her mail waits there while he is offline, and arrives', async () => {
  await eventually(() => alice.store.contactQueues.theirs(key(dave), p1.identity.onion) !== null
    && alice.store.contactQueues.theirs(key(dave), p2.identity.onion) !== null, 20_000, 'alice holds both handed queues');
  const ours = dave.store.contactQueues.ours(key(alice));
  assert.deepEqual(ours.map((q) => q.provider).sort(), [p1.identity.onion, p2.identity.onion].sort());
  for (const q of ours) {
    const handed = alice.store.contactQueues.theirs(key(dave), q.provider)!;
    assert.deepEqual([handed.queue, handed.writeCap], [q.queue, q.writeCap], 'what she holds is what he made');
  }
  assert.equal((dave.handlers['messages.outbox']!({ limit: 100 }) as unknown[]).length, 0, 'the handout is in no listing');

  await dave.close();
  const r = await alice.send({ to: dave.identity.onion, subject: 'private', body: 'to your queue for me' });
  await eventually(() => alice.store.getMessage(r.id)!.mailboxes.length === 2, 20_000, 'in mailbox at both providers');
  for (const p of [p1, p2]) {
    const contactQueue = ours.find((q) => q.provider === p.identity.onion)!.queue;
    const publicQueue = publicQueueId(dave.identity.identityKey, p.identity.identityKey);
    assert.deepEqual(depositedQueue(r.id, p, [contactQueue, publicQueue]), contactQueue, `the contact queue at ${p.identity.onion}, not the public one`);
  }
  dave = await t.make('dave', { identity: dave.identity });
  await eventually(() => dave.store.getMessage(r.id) !== null, 20_000, 'dave fetched it from his contact queues');
  await eventually(() => p1.status().provider?.held === 0 && p2.status().provider?.held === 0, 20_000, 'both providers deleted it');
  await eventually(() => state(alice, r.id) === 'delivered', 30_000, 'alice sees delivered');
});

test('a stranger still uses the public queue', async () => {
  const carol = await t.make('carol');
  const hi = await carol.send({ to: dave.identity.onion, subject: 'hi', body: 'we have not met', wait: true, waitMs: 20_000 });
  assert.equal(hi.state, 'delivered');
  await dave.close();
  const r = await carol.send({ to: dave.identity.onion, subject: 'again', body: 'are you there?' });
  await eventually(() => carol.store.getMessage(r.id)!.mailboxes.length > 0, 20_000, 'in mailbox');
  assert.equal(carol.store.contactQueues.theirs(key(dave), p1.identity.onion), null, 'dave handed a stranger nothing');
  const d = carol.store.deposits.list(r.id)[0]!;
  const p = d.provider === p1.identity.onion ? p1 : p2;
  const pk = p.identity.identityKey;
  assert.ok(verify(pk, DOMAINS.deposit, depositBody(pk, publicQueueId(dave.identity.identityKey, pk), d.envelopeHash, d.depositedAt, d.expiresAt), d.receipt));
  dave = await t.make('dave', { identity: dave.identity });
  await eventually(() => state(carol, r.id) === 'delivered', 30_000, 'delivered to dave from his public queue');
});

test('a handed queue the provider no longer has: alice falls back to the public queue and the mail still arrives', async () => {
  const q = dave.store.contactQueues.ours(key(alice)).find((x) => x.provider === p1.identity.onion)!;
  const channel = await dialWs({ url: `ws://127.0.0.1:${p1.status().listener!.port}${MAILBOX_PATH}`, limits: DEFAULT_LIMITS });
  const client = new MailboxClient({ channel, providerKey: p1.identity.identityKey, clock: systemClock, maxEnvelope: DEFAULT_LIMITS.maxEnvelope });
  try {
    await client.removeQueue(dave.identity, q.queue, { timeoutMs: 10_000 });
  } finally {
    await client.close();
  }
  await dave.close();
  const r = await alice.send({ to: dave.identity.onion, subject: 'fallback', body: 'your queue at p1 is gone' });
  await eventually(() => alice.store.getMessage(r.id)!.mailboxes.includes(p1.identity.onion), 20_000, 'in mailbox at p1');
  assert.equal(alice.store.contactQueues.theirs(key(dave), p1.identity.onion), null, 'the refused queue is forgotten');
  const publicQueue = publicQueueId(dave.identity.identityKey, p1.identity.identityKey);
  assert.deepEqual(depositedQueue(r.id, p1, [q.queue, publicQueue]), publicQueue);
  dave = await t.make('dave', { identity: dave.identity });
  await eventually(() => state(alice, r.id) === 'delivered', 30_000, 'delivered');
});

test('a provider dave removes leaves the handout; its queues are forgotten on his side', async () => {
  dave.mailboxes.remove(p2.identity.onion);
  await eventually(() => alice.store.contactQueues.theirs(key(dave), p2.identity.onion) === null, 20_000, 'alice forgot the queue at p2');
  assert.deepEqual(dave.store.contactQueues.ours(key(alice)).map((x) => x.provider).filter((x) => x === p2.identity.onion), []);
});
