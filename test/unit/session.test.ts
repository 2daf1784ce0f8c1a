import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cryptoReady, verifyDomain } from '../../src/crypto/index.js';
import { ByteWriter, toHex } from '../../src/bytes.js';
import {
  KIND_SESSION, TagIndex, decodeState, decrypt, encodeMessage, encodeState, encrypt, receiptMac, respond, sessionTag,
  verifyReceiptMac, type SessionState,
} from '../../src/session/index.js';
import { encodeHeader, kdfChain, messageKeys, tagFor } from '../../src/session/ratchet.js';
import { pad, paddedLength } from '../../src/session/message.js';
import { aeadSeal } from '../../src/session/primitives.js';
import { Endpoint, NOW, Party, RECV, expectCode, message, seededRandom, sessionCodeOf } from '../fixtures/sessions.js';

before(cryptoReady);

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

function pair(opks = 3) {
  const alice = new Endpoint(new Party('alice', opks));
  const bob = new Endpoint(new Party('bob', opks));
  return { alice, bob };
}

/** Alice and Bob with a confirmed session (INIT received and one reply). */
function established() {
  const { alice, bob } = pair();
  bob.receive(alice.initiate(bob.party, message('init')).envelope);
  alice.receive(bob.send(alice.party, message('reply')).envelope);
  return { alice, bob };
}

test('INIT then SESSION envelopes both ways, with DH ratchet steps, and receipts that verify at the sender', () => {
  const { alice, bob } = pair();
  const m0 = message('hello bob');
  const init = alice.initiate(bob.party, m0);
  assert.equal(init.envelope.length, 4096, 'the smallest INIT is the 4 KiB bucket');
  const r0 = bob.receive(init.envelope);
  assert.ok(verifyReceiptMac(init.receiptKey, m0.id, sha(init.envelope), r0.receipt));
  assert.equal(r0.receipt.length, 16);
  assert.equal(bob.inbox[0]!.body, 'hello bob');
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 2; i++) {
      const m = message(`a${round}.${i}`);
      const s = alice.send(bob.party, m);
      assert.equal(s.envelope.length, 1024, 'a short message is the 1 KiB bucket');
      assert.equal(s.envelope[0], KIND_SESSION);
      const r = bob.receive(s.envelope);
      assert.deepEqual(r.receipt, receiptMac(s.receiptKey, m.id, sha(s.envelope)), 'the sender computes the same receipt');
    }
    const m = message(`b${round}`);
    const s = bob.send(alice.party, m);
    assert.deepEqual(alice.receive(s.envelope).receipt, receiptMac(s.receiptKey, m.id, sha(s.envelope)));
  }
  assert.deepEqual(bob.inbox.map((m) => m.body), ['hello bob', 'a0.0', 'a0.1', 'a1.0', 'a1.1', 'a2.0', 'a2.1']);
  assert.deepEqual(alice.inbox.map((m) => m.body), ['b0', 'b1', 'b2']);
  const sid = [...bob.sessions.keys()][0]!;
  assert.equal(bob.sessions.get(sid)!.recvHighest, 6, 'Bob received counters 0..6 from Alice');
  assert.equal(alice.sessions.get(sid)!.sendCounter, 7);
  assert.equal(alice.sessions.get(sid)!.recvHighest, 2);
});

test('every field of the inner message survives, and a large body takes a larger bucket', () => {
  const { alice, bob } = established();
  const m = message('x'.repeat(5000), {
    kind: 'chat', subject: 'Ünïcode ✓', threadId: new Uint8Array(16).fill(7), inReplyTo: new Uint8Array(16).fill(9),
    attachments: [{ name: 'a.txt', mediaType: 'text/plain', data: Uint8Array.of(1, 2, 3) }],
  });
  const s = alice.send(bob.party, m);
  assert.equal(s.envelope.length, 16384);
  bob.receive(s.envelope);
  assert.deepEqual(bob.inbox.at(-1), m);
});

test('out-of-order, lost and duplicated messages across DH steps: each delivered once, duplicates get the same receipt', () => {
  const { alice, bob } = established();
  const chain1 = [0, 1, 2, 3].map((i) => alice.send(bob.party, message(`c1.${i}`)));
  // Bob hears c1.1 only, replies (new Bob ratchet key); Alice's next chain starts after she hears it.
  bob.receive(chain1[1]!.envelope);
  alice.receive(bob.send(alice.party, message('b')).envelope);
  const chain2 = [0, 1, 2].map((i) => alice.send(bob.party, message(`c2.${i}`)));
  // chain 2 first (in reverse), then the rest of chain 1; c1.2 is lost for good.
  for (const s of [chain2[2]!, chain2[0]!, chain1[3]!, chain2[1]!, chain1[0]!]) bob.receive(s.envelope);
  const before = bob.inbox.length;
  const dup = bob.receive(chain2[0]!.envelope);
  assert.equal(dup.duplicate, true);
  assert.equal(bob.inbox.length, before, 'a duplicate makes no second message');
  assert.deepEqual(dup.receipt, receiptMac(chain2[0]!.receiptKey, bob.inbox.find((m) => m.body === 'c2.0')!.id, sha(chain2[0]!.envelope)));
  assert.deepEqual(bob.inbox.map((m) => m.body).slice(1), ['c1.1', 'c2.2', 'c2.0', 'c1.3', 'c2.1', 'c1.0']);
  const sid = [...bob.sessions.keys()][0]!;
  assert.deepEqual([...bob.skipped.get(sid)!.keys()], [chain1[2]!.k], 'only the lost message keeps a skipped key');
  assert.ok(bob.index.lookup(sessionTag(chain1[2]!.envelope)), 'and its tag is still expected');
  // the lost one turns up late after all
  bob.receive(chain1[2]!.envelope);
  assert.equal(bob.skipped.get(sid)!.size, 0);
});

test('MAX_SKIP: one message may skip at most 1000 keys; the bound is an option', () => {
  const { alice, bob } = established();
  const sid = [...bob.sessions.keys()][0]!;
  const sent = Array.from({ length: 1002 }, (_, i) => alice.send(bob.party, message(`m${i}`)));
  const state = bob.sessions.get(sid)!;
  assert.equal(state.recvHighest, 0);
  const far = sent[1001]!; // skips counters 1..1001: 1001 keys
  expectCode(() => decrypt(state, far.envelope, { k: far.k, ...RECV }), 'TOO_MANY_SKIPPED');
  const edge = sent[1000]!; // skips exactly 1000
  const r = decrypt(state, edge.envelope, { k: edge.k, ...RECV });
  assert.equal(r.skippedAdded.length, 1000);
  assert.deepEqual(r.skippedAdded.map((s) => s.k), Array.from({ length: 1000 }, (_, i) => i + 1));
  assert.ok(r.skippedAdded.every((s) => s.expiresAt === NOW + RECV.maxTtlMs + RECV.maxClockSkewMs));
  const near = sent[5]!;
  expectCode(() => decrypt(state, near.envelope, { k: near.k, ...RECV, maxSkip: 4 }), 'TOO_MANY_SKIPPED');
  assert.equal(decrypt(state, near.envelope, { k: near.k, ...RECV, maxSkip: 5 }).message.body, 'm5');
});

test('tag window: the next W counters and the skipped ones are expected; a tag beyond is unknown; rebuild gives the same map', () => {
  const alice = new Endpoint(new Party('alice'));
  const bob = new Endpoint(new Party('bob'), undefined, 8);
  bob.receive(alice.initiate(bob.party, message('init')).envelope);
  const sid = [...bob.sessions.keys()][0]!;
  const sent = Array.from({ length: 12 }, (_, i) => alice.send(bob.party, message(`m${i}`)));
  assert.deepEqual(sent.map((s) => s.k), Array.from({ length: 12 }, (_, i) => i + 1));
  for (const s of sent.slice(0, 8)) assert.deepEqual(bob.index.lookup(sessionTag(s.envelope)), { sessionId: sid, k: s.k });
  for (const s of sent.slice(8)) assert.equal(bob.index.lookup(sessionTag(s.envelope)), undefined, `k=${s.k} is beyond the window`);
  assert.equal(bob.index.size, 8);
  bob.receive(sent[4]!.envelope); // k = 5: 1..4 skipped, window now 6..13
  assert.equal(bob.index.lookup(sessionTag(sent[4]!.envelope)), undefined, 'a received tag leaves the window');
  for (const s of [...sent.slice(0, 4), ...sent.slice(5)]) assert.ok(bob.index.lookup(sessionTag(s.envelope)), `k=${s.k} expected`);
  assert.equal(bob.index.size, 4 + 8);
  const rebuilt = new TagIndex({ window: 8 });
  rebuilt.add(sid, decodeState(encodeState(bob.sessions.get(sid)!)), bob.skipped.get(sid)!.values());
  for (const s of sent) assert.deepEqual(rebuilt.lookup(sessionTag(s.envelope)), bob.index.lookup(sessionTag(s.envelope)));
  assert.equal(rebuilt.size, bob.index.size);
  rebuilt.drop(sid, 1);
  assert.equal(rebuilt.lookup(sessionTag(sent[0]!.envelope)), undefined);
  rebuilt.remove(sid);
  assert.equal(rebuilt.size, 0);
});

test('a tag is unlinkable without the tag key: tags of consecutive messages share nothing visible', () => {
  const { alice, bob } = established();
  const tags = Array.from({ length: 64 }, (_, i) => sessionTag(alice.send(bob.party, message(`m${i}`)).envelope));
  assert.equal(new Set(tags.map(toHex)).size, 64);
  // each bit position is roughly balanced across the 64 tags (a fixed prefix or counter would not be)
  for (let bit = 0; bit < 128; bit++) {
    const ones = tags.filter((t) => (t[bit >> 3]! >> (7 - (bit & 7))) & 1).length;
    assert.ok(ones > 8 && ones < 56, `bit ${bit} set in ${ones}/64 tags`);
  }
});

test('the session state survives serialization: a restored state decrypts and encrypts identically', () => {
  const { alice, bob } = established();
  const sid = [...bob.sessions.keys()][0]!;
  const s = alice.send(bob.party, message('after restore'));
  const original = bob.sessions.get(sid)!;
  const restored = decodeState(encodeState(original));
  assert.deepEqual(restored, original);
  const r1 = decrypt(original, s.envelope, { k: s.k, ...RECV, random: seededRandom('x') });
  const r2 = decrypt(restored, s.envelope, { k: s.k, ...RECV, random: seededRandom('x') });
  assert.deepEqual(encodeState(r1.state), encodeState(r2.state));
  const m = message('from bob');
  assert.deepEqual(encrypt(r1.state, m, { random: seededRandom('y') }).envelope, encrypt(r2.state, m, { random: seededRandom('y') }).envelope);
  expectCode(() => decodeState(encodeState(original).subarray(1)), 'BAD_STATE');
  const wrongFormat = encodeState(original);
  wrongFormat[0] = 9;
  expectCode(() => decodeState(wrongFormat), 'BAD_STATE');
});

test('failure changes nothing: a tampered envelope leaves the state usable for the genuine one', () => {
  const { alice, bob } = established();
  alice.receive(bob.send(alice.party, message('x')).envelope);
  const s = alice.send(bob.party, message('genuine')); // Alice's new chain: a DH step at Bob
  const sid = [...bob.sessions.keys()][0]!;
  const state = bob.sessions.get(sid)!;
  const before = encodeState(state);
  const t = Uint8Array.from(s.envelope);
  t[500] = t[500]! ^ 1;
  expectCode(() => decrypt(state, t, { k: s.k, ...RECV }), 'DECRYPT_FAILED');
  assert.deepEqual(encodeState(state), before);
  assert.equal(bob.receive(s.envelope).result!.message.body, 'genuine');
});

test('forward secrecy: once the conversation moved on, the receiver\'s whole current state and long-term keys open no captured envelope', () => {
  const { alice, bob } = pair();
  const captured: { envelope: Uint8Array; k: number }[] = [];
  const init = alice.initiate(bob.party, message('init with one-time prekey'));
  bob.receive(init.envelope);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3; i++) {
      const s = alice.send(bob.party, message(`secret ${round}.${i}`));
      captured.push(s);
      bob.receive(s.envelope);
    }
    alice.receive(bob.send(alice.party, message(`ack ${round}`)).envelope);
  }
  // The conversation moves on past the captured messages (two more round trips).
  for (let round = 0; round < 2; round++) {
    bob.receive(alice.send(bob.party, message('later')).envelope);
    alice.receive(bob.send(alice.party, message('later ack')).envelope);
  }
  // The attacker takes everything Bob has now: sessions, skipped keys, identity, all prekeys.
  const sid = [...bob.sessions.keys()][0]!;
  const state = decodeState(encodeState(bob.sessions.get(sid)!));
  const skipped = bob.skipped.get(sid) ?? new Map();
  assert.equal(skipped.size, 0);
  for (const c of captured) {
    for (let k = 0; k <= state.recvHighest + 200; k++) {
      const code = sessionCodeOf(() => decrypt(state, c.envelope, { k, skipped: skipped.get(k) ?? null, ...RECV }));
      assert.ok(['BAD_TAG', 'DECRYPT_FAILED'].includes(code), `captured k=${c.k} tried as k=${k}: ${code}`);
    }
  }
  // The INIT: its one-time prekey is gone, so the current prekeys cannot redo the agreement.
  expectCode(() => respond({ self: bob.party.id, prekeys: bob.party.lookup, envelope: init.envelope, ...RECV }), 'PREKEY_UNKNOWN');
});

test('post-compromise healing: a copy of Bob\'s state reads until one round trip, then nothing', () => {
  const { alice, bob } = established();
  // Alice has just taken a new ratchet key (she received Bob's reply). The attacker copies Bob now.
  const sid = [...bob.sessions.keys()][0]!;
  const stolen = new Endpoint(bob.party);
  stolen.sessions.set(sid, decodeState(encodeState(bob.sessions.get(sid)!)));
  stolen.index.add(sid, stolen.sessions.get(sid)!);
  const m1 = alice.send(bob.party, message('before healing'));
  bob.receive(m1.envelope);
  assert.equal(stolen.receive(m1.envelope).result!.message.body, 'before healing', 'the compromise is real');
  alice.receive(bob.send(alice.party, message('round trip')).envelope); // Bob's fresh ratchet key reaches Alice
  for (let i = 0; i < 3; i++) {
    const m = alice.send(bob.party, message(`after healing ${i}`));
    bob.receive(m.envelope);
    const code = sessionCodeOf(() => stolen.receive(m.envelope));
    assert.equal(code, 'DECRYPT_FAILED', `message ${i} after the round trip is closed to the stolen state`);
  }
  assert.deepEqual(bob.inbox.slice(-3).map((m) => m.body), ['after healing 0', 'after healing 1', 'after healing 2']);
});

test('deniability: the only signature in an INIT is Alice\'s public bundle; no window of any envelope verifies over content', () => {
  const alice = new Endpoint(new Party('alice'));
  const bob = new Endpoint(new Party('bob'));
  const carol = new Endpoint(new Party('carol'));
  const toBob = alice.initiate(bob.party, message('to bob'));
  const toCarol = alice.initiate(carol.party, message('to carol, different words'));
  const rb = respond({ self: bob.party.id, prekeys: bob.party.lookup, envelope: toBob.envelope, ...RECV });
  const rc = respond({ self: carol.party.id, prekeys: carol.party.lookup, envelope: toCarol.envelope, ...RECV });
  assert.deepEqual(rb.peer.bytes, alice.party.bundle.bytes, 'the embedded bundle is the public one, byte for byte');
  assert.deepEqual(rc.peer.bytes, rb.peer.bytes, 'and the same whatever the message and recipient');
  bob.receive(toBob.envelope);
  const s = alice.send(bob.party, message('session content'));
  const inner = encodeMessage(bob.receive(s.envelope).result!.message);
  const ik = alice.party.id.identityKey;
  const texts = [inner, rb.state.id];
  for (const env of [toBob.envelope, s.envelope, inner]) {
    for (let i = 0; i + 64 <= env.length; i++) {
      const sig = env.subarray(i, i + 64);
      for (const text of texts) {
        for (const domain of ['message/v1', 'message/v2', 'receipt/v1', 'session/v2']) {
          assert.ok(!verifyDomain(ik, domain, text, sig), `a signature at offset ${i}`);
        }
      }
    }
  }
});

test('deniability: Bob can forge a message "from Alice" that his own state accepts, so a transcript proves nothing', () => {
  const { bob } = established();
  const sid = [...bob.sessions.keys()][0]!;
  const state: SessionState = bob.sessions.get(sid)!;
  // Bob writes the next message of Alice's current chain with nothing but his own state.
  const forged = message('words Alice never wrote');
  const { messageKey } = kdfChain(state.recvChain!);
  const { aeadKey } = messageKeys(messageKey);
  const k = state.recvHighest + 1;
  const nonce = new Uint8Array(12).fill(5);
  const header = encodeHeader({ dh: state.dhRemote!, pn: 0, n: state.nr });
  const head = new ByteWriter().u8(KIND_SESSION).bytes(tagFor(state.recvTagKey, k)).bytes(nonce)
    .bytes(aeadSeal(state.headerKeyRecv!, nonce, header, new Uint8Array(0))).finish();
  const inner = encodeMessage(forged);
  const body = aeadSeal(aeadKey, nonce, pad(inner, paddedLength(head.length, inner.length)), new ByteWriter().bytes(state.initiatorIdentity).bytes(state.responderIdentity).bytes(head).finish());
  const envelope = new ByteWriter().bytes(head).bytes(body).finish();
  assert.equal(bob.receive(envelope).result!.message.body, 'words Alice never wrote');
});

test('an exhausted one-time prekey pool: agreement without one works, and the INIT says so', () => {
  const bob = new Endpoint(new Party('bob', 1));
  const alice = new Endpoint(new Party('alice'));
  const carol = new Endpoint(new Party('carol'));
  const a = alice.initiate(bob.party, message('with the last one-time prekey'));
  const c = carol.initiate(bob.party, message('with none left'));
  assert.equal(a.envelope[41], 1);
  assert.equal(c.envelope[41], 0);
  assert.deepEqual(c.envelope.subarray(42, 46), new Uint8Array(4));
  bob.receive(a.envelope);
  bob.receive(c.envelope);
  assert.deepEqual(bob.inbox.map((m) => m.body), ['with the last one-time prekey', 'with none left']);
  assert.equal(bob.party.opks.size, 0);
  bob.receive(carol.send(bob.party, message('and on')).envelope);
  carol.receive(bob.send(carol.party, message('back')).envelope);
  assert.equal(carol.inbox[0]!.body, 'back');
});

test('INIT retries are byte-identical and deduplicated before the prekey check; replays after that are refused', () => {
  const { alice, bob } = pair();
  const init = alice.initiate(bob.party, message('once'));
  const first = bob.receive(init.envelope);
  const again = bob.receive(init.envelope);
  assert.equal(again.duplicate, true);
  assert.deepEqual(again.receipt, first.receipt);
  assert.equal(bob.sessions.size, 1);
  // without the seen record (expired), the consumed one-time prekey refuses the replay
  expectCode(() => respond({ self: bob.party.id, prekeys: bob.party.lookup, envelope: init.envelope, ...RECV }), 'PREKEY_UNKNOWN');
});

test('signed prekey rotation: INITs to the old prekey open while it is kept, and are refused once it is gone', () => {
  const bob = new Endpoint(new Party('bob', 0));
  const alice = new Endpoint(new Party('alice'));
  const init = alice.initiate(bob.party, message('to the old prekey'));
  bob.party.rotateSignedPrekey();
  const copy = new Endpoint(bob.party);
  copy.receive(init.envelope);
  assert.equal(copy.inbox[0]!.body, 'to the old prekey');
  bob.party.oldSpks.clear();
  expectCode(() => bob.receive(init.envelope), 'PREKEY_UNKNOWN');
});

test('both parties can start: simultaneous INITs give two sessions that both work', () => {
  const { alice, bob } = pair();
  const ab = alice.initiate(bob.party, message('a first'));
  const ba = bob.initiate(alice.party, message('b first'));
  bob.receive(ab.envelope);
  alice.receive(ba.envelope);
  // each now sends on the newest session it knows (the peer's INIT); both decrypt
  bob.receive(alice.send(bob.party, message('a again')).envelope);
  alice.receive(bob.send(alice.party, message('b again')).envelope);
  assert.deepEqual(bob.inbox.map((m) => m.body), ['a first', 'a again']);
  assert.deepEqual(alice.inbox.map((m) => m.body), ['b first', 'b again']);
});

test('a receiver that lost its session refuses the tag; a sender restored from a backup re-uses a seen tag and is refused too', () => {
  const { alice, bob } = established();
  const amnesiac = new Endpoint(bob.party);
  assert.match(String(sessionCodeOf(() => amnesiac.receive(alice.send(bob.party, message('lost')).envelope))), /BAD_TAG/);
  // Bob backs up, sends, is restored and sends again: the same tag counter with other bytes.
  const sid = [...bob.sessions.keys()][0]!;
  const backup = bob.sessions.get(sid)!;
  alice.receive(bob.send(alice.party, message('before restore')).envelope);
  bob.sessions.set(sid, backup);
  const replay = bob.send(alice.party, message('after restore'));
  assert.throws(() => alice.receive(replay.envelope), /UNKNOWN_SESSION: seen tag with another envelope/);
  // and a fresh agreement (the reset) works
  bob.receive(alice.initiate(bob.party, message('reset')).envelope);
  assert.equal(bob.inbox.at(-1)!.body, 'reset');
});

test('deterministic given the random source: the same inputs give the same INIT and SESSION bytes', () => {
  const run = () => {
    const bob = new Party('bob', 2, seededRandom('bob'));
    const alice = new Party('alice', 2, seededRandom('alice'));
    const a = new Endpoint(alice, seededRandom('a-session'));
    const m = { ...message('same'), id: new Uint8Array(16).fill(1) };
    const init = a.initiate(bob, m);
    const s = a.send(bob, { ...m, id: new Uint8Array(16).fill(2) });
    return [init.envelope, s.envelope, init.receiptKey, s.receiptKey].map(toHex);
  };
  assert.deepEqual(run(), run());
});
