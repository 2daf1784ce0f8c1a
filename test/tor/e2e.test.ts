/**
 * End to end on the private Tor network (issue: "the node owns its Tor"): two nodes, each with its
 * own tor, publish their onions and exchange mail; the recipient goes offline and comes back with
 * the same onion; its tor is SIGKILLed and the node recovers. No tor is left afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateIdentity } from '../../src/crypto/index.js';
import { eventually } from '../fixtures/nodes.js';
import { torNodes, type TorNodes } from '../fixtures/tor.js';

let nodes: TorNodes;

before(async () => {
  nodes = await torNodes('onionpost-e2e-');
});

after(async () => {
  await nodes.cleanup();
  // The nodes own their tors: closing them must have stopped every one we saw.
  assert.deepEqual(nodes.torsRunning(), [], 'a tor is still running');
});

test('two nodes with their own tors exchange mail through their onions; offline peer; tor killed', { timeout: 600_000 }, async (t) => {
  const aliceId = generateIdentity();
  const bobId = generateIdentity();
  const alice = await nodes.start('alice', aliceId);
  let bob = await nodes.start('bob', bobId);
  await eventually(() => alice.node.reachable && bob.node.reachable, 120_000, 'both onions reachable');
  t.diagnostic('both onions reachable');

  // 1. Alice → Bob by onion address, as the INIT of a new session, with a verified receipt (the
  // MAC Bob stored after his commit is the one Alice checked).
  const first = await alice.node.send({ to: bobId.onion, subject: 'over tor', body: 'hello through the onion', wait: true, waitMs: 120_000 });
  assert.equal(first.state, 'delivered');
  const out = alice.node.store.getMessage(first.id)!;
  assert.equal(out.envelope![0], 0x21);
  assert.deepEqual(bob.node.store.getMessage(first.id)!.receipt, out.receipt);
  const got = bob.node.store.getMessage(first.id)!;
  assert.deepEqual([got.direction, got.peerOnion, got.body], ['in', aliceId.onion, 'hello through the onion']);

  // 2. Bob replies.
  const reply = await bob.node.send({ to: aliceId.onion, subject: 'Re: over tor', body: 'got it', threadId: first.id, wait: true, waitMs: 120_000 });
  assert.equal(reply.state, 'delivered');
  assert.equal(alice.node.store.getMessage(reply.id)?.body, 'got it');

  // 3. Bob goes offline: Alice's message stays queued and is retried.
  await nodes.stop(bob);
  const offline = await alice.node.send({ to: bobId.onion, subject: 'while you were out', body: 'queued' });
  await eventually(() => (alice.node.store.getMessage(offline.id)?.attempts ?? 0) >= 2, 120_000, 'two failed attempts');
  const waiting = alice.node.store.getMessage(offline.id)!;
  assert.ok(['queued', 'sending'].includes(waiting.state), `state ${waiting.state}`);
  assert.ok(waiting.lastErrorCode, 'the failed attempt recorded why');
  t.diagnostic(`offline peer: attempts ${waiting.attempts}, last error ${waiting.lastErrorCode}`);

  // 4. Bob comes back with the same identity and data dir: same onion, and the message arrives.
  bob = await nodes.start('bob', bobId);
  await eventually(() => alice.node.store.getMessage(offline.id)?.state === 'delivered', 180_000, 'delivery after Bob returned');
  assert.equal(bob.node.store.getMessage(offline.id)?.body, 'queued');
  assert.equal(bob.node.store.counts().inbox, 2, 'both messages, no duplicates');

  // 5. Bob's tor is SIGKILLed: the node restarts it, re-publishes the same onion, and receives again.
  const killed = bob.net.tor!;
  killed.kill('SIGKILL');
  await killed.exited;
  assert.equal(bob.node.status().reachable, false, 'unreachable the moment its tor is gone, before the restart');
  await eventually(() => (bob.net.status().generation ?? 0) >= 2 && bob.net.status().state === 'online', 120_000, "Bob's tor restarted and re-published");
  assert.notEqual(bob.net.tor!.pid, killed.pid);
  const after = await alice.node.send({ to: bobId.onion, subject: 'after the crash', body: 'still there?', wait: true, waitMs: 180_000 });
  assert.equal(after.state, 'delivered');
  assert.equal(bob.node.store.getMessage(after.id)?.body, 'still there?');
  await eventually(() => bob.node.reachable, 120_000, 'Bob reachable again (self-check)');

  await nodes.stop(alice);
  await nodes.stop(bob);
});
