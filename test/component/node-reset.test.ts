/**
 * Session reset through whole nodes (PROTOCOL.md §7.4): Bob restores an old backup of his data dir,
 * so his ratchet is behind Alice's. Her next messages do not open with his state; he answers
 * REJECT UNKNOWN_SESSION, her node runs a new agreement and encrypts what is queued again (same
 * ids), and every queued message arrives exactly once. The user sees a reset, not a key change.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity } from '../../src/crypto/index.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-node-reset-');
});
after(() => t.cleanup());

const fast = { outbox: { policy: { fastBaseMs: 100, fastMaxMs: 500, busyMs: 50 } } };

async function send(from: OnionpostNode, to: OnionpostNode, body: string): Promise<string> {
  const r = await from.send({ to: to.identity.onion, subject: 's', body, wait: true, waitMs: 20_000 });
  assert.equal(r.state, 'delivered', `${body}: ${r.state} ${r.reason ?? ''}`);
  return r.id;
}

function copyDb(from: string, to: string): void {
  for (const suffix of ['-wal', '-shm']) rmSync(to + suffix, { force: true });
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
}

const bodies = (n: OnionpostNode) => n.store.listMessages({ direction: 'in', limit: 1000 }).map((m) => m.body).sort();

test('Bob restores an old backup: Alice\'s queued mail is re-encrypted in a new session and arrives once; both go on talking', async () => {
  const bobId = generateIdentity();
  const bobDb = join(t.root, 'bob.db');
  const backup = join(t.root, 'bob-backup.db');
  const alice = await t.make('alice', fast);
  let bob = await t.make('bob', { identity: bobId, dbPath: bobDb, ...fast });
  const resets: { alias?: unknown; peer?: unknown; messages?: unknown }[] = [];
  const keyChanges: unknown[] = [];
  alice.events.subscribe((ev) => {
    if (ev.type === 'session.reset') resets.push(ev as { alias?: unknown });
    if (ev.type === 'contact.keyChange') keyChanges.push(ev);
  });
  await alice.handlers['contacts.add']!({ alias: 'bob', address: bobId.onion });

  await send(alice, bob, 'a1');
  await send(bob, alice, 'b1');
  await send(alice, bob, 'a2');
  // The backup.
  await bob.close();
  copyDb(bobDb, backup);
  bob = await t.make('bob-2', { identity: bobId, dbPath: bobDb, ...fast });
  // The conversation goes on past it: both ratchets step.
  await send(alice, bob, 'a3');
  await send(bob, alice, 'b2');
  await send(alice, bob, 'a4');
  await send(bob, alice, 'b3');
  // Bob's disk dies; he restores the backup. Meanwhile Alice writes.
  await bob.close();
  copyDb(backup, bobDb);
  const queued: string[] = [];
  for (const body of ['q1', 'q2', 'q3', 'q4']) queued.push((await alice.send({ to: 'bob', subject: 's', body })).id);
  assert.ok(queued.every((id) => alice.store.getMessage(id)!.envelope![0] === 0x22), 'queued on the session Alice has');
  const before = queued.map((id) => alice.store.getMessage(id)!.envelopeHash!);
  bob = await t.make('bob-3', { identity: bobId, dbPath: bobDb, ...fast });

  await eventually(() => queued.every((id) => alice.store.getMessage(id)?.state === 'delivered'), 30_000, 'every queued message delivered');
  assert.ok(resets.length >= 1, 'Alice was told of the reset');
  assert.equal(resets[0]!.alias, 'bob');
  assert.deepEqual(keyChanges, [], 'not a key change: the identity is the same');
  assert.ok(queued.some((id, i) => Buffer.compare(alice.store.getMessage(id)!.envelopeHash!, before[i]!) !== 0), 'encrypted again, same ids');
  assert.equal(alice.store.getMessage(queued[0]!)!.envelope![0], 0x21, 'the oldest became the new session\'s INIT');
  // Bob lost what came after the backup (a3, a4) with his disk; everything queued came exactly once.
  assert.deepEqual(bodies(bob), ['a1', 'a2', 'q1', 'q2', 'q3', 'q4']);

  // Both go on, both ways, on the new session (Bob's restored ratchet sends nothing Alice cannot place).
  await send(bob, alice, 'b4');
  await send(alice, bob, 'a5');
  await send(bob, alice, 'b5');
  assert.deepEqual(bodies(alice), ['b1', 'b2', 'b3', 'b4', 'b5']);
  assert.deepEqual(bodies(bob), ['a1', 'a2', 'a5', 'q1', 'q2', 'q3', 'q4']);
});
