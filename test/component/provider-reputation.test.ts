/**
 * Measured reputation with whole nodes (issue 12, item 4; "a node choosing providers by policy and
 * switching away from one that drops mail"), over real ws on 127.0.0.1 with real SQLite files.
 *
 *   providers: p2 takes deposits, signs for them, then drops what it holds (its store is emptied
 *              behind its back); p1, p3 keep what they take; p4 is nobody's yet.
 *   alice:     her providers are p2 and p1, in that order. She goes offline, and so does p1 for a while.
 *   dave:      his providers are p3 and p2; he names p4 as a spare. He writes to alice while she is
 *              offline: both messages go to p2 (p1 is down), which signs and drops them. The short-lived
 *              one expires undelivered: "held but never delivered", 20 bad marks for p2 in dave's
 *              eyes. His review then finds p2 below the line, subscribes at p4 and drops p2 (status
 *              warning + event), and leaves the other message, still queued, at p1 once p1 is back
 *              (p2 no longer counts as holding it), and new mail for alice at p1 only. Alice comes back
 *              and gets both from p1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { OnionpostNode } from '../../src/node/index.js';
import { signTrustList } from '../../src/provider/index.js';
import type { ReputationView } from '../../src/node/provider-scores.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
let p1: OnionpostNode;
let p2: OnionpostNode;
let p3: OnionpostNode;
let p4: OnionpostNode;
let alice: OnionpostNode;
let dave: OnionpostNode;
const events: { type: string; [k: string]: unknown }[] = [];

const heldDb = (name: string) => join(t.root, `${name}-held.db`);
const provider = (name: string, identity?: OnionpostNode['identity']) =>
  t.make(name, { provider: { dbPath: heldDb(name) }, ...(identity ? { identity } : {}) });
const onion = (n: OnionpostNode) => n.identity.onion as string;

before(async () => {
  t = await testNodes('onionpost-reputation-');
  [p1, p2, p3, p4] = await Promise.all([provider('p1'), provider('p2'), provider('p3'), provider('p4')]);
  alice = await t.make('alice');
  dave = await t.make('dave');
  dave.events.subscribe((ev) => events.push(ev as { type: string }));
  await alice.mailboxes.add(onion(p2));
  await alice.mailboxes.add(onion(p1));
  await dave.mailboxes.add(onion(p3));
  await dave.mailboxes.add(onion(p2));
  dave.handlers['mailboxes.addSpare']!({ onion: onion(p4) });
  // Online first: dave's session with alice, and the providers her bundle lists.
  const first = await dave.send({ to: onion(alice), subject: 'hello', body: 'first', wait: true, waitMs: 20_000 });
  assert.equal(first.state, 'delivered');
  assert.deepEqual(dave.store.deposits.peerMailboxes(Buffer.from(alice.identity.identityKey).toString('hex')), [onion(p2), onion(p1)]);
});
after(() => t.cleanup());

function scoreOf(node: OnionpostNode, of: OnionpostNode): ReputationView & { ours: boolean } {
  return (node.handlers['mailboxes.scores']!({ onion: onion(of) }) as (ReputationView & { ours: boolean })[])[0]!;
}

test('a provider that signs for mail and drops it falls below the good ones; the node switches away from it and moves what it held', async () => {
  await alice.close();
  await p1.close();
  const doomed = await dave.send({ to: onion(alice), subject: 'short-lived', body: 'gone in 3 s', ttlMs: 3_000 });
  const kept = await dave.send({ to: onion(alice), subject: 'long-lived', body: 'worth keeping' });
  await eventually(() => [doomed.id, kept.id].every((id) => dave.store.getMessage(id)!.mailboxes.length === 1), 20_000, 'both left at p2');
  assert.deepEqual(dave.store.getMessage(kept.id)!.mailboxes, [onion(p2)]);
  assert.equal(p2.status().provider?.held, 2);

  // p2 drops what it signed for.
  const db = new Database(heldDb('p2'));
  try {
    assert.equal(db.prepare('DELETE FROM held').run().changes, 2);
  } finally {
    db.close();
  }
  await eventually(() => dave.store.getMessage(doomed.id)!.state === 'expired', 20_000, 'the short-lived message expired undelivered');

  // Before the review: p2 scored only on what went well (deposits, fetches), unproven.
  assert.equal(scoreOf(dave, p2).counts.lost, 0);
  const review = await dave.reviewMailboxes();
  assert.deepEqual(review.settled, { delivered: 0, lost: 1, void: 0 });
  const bad = scoreOf(dave, p2);
  const good = scoreOf(dave, p3);
  assert.equal(bad.counts.lost, 1);
  assert.ok(bad.proven && bad.belowThreshold, JSON.stringify(bad));
  assert.ok(!good.belowThreshold && good.score > bad.score, `p3 ${good.score} vs p2 ${bad.score}`);

  // Switched: p4 (the spare) in, p2 out, said in status and as an event.
  assert.deepEqual(review.replaced.map((r) => [r.dropped, r.added]), [[onion(p2), onion(p4)]]);
  assert.deepEqual(dave.status().mailboxes.map((m) => m.onion), [onion(p3), onion(p4)]);
  assert.deepEqual(dave.mailboxes.onions(), [onion(p3), onion(p4)], 'the bundle dave signs from now on lists p4, not p2');
  assert.ok(dave.status().warnings.some((w) => w.type === 'mailbox.replaced' && w.provider === onion(p2)), JSON.stringify(dave.status().warnings));
  assert.ok(events.some((e) => e.type === 'mailbox.replaced' && e['dropped'] === onion(p2) && e['added'] === onion(p4)));
  assert.ok(p4.status().provider!.users >= 1, 'dave subscribed at p4');
  assert.equal(scoreOf(dave, p2).ours, false);
  assert.equal(scoreOf(dave, p4).ours, true);
  const shown = dave.status().mailboxes.find((m) => m.onion === onion(p3))!;
  assert.equal(shown.reputation?.onion, onion(p3), 'status --json shows each provider with its score');

  // The queued message p2 "holds" counts as held nowhere: once p1 is back it is left there.
  assert.equal(review.redeposited, 0, 'p1 is still down');
  p1 = await provider('p1', p1.identity);
  const again = await dave.reviewMailboxes();
  assert.equal(again.redeposited, 1);
  assert.deepEqual([...dave.store.getMessage(kept.id)!.mailboxes].sort(), [onion(p1), onion(p2)].sort());
  assert.equal(p1.status().provider?.held, 1);
  // New mail for alice passes p2 over, though her bundle lists it first.
  const fresh = await dave.send({ to: onion(alice), subject: 'new', body: 'not for p2' });
  await eventually(() => dave.store.getMessage(fresh.id)!.mailboxes.includes(onion(p1)), 20_000, 'left at p1');
  assert.deepEqual(dave.store.getMessage(fresh.id)!.mailboxes, [onion(p1)]);
  assert.equal(p2.status().provider?.held, 0);

  // Alice comes back: nothing at p2, the message at p1; dave sees it delivered.
  alice = await t.make('alice', { identity: alice.identity });
  await eventually(() => alice.store.getMessage(kept.id) !== null && alice.store.getMessage(fresh.id) !== null, 20_000, 'alice fetched both from p1');
  await eventually(() => [kept.id, fresh.id].every((id) => dave.store.getMessage(id)!.state === 'delivered'), 30_000, 'dave sees delivered');
  assert.equal(alice.store.getMessage(doomed.id), null, 'the message p2 dropped never arrived');
  const after = await dave.reviewMailboxes();
  assert.equal(after.settled.delivered, 3, 'p1 and p2 held the long-lived message, p1 the new one');
  assert.ok(scoreOf(dave, p2).belowThreshold, 'one delivered message does not make up for a lost one');
});

test('trust lists through the API: accepted when its signer is the one named, refused otherwise', () => {
  const text = signTrustList(alice.identity, { name: 'alice recommends', providers: [onion(p1)], now: Date.now(), lifetimeMs: 30 * 24 * 3600 * 1000 });
  assert.throws(() => dave.handlers['mailboxes.addTrustList']!({ text, signer: 'nobody-we-know' }), (e: unknown) => (e as { code?: string }).code === 'NOT_FOUND');
  assert.throws(() => dave.handlers['mailboxes.addTrustList']!({ text, signer: Buffer.from(p1.identity.identityKey).toString('hex') }), (e: unknown) => (e as { code?: string }).code === 'UNTRUSTED_SIGNER');
  const accepted = dave.handlers['mailboxes.addTrustList']!({ text, signer: Buffer.from(alice.identity.identityKey).toString('hex') }) as { providers: string[] };
  assert.deepEqual(accepted.providers, [onion(p1)]);
  assert.deepEqual((dave.handlers['mailboxes.trustLists']!({}) as { name: string; valid: boolean }[]).map((l) => [l.name, l.valid]), [['alice recommends', true]]);
  dave.handlers['mailboxes.removeTrustList']!({ name: 'alice recommends' });
  assert.deepEqual(dave.handlers['mailboxes.trustLists']!({}), []);
});
