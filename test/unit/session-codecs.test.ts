import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { cryptoReady, generateIdentity } from '../../src/crypto/index.js';
import {
  MAX_BUNDLE_BYTES, MIN_BUNDLE_BYTES, decodeBundle, decodeBundleAnswer, decodeMessage, encodeBundleAnswer, encodeMessage, envelopeKind,
  initiate, isEnvelopeLength, newMessageId, newPqPrekey, newSignedPrekey, receiptMac, signBundle, verifyBundle, verifyReceiptMac,
} from '../../src/session/index.js';
import { NOW, Party, SKEW, expectCode, message } from '../fixtures/sessions.js';

before(cryptoReady);

const MAILBOX = 'pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion';

test('bundle v2: encode, decode, verify; sizes as PROTOCOL.md §3 says', () => {
  const id = generateIdentity();
  const spk = newSignedPrekey(7);
  const pq = newPqPrekey(9);
  const b = signBundle(id, { signedPrekey: spk, pqPrekey: pq, now: NOW, mailboxes: [MAILBOX as never] });
  assert.equal(b.bytes.length, MIN_BUNDLE_BYTES + 63);
  assert.equal(b.bytes[0], 2);
  const d = decodeBundle(b.bytes);
  assert.deepEqual(d, b);
  assert.equal(d.signedPrekeyId, 7);
  assert.equal(d.pqPrekeyId, 9);
  assert.deepEqual(d.mailboxes, [MAILBOX]);
  verifyBundle(d, { now: NOW, maxClockSkewMs: SKEW, expectedIdentity: id.identityKey });
  expectCode(() => verifyBundle(d, { now: NOW, maxClockSkewMs: SKEW, expectedIdentity: generateIdentity().identityKey }), 'BAD_BUNDLE');
  expectCode(() => verifyBundle(d, { now: d.expiresAt, maxClockSkewMs: SKEW }), 'BUNDLE_EXPIRED');
  expectCode(() => verifyBundle(d, { now: NOW - 2 * SKEW, maxClockSkewMs: SKEW }), 'BUNDLE_EXPIRED');
  for (const i of [1, 70, 200, 1290, b.bytes.length - 1]) {
    const t = Uint8Array.from(b.bytes);
    t[i] = t[i]! ^ 1;
    expectCode(() => verifyBundle(decodeBundle(t), { now: NOW, maxClockSkewMs: SKEW }), i >= 1289 && i < 1305 ? 'BAD_BUNDLE' : 'BAD_BUNDLE', `byte ${i}`);
  }
  const full = signBundle(id, { signedPrekey: spk, pqPrekey: pq, now: NOW, mailboxes: Array(8).fill(MAILBOX) });
  assert.equal(full.bytes.length, MAX_BUNDLE_BYTES);
  expectCode(() => signBundle(id, { signedPrekey: spk, pqPrekey: pq, now: NOW, mailboxes: Array(9).fill(MAILBOX) }), 'BAD_BUNDLE');
  expectCode(() => decodeBundle(b.bytes.subarray(0, b.bytes.length - 1)), 'BAD_BUNDLE');
  expectCode(() => decodeBundle(new Uint8Array([...b.bytes, 0])), 'BAD_BUNDLE');
});

test('a version-1 bundle is refused as UNSUPPORTED_VERSION, naming the version', () => {
  // Round 1's layout: version 1, identity key, encryption key, two times, no mailboxes, signature.
  const id = generateIdentity();
  const v1 = Uint8Array.from([1, ...id.identityKey, ...id.encryptionKey, ...new Uint8Array(8 + 8 + 1 + 64)]);
  assert.throws(() => decodeBundle(v1), (err: Error & { code?: string }) => err.code === 'UNSUPPORTED_VERSION' && /version 1 /.test(err.message));
  assert.throws(() => decodeBundleAnswer(v1), (err: Error & { code?: string }) => err.code === 'UNSUPPORTED_VERSION');
});

test('bundle answer: with and without a one-time prekey; malformed answers refused', () => {
  const p = new Party('p', 1);
  const withOne = encodeBundleAnswer(p.answer());
  assert.equal(withOne.length, p.bundle.bytes.length + 1 + 4 + 32);
  const a = decodeBundleAnswer(withOne);
  assert.equal(a.oneTimePrekey!.id, 100);
  assert.deepEqual(a.bundle.bytes, p.bundle.bytes);
  const none = encodeBundleAnswer(p.answer());
  assert.equal(none.length, p.bundle.bytes.length + 1);
  assert.equal(decodeBundleAnswer(none).oneTimePrekey, null);
  expectCode(() => decodeBundleAnswer(withOne.subarray(0, withOne.length - 1)), 'BAD_BUNDLE');
  const two = Uint8Array.from(none);
  two[two.length - 1] = 2;
  expectCode(() => decodeBundleAnswer(two), 'BAD_BUNDLE');
  expectCode(() => decodeBundleAnswer(new Uint8Array([...none, 0])), 'BAD_BUNDLE');
});

test('initiate refuses a peer bundle that does not verify, and a stale bundle of our own', () => {
  const alice = new Party('alice');
  const bob = new Party('bob');
  const forged = { ...bob.answer(), bundle: { ...bob.bundle, signature: new Uint8Array(64) } };
  forged.bundle.bytes = Uint8Array.from(bob.bundle.bytes);
  forged.bundle.bytes[forged.bundle.bytes.length - 1]! ^= 1;
  const base = { self: alice.id, selfBundle: alice.bundle, message: message('x'), now: NOW, maxClockSkewMs: SKEW };
  expectCode(() => initiate({ ...base, peer: forged }), 'BAD_BUNDLE');
  expectCode(() => initiate({ ...base, peer: bob.answer(), expectedPeer: alice.id.identityKey }), 'BAD_BUNDLE');
  expectCode(() => initiate({ ...base, peer: bob.answer(), selfBundle: bob.bundle }), 'BAD_BUNDLE');
  expectCode(() => initiate({ ...base, peer: bob.answer(), now: bob.bundle.expiresAt }), 'BUNDLE_EXPIRED');
});

test('inner message v2: round trip; version, kind, trailing bytes and lengths checked', () => {
  const m = message('body', { attachments: [{ name: 'n', mediaType: 't', data: Uint8Array.of(1) }], threadId: new Uint8Array(16).fill(1) });
  const b = encodeMessage(m);
  assert.equal(b[0], 2);
  assert.deepEqual(decodeMessage(b), m);
  const v1 = Uint8Array.from(b);
  v1[0] = 1;
  expectCode(() => decodeMessage(v1), 'UNSUPPORTED_VERSION');
  const kind = Uint8Array.from(b);
  kind[1] = 9;
  expectCode(() => decodeMessage(kind), 'BAD_MESSAGE');
  expectCode(() => decodeMessage(new Uint8Array([...b, 0])), 'BAD_MESSAGE');
  expectCode(() => decodeMessage(b.subarray(0, b.length - 1)), 'BAD_MESSAGE');
  expectCode(() => encodeMessage({ ...m, subject: 'x'.repeat(999) }), 'TOO_LARGE');
  expectCode(() => encodeMessage({ ...m, id: new Uint8Array(15) }), 'BAD_LENGTH');
});

test('message ids: created_at (6 bytes, big-endian ms) then 10 random bytes; ids of later messages sort after', () => {
  const tail = new Uint8Array(10).fill(0xab);
  const id = newMessageId(0x0193_4a5b_6c7d, () => tail);
  assert.equal(Buffer.from(id).toString('hex'), '01934a5b6c7d' + 'ab'.repeat(10));
  const hex = (t: number) => Buffer.from(newMessageId(t, (n) => new Uint8Array(n).fill(0xff))).toString('hex');
  assert.ok(hex(NOW) < hex(NOW + 1) && hex(NOW + 1) < hex(NOW + 256) && hex(NOW + 256) < hex(NOW + 2 ** 32));
  // Out of range times are clamped, not wrapped.
  assert.equal(hex(-5).slice(0, 12), '000000000000');
  assert.equal(hex(2 ** 50).slice(0, 12), 'ffffffffffff');
  // Ids of the same millisecond differ by their random part.
  assert.notDeepEqual(newMessageId(NOW, (n) => randomBytes(n)), newMessageId(NOW, (n) => randomBytes(n)));
});

test('envelope sizes: only buckets; kinds from the first byte', () => {
  for (const n of [1024, 4096, 16384, 65536, 262144]) assert.ok(isEnvelopeLength(n));
  for (const n of [0, 1023, 1072, 4144]) assert.ok(!isEnvelopeLength(n));
  const e = new Uint8Array(1024);
  e[0] = 0x22;
  assert.equal(envelopeKind(e), 'session');
  e[0] = 0x21;
  assert.equal(envelopeKind(e), 'init');
  e[0] = 0x12;
  expectCode(() => envelopeKind(e), 'UNSUPPORTED_VERSION');
  expectCode(() => envelopeKind(new Uint8Array(1072)), 'UNSUPPORTED_VERSION');
  expectCode(() => envelopeKind(new Uint8Array(1000)), 'BAD_ENVELOPE');
});

test('receipt MAC: 16 bytes, bound to the key, the message id and the envelope hash', () => {
  const key = new Uint8Array(32).fill(1);
  const id = new Uint8Array(16).fill(2);
  const hash = new Uint8Array(createHash('sha256').update('env').digest());
  const mac = receiptMac(key, id, hash);
  assert.equal(mac.length, 16);
  assert.ok(verifyReceiptMac(key, id, hash, mac));
  assert.ok(!verifyReceiptMac(new Uint8Array(32).fill(3), id, hash, mac));
  assert.ok(!verifyReceiptMac(key, new Uint8Array(16), hash, mac));
  assert.ok(!verifyReceiptMac(key, id, new Uint8Array(32), mac));
  assert.ok(!verifyReceiptMac(key, id, hash, mac.subarray(0, 15)));
  expectCode(() => receiptMac(key, id.subarray(1), hash), 'BAD_LENGTH');
});
