/**
 * The rotation statement (PROTOCOL.md §15) against test/vectors/rotation.json: known answers from
 * an independent Python implementation of the text (test/vectors/rotation_vectors.py), not from
 * this code. The valid statement is made byte for byte by signRotation (Ed25519 is deterministic),
 * decodes, verifies against the old key, and round-trips through the registry metadata's `r=`
 * part; every invalid one is refused with BAD_ROTATION, by the decoder or by the check against the
 * pinned key.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../src/bytes.js';
import { CryptoError, cryptoReady, decodeRotation, encodeRotation, identityFromSecrets, signRotation, verifyRotation } from '../../src/crypto/index.js';
import { decodeMetadata, encodeMetadata } from '../../src/registry/index.js';

const here = dirname(fileURLToPath(import.meta.url));
// Vectors live in the source tree (test/vectors), two levels above dist/test/unit.
const V = JSON.parse(readFileSync(join(here, '../../../test/vectors/rotation.json'), 'utf8')) as {
  valid: {
    oldSeed: string; oldIdentityKey: string; newSeed: string; newIdentityKey: string; newEncryptionSecret: string; newEncryptionKey: string;
    createdAt: number; body: string; statement: string; metadata: string;
  }[];
  invalid: { name: string; statement: string; pinned: string; failsOn: string; expect: string }[];
};

before(() => cryptoReady());

test('rotation vectors: signRotation makes the statement byte for byte; it verifies and rides in the metadata', () => {
  assert.ok(V.valid.length > 0);
  for (const v of V.valid) {
    // The old identity's encryption secret plays no part in the statement.
    const oldId = identityFromSecrets(fromHex(v.oldSeed), new Uint8Array(32).fill(9));
    const newId = identityFromSecrets(fromHex(v.newSeed), fromHex(v.newEncryptionSecret));
    assert.equal(toHex(oldId.identityKey), v.oldIdentityKey);
    assert.equal(toHex(newId.encryptionKey), v.newEncryptionKey);
    const made = encodeRotation(signRotation(oldId, newId, v.createdAt));
    assert.equal(toHex(made), v.statement);
    const r = decodeRotation(fromHex(v.statement));
    assert.deepEqual([toHex(r.oldIdentity), toHex(r.newIdentity), toHex(r.newEncryptionKey), r.createdAt], [v.oldIdentityKey, v.newIdentityKey, v.newEncryptionKey, v.createdAt]);
    verifyRotation(r, fromHex(v.oldIdentityKey));
    assert.equal(encodeMetadata({ mailboxes: [], rotation: r }), v.metadata);
    assert.equal(toHex(encodeRotation(decodeMetadata(v.metadata).rotation!)), v.statement);
  }
});

test('rotation vectors: every invalid statement is refused with BAD_ROTATION', () => {
  assert.ok(V.invalid.length >= 5);
  for (const v of V.invalid) {
    assert.throws(() => verifyRotation(decodeRotation(fromHex(v.statement)), fromHex(v.pinned)), (err: unknown) => {
      assert.ok(err instanceof CryptoError, v.name);
      assert.equal(err.code, v.expect, v.name);
      return true;
    }, v.name);
  }
});
