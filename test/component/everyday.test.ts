/**
 * Everyday use through the API handlers, with real nodes (loopback network, real SQLite) and, for
 * names, the dev chain through real tronweb: senders by name (verified claims, liars refused),
 * attachments both ways, search, archive, unread, delete, drafts across a restart, retry now and
 * cancel of a stuck message with its plain-words reason, rejecting a key change, safety numbers,
 * and chat conversations.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { toHex } from '../../src/bytes.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { MESSAGE_CAPACITY } from '../../src/session/index.js';
import { silentLogger } from '../../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../../src/node/index.js';
import type { IdentityRegistry } from '../../src/registry/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { startRegistryChain, type RegistryChain } from '../fixtures/registry-chain.js';

let reg: RegistryChain;
let t: TestNodes;

const client = (account: number | null): IdentityRegistry => reg.client(account);

type Call = (n: OnionpostNode, method: string, params?: Record<string, unknown>) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const call: Call = async (n, method, params = {}) => n.handlers[method]!(params);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

before(async () => {
  t = await testNodes('onionpost-everyday-');
  reg = await startRegistryChain();
});

after(async () => {
  await t.cleanup();
  await reg.close();
});

test('a sender shows by contact alias, else by a registry name it claimed and a lookup confirmed; a false claim shows as a stranger', async () => {
  const alice = await t.make('alice-n', { registry: client(null) });
  const carolId = generateIdentity();
  await client(4).register(carolId, 'carol');
  const carol = await t.make('carol-n', { identity: carolId, registryName: 'carol' });
  const liar = await t.make('liar-n', { registryName: 'carol' });

  const fromCarol = await carol.send({ to: alice.identity.onion, subject: 'hello from carol', body: 'x', wait: true, waitMs: 10_000 });
  assert.equal(fromCarol.state, 'delivered');
  const fromLiar = await liar.send({ to: alice.identity.onion, subject: 'hello from "carol"', body: 'y', wait: true, waitMs: 10_000 });
  assert.equal(fromLiar.state, 'delivered');

  const inbox = async () => (await call(alice, 'messages.inbox')) as { id: string; fromName: string | null; peerFingerprint?: string }[];
  await eventually(async () => (await inbox()).find((m) => m.id === fromCarol.id)?.fromName === 'carol', 10_000, 'carol named after verification');
  const liarRow = (await inbox()).find((m) => m.id === fromLiar.id)!;
  assert.equal(liarRow.fromName, null, 'a claim the registry does not back is not shown');
  assert.match(liarRow.peerFingerprint!, /^[0-9a-f]{4}( [0-9a-f]{4}){3}$/);
  assert.equal(liarRow.peerFingerprint!.replaceAll(' ', ''), toHex(liar.identity.identityKey).slice(0, 16));

  // A contact alias wins over the registry name, for old and new messages alike.
  await call(alice, 'contacts.add', { alias: 'Carol Jones', address: carolId.onion });
  assert.equal((await inbox()).find((m) => m.id === fromCarol.id)!.fromName, 'Carol Jones');
  const read = await call(alice, 'messages.get', { id: fromCarol.id });
  assert.equal(read.fromName, 'Carol Jones');
});

test('attachments: sent as base64, carried sealed, read back byte for byte; the limit is stated and enforced before queueing', async () => {
  const a = await t.make('alice-a');
  const b = await t.make('bob-a');
  const limits = await call(a, 'messages.limits');
  assert.deepEqual(limits, { maxAttachments: 16, capacity: MESSAGE_CAPACITY, maxNameBytes: 255 });
  const files = [
    { name: 'notes.txt', mediaType: 'text/plain', data: new TextEncoder().encode('plain words\n') },
    { name: 'photo.bin', mediaType: 'application/octet-stream', data: new Uint8Array(randomBytes(100_000)) },
  ];
  // To an onion that is no contact yet: sealed at the first attempt, from the stored files.
  const r = await call(a, 'messages.send', { to: b.identity.onion, subject: 'files', body: 'two files', attachments: files.map((f) => ({ ...f, data: b64(f.data) })), wait: true, waitMs: 10_000 });
  assert.equal(r.state, 'delivered');
  const got = await call(b, 'messages.get', { id: r.id });
  assert.deepEqual(got.attachments.map((f: { name: string; size: number; index: number }) => [f.index, f.name, f.size]), [[0, 'notes.txt', 12], [1, 'photo.bin', 100_000]]);
  for (const [i, f] of files.entries()) {
    const d = await call(b, 'messages.attachment', { id: r.id.slice(0, 8), index: i });
    assert.deepEqual(new Uint8Array(Buffer.from(d.data, 'base64')), f.data);
    assert.equal(d.mediaType, f.mediaType);
  }
  assert.equal((await call(b, 'messages.inbox'))[0].attachmentCount, 2);
  // Over the capacity by one byte: refused with the numbers, nothing queued.
  const before = a.store.counts().queued + a.store.counts().delivered;
  const over = MESSAGE_CAPACITY - (6 + 'big.bin'.length + 'application/octet-stream'.length) + 1;
  await assert.rejects(call(a, 'messages.send', { to: b.identity.onion, attachments: [{ name: 'big.bin', mediaType: 'application/octet-stream', data: b64(new Uint8Array(over)) }] }),
    (err: { code?: string; message: string }) => err.code === 'TOO_LARGE' && new RegExp(`at most ${MESSAGE_CAPACITY}`).test(err.message));
  assert.equal(a.store.counts().queued + a.store.counts().delivered, before);
  await assert.rejects(call(a, 'messages.send', { to: b.identity.onion, attachments: [{ name: 'x', mediaType: 'x/y', data: 'not base64!' }] }), { code: 'BAD_ATTACHMENT' });
});

test('search, archive, mark unread, delete; a sent copy with its files too', async () => {
  const a = await t.make('alice-s');
  const b = await t.make('bob-s');
  const m1 = await a.send({ to: b.identity.onion, subject: 'Quarterly figures', body: 'The numbers for Zürich are in.', wait: true, waitMs: 10_000 });
  const m2 = await a.send({ to: b.identity.onion, subject: 'Lunch', body: 'Noon?', wait: true, waitMs: 10_000 });
  const ids = async (q: string) => ((await call(b, 'messages.search', { query: q })) as { id: string }[]).map((m) => m.id);
  assert.deepEqual(await ids('zurich'), [m1.id]);
  assert.deepEqual(await ids('quarter fig'), [m1.id]);
  assert.deepEqual((await ids('noon')), [m2.id]);
  assert.deepEqual(await ids('nothing'), []);

  await call(b, 'messages.archive', { id: m1.id });
  assert.deepEqual((await call(b, 'messages.inbox')).map((m: { id: string }) => m.id), [m2.id]);
  assert.deepEqual((await call(b, 'messages.inbox', { archived: true })).map((m: { id: string }) => m.id), [m1.id]);
  assert.deepEqual(await ids('zurich'), [m1.id], 'archived mail is still found');

  await call(b, 'messages.get', { id: m2.id });
  assert.equal(b.store.counts().unread, 1);
  const seen: unknown[] = [];
  const off = b.events.subscribe((ev) => ev.type === 'message.read' && seen.push(ev));
  await call(b, 'messages.markRead', { id: m2.id, read: false });
  off();
  assert.equal(b.store.counts().unread, 2);
  assert.equal(seen.length, 1, 'views (and the mail bridge) hear of it');

  assert.deepEqual(await call(b, 'messages.delete', { id: m1.id }), { id: m1.id, deleted: true });
  assert.deepEqual(await ids('zurich'), []);
  await assert.rejects(call(b, 'messages.get', { id: m1.id }), { code: 'NOT_FOUND' });
  // The sender's delivered copy can be deleted too; a queued one cannot (cancel first).
  assert.equal((await call(a, 'messages.delete', { id: m1.id })).deleted, true);
});

test('drafts are kept on the node across a restart, files included; sending one removes it', async () => {
  const identity = generateIdentity();
  const dbPath = join(t.root, 'drafts.db');
  const net = loopbackNetwork(join(t.root, 'loopback'));
  const id = randomBytes(16).toString('hex');
  const first = new OnionpostNode({ identity, dbPath, network: net, logger: silentLogger() });
  await first.start();
  await call(first, 'drafts.save', { id, to: 'bob', subject: 'Half-written', body: 'So far…', attachments: [{ name: 'a.txt', mediaType: 'text/plain', data: b64(new TextEncoder().encode('A')) }] });
  await first.close();
  const again = new OnionpostNode({ identity, dbPath, network: loopbackNetwork(join(t.root, 'loopback')), logger: silentLogger() });
  await again.start();
  try {
    const list = await call(again, 'drafts.list');
    assert.deepEqual(list.map((d: { id: string; subject: string; preview: string }) => [d.id, d.subject, d.preview]), [[id, 'Half-written', 'So far…']]);
    const d = await call(again, 'drafts.get', { id });
    assert.equal(Buffer.from(d.attachments[0].data, 'base64').toString(), 'A');
    const b = await t.make('bob-d');
    const r = await call(again, 'messages.send', { to: b.identity.onion, subject: d.subject, body: d.body, draftId: id, wait: true, waitMs: 10_000 });
    assert.equal(r.state, 'delivered');
    assert.deepEqual(await call(again, 'drafts.list'), []);
  } finally {
    await again.close();
  }
});

test('a stuck message: why in plain words from its attempts, retry now, cancel, then delete', async () => {
  const a = await t.make('alice-r', { outbox: { policy: { fastBaseMs: 60_000, fastMaxMs: 60_000, jitter: 0 } } });
  const offline = generateIdentity(); // never started: its onion answers nobody
  const sent = await a.send({ to: offline.onion, subject: 'are you there?', body: '…' });
  const row = async () => ((await call(a, 'messages.outbox', { view: 'pending' })) as { id: string; state: string; attempts: number; delivery: { words: string; since?: number; nextAttemptAt?: number; code?: string } }[]).find((m) => m.id === sent.id)!;
  await eventually(async () => (await row()).attempts === 1 && (await row()).state === 'queued', 10_000, 'first attempt failed');
  const r1 = await row();
  assert.equal(r1.delivery.words, "the recipient's node has been offline");
  assert.ok(r1.delivery.since! > 0 && r1.delivery.nextAttemptAt! > Date.now() + 30_000, 'next try a minute out');
  await call(a, 'messages.retryNow', { id: sent.id.slice(0, 10) });
  await eventually(async () => (await row()).attempts === 2 && (await row()).state === 'queued', 10_000, 'retried at once');
  assert.equal((await row()).delivery.since, r1.delivery.since, 'offline since the first failure of the run');
  await assert.rejects(call(a, 'messages.delete', { id: sent.id }), { code: 'BAD_STATE' });
  assert.deepEqual(await call(a, 'messages.cancel', { id: sent.id }), { id: sent.id, state: 'failed' });
  const all = (await call(a, 'messages.outbox', { view: 'pending' })) as { id: string; state: string; delivery: { words: string } }[];
  assert.deepEqual(all.filter((m) => m.id === sent.id).map((m) => [m.state, m.delivery.words]), [['failed', 'cancelled by you']]);
  assert.deepEqual(await call(a, 'messages.outbox', { view: 'delivered' }), []);
  await assert.rejects(call(a, 'messages.retryNow', { id: sent.id }), { code: 'BAD_STATE' });
  assert.equal((await call(a, 'messages.delete', { id: sent.id })).deleted, true);
});

test('reject a key change: the pin stays, held mail is cancelled, the same change no longer alerts, and mail goes on to the pinned key', async () => {
  const alice = await t.make('alice-k', { registry: client(null) });
  const bobId = generateIdentity();
  const bob = await t.make('bob-k', { identity: bobId });
  const bobChain = client(5);
  await bobChain.register(bobId, 'bobk');
  assert.equal((await alice.send({ to: 'bobk', body: 'first', wait: true, waitMs: 10_000 })).state, 'delivered');
  await bobChain.update(generateIdentity(), { rotation: null });
  const held = await alice.send({ to: 'bobk', body: 'while changed' });
  assert.equal(held.state, 'held');
  assert.equal(alice.status().warnings.length, 1);

  const r = await call(alice, 'contacts.rejectKeyChange', { alias: 'bobk' });
  assert.equal(r.cancelled, 1);
  assert.equal(r.keyChange, null);
  assert.equal(r.identityKey, toHex(bobId.identityKey), 'the pinned key stays');
  const m = alice.store.getMessage(held.id)!;
  assert.deepEqual([m.state, m.lastErrorCode], ['failed', 'KEY_REJECTED']);
  const view = (await call(alice, 'messages.outbox')).find((x: { id: string }) => x.id === held.id);
  assert.match(view.delivery.words, /you rejected bobk's new key/);
  assert.deepEqual(alice.status().warnings, []);

  const alerts: unknown[] = [];
  const off = alice.events.subscribe((ev) => ev.type === 'contact.keyChange' && alerts.push(ev));
  const after = await alice.send({ to: 'bobk', body: 'to the key I trust', wait: true, waitMs: 10_000 });
  off();
  assert.equal(after.state, 'delivered', 'sent to the pinned key, which bob still holds');
  assert.equal(after.to, bobId.onion);
  assert.deepEqual(alerts, []);
  assert.ok(bob.store.getMessage(after.id));
  await assert.rejects(call(alice, 'contacts.rejectKeyChange', { alias: 'bobk' }), { code: 'NO_KEY_CHANGE' });
});

test('safety numbers: the same 60 digits on both sides', async () => {
  const a = await t.make('alice-sn');
  const b = await t.make('bob-sn');
  await call(a, 'contacts.add', { alias: 'bob', address: b.identity.onion });
  await call(b, 'contacts.add', { alias: 'alice', address: a.identity.onion });
  const x = await call(a, 'contacts.safetyNumber', { alias: 'bob' });
  const y = await call(b, 'contacts.safetyNumber', { alias: 'alice' });
  assert.match(x.digits, /^\d{60}$/);
  assert.equal(x.digits, y.digits);
  assert.equal(x.groups.length, 12);
  await assert.rejects(call(a, 'contacts.safetyNumber', { alias: 'nobody' }), { code: 'NOT_FOUND' });
});

test('chat: conversations per person, a conversation oldest first, read marks', async () => {
  const a = await t.make('alice-c');
  const b = await t.make('bob-c');
  await a.send({ to: b.identity.onion, body: 'hi bob', kind: 'chat', wait: true, waitMs: 10_000 });
  await b.send({ to: a.identity.onion, body: 'hi alice', kind: 'chat', wait: true, waitMs: 10_000 });
  await b.send({ to: a.identity.onion, body: 'how are you?', kind: 'chat', wait: true, waitMs: 10_000 });
  const cs = await call(a, 'messages.conversations');
  assert.deepEqual(cs.map((c: { peer: string; unread: number; preview: string; lastDirection: string }) => [c.peer, c.unread, c.preview, c.lastDirection]), [[b.identity.onion, 2, 'how are you?', 'in']]);
  const convo = await call(a, 'messages.conversation', { peer: b.identity.onion, markRead: true });
  assert.deepEqual(convo.messages.map((m: { body: string; direction: string }) => [m.direction, m.body]), [['out', 'hi bob'], ['in', 'hi alice'], ['in', 'how are you?']]);
  assert.equal((await call(a, 'messages.conversations'))[0].unread, 0);
  await assert.rejects(call(a, 'messages.conversation', { peer: 'nobody-here' }), { code: 'NOT_FOUND' });
});

