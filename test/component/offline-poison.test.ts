/**
 * One envelope in a user's public queue that opens to a retryable refusal other than "storage
 * full" (here CLOCK_SKEW: its sender's clock is 3 days ahead) must not hold up the mail behind it:
 * that is committed, acknowledged (the provider deletes it) and receipted to its sender, while the
 * bad one stays at the provider. (Found by review: it used to stop every fetch round at it.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
let p2: OnionpostNode;
let alice: OnionpostNode;
let dave: OnionpostNode;
let mallory: OnionpostNode;

before(async () => {
  t = await testNodes('onionpost-review-');
  p2 = await t.make('p2', { provider: { dbPath: join(t.root, 'p2-held.db') } });
  alice = await t.make('alice');
  dave = await t.make('dave');
  mallory = await t.make('mallory');
  await dave.mailboxes.add(p2.identity.onion);
  for (const n of [alice, mallory]) {
    const first = await n.send({ to: dave.identity.onion, subject: 'hello', body: 'first', wait: true, waitMs: 20_000 });
    assert.equal(first.state, 'delivered');
  }
});
after(() => t.cleanup());

test('an envelope that opens to CLOCK_SKEW stays at the provider without holding up the mail behind it', async () => {
  await mallory.close();
  const ahead = { ...systemClock, now: () => Date.now() + 3 * 24 * 3600_000 };
  mallory = await t.make('mallory', { identity: mallory.identity, clock: ahead });
  await dave.close();
  const poison = await mallory.send({ to: dave.identity.onion, subject: 'from the future', body: 'x' });
  await eventually(() => mallory.store.deposits.list(poison.id).length > 0, 20_000, 'mallory\'s message in dave\'s mailbox');
  const r = await alice.send({ to: dave.identity.onion, subject: 'behind it', body: 'y' });
  await eventually(() => alice.store.deposits.list(r.id).length > 0, 20_000, 'alice\'s message in dave\'s mailbox');
  assert.equal(p2.status().provider?.held, 2);
  await mallory.close();

  dave = await t.make('dave', { identity: dave.identity });
  await eventually(() => dave.store.getMessage(r.id) !== null, 20_000, 'dave committed alice\'s message');
  assert.equal(dave.store.getMessage(poison.id), null, 'the poison is not committed');
  // Alice's was acknowledged (deleted); the one from the future stays for a later round.
  await eventually(() => p2.status().provider?.held === 1, 20_000, 'only the bad envelope is left');
  // And alice is told (dave's pushed receipt; her own direct retry is minutes away).
  await eventually(() => alice.store.getMessage(r.id)!.state === 'delivered', 20_000, 'alice sees delivered');
});
