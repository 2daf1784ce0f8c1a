/**
 * Offline delivery through mailbox providers (issue 11, items 4, 5 and 7), with whole nodes over
 * real ws on 127.0.0.1 and real SQLite files: the recipient is offline, so the sender leaves the
 * message at the recipient's two providers ("in mailbox", each provider's signed receipt kept);
 * the recipient starts, fetches, commits and acknowledges (both providers delete it), then pushes
 * its own receipts to the sender's node, which checks them: "delivered". One provider down: the other
 * takes it and serves it. A message is never "delivered" on a provider's word.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DOMAINS, depositBody, verify } from '../../src/provider/statements.js';
import { publicQueueId } from '../../src/crypto/index.js';
import { randomBytes } from 'node:crypto';
import { fromHex } from '../../src/bytes.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { PeerConnection } from '../../src/protocol/index.js';
import { dialWs } from '../../src/transport/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
let p1: OnionpostNode;
let p2: OnionpostNode;
let alice: OnionpostNode;
let dave: OnionpostNode;


before(async () => {
  t = await testNodes('onionpost-offline-');
  p1 = await t.make('p1', { provider: { dbPath: join(t.root, 'p1-held.db') } });
  p2 = await t.make('p2', { provider: { dbPath: join(t.root, 'p2-held.db') } });
  // Default backoff: her next direct try at dave is minutes away, so `delivered` within the
  // test's seconds comes from the receipts dave's node pushes to hers after fetching.
  alice = await t.make('alice');
  dave = await t.make('dave');
  await dave.mailboxes.add(p1.identity.onion);
  await dave.mailboxes.add(p2.identity.onion);
  // Alice's own provider: the bundle inside her first message (an INIT) tells dave about it.
  await alice.mailboxes.add(p2.identity.onion);
  // A first message while dave is online: alice's session with him, and the providers his bundle lists.
  const first = await alice.send({ to: dave.identity.onion, subject: 'hello', body: 'first', wait: true, waitMs: 20_000 });
  assert.equal(first.state, 'delivered');
  assert.deepEqual(alice.store.deposits.peerMailboxes(toHexKey(dave)), [p1.identity.onion, p2.identity.onion]);
  assert.deepEqual(dave.store.deposits.peerMailboxes(toHexKey(alice)), [p2.identity.onion]);
});
after(() => t.cleanup());

function toHexKey(n: OnionpostNode): string {
  return Buffer.from(n.identity.identityKey).toString('hex');
}

/** The outbox summary of message `id` as the API shows it. */
function shown(node: OnionpostNode, id: string): Record<string, unknown> {
  const list = node.handlers['messages.outbox']!({ limit: 100 }) as Record<string, unknown>[];
  return list.find((m) => m['id'] === id)!;
}

async function restartDave(): Promise<void> {
  dave = await t.make('dave', { identity: dave.identity });
}

test('recipient offline: in mailbox at both providers; it starts, fetches, acknowledges; the sender sees delivered', async () => {
  await dave.close();
  const r = await alice.send({ to: dave.identity.onion, subject: 'while you were away', body: 'kept for you by your providers' });
  await eventually(() => shown(alice, r.id)['state'] === 'in_mailbox' && (shown(alice, r.id)['mailboxes'] as string[]).length === 2, 20_000, 'in mailbox at two providers');
  const s = shown(alice, r.id);
  assert.deepEqual([...(s['mailboxes'] as string[])].sort(), [p1.identity.onion, p2.identity.onion].sort());
  assert.match(String((s['delivery'] as { words: string }).words), /offline: left at 2 of their mailbox providers/);
  assert.equal(p1.status().provider?.held, 1);
  assert.equal(p2.status().provider?.held, 1);

  // Each provider's receipt is its signature over exactly the bytes alice sends.
  const m = alice.store.getMessage(r.id)!;
  const deposits = alice.store.deposits.list(r.id);
  assert.equal(deposits.length, 2);
  for (const d of deposits) {
    const key = d.provider === p1.identity.onion ? p1.identity.identityKey : p2.identity.identityKey;
    assert.deepEqual(d.envelopeHash, m.envelopeHash);
    assert.ok(verify(key, DOMAINS.deposit, depositBody(key, publicQueueId(dave.identity.identityKey, key), d.envelopeHash, d.depositedAt, d.expiresAt), d.receipt));
  }
  // Held at providers is not delivered; nor is it on a receipt anyone could make up.
  assert.notEqual(alice.store.getMessage(r.id)!.state, 'delivered');
  const channel = await dialWs({ url: `ws://127.0.0.1:${alice.status().listener!.port}/`, limits: DEFAULT_LIMITS });
  const forger = new PeerConnection({ channel, role: 'client' });
  try {
    await forger.ready;
    await forger.pushReceipts([{ messageId: fromHex(r.id), mac: randomBytes(16) }]);
    // Frames are handled in order: once the bundle is answered, the forged receipt was looked at.
    await forger.requestBundle({ timeoutMs: 10_000 });
  } finally {
    await forger.close();
  }
  assert.equal(alice.store.getMessage(r.id)!.state, 'queued', 'a forged receipt changes nothing');

  await restartDave();
  await eventually(() => dave.store.getMessage(r.id) !== null, 20_000, 'dave fetched the message');
  const got = dave.store.getMessage(r.id)!;
  assert.equal(got.direction, 'in');
  assert.equal(got.subject, 'while you were away');
  // Fetched from both, committed once, acknowledged at both: they deleted it.
  await eventually(() => p1.status().provider?.held === 0 && p2.status().provider?.held === 0, 20_000, 'both providers deleted it');
  assert.equal((dave.handlers['messages.inbox']!({ limit: 100 }) as unknown[]).filter((x) => (x as { id: string }).id === r.id).length, 1);
  await eventually(() => dave.status().mailboxes.every((p) => p.lastFetchAt !== null), 10_000, 'status shows when each provider was last fetched');

  await eventually(() => alice.store.getMessage(r.id)!.state === 'delivered', 30_000, 'alice sees delivered');
  assert.equal(shown(alice, r.id)['state'], 'delivered');
});

test('one provider down: the other takes the message and serves it', async () => {
  await dave.close();
  await p1.close();
  const r = await alice.send({ to: dave.identity.onion, subject: 'only p2', body: 'p1 is down' });
  await eventually(() => shown(alice, r.id)['state'] === 'in_mailbox', 20_000, 'in mailbox');
  assert.deepEqual(shown(alice, r.id)['mailboxes'], [p2.identity.onion]);
  assert.equal(p2.status().provider?.held, 1);
  await restartDave();
  await eventually(() => dave.store.getMessage(r.id) !== null, 20_000, 'dave fetched it from p2');
  await eventually(() => p2.status().provider?.held === 0, 20_000, 'p2 deleted it');
  await eventually(() => alice.store.getMessage(r.id)!.state === 'delivered', 30_000, 'alice sees delivered');
});

test('several messages queued while offline all go to the mailbox (not one per backoff step) and arrive once each', async () => {
  await dave.close();
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await alice.send({ to: dave.identity.onion, subject: `batch ${i}`, body: String(i) })).id);
  await eventually(() => ids.every((id) => shown(alice, id)['state'] === 'in_mailbox'), 30_000, 'all in mailbox');
  await restartDave();
  await eventually(() => ids.every((id) => dave.store.getMessage(id) !== null), 20_000, 'dave fetched all');
  await eventually(() => ids.every((id) => alice.store.getMessage(id)!.state === 'delivered'), 30_000, 'all delivered');
  assert.equal(p2.status().provider?.held, 0);
  const inbox = dave.handlers['messages.inbox']!({ limit: 1000 }) as { id: string }[];
  for (const id of ids) assert.equal(inbox.filter((m) => m.id === id).length, 1);
});

test('recipient and sender offline at different times: the receipt travels through the sender\'s provider', async () => {
  await dave.close();
  const r = await alice.send({ to: dave.identity.onion, subject: 'ships in the night', body: 'we are never online together' });
  await eventually(() => shown(alice, r.id)['state'] === 'in_mailbox', 20_000, 'in mailbox');
  await alice.close();
  const restartedAt = Date.now();
  await restartDave();
  await eventually(() => dave.store.getMessage(r.id) !== null, 20_000, 'dave fetched it');
  // Alice is offline: dave's node leaves the receipt in her queue at her provider, sealed to her.
  // (Once dave's round at p2 is done, his copy is acknowledged: what p2 holds then is for alice.)
  const doneAtP2 = () => (dave.status().mailboxes.find((p) => p.onion === p2.identity.onion)?.lastFetchAt ?? 0) >= restartedAt;
  await eventually(() => doneAtP2() && p2.status().provider?.held === 1, 20_000, 'the receipt waits at alice\'s provider');
  await dave.close();
  alice = await t.make('alice', { identity: alice.identity });
  // Dave is gone again, so nothing but her own fetch can tell her.
  await eventually(() => alice.store.getMessage(r.id)!.state === 'delivered', 20_000, 'alice sees delivered');
  await eventually(() => p2.status().provider?.held === 0, 20_000, 'alice acknowledged the receipts envelope');
  const events = alice.store.listEvents(r.id).map((e) => e.state);
  assert.ok(events.includes('delivered'));
});

test('a provider added or removed later is announced to contacts: online ones at once, the others with the next mail', async () => {
  const p3 = await t.make('p3', { provider: { dbPath: join(t.root, 'p3-held.db') } });
  await restartDave(); // offline since the last test
  // Alice is a contact dave has a session with and is online: his node pushes her his new bundle.
  await dave.mailboxes.add(p3.identity.onion);
  await eventually(() => alice.store.deposits.peerMailboxes(toHexKey(dave)).includes(p3.identity.onion), 20_000, 'alice learned p3');
  dave.mailboxes.remove(p3.identity.onion);
  await eventually(() => !alice.store.deposits.peerMailboxes(toHexKey(dave)).includes(p3.identity.onion), 20_000, 'alice forgot p3');

  // Alice offline while dave adds p3 again: she learns it when dave next writes to her.
  await alice.close();
  await dave.mailboxes.add(p3.identity.onion);
  alice = await t.make('alice', { identity: alice.identity });
  assert.ok(!alice.store.deposits.peerMailboxes(toHexKey(dave)).includes(p3.identity.onion));
  const r = await dave.send({ to: alice.identity.onion, subject: 'news', body: 'I have a new provider', wait: true, waitMs: 20_000 });
  assert.equal(r.state, 'delivered');
  await eventually(() => alice.store.deposits.peerMailboxes(toHexKey(dave)).includes(p3.identity.onion), 20_000, 'alice learned p3 with the mail');
});

test('recipient online but not reachable directly: its provider notifies it over its open connection, it fetches at once', async () => {
  // Dave's node runs and keeps its connections to his providers (watching his queue there), but
  // alice cannot reach his onion: as when Tor's introduction to it fails.
  assert.ok(dave.status().mailboxes.length > 0);
  await dave.fetchMailboxes(); // (watches are set up by a fetch; the start's round did it already)
  rmSync(join(t.root, 'loopback', `${dave.identity.onion}.json`));
  const r = await alice.send({ to: dave.identity.onion, subject: 'knock knock', body: 'via your provider, while you are up' });
  // Dave's fetch schedule is 5 minutes away: only the provider's NOTIFY can bring it in seconds.
  await eventually(() => dave.store.getMessage(r.id) !== null, 20_000, 'dave fetched on notice');
  await eventually(() => alice.store.getMessage(r.id)!.state === 'delivered', 20_000, 'alice sees delivered');
});
