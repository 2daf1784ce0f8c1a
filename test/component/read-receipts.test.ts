/**
 * Read receipts (issue 14; PROTOCOL.md §9.2) through whole nodes over real ws on 127.0.0.1, each on
 * its own SQLite file: a control message sent like mail and shown nowhere. Bob reads Alice's chat
 * messages through the API as the web UI does; Alice's outbox shows `readAt` only when Bob allows
 * read receipts, only for chat, and a receipt waiting for an offline Alice stays out of every
 * listing, count, search and mail folder of Bob's.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { generateIdentity } from '../../src/crypto/index.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-read-receipts-');
});
after(() => t.cleanup());

const fast = { outbox: { policy: { fastBaseMs: 200, fastMaxMs: 500, busyMs: 50, slowBaseMs: 500, slowMaxMs: 500 } } };
type Summary = { id: string; kind: string; readAt?: number; state: string };
const call = async <T>(node: OnionpostNode, method: string, params: Record<string, unknown> = {}) => (await node.handlers[method]!(params)) as T;

async function chat(from: OnionpostNode, to: OnionpostNode, body: string, kind: 'chat' | 'mail' = 'chat'): Promise<string> {
  const r = await from.send({ to: to.identity.onion, body, kind, subject: kind === 'mail' ? 'hello' : '', wait: true, waitMs: 20_000 });
  assert.equal(r.state, 'delivered', `${body}: ${r.state} ${r.reason ?? ''}`);
  return r.id;
}

const outbox = (node: OnionpostNode) => call<Summary[]>(node, 'messages.outbox', { limit: 100 });
const readAt = async (node: OnionpostNode, id: string) => (await outbox(node)).find((m) => m.id === id)?.readAt;

/** Bob's control rows, read from his database file (a listing can't show them: that is the point). */
function controlRows(dbPath: string): { id: string; state: string }[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT id, state FROM messages WHERE control = 'read'").all() as { id: string; state: string }[];
  } finally {
    db.close();
  }
}

test('read receipts: off by default, sent for chat only once allowed, shown to the sender as readAt', async () => {
  const alice = await t.make('alice', fast);
  const bob = await t.make('bob', fast);
  const peerRead: string[] = [];
  alice.events.subscribe((ev) => {
    if (ev.type === 'message.peerRead') peerRead.push(String(ev.id));
  });

  assert.deepEqual(await call(bob, 'settings.get'), { readReceipts: false }, 'off until the user allows it');
  const first = await chat(alice, bob, 'read while receipts are off');
  await call(bob, 'messages.conversation', { peer: alice.identity.onion, markRead: true });

  assert.deepEqual(await call(bob, 'settings.set', { readReceipts: true }), { readReceipts: true });
  const mail = await chat(alice, bob, 'a mail, not a chat', 'mail');
  const second = await chat(alice, bob, 'read while receipts are on');
  await call(bob, 'messages.get', { id: mail });
  await call(bob, 'messages.conversation', { peer: alice.identity.onion, markRead: true });

  await eventually(async () => (await readAt(alice, second)) !== undefined, 15_000, 'the read receipt for the second chat message');
  assert.ok(peerRead.includes(second), 'a message.peerRead event for it');
  // Reads are in order and coalesced per second: a receipt for the first would have come no later.
  assert.equal(await readAt(alice, first), undefined, 'read while receipts were off: never reported');
  assert.equal(await readAt(alice, mail), undefined, 'mail is never reported read');
  await eventually(() => controlRows(join(t.root, 'bob.db')).every((r) => r.state === 'delivered'), 10_000, "Alice's receipt for Bob's control message");
  assert.equal(controlRows(join(t.root, 'bob.db')).length, 1, 'one read receipt carried the read');

  // The choice survives a restart of the API's view of it (kept in the store).
  assert.deepEqual(await call(bob, 'settings.set', { readReceipts: false }), { readReceipts: false });
  assert.deepEqual(await call(bob, 'settings.get'), { readReceipts: false });
});

test('a read receipt waiting for an offline sender is in no listing, count, search or mail folder, and arrives later', async () => {
  const aliceIdentity = generateIdentity();
  let alice = await t.make('alice2', { ...fast, identity: aliceIdentity });
  const bob = await t.make('bob2', fast);
  await call(bob, 'settings.set', { readReceipts: true });
  const id = await chat(alice, bob, 'read me later');
  await alice.close();

  await call(bob, 'messages.conversation', { peer: alice.identity.onion, markRead: true });
  const bobDb = join(t.root, 'bob2.db');
  await eventually(() => controlRows(bobDb).length === 1, 10_000, 'the read receipt queued at Bob');
  const control = controlRows(bobDb)[0]!;
  assert.notEqual(control.state, 'delivered', 'Alice is offline');

  const listed = await outbox(bob);
  assert.ok(!listed.some((m) => m.id === control.id), 'not in the outbox');
  assert.ok(!(await call<Summary[]>(bob, 'messages.inbox', { limit: 100 })).some((m) => m.id === control.id), 'not in the inbox');
  assert.deepEqual(await call(bob, 'messages.search', { query: id }), [], 'its body (the ids read) is not searchable');
  await assert.rejects(call(bob, 'messages.get', { id: control.id }), (err: { code?: string }) => err.code === 'NOT_FOUND');
  const { counts } = bob.status() as { counts: Record<string, number> };
  assert.deepEqual([counts.queued, counts.sending, counts.failed, counts.delivered, counts.inbox], [0, 0, 0, 0, 1], 'counted nowhere');
  const folders = bob.store.mailFolders;
  folders.sync();
  for (const name of ['INBOX', 'Sent'] as const) {
    assert.ok(!folders.entries(name).some((e) => e.ref.includes(control.id)), `not in the mail bridge's ${name}`);
  }
  const conversations = await call<{ preview: string }[]>(bob, 'messages.conversations');
  assert.equal(conversations.length, 1);
  assert.equal(conversations[0]!.preview, 'read me later', "the conversation's last message is still Alice's");

  alice = await t.make('alice2', { ...fast, identity: aliceIdentity });
  await eventually(async () => (await readAt(alice, id)) !== undefined, 20_000, 'the read receipt once Alice is back');
});
