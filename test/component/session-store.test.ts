import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import { toHex } from '../../src/bytes.js';
import { decodeState, encodeState, type SessionMessage } from '../../src/session/index.js';
import { StoreError, openStore, type Store } from '../../src/store/index.js';
import { errorCodeOf } from '../fixtures/codes.js';
import { SessionNode } from '../fixtures/session-node.js';

before(cryptoReady);
const root = mkdtempSync(join(tmpdir(), 'onionpost-session-store-'));
after(() => rmSync(root, { recursive: true, force: true }));

const clock = new ManualClock(Date.UTC(2026, 10, 29, 12));
let files = 0;
const path = () => join(root, `n${++files}.db`);
const open = (p: string): Store => openStore({ path: p, logger: silentLogger(), clock });
const storeCode = (fn: () => unknown) => errorCodeOf(StoreError, fn);

let ids = 0;
function msg(body: string): SessionMessage {
  const id = new Uint8Array(16);
  id[0] = 0x5e;
  new DataView(id.buffer).setUint32(12, ++ids);
  return { kind: 'mail', id, createdAt: clock.now(), expiresAt: clock.now() + 3600_000, threadId: null, inReplyTo: null, subject: 's', body, attachments: [] };
}

/** The envelope a message is queued with (what every retry sends). */
function messageEnvelope(store: Store, m: SessionMessage): Uint8Array {
  const e = store.getMessage(toHex(m.id))!.envelope;
  assert.ok(e);
  return e;
}

function deliver(from: SessionNode, to: SessionNode, m: SessionMessage, envelope: Uint8Array) {
  const r = to.receive(m.id, envelope);
  assert.equal(r.kind, 'accepted', r.kind === 'reject' ? `${r.code}: ${r.reason}` : '');
  if (r.kind === 'accepted') assert.ok(from.onReceipt(m.id, r.receipt), 'the receipt verifies at the sender');
  return r;
}

test('two nodes on real SQLite: INIT and SESSION envelopes, out of order and duplicated, restart between, every message delivered once', () => {
  const pathB = path();
  const a = new SessionNode(open(path()), () => clock.now());
  let b = new SessionNode(open(pathB), () => clock.now());
  b.ensurePrekeys(2);
  const sent = [msg('m0'), msg('m1'), msg('m2'), msg('m3'), msg('m4')].map((m) => ({ m, ...a.queue(b.id.identityKey, m, () => b.bundleAnswer()) }));
  assert.deepEqual(sent.map((s) => s.kind), ['init', 'session', 'session', 'session', 'session']);
  assert.equal(b.store.sessions.oneTimePrekeyCounts().handedOut, 1, 'one one-time prekey handed out');
  deliver(a, b, sent[0]!.m, sent[0]!.envelope);
  assert.equal(b.store.sessions.oneTimePrekeyCounts().handedOut, 0, 'and gone once used');
  deliver(a, b, sent[3]!.m, sent[3]!.envelope);
  deliver(a, b, sent[1]!.m, sent[1]!.envelope);
  const dup = b.receive(sent[1]!.m.id, sent[1]!.envelope);
  assert.equal(dup.kind === 'accepted' && dup.duplicate, true, 'a retry is a duplicate with the same receipt');
  // restart B: state, skipped key of m2 and the tag window all come back from the file
  const sid = b.store.sessions.listSessions()[0]!.id;
  assert.deepEqual(b.store.sessions.listSkippedKeys(sid).map((k) => k.k), [2]);
  b.store.close();
  b = new SessionNode(open(pathB), () => clock.now(), b.id);
  deliver(a, b, sent[4]!.m, sent[4]!.envelope);
  deliver(a, b, sent[2]!.m, sent[2]!.envelope);
  assert.deepEqual(b.store.sessions.listSkippedKeys(sid), []);
  for (const s of sent) assert.equal(a.store.getMessage(toHex(s.m.id))!.state, 'delivered');
  assert.equal(b.store.listMessages({ direction: 'in' }).length, 5);
  assert.equal(a.store.sessions.outgoingBySession(sid).length, 0, 'receipt keys are deleted on delivery');
  assert.equal(a.store.sessions.getSession(sid)!.confirmed, true);
  // and the other way, with B's reply starting a DH step
  const reply = msg('reply');
  const q = b.queue(a.id.identityKey, reply);
  assert.equal(q.kind, 'session');
  deliver(b, a, reply, q.envelope);
});

test('the ratchet advances only with its message: a failing transaction leaves state, message and keys as they were', () => {
  const a = new SessionNode(open(path()), () => clock.now());
  const b = new SessionNode(open(path()), () => clock.now());
  b.ensurePrekeys(1);
  const m0 = msg('first');
  deliver(a, b, m0, a.queue(b.id.identityKey, m0, () => b.bundleAnswer()).envelope);
  const sid = a.store.sessions.currentSession(toHex(b.id.identityKey))!.id;
  const before = a.store.sessions.getSession(sid)!.state;
  // a queue whose message insert fails (duplicate id) must not move the ratchet
  assert.equal(storeCode(() => a.queue(b.id.identityKey, { ...msg('again'), id: m0.id })), 'CONSTRAINT');
  assert.deepEqual(a.store.sessions.getSession(sid)!.state, before);
  // nor does a batch that throws after updating the state
  assert.throws(() => a.store.batch(() => {
    a.store.sessions.updateState(sid, encodeState({ ...decodeState(before), sendCounter: 99 }), clock.now());
    throw new Error('crash before commit');
  }), /crash before commit/);
  assert.equal(decodeState(a.store.sessions.getSession(sid)!.state).sendCounter, 1);
  const m1 = msg('next');
  deliver(a, b, m1, a.queue(b.id.identityKey, m1).envelope);
});

test('unknown sessions and reset: a receiver without the session says UNKNOWN_SESSION; a fresh agreement re-encrypts what is queued', () => {
  const a = new SessionNode(open(path()), () => clock.now());
  const b = new SessionNode(open(path()), () => clock.now());
  b.ensurePrekeys(3);
  const m0 = msg('hello');
  deliver(a, b, m0, a.queue(b.id.identityKey, m0, () => b.bundleAnswer()).envelope);
  // B loses its data (a fresh file with the same identity and new prekeys)
  const b2 = new SessionNode(open(path()), () => clock.now(), b.id);
  b2.ensurePrekeys(3);
  const m1 = msg('lost session');
  const q1 = a.queue(b.id.identityKey, m1);
  const r = b2.receive(m1.id, q1.envelope);
  assert.deepEqual(r.kind === 'reject' && r.code, 'UNKNOWN_SESSION');
  // A resets: the message still queued under the old session is encrypted again, as a new INIT
  const old = a.store.sessions.currentSession(toHex(b.id.identityKey))!;
  assert.deepEqual(a.store.sessions.outgoingBySession(old.id), [toHex(m1.id)]);
  assert.equal(a.reset(b.id.identityKey, old.id, () => b2.bundleAnswer()), 1);
  const requeued = a.store.getMessage(toHex(m1.id))!;
  assert.notDeepEqual(requeued.envelopeHash, null);
  const fresh = a.store.sessions.currentSession(toHex(b.id.identityKey))!;
  assert.notEqual(fresh.id, old.id);
  assert.deepEqual(a.store.sessions.outgoingBySession(fresh.id), [toHex(m1.id)]);
  const envelope = a.store.getMessage(toHex(m1.id))!;
  deliver(a, b2, m1, messageEnvelope(a.store, m1));
  assert.equal(envelope.state, 'queued');
  assert.equal(a.store.getMessage(toHex(m1.id))!.state, 'delivered', 'delivered once, under the new session');
  assert.equal(a.store.sessions.listSessions().length, 2, 'the old session stays, receive-only');
  assert.deepEqual(a.store.sessions.idleSessions(toHex(b.id.identityKey)), [old.id]);
});

test('prekeys: one-time prekeys handed out once; signed prekey rotation keeps the old one until pruned; ids only grow', () => {
  const b = new SessionNode(open(path()), () => clock.now());
  b.ensurePrekeys(2);
  const ss = b.store.sessions;
  const x = ss.handOutOneTimePrekey(clock.now());
  const y = ss.handOutOneTimePrekey(clock.now());
  assert.ok(x && y && x.id !== y.id);
  assert.equal(ss.handOutOneTimePrekey(clock.now()), null, 'none left');
  assert.deepEqual(ss.oneTimePrekeyCounts(), { available: 0, handedOut: 2 });
  ss.deleteOneTimePrekey(x.id);
  assert.equal(storeCode(() => ss.addOneTimePrekeys([{ id: x.id, secret: new Uint8Array(32), public: new Uint8Array(32) }], clock.now())), 'CONSTRAINT');
  assert.equal(ss.nextPrekeyId('one-time'), y.id + 1);
  const first = ss.currentSignedPrekey('x25519')!;
  b.rotateSignedPrekey();
  const second = ss.currentSignedPrekey('x25519')!;
  assert.equal(second.id, first.id + 1);
  const kept = ss.getSignedPrekey('x25519', first.id)!;
  assert.equal(kept.retiredAt, clock.now());
  assert.equal(ss.prune(clock.now() + 1000).signedPrekeys, 0, 'kept while mail sealed to it may arrive');
  assert.equal(ss.prune(kept.deleteAfter!).signedPrekeys, 1);
  assert.equal(ss.getSignedPrekey('x25519', first.id), null);
  assert.equal(storeCode(() => ss.addSignedPrekey('x25519', { id: first.id, secret: new Uint8Array(32), public: new Uint8Array(32) }, clock.now(), 1)), 'CONSTRAINT');
});

test('skipped keys: bounded per session (lowest counters dropped) and pruned at expiry with seen envelopes', () => {
  const s = open(path());
  const ss = s.sessions;
  const peer = 'ab'.repeat(32);
  ss.insertSession({ id: '01'.repeat(16), peerIdentity: peer, role: 'responder', state: new Uint8Array(495), confirmed: true, now: 1 });
  const key = (k: number, expiresAt: number) => ({ k, tag: new Uint8Array(16).fill(k), headerKey: new Uint8Array(32), n: k, messageKey: new Uint8Array(32).fill(k), expiresAt });
  assert.deepEqual(ss.putSkippedKeys('01'.repeat(16), [1, 2, 3].map((k) => key(k, 100)), 4), []);
  assert.deepEqual(ss.putSkippedKeys('01'.repeat(16), [4, 5, 6].map((k) => key(k, 200)), 4), [1, 2]);
  assert.deepEqual(ss.listSkippedKeys('01'.repeat(16)).map((k) => k.k), [3, 4, 5, 6]);
  assert.deepEqual(ss.getSkippedKey('01'.repeat(16), 5)!.messageKey, new Uint8Array(32).fill(5));
  ss.recordSeen({ seenKey: new Uint8Array(16).fill(9), sessionId: '01'.repeat(16), messageId: 'cd'.repeat(16), envelopeHash: new Uint8Array(32), receipt: new Uint8Array(16), expiresAt: 150 });
  assert.equal(storeCode(() => ss.recordSeen({ seenKey: new Uint8Array(16).fill(9), sessionId: 'x', messageId: 'y', envelopeHash: new Uint8Array(32), receipt: new Uint8Array(16), expiresAt: 1 })), 'CONSTRAINT');
  const pruned = ss.prune(150);
  assert.deepEqual(pruned.skipped, [{ sessionId: '01'.repeat(16), k: 3 }]);
  assert.equal(pruned.seen, 1);
  assert.equal(pruned.outgoing, 0);
  assert.equal(ss.getSeen(new Uint8Array(16).fill(9)), null);
  // a new current session demotes the old one; deleting it returns its skipped counters
  ss.insertSession({ id: '02'.repeat(16), peerIdentity: peer, role: 'initiator', state: new Uint8Array(495), confirmed: false, now: 2 });
  assert.equal(ss.currentSession(peer)!.id, '02'.repeat(16));
  assert.equal(ss.getSession('01'.repeat(16))!.current, false);
  assert.deepEqual(ss.deleteSession('01'.repeat(16)), [4, 5, 6]);
  assert.deepEqual(ss.listSkippedKeys('01'.repeat(16)), []);
  s.close();
});
