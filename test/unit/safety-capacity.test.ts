/**
 * Safety numbers (crypto/safety.ts) and the message capacity the UI and CLI state before sending
 * (crypto/envelope.ts MESSAGE_CAPACITY, messageContentSize).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  MAX_ATTACHMENTS, MESSAGE_CAPACITY, cryptoReady, formatSafetyNumber, generateIdentity, messageContentSize, openMessage,
  safetyNumber, sealMessage,
} from '../../src/crypto/index.js';
import { PADDING_BUCKETS, SEAL_OVERHEAD } from '../../src/limits.js';
import { cryptoCodeOf } from '../fixtures/codes.js';

before(cryptoReady);
const NOW = Date.UTC(2026, 10, 29, 12);

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

test('MESSAGE_CAPACITY: content of exactly that size seals into the top bucket; one byte more is refused', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
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
  const sealed = sealMessage(alice, bob.encryptionKey, { kind: 'mail', recipient: bob.identityKey, subject, body, attachments }, { now: NOW });
  assert.equal(sealed.envelope.length, top + SEAL_OVERHEAD);
  const opened = openMessage(bob, sealed.envelope, { now: NOW, maxSkewMs: 1000 });
  assert.deepEqual(opened.attachments.map((a) => a.data.length), attachments.map((a) => a.data.length));
  attachments[1]!.data = new Uint8Array(attachments[1]!.data.length + 1);
  assert.equal(cryptoCodeOf(() => sealMessage(alice, bob.encryptionKey, { kind: 'mail', recipient: bob.identityKey, subject, body, attachments }, { now: NOW })), 'TOO_LARGE');
  assert.equal(MAX_ATTACHMENTS, 16);
});
