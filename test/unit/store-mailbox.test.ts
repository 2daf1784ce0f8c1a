/**
 * The store's everyday-use tables (schema v4, src/store/mailbox.ts): attachments, archive, delete
 * with secure delete, drafts across a reopen, full-text search. Real SQLite files in a temp dir.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { StoreError, isControlKind, migrate, openStore, MIGRATIONS, type NewIncoming, type NewOutgoing, type Store } from '../../src/store/index.js';
import { ftsQuery } from '../../src/store/mailbox.js';
import { errorCodeOf } from '../fixtures/codes.js';

const root = mkdtempSync(join(tmpdir(), 'onionpost-mailbox-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));
const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const hex16 = () => randomBytes(16).toString('hex');
const u8 = (n: number) => new Uint8Array(randomBytes(n));
const codeOf = (fn: () => unknown): string => errorCodeOf(StoreError, fn);

let n = 0;
function fresh(): { store: Store; clock: ManualClock; path: string } {
  const clock = new ManualClock();
  const path = join(root, `s${++n}.db`);
  return { store: openStore({ path, logger: silentLogger(), clock }), clock, path };
}

function out(clock: ManualClock, over: Partial<NewOutgoing> = {}): NewOutgoing {
  return {
    id: hex16(), kind: 'mail', peerIdentity: A, body: 'b', createdAt: clock.now(), expiresAt: clock.now() + 1e9,
    envelope: u8(100), envelopeHash: u8(32), ...over,
  };
}

function inc(clock: ManualClock, over: Partial<NewIncoming> = {}): NewIncoming {
  clock.advance(1);
  return {
    id: hex16(), kind: 'mail', peerIdentity: B, body: 'b', createdAt: clock.now(), expiresAt: clock.now() + 1e9,
    receivedAt: clock.now(), envelopeHash: u8(32), receipt: u8(64), ...over,
  };
}

test('ftsQuery: every word a quoted prefix, no FTS5 syntax gets through', () => {
  assert.equal(ftsQuery('lunch friday'), '"lunch"* "friday"*');
  assert.equal(ftsQuery('  "a" OR b* NEAR(c) '), '"""a"""* "OR"* "b*"* "NEAR(c)"*');
  assert.equal(ftsQuery('… -- !!'), '');
  assert.equal(ftsQuery(''), '');
});

test('attachments are stored in order with the message, both directions, and counted', () => {
  const { store, clock } = fresh();
  try {
    const files = [{ name: 'a.txt', mediaType: 'text/plain', data: u8(10) }, { name: 'b.png', mediaType: 'image/png', data: u8(5000) }];
    const m = store.insertOutgoing(out(clock, { attachments: files }));
    assert.equal(m.attachmentCount, 2);
    assert.equal(store.getMessage(m.id)!.attachmentCount, 2);
    assert.deepEqual(store.getAttachments(m.id), files);
    const i = inc(clock, { attachments: [files[1]!] });
    store.commitIncomingBatch([i]);
    assert.deepEqual(store.getAttachments(i.id), [files[1]]);
    assert.equal(store.listMessages({ direction: 'in' })[0]!.attachmentCount, 1);
    assert.deepEqual(store.getAttachments(hex16()), []);
    const tooMany = Array.from({ length: 17 }, (_, k) => ({ name: `${k}`, mediaType: 'x/y', data: u8(1) }));
    const bad = out(clock, { attachments: tooMany });
    assert.equal(codeOf(() => store.insertOutgoing(bad)), 'CONSTRAINT');
    assert.equal(store.getMessage(bad.id), null, 'nothing of a refused message is left');
  } finally {
    store.close();
  }
});

test('archive hides from archived:false lists and back; mark unread', () => {
  const { store, clock } = fresh();
  try {
    const a = inc(clock);
    const b = inc(clock);
    store.commitIncomingBatch([a, b]);
    store.setArchived(a.id, true);
    assert.deepEqual(store.listMessages({ direction: 'in', archived: false }).map((m) => m.id), [b.id]);
    assert.deepEqual(store.listMessages({ direction: 'in', archived: true }).map((m) => m.id), [a.id]);
    assert.equal(store.listMessages({ direction: 'in' }).length, 2);
    store.setArchived(a.id, false);
    assert.equal(store.listMessages({ direction: 'in', archived: false }).length, 2);
    assert.equal(codeOf(() => store.setArchived(hex16(), true)), 'NOT_FOUND');
    store.markRead(a.id);
    store.markRead(a.id, false);
    assert.equal(store.getMessage(a.id)!.read, false);
  } finally {
    store.close();
  }
});

test('delete removes the message, its content, files, events and search terms; the dedup row stays; bytes are overwritten', () => {
  const { store, clock, path } = fresh();
  const secret = `zebraquokka${randomBytes(6).toString('hex')}`;
  try {
    const i = inc(clock, { subject: 'to be deleted', body: `the secret word is ${secret}`, attachments: [{ name: 'x.bin', mediaType: 'application/octet-stream', data: new TextEncoder().encode(`${secret}-file`) }] });
    store.commitIncoming(i);
    assert.equal(store.search(secret).length, 1);
    assert.equal(store.deleteMessage(i.id), true);
    assert.equal(store.getMessage(i.id), null);
    assert.deepEqual(store.getAttachments(i.id), []);
    assert.deepEqual(store.listEvents(i.id), []);
    assert.deepEqual(store.search(secret), []);
    assert.equal(store.deleteMessage(i.id), false);
    // A replay of the deleted message is still a duplicate, answered with the same receipt (the
    // dedup row is written when the message is deleted).
    const again = store.commitIncoming(i);
    assert.equal(again.duplicate, true);
    assert.equal(again.conflict, false);
    assert.deepEqual(again.receipt, i.receipt);
    assert.equal(store.getMessage(i.id), null);
    store.checkpoint();
  } finally {
    store.close();
  }
  // secure_delete: neither the body nor the file survives anywhere in the database file.
  const raw = readFileSync(path).toString('latin1');
  assert.equal(raw.includes(secret), false, 'deleted text left in the database file');
});

test('delete refuses an outgoing message that may still be sent; cancel-then-delete works', () => {
  const { store, clock } = fresh();
  try {
    const q = store.insertOutgoing(out(clock));
    assert.equal(codeOf(() => store.deleteMessage(q.id)), 'BAD_STATE');
    const h = store.insertOutgoing(out(clock, { state: 'held', stateReason: 'key change' }));
    assert.equal(codeOf(() => store.deleteMessage(h.id)), 'BAD_STATE');
    store.transition(q.id, 'failed', { from: ['queued', 'held'], reason: 'cancelled', errorCode: 'CANCELLED' });
    assert.equal(store.deleteMessage(q.id), true);
  } finally {
    store.close();
  }
});

test('search: words as prefixes in sender, subject and body, accents and case ignored; contacts by alias; direction filter', () => {
  const { store, clock } = fresh();
  try {
    const m1 = inc(clock, { subject: 'Lunch on Friday?', body: 'Shall we meet at the Café?', peerLabel: 'alice' });
    const m2 = inc(clock, { subject: 'Minutes', body: 'of the tenants meeting', peerIdentity: A });
    store.commitIncomingBatch([m1, m2]);
    const o = store.insertOutgoing(out(clock, { subject: 'Re: lunch', body: 'yes', peerIdentity: B }));
    const ids = (q: string, dir?: 'in' | 'out') => store.search(q, dir ? { direction: dir } : {}).map((m) => m.id).sort();
    assert.deepEqual(ids('lunch'), [m1.id, o.id].sort());
    assert.deepEqual(ids('lunch', 'in'), [m1.id]);
    assert.deepEqual(ids('LUN fri'), [m1.id]);
    assert.deepEqual(ids('cafe'), [m1.id]);
    assert.deepEqual(ids('tenant'), [m2.id]);
    assert.deepEqual(ids('alice'), [m1.id], 'the label stored with the message');
    assert.deepEqual(ids('nothing-like-this'), []);
    assert.deepEqual(ids('   '), []);
    assert.deepEqual(ids('"'), []);
    // A contact added later is found by alias: every message to or from that peer.
    store.upsertContact({ alias: 'Zoë', identityKey: A, onion: 'x.onion', source: 'onion' });
    assert.deepEqual(ids('zoë'), [m2.id]);
    assert.deepEqual(ids('Zo'), [m2.id]);
    assert.deepEqual(ids('%'), [], 'LIKE wildcards are literal');
  } finally {
    store.close();
  }
});

test('drafts survive closing and reopening the store, with their attachments', () => {
  const { store, clock, path } = fresh();
  const id = hex16();
  const file = { name: 'plan.pdf', mediaType: 'application/pdf', data: u8(300) };
  try {
    store.saveDraft({ id, kind: 'mail', to: 'bob', subject: 'Plans', body: 'first', attachments: [file] });
    clock.advance(5);
    const d = store.saveDraft({ id, kind: 'chat', to: 'bob', subject: 'Plans', body: 'second', threadId: 'ab'.repeat(16), attachments: [file] });
    assert.equal(d.updatedAt - d.createdAt, 5);
    assert.equal(store.listDrafts().length, 1);
  } finally {
    store.close();
  }
  const again = openStore({ path, logger: silentLogger() });
  try {
    const d = again.getDraft(id)!;
    assert.equal(d.body, 'second');
    assert.equal(d.kind, 'chat');
    assert.equal(d.threadId, 'ab'.repeat(16));
    assert.deepEqual(d.attachments, [file]);
    const listed = again.listDrafts()[0]!;
    assert.equal(listed.attachments[0]!.name, 'plan.pdf');
    assert.equal(listed.attachments[0]!.data.length, 0, 'lists leave the data out');
    assert.equal(again.deleteDraft(id), true);
    assert.equal(again.getDraft(id), null);
    assert.equal(again.deleteDraft(id), false);
  } finally {
    again.close();
  }
});

test('migration v4 indexes messages stored before it', () => {
  const path = join(root, 'v3.db');
  const db = new Database(path);
  migrate(db, silentLogger(), MIGRATIONS.filter((m) => m.version <= 3));
  db.prepare(`INSERT INTO messages (id, direction, kind, peer_identity, peer_label, subject, thread_id, created_at, expires_at, received_at, sort_at, state, envelope_hash, receipt)
    VALUES (?, 'in', 'mail', ?, 'carol', 'old subject', ?, 1, 2, 1, 1, 'received', x'00', x'00')`).run('cd'.repeat(16), B, 'cd'.repeat(16));
  db.prepare('INSERT INTO message_content (id, body) VALUES (?, ?)').run('cd'.repeat(16), 'an archaeological body');
  db.close();
  const store = openStore({ path, logger: silentLogger() });
  try {
    assert.deepEqual(store.search('archaeo').map((m) => m.id), ['cd'.repeat(16)]);
    assert.deepEqual(store.search('carol').map((m) => m.id), ['cd'.repeat(16)]);
    assert.equal(store.getMessage('cd'.repeat(16))!.archived, false);
  } finally {
    store.close();
  }
});

test('control messages (schema v15): no listing, count, search or thread shows them; they go once final', () => {
  const { store, clock } = fresh();
  try {
    const mail = store.insertOutgoing(out(clock, { body: 'hello there' }));
    const before = store.counts();
    const control = store.insertOutgoing(out(clock, { kind: 'read', body: mail.id }));
    assert.equal(store.getMessage(control.id)!.kind, 'read', 'the pipeline still reads it whole');
    assert.ok(isControlKind(store.getMessage(control.id)!.kind), 'read back as a control message');
    assert.ok(!isControlKind(store.getMessage(mail.id)!.kind));
    assert.deepEqual(store.listMessages().map((m) => m.id), [mail.id]);
    assert.deepEqual(store.listMessages({ idPrefix: control.id.slice(0, 8) }), []);
    assert.deepEqual(store.search(mail.id), [], 'its body is not indexed');
    assert.deepEqual(store.listThreads().map((th) => th.threadId), [mail.id]);
    assert.deepEqual(store.counts(), before);
    store.transition(control.id, 'delivered', { from: ['queued'] });
    assert.deepEqual(store.counts(), before, 'its state changes are not counted either');
    assert.equal(store.pruneControl(), 1);
    assert.equal(store.getMessage(control.id), null);
    assert.deepEqual(store.counts(), before, 'nor its deletion');
  } finally {
    store.close();
  }
});

test("a peer's read receipt marks only our messages to that peer, once", () => {
  const { store, clock } = fresh();
  try {
    const toA = store.insertOutgoing(out(clock, { kind: 'chat', peerIdentity: A }));
    const toB = store.insertOutgoing(out(clock, { kind: 'chat', peerIdentity: B }));
    const fromA = inc(clock, { peerIdentity: A });
    store.commitIncomingBatch([fromA]);
    clock.advance(5);
    assert.deepEqual(store.markPeerRead(A, [toA.id, toB.id, fromA.id, hex16()], clock.now()), [toA.id]);
    assert.equal(store.getMessage(toA.id)!.peerReadAt, clock.now());
    assert.equal(store.getMessage(toB.id)!.peerReadAt, null, "B's message is not A's to report");
    clock.advance(5);
    assert.deepEqual(store.markPeerRead(A, [toA.id], clock.now()), [], 'the first time counts');
    assert.equal(store.getMessage(toA.id)!.peerReadAt, clock.now() - 5);
  } finally {
    store.close();
  }
});
