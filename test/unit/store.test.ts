import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { silentLogger } from '../../src/log.js';
import { StoreError, openStore, type NewIncoming, type NewOutgoing, type Store } from '../../src/store/index.js';
import { errorCodeOf } from '../fixtures/codes.js';

const root = mkdtempSync(join(tmpdir(), 'onionpost-store-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));
const A = 'aa'.repeat(32);
const B = 'bb'.repeat(32);
const hex16 = () => randomBytes(16).toString('hex');
const u8 = (n: number) => new Uint8Array(randomBytes(n));

let n = 0;
function fresh(): { store: Store; clock: ManualClock } {
  const clock = new ManualClock();
  return { store: openStore({ path: join(root, `s${++n}.db`), logger: silentLogger(), clock }), clock };
}

function out(clock: ManualClock, over: Partial<NewOutgoing> = {}): NewOutgoing {
  return {
    id: hex16(), kind: 'mail', peerIdentity: A, body: 'b', createdAt: clock.now(), expiresAt: clock.now() + 1e9,
    envelope: u8(100), envelopeHash: u8(32), ...over,
  };
}

function inc(clock: ManualClock, over: Partial<NewIncoming> = {}): NewIncoming {
  return {
    id: hex16(), kind: 'mail', peerIdentity: B, body: 'b', createdAt: clock.now(), expiresAt: clock.now() + 1e9,
    receivedAt: clock.now(), envelopeHash: u8(32), receipt: u8(64), ...over,
  };
}

const codeOf = (fn: () => unknown): string => errorCodeOf(StoreError, fn);

test('transitions write one event each and refuse states outside `from`', () => {
  const { store, clock } = fresh();
  try {
    const m = store.insertOutgoing(out(clock));
    assert.equal(m.state, 'queued');
    assert.equal(m.threadId, m.id);
    assert.equal(m.nextAttemptAt, clock.now());
    clock.advance(10);
    store.transition(m.id, 'sending', { from: ['queued'] });
    assert.equal(codeOf(() => store.transition(m.id, 'sending', { from: ['queued'] })), 'BAD_STATE');
    assert.equal(codeOf(() => store.transition(hex16(), 'failed')), 'NOT_FOUND');
    store.scheduleRetry(m.id, clock.now() + 2000, 'TIMEOUT');
    store.transition(m.id, 'sending', { from: ['queued'] });
    store.markDelivered(m.id, u8(64), clock.now());
    store.markDelivered(m.id, u8(64), clock.now()); // a second receipt changes nothing
    assert.deepEqual(store.listEvents(m.id).map((e) => [e.state, e.detail]), [
      ['queued', null], ['sending', null], ['queued', 'TIMEOUT'], ['sending', null], ['delivered', null],
    ]);
    assert.equal(store.listEvents(m.id)[1]!.at, clock.now());
    // An incoming message cannot take an outgoing state.
    const i = inc(clock);
    store.commitIncoming(i);
    assert.equal(codeOf(() => store.transition(i.id, 'queued')), 'CONSTRAINT');
    // Bad shapes are refused by the schema.
    assert.equal(codeOf(() => store.insertOutgoing(out(clock, { id: 'XYZ' }))), 'CONSTRAINT');
    assert.equal(codeOf(() => store.insertOutgoing(out(clock, { peerIdentity: 'zz' }))), 'CONSTRAINT');
    const dupId = out(clock);
    store.insertOutgoing(dupId);
    assert.equal(codeOf(() => store.insertOutgoing(dupId)), 'CONSTRAINT');
  } finally {
    store.close();
  }
});

test('due rows, next due time, expiry, hold/release, peer backoff, resetInFlight, counts', () => {
  const { store, clock } = fresh();
  try {
    const t0 = clock.now();
    assert.equal(store.nextDueAt(), null);
    const a = store.insertOutgoing(out(clock, { nextAttemptAt: t0 + 100, expiresAt: t0 + 10_000 }));
    const b = store.insertOutgoing(out(clock, { peerIdentity: B, nextAttemptAt: t0 + 50, expiresAt: t0 + 5_000 }));
    const h = store.insertOutgoing(out(clock, { state: 'held', stateReason: 'key changed', expiresAt: t0 + 1_000 }));
    assert.equal(store.nextDueAt(), t0 + 50);
    assert.equal(store.nextDueAt({ excludePeers: [B] }), t0 + 100);
    assert.deepEqual(store.dueOutgoing(t0 + 100, 10).map((m) => m.id), [b.id, a.id]);
    assert.deepEqual(store.dueOutgoing(t0 + 100, 10, { excludePeers: [B] }).map((m) => m.id), [a.id]);
    // A's backoff is one row: A's queued message waits for it without being rewritten.
    store.setPeerState(A, { failures: 1, nextAttemptAt: t0 + 3_000, lastErrorCode: 'PEER_UNKNOWN', lastFailureAt: t0 });
    assert.equal(store.getMessage(a.id)!.nextAttemptAt, t0 + 3_000, "the later of its own and its peer's");
    assert.deepEqual(store.dueOutgoing(t0 + 2_999, 10, { excludePeers: [B] }), []);
    assert.deepEqual(store.queuedPeers().map((p) => [p.peerIdentity, p.dueAt, p.failures]), [[B, t0 + 50, 0], [A, t0 + 3_000, 1]]);
    assert.deepEqual(store.dueForPeer(A, t0 + 100, 10).map((m) => m.id), [a.id], 'dueForPeer leaves the peer gate to its caller');
    assert.equal(store.nextDueAt({ excludePeers: [B] }), t0 + 1_000, "the held message's expiry");
    assert.deepEqual(store.expireDue(t0 + 1_000), [h.id]);
    assert.equal(store.getMessage(h.id)!.state, 'expired');
    assert.equal(store.makeDue(A, t0 + 200), 1, 'the peer row; the message was due on its own');
    assert.equal(store.getMessage(a.id)!.nextAttemptAt, t0 + 200);
    assert.deepEqual({ ...store.peerState(A)!, updatedAt: 0 }, {
      peerIdentity: A, failures: 0, nextAttemptAt: t0 + 200, lastErrorCode: 'PEER_UNKNOWN', lastFailureAt: t0, lastSuccessAt: null, updatedAt: 0,
    });
    assert.equal(store.makeDue(A, t0 + 200), 0, 'nothing left to change');
    store.transition(a.id, 'sending', { from: ['queued'] });
    store.recordAttemptStart(a.id, t0 + 200);
    assert.equal(store.holdForPeer(B, 'key changed'), 1);
    assert.deepEqual(store.counts(), { queued: 0, sending: 1, delivered: 0, failed: 0, expired: 1, held: 1, inbox: 0, unread: 0 });
    assert.equal(store.resetInFlight(), 1);
    assert.equal(store.listAttempts(a.id)[0]!.outcome, 'aborted');
    assert.equal(store.listAttempts(a.id).length, 1, 'the open row closed, no second one');
    // beginAttempt writes no attempt row (it is written once, at the outcome): one a restart
    // interrupted is recorded aborted, begun when the message went 'sending'.
    clock.advance(50);
    store.beginAttempt(a.id, t0 + 250);
    assert.deepEqual(store.listAttempts(a.id).length, 1, 'an attempt in flight has no row yet');
    assert.equal(store.resetInFlight(), 1);
    const interrupted = store.listAttempts(a.id);
    assert.deepEqual(interrupted.map((x) => [x.outcome, x.startedAt, x.finishedAt]), [['aborted', t0 + 200, clock.now() - 50], ['aborted', t0 + 250, clock.now()]]);
    assert.equal(store.getMessage(a.id)!.attempts, 2, 'each attempt counted once');
    store.beginAttempt(a.id, clock.now());
    store.recordAttempt(a.id, clock.now(), clock.now() + 7, 'retry', 'UNREACHABLE');
    assert.deepEqual(store.listAttempts(a.id).at(-1), { ...store.listAttempts(a.id).at(-1)!, startedAt: clock.now(), finishedAt: clock.now() + 7, outcome: 'retry', errorCode: 'UNREACHABLE' });
    store.scheduleRetry(a.id, clock.now(), 'UNREACHABLE');
    clock.advance(250);
    assert.equal(store.releaseHeld(B), 1);
    const released = store.getMessage(b.id)!;
    assert.equal(released.state, 'queued');
    assert.equal(released.stateReason, null);
    assert.equal(released.nextAttemptAt, clock.now());
    assert.deepEqual(store.counts(), { queued: 2, sending: 0, delivered: 0, failed: 0, expired: 1, held: 0, inbox: 0, unread: 0 });
  } finally {
    store.close();
  }
});

test('listing: pages newest first with a cursor, filters, threads with unread counts, markRead', () => {
  const { store, clock } = fresh();
  try {
    const root1 = inc(clock, { subject: 'first', kind: 'mail' });
    store.commitIncoming(root1);
    const ids = [root1.id];
    for (let i = 0; i < 9; i++) {
      clock.advance(1000);
      const reply = i % 2 === 0
        ? out(clock, { threadId: root1.id, inReplyTo: root1.id, subject: 'Re: first', peerIdentity: B })
        : undefined;
      if (reply) {
        store.insertOutgoing(reply);
        ids.push(reply.id);
      } else {
        const m = inc(clock, { threadId: root1.id, subject: 'Re: first' });
        store.commitIncoming(m);
        ids.push(m.id);
      }
    }
    clock.advance(1000);
    const chat = inc(clock, { kind: 'chat', peerIdentity: A, body: 'hey' });
    store.commitIncoming(chat);

    const all = store.listMessages();
    assert.equal(all.length, 11);
    assert.equal(all[0]!.id, chat.id);
    const page1 = store.listMessages({ limit: 4 });
    const last = page1.at(-1)!;
    const page2 = store.listMessages({ limit: 4, before: { at: last.receivedAt ?? last.createdAt, id: last.id } });
    assert.deepEqual([...page1, ...page2].map((m) => m.id), all.slice(0, 8).map((m) => m.id));
    assert.equal(store.listMessages({ direction: 'in' }).length, 6);
    assert.equal(store.listMessages({ kind: 'chat' }).length, 1);
    assert.deepEqual(store.listMessages({ thread: root1.id }).map((m) => m.id), [...ids].reverse());

    const threads = store.listThreads();
    assert.equal(threads.length, 2);
    assert.equal(threads[0]!.threadId, chat.id);
    assert.equal(threads[1]!.subject, 'first');
    assert.equal(threads[1]!.messages, 10);
    assert.equal(threads[1]!.unread, 5);
    store.markRead(root1.id);
    assert.equal(store.listThreads()[1]!.unread, 4);
    assert.equal(store.counts().unread, 5);
    assert.equal(codeOf(() => store.markRead(hex16())), 'NOT_FOUND');
  } finally {
    store.close();
  }
});

test('contacts: case-insensitive aliases, lookup by identity, one alias per identity, key change round trip', () => {
  const { store, clock } = fresh();
  try {
    const c = store.upsertContact({ alias: 'Alice', identityKey: A, onion: 'a.onion', source: 'registry', registryName: 'alice', registryVersion: 3, pinnedBundle: u8(10), pinnedAt: clock.now() });
    assert.equal(c.alias, 'Alice');
    assert.equal(store.getContact('ALICE')!.identityKey, A);
    assert.equal(store.getContact(A)!.alias, 'Alice');
    assert.equal(store.getContact('bob'), null);
    clock.advance(5);
    const updated = store.upsertContact({ alias: 'alice', identityKey: A, onion: 'a2.onion', source: 'registry', notes: 'met at camp' });
    assert.equal(updated.onion, 'a2.onion');
    assert.equal(updated.createdAt, c.createdAt);
    assert.equal(updated.updatedAt, c.createdAt + 5);
    assert.equal(store.listContacts().length, 1);
    assert.equal(codeOf(() => store.upsertContact({ alias: 'Alice2', identityKey: A, onion: 'x.onion', source: 'manual' })), 'CONSTRAINT');
    assert.equal(codeOf(() => store.upsertContact({ alias: '  ', identityKey: B, onion: 'x.onion', source: 'manual' })), 'CONSTRAINT');
    const change = { identityKey: B, encryptionKey: null, onion: 'b.onion', seenAt: clock.now(), reason: 'registry v4 without rotation statement', registryVersion: 4 };
    store.setKeyChange('ALICE', change);
    assert.deepEqual(store.getContact('alice')!.keyChange, change);
    store.setKeyChange('alice', null);
    assert.equal(store.getContact('alice')!.keyChange, null);
    assert.equal(codeOf(() => store.setKeyChange('nobody', null)), 'NOT_FOUND');
    assert.equal(store.removeContact('ALICE'), true);
    assert.equal(store.removeContact('alice'), false);
    store.setSetting('k', 'v');
    assert.equal(store.getSetting('k'), 'v');
    store.setSetting('k', null);
    assert.equal(store.getSetting('k'), null);
  } finally {
    store.close();
  }
});

test('listMessages filters: id prefix (hex only, indexed GLOB), peer and state', () => {
  const { store } = fresh();
  try {
    const peerA = 'a'.repeat(64);
    const peerB = 'b'.repeat(64);
    const mk = (id: string, peer: string, state: 'queued' | 'held') =>
      store.insertOutgoing({ id, kind: 'mail', peerIdentity: peer, body: 'x', createdAt: 1, expiresAt: 10_000_000_000_000, envelope: new Uint8Array(1), envelopeHash: new Uint8Array(32), state });
    mk('ab'.padEnd(32, '0'), peerA, 'held');
    mk('ab'.padEnd(32, '1'), peerB, 'queued');
    mk('cd'.padEnd(32, '0'), peerA, 'queued');
    assert.equal(store.listMessages({ idPrefix: 'ab' }).length, 2);
    assert.deepEqual(store.listMessages({ idPrefix: 'cd0' }).map((m) => m.id), ['cd'.padEnd(32, '0')]);
    assert.deepEqual(store.listMessages({ idPrefix: 'ab*' }), [], 'a glob character is not a pattern');
    assert.deepEqual(store.listMessages({ idPrefix: 'zz' }), []);
    assert.deepEqual(store.listMessages({ peer: peerA, state: 'held' }).map((m) => m.id), ['ab'.padEnd(32, '0')]);
    assert.equal(store.listMessages({ peer: peerA }).length, 2);
    assert.equal(store.listMessages({ state: 'queued' }).length, 2);
  } finally {
    store.close();
  }
});

test('batch: methods join it and roll back with it; a nested batch is a savepoint its caller may catch', () => {
  const { store, clock } = fresh();
  try {
    const kept = out(clock);
    const lost = out(clock);
    assert.equal(codeOf(() => store.batch(() => {
      store.insertOutgoing(kept);
      store.insertOutgoing(lost);
      store.transition(lost.id, 'sending', { from: ['held'] }); // BAD_STATE: the whole batch goes
    })), 'BAD_STATE');
    assert.equal(store.getMessage(kept.id), null);
    assert.equal(store.getMessage(lost.id), null);

    store.batch(() => {
      store.insertOutgoing(kept);
      assert.equal(codeOf(() => store.batch(() => {
        store.insertOutgoing(lost);
        store.insertOutgoing({ ...out(clock), id: kept.id }); // CONSTRAINT: only the inner batch goes
      })), 'CONSTRAINT');
    });
    assert.equal(store.getMessage(kept.id)!.state, 'queued');
    assert.equal(store.getMessage(lost.id), null);
    assert.deepEqual(store.listEvents(kept.id).map((e) => e.state), ['queued']);
  } finally {
    store.close();
  }
});

test('insertOutgoing returns the row as a later read sees it', () => {
  const { store, clock } = fresh();
  try {
    for (const m of [out(clock), out(clock, { state: 'held', stateReason: 'key change', threadId: hex16(), inReplyTo: hex16(), subject: 's', peerOnion: 'x.onion', peerLabel: 'bob', nextAttemptAt: clock.now() + 5 })]) {
      assert.deepEqual(store.insertOutgoing(m), store.getMessage(m.id));
    }
  } finally {
    store.close();
  }
});

test('counts are kept by triggers: inserts, state changes, read flags and deletes', () => {
  const { store, clock } = fresh();
  try {
    const zero = { queued: 0, sending: 0, delivered: 0, expired: 0, failed: 0, held: 0, inbox: 0, unread: 0 };
    assert.deepEqual(store.counts(), zero);
    const i1 = inc(clock);
    const i2 = inc(clock);
    store.commitIncomingBatch([i1, i2]);
    store.commitIncoming(i1); // a duplicate counts nothing
    const o1 = store.insertOutgoing(out(clock));
    const o2 = store.insertOutgoing(out(clock, { state: 'held', stateReason: 'key change' }));
    store.markRead(i1.id);
    store.markRead(i1.id); // already read
    assert.deepEqual(store.counts(), { ...zero, queued: 1, held: 1, inbox: 2, unread: 1 });
    store.transition(o1.id, 'sending', { from: ['queued'] });
    assert.deepEqual(store.counts(), { ...zero, sending: 1, held: 1, inbox: 2, unread: 1 });
    store.markDelivered(o1.id, u8(64), clock.now());
    store.transition(o2.id, 'failed', { from: ['held'], reason: 'superseded' });
    assert.deepEqual(store.counts(), { ...zero, delivered: 1, failed: 1, inbox: 2, unread: 1 });
    assert.equal(store.deleteMessage(i2.id), true);
    assert.equal(store.deleteMessage(o1.id), true);
    store.markRead(i1.id, false);
    assert.deepEqual(store.counts(), { ...zero, failed: 1, inbox: 1, unread: 1 });
  } finally {
    store.close();
  }
});
