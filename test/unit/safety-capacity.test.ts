/**
 * Safety numbers (crypto/safety.ts) and the message capacity the node checks before queueing
 * (session/message.ts MESSAGE_CAPACITY, messageContentSize).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cryptoReady, formatSafetyNumber, generateIdentity, safetyNumber } from '../../src/crypto/index.js';
import { PADDING_BUCKETS } from '../../src/limits.js';
import {
  MAX_ATTACHMENTS, MAX_MAILBOXES, MESSAGE_CAPACITY, decrypt, encrypt, initiate, messageContentSize, respond, signBundle, type SessionMessage,
} from '../../src/session/index.js';
import { cryptoCodeOf } from '../fixtures/codes.js';
import { NOW as SNOW, Party, RECV, SKEW, expectCode, message } from '../fixtures/sessions.js';

before(cryptoReady);

/** The construction written out independently of safety.ts, from its doc comment. */
function reference(a: Uint8Array, b: Uint8Array): string {
  const half = (key: Uint8Array) => {
    let h = Buffer.concat([Buffer.from('onionpost safety number v1'), key]);
    for (let i = 0; i < 5200; i++) h = createHash('sha512').update(h).update(key).digest();
    let s = '';
    for (let i = 0; i < 30; i += 5) s += (Number(h.readUIntBE(i, 5)) % 100000).toString().padStart(5, '0');
    return s;
  };
  return [half(a), half(b)].sort().join('');
}

test('safety number: 60 digits, the same on both sides, changes with either key', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const carol = generateIdentity();
  const ab = safetyNumber(alice.identityKey, bob.identityKey);
  assert.match(ab, /^\d{60}$/);
  assert.equal(safetyNumber(bob.identityKey, alice.identityKey), ab, 'both sides compute the same number');
  assert.equal(ab, reference(alice.identityKey, bob.identityKey));
  assert.notEqual(safetyNumber(alice.identityKey, carol.identityKey), ab);
  assert.notEqual(safetyNumber(carol.identityKey, bob.identityKey), ab);
  assert.match(formatSafetyNumber(ab), /^(\d{5} ){11}\d{5}$/);
  assert.equal(cryptoCodeOf(() => safetyNumber(new Uint8Array(31), bob.identityKey)), 'BAD_LENGTH');
  // A fixed vector, so that a change of the construction is noticed (both sides must agree).
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  assert.equal(safetyNumber(k1, k2), reference(k1, k2));
});

test('MESSAGE_CAPACITY: content of exactly that size fills the top bucket as the longest INIT; one byte more does not fit there', () => {
  const alice = new Party('alice');
  const bob = new Party('bob');
  const top = PADDING_BUCKETS[PADDING_BUCKETS.length - 1]!;
  const subject = 'Files';
  const body = 'Here they are. ✓';
  const names = ['a.pdf', 'b.png'];
  const fixed = messageContentSize({ subject, body, attachments: names.map((name) => ({ name, mediaType: 'application/pdf', data: new Uint8Array(0) })) });
  const room = MESSAGE_CAPACITY - fixed;
  const attachments = [
    { name: names[0]!, mediaType: 'application/pdf', data: new Uint8Array(Math.floor(room / 2)).fill(7) },
    { name: names[1]!, mediaType: 'application/pdf', data: new Uint8Array(room - Math.floor(room / 2)).fill(9) },
  ];
  assert.equal(messageContentSize({ subject, body, attachments }), MESSAGE_CAPACITY);
  // The longest INIT: Alice's embedded bundle lists the most mailboxes a bundle may.
  const mailboxes = Array.from({ length: MAX_MAILBOXES }, () => generateIdentity().onion);
  const selfBundle = signBundle(alice.id, { signedPrekey: alice.spk, pqPrekey: alice.pq, now: SNOW - 1000, mailboxes });
  const m: SessionMessage = { ...message('unused'), subject, body, attachments };
  const init = initiate({ self: alice.id, selfBundle, peer: bob.answer(), message: m, now: SNOW, maxClockSkewMs: SKEW });
  assert.equal(init.envelope.length, top, 'exactly the top bucket');
  const opened = respond({ self: bob.id, prekeys: bob.lookup, envelope: init.envelope, ...RECV });
  assert.deepEqual(opened.message.attachments.map((a) => a.data.length), attachments.map((a) => a.data.length));
  // As a SESSION envelope it fits too (with room to spare: the capacity is what fits everywhere).
  const e = encrypt(init.state, { ...m, id: message('x').id });
  assert.equal(e.envelope.length, top);
  assert.equal(decrypt(opened.state, e.envelope, { k: e.k, ...RECV }).message.body, body);
  const over = { ...m, attachments: [attachments[0]!, { ...attachments[1]!, data: new Uint8Array(attachments[1]!.data.length + 1) }] };
  expectCode(() => initiate({ self: alice.id, selfBundle, peer: bob.answer(), message: over, now: SNOW, maxClockSkewMs: SKEW }), 'TOO_LARGE');
  assert.equal(MAX_ATTACHMENTS, 16);
});
