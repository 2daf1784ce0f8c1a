import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  cryptoReady, envelopeHash, generateIdentity, isEnvelopeSize, openMessage, pad, sealMessage, signReceipt, unpad,
  verifyReceipt, type Identity,
} from '../../src/crypto/index.js';
import { sodium } from '../../src/crypto/sodium.js';
import { PADDING_BUCKETS, SEAL_OVERHEAD } from '../../src/limits.js';
import { toHex } from '../../src/bytes.js';
import { cryptoCodeOf } from '../fixtures/codes.js';

before(cryptoReady);
const NOW = Date.UTC(2026, 10, 22, 12);
const SKEW = 24 * 3600 * 1000;

const codeOf = cryptoCodeOf;

function mail(to: Identity, body = 'hello bob') {
  return { kind: 'mail' as const, recipient: to.identityKey, subject: 'hi', body };
}

test('seal/open round trip carries every field, and the sender onion is derived', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const threadId = new Uint8Array(16).fill(3);
  const sealed = sealMessage(alice, bob.encryptionKey, {
    kind: 'chat', recipient: bob.identityKey, subject: 'Ünïcode ✓', body: 'x'.repeat(5000), threadId,
    attachments: [{ name: 'a.txt', mediaType: 'text/plain', data: new Uint8Array([1, 2, 3]) }], ttlMs: 60_000,
  }, { now: NOW });
  assert.equal(sealed.envelope.length, 16384 + SEAL_OVERHEAD, '5 KB body pads to the 16 KiB bucket');
  const m = openMessage(bob, sealed.envelope, { now: NOW, maxSkewMs: SKEW });
  assert.equal(m.kind, 'chat');
  assert.equal(m.subject, 'Ünïcode ✓');
  assert.equal(m.body.length, 5000);
  assert.equal(toHex(m.id), toHex(sealed.id));
  assert.equal(m.senderOnion, alice.onion);
  assert.deepEqual(m.threadId, threadId);
  assert.equal(m.inReplyTo, null);
  assert.equal(m.expiresAt, NOW + 60_000);
  assert.deepEqual(m.attachments[0]!.data, new Uint8Array([1, 2, 3]));
  assert.deepEqual(envelopeHash(sealed.envelope), sealed.envelopeHash);
});

test('flipping any byte of a sealed envelope is rejected with a typed error', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const { envelope } = sealMessage(alice, bob.encryptionKey, mail(bob), { now: NOW });
  assert.equal(envelope.length, 1024 + SEAL_OVERHEAD);
  const codes = new Map<string, number>();
  for (let i = 0; i < envelope.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const t = Uint8Array.from(envelope);
      t[i] = t[i]! ^ mask;
      const code = codeOf(() => openMessage(bob, t, { now: NOW, maxSkewMs: SKEW }));
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  }
  assert.deepEqual([...codes.keys()], ['DECRYPT_FAILED'], 'every tampered byte fails authentication');
  assert.equal(codes.get('DECRYPT_FAILED'), envelope.length * 2);
  assert.equal(codeOf(() => openMessage(bob, envelope.subarray(1), { now: NOW, maxSkewMs: SKEW })), 'ENVELOPE_SIZE');
  assert.equal(codeOf(() => openMessage(bob, new Uint8Array(0), { now: NOW, maxSkewMs: SKEW })), 'ENVELOPE_SIZE');
});

test('opening rejects: not for us, wrong recipient, bad signature, clock skew, expired, bad padding', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const carol = generateIdentity();
  const opts = { now: NOW, maxSkewMs: SKEW };
  // sealed to carol's key: bob cannot open it
  assert.equal(codeOf(() => openMessage(bob, sealMessage(alice, carol.encryptionKey, mail(carol), { now: NOW }).envelope, opts)), 'DECRYPT_FAILED');
  // sealed to bob's key but addressed to carol: a relayed message someone re-sealed
  assert.equal(codeOf(() => openMessage(bob, sealMessage(alice, bob.encryptionKey, mail(carol), { now: NOW }).envelope, opts)), 'WRONG_RECIPIENT');
  // claims alice as sender, signed by mallory
  const mallory = generateIdentity();
  const forger = { ...alice, signingKey: mallory.signingKey };
  assert.equal(codeOf(() => openMessage(bob, sealMessage(forger, bob.encryptionKey, mail(bob), { now: NOW }).envelope, opts)), 'BAD_SIGNATURE');
  // created two days in the future
  assert.equal(codeOf(() => openMessage(bob, sealMessage(alice, bob.encryptionKey, mail(bob), { now: NOW + 2 * SKEW }).envelope, opts)), 'CLOCK_SKEW');
  // expired
  const short = sealMessage(alice, bob.encryptionKey, { ...mail(bob), ttlMs: 1000 }, { now: NOW });
  assert.equal(codeOf(() => openMessage(bob, short.envelope, { now: NOW + 1000, maxSkewMs: SKEW })), 'EXPIRED');
  // well-sealed but with non-zero filler, or a length prefix past the bucket
  const badFiller = new Uint8Array(1024);
  badFiller[1023] = 1;
  assert.equal(codeOf(() => openMessage(bob, sodium().crypto_box_seal(badFiller, bob.encryptionKey), opts)), 'BAD_PADDING');
  const badLength = new Uint8Array(1024);
  new DataView(badLength.buffer).setUint32(0, 5000);
  assert.equal(codeOf(() => openMessage(bob, sodium().crypto_box_seal(badLength, bob.encryptionKey), opts)), 'BAD_PADDING');
  // padding fine, content garbage
  const garbage = pad(new Uint8Array([1, 9, 9, 9]));
  assert.equal(codeOf(() => openMessage(bob, sodium().crypto_box_seal(garbage, bob.encryptionKey), opts)), 'BAD_MESSAGE');
  const future = pad(new Uint8Array([2]));
  assert.equal(codeOf(() => openMessage(bob, sodium().crypto_box_seal(future, bob.encryptionKey), opts)), 'UNSUPPORTED_VERSION');
});

test('a message larger than the top bucket is refused before sealing', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const max = PADDING_BUCKETS[PADDING_BUCKETS.length - 1]!;
  assert.equal(codeOf(() => sealMessage(alice, bob.encryptionKey, mail(bob, 'x'.repeat(max)), { now: NOW })), 'TOO_LARGE');
});

test('pad/unpad round-trips exhaustively up to 16 KiB and at every bucket edge', () => {
  for (let n = 0; n <= 16384 - 4; n++) {
    const data = new Uint8Array(n).fill(0xab);
    const p = pad(data);
    assert.ok((PADDING_BUCKETS as readonly number[]).includes(p.length));
    assert.ok(p.length >= n + 4);
    assert.deepEqual(unpad(p), data);
  }
  for (const b of PADDING_BUCKETS) {
    for (const n of [b - 5, b - 4, b - 3]) {
      if (n < 0) continue;
      const p = (() => { try { return pad(new Uint8Array(n)); } catch { return null; } })();
      if (n + 4 <= PADDING_BUCKETS[PADDING_BUCKETS.length - 1]!) assert.ok(p && p.length === PADDING_BUCKETS.find((x) => x >= n + 4), `length ${n}`);
      else assert.equal(p, null, `length ${n} must be refused`);
    }
  }
});

test('property: pad/unpad round-trips for any content and length; unpad rejects any other size', () => {
  const max = PADDING_BUCKETS[PADDING_BUCKETS.length - 1]! - 4;
  fc.assert(
    fc.property(fc.integer({ min: 0, max }), fc.integer({ min: 0, max: 255 }), (n, fill) => {
      const data = new Uint8Array(n).fill(fill);
      assert.deepEqual(unpad(pad(data)), data);
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: max + 10 }), (n) => {
      if ((PADDING_BUCKETS as readonly number[]).includes(n)) return;
      assert.equal(codeOf(() => unpad(new Uint8Array(n))), 'BAD_PADDING');
      assert.equal(isEnvelopeSize(n + SEAL_OVERHEAD), false);
    }),
    { numRuns: 300 },
  );
});

test('receipts are deterministic and bound to the recipient, the id and the envelope', () => {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const s = sealMessage(alice, bob.encryptionKey, mail(bob), { now: NOW });
  const r1 = signReceipt(bob, s.id, s.envelopeHash);
  const r2 = signReceipt(bob, s.id, s.envelopeHash);
  assert.deepEqual(r1, r2);
  verifyReceipt(bob.identityKey, s.id, s.envelopeHash, r1);
  assert.equal(codeOf(() => verifyReceipt(alice.identityKey, s.id, s.envelopeHash, r1)), 'BAD_RECEIPT');
  assert.equal(codeOf(() => verifyReceipt(bob.identityKey, new Uint8Array(16), s.envelopeHash, r1)), 'BAD_RECEIPT');
  assert.equal(codeOf(() => verifyReceipt(bob.identityKey, s.id, new Uint8Array(32), r1)), 'BAD_RECEIPT');
});
