/**
 * The RECEIPTS envelope (0x23) and the identity-key conversions it rests on, against
 * test/vectors/receipts_envelope.json: known answers computed by an independent Python
 * implementation of the text in src/session/receipts-envelope.ts's doc comment and of RFC 7748's
 * birational map (test/vectors/receipts_envelope_vectors.py), not by this code. Every valid vector is
 * reproduced byte for byte by feeding its ephemeral secrets as `random`, and opened back to its
 * receipts; every invalid one is refused with the code the vector gives.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../src/bytes.js';
import { CryptoError, cryptoReady, identityFromSecrets, identityKeyToX25519, identitySecretToX25519, type Identity } from '../../src/crypto/index.js';
import {
  KIND_RECEIPTS, MAX_RECEIPTS_PER_ENVELOPE, RECEIPTS_ENVELOPE_BYTES, SessionError, openReceipts, sealReceipts,
} from '../../src/session/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// Vectors live in the source tree (test/vectors), two levels above dist/test/unit.
const V = JSON.parse(readFileSync(join(here, '../../../test/vectors/receipts_envelope.json'), 'utf8')) as Vectors;

interface IdentityV { name: string; seed: string; identityKey: string; x25519Public: string; x25519Secret: string }
interface SealedV { e: string; E: string; S: string; dh: string; key: string; body: string; ad: string; envelope: string }
interface Vectors {
  constants: { kind: number; envelopeBytes: number; bodyBytes: number; maxReceipts: number; info: string };
  identities: IdentityV[];
  identityKeysWithoutX25519Form: { name: string; identityKey: string; expect: string }[];
  envelopes: { name: string; addressee: number; pairs: { messageId: string; mac: string }[]; random: string[]; envelopes: SealedV[] }[];
  invalid: { name: string; opener: number; envelope: string; expect: string }[];
}

// the X25519 encryption secret plays no part in this envelope
const ENCRYPTION_SECRET = new Uint8Array(32).fill(7);
let ids: Identity[] = [];

before(async () => {
  await cryptoReady();
  ids = V.identities.map((v) => identityFromSecrets(fromHex(v.seed), ENCRYPTION_SECRET));
});

test('the constants are the ones the vectors were made with', () => {
  assert.equal(KIND_RECEIPTS, V.constants.kind);
  assert.equal(RECEIPTS_ENVELOPE_BYTES, V.constants.envelopeBytes);
  assert.equal(MAX_RECEIPTS_PER_ENVELOPE, V.constants.maxReceipts);
});

test('identityKeyToX25519 and identitySecretToX25519 give the known X25519 forms', () => {
  assert.ok(V.identities.length >= 3);
  V.identities.forEach((v, i) => {
    const id = ids[i]!;
    assert.equal(toHex(id.identityKey), v.identityKey, v.name);
    assert.equal(toHex(identityKeyToX25519(fromHex(v.identityKey))), v.x25519Public, v.name);
    assert.equal(toHex(identitySecretToX25519(id)), v.x25519Secret, v.name);
  });
});

test('an identity key with no X25519 form is refused', () => {
  assert.ok(V.identityKeysWithoutX25519Form.length > 0);
  for (const v of V.identityKeysWithoutX25519Form) {
    assert.throws(() => identityKeyToX25519(fromHex(v.identityKey)), (err: unknown) => err instanceof CryptoError && err.code === v.expect, v.name);
  }
});

test('sealReceipts reproduces every envelope byte for byte, and openReceipts gives the receipts back', () => {
  assert.deepEqual(V.envelopes.map((v) => v.pairs.length), [1, 30, 31]);
  for (const v of V.envelopes) {
    const to = ids[v.addressee]!;
    const pairs = v.pairs.map((p) => ({ messageId: fromHex(p.messageId), mac: fromHex(p.mac) }));
    let draw = 0;
    const random = (n: number): Uint8Array => {
      assert.equal(n, 32, `${v.name}: an ephemeral secret is 32 bytes`);
      const b = v.random[draw++];
      assert.ok(b !== undefined, `${v.name}: more draws than the vector has`);
      return fromHex(b);
    };
    const sealed = sealReceipts(to.identityKey, pairs, random);
    assert.equal(draw, v.random.length, `${v.name}: draws`);
    assert.deepEqual(sealed.map(toHex), v.envelopes.map((s) => s.envelope), v.name);
    const opened = sealed.flatMap((env) => openReceipts(to, env));
    assert.deepEqual(opened.map((p) => [toHex(p.messageId), toHex(p.mac)]), v.pairs.map((p) => [p.messageId, p.mac]), v.name);
  }
});

test('openReceipts refuses every invalid envelope with its code', () => {
  assert.ok(V.invalid.length > 0);
  const seen = new Set<string>();
  for (const v of V.invalid) {
    seen.add(v.expect);
    assert.throws(() => openReceipts(ids[v.opener]!, fromHex(v.envelope)), (err: unknown) => {
      assert.ok(err instanceof SessionError, `${v.name}: ${String(err)}`);
      assert.equal(err.code, v.expect, v.name);
      return true;
    }, v.name);
  }
  assert.deepEqual([...seen].sort(), ['BAD_ENVELOPE', 'BAD_MESSAGE', 'DECRYPT_FAILED']);
});
