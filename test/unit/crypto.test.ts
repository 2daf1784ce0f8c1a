import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cryptoReady, decodeRotation, encodeRotation, generateIdentity, identityFromSecrets,
  onionAddress, onionKeyBlob, parseOnionAddress, signDomain, signRegistryRecord, signRotation,
  verifyRegistryRecord, verifyRotation, type IdentityKey, type OnionAddress,
} from '../../src/crypto/index.js';
import { fromHex, toHex } from '../../src/bytes.js';
import { sodium } from '../../src/crypto/sodium.js';
import { cryptoCodeOf } from '../fixtures/codes.js';

const here = dirname(fileURLToPath(import.meta.url));
// Vectors live in the source tree (test/vectors), two levels above dist/test/unit.
const vectors = JSON.parse(readFileSync(join(here, '../../../test/vectors/crypto.json'), 'utf8')) as {
  identities: { seed: string; identityKey: string; onion: string; torKeyBlob: string; message: string; signature: string }[];
  invalidOnions: { input: string; why: string }[];
};

before(cryptoReady);

const codeOf = cryptoCodeOf;

test('identity vectors: seed -> identity key, onion address, Tor key blob, RFC 8032 signature', () => {
  for (const v of vectors.identities) {
    const id = identityFromSecrets(fromHex(v.seed), new Uint8Array(32).fill(7));
    assert.equal(toHex(id.identityKey), v.identityKey);
    assert.equal(id.onion, v.onion);
    assert.equal(onionAddress(fromHex(v.identityKey)), v.onion);
    assert.equal(onionKeyBlob(fromHex(v.seed)), v.torKeyBlob);
    const parsed = parseOnionAddress(v.onion.toUpperCase());
    assert.equal(parsed.onion, v.onion);
    assert.equal(toHex(parsed.identityKey), v.identityKey);
    assert.equal(parseOnionAddress(v.onion.replace('.onion', '')).onion, v.onion);
  }
  // RFC 8032 signatures are over the raw message: libsodium must reproduce them, and our
  // domain-separated signatures must never equal a raw one.
  for (const v of vectors.identities) {
    const id = identityFromSecrets(fromHex(v.seed), new Uint8Array(32).fill(7));
    assert.equal(toHex(sodium().crypto_sign_detached(fromHex(v.message), id.signingKey)), v.signature);
    assert.notEqual(toHex(signDomain(id.signingKey, 'x', fromHex(v.message))), v.signature);
  }
});

test('invalid onion addresses are rejected with BAD_ONION_ADDRESS', () => {
  for (const v of vectors.invalidOnions) {
    assert.equal(codeOf(() => parseOnionAddress(v.input)), 'BAD_ONION_ADDRESS', v.why);
  }
});

test('rotation statement: verifies against the pinned key only, and needs both signatures', () => {
  const oldId = generateIdentity();
  const newId = generateIdentity();
  const r = decodeRotation(encodeRotation(signRotation(oldId, newId, 1000)));
  verifyRotation(r, oldId.identityKey);
  assert.equal(codeOf(() => verifyRotation(r, newId.identityKey)), 'BAD_ROTATION');
  const forged = { ...r, oldSignature: signDomain(generateIdentity().signingKey, 'rotation/v1', new Uint8Array(1)) };
  assert.equal(codeOf(() => verifyRotation(forged, oldId.identityKey)), 'BAD_ROTATION');
  const unaccepted = { ...r, newSignature: new Uint8Array(64) };
  assert.equal(codeOf(() => verifyRotation(unaccepted, oldId.identityKey)), 'BAD_ROTATION');
});

test('registry record signature binds name, owner, keys, version, chain and contract', () => {
  const id = generateIdentity();
  const owner = Uint8Array.from([0x41, ...new Uint8Array(20).fill(1)]);
  const contract = Uint8Array.from([0x41, ...new Uint8Array(20).fill(2)]);
  const fields = { name: 'alice', owner, mailboxes: '', version: 1, chainId: 0xcafen, contract };
  const sig = signRegistryRecord(id, fields);
  const full = { ...fields, identityKey: id.identityKey, encryptionKey: id.encryptionKey };
  verifyRegistryRecord(full, sig);
  const changes: Partial<typeof full>[] = [
    { name: 'alicf' },
    { owner: Uint8Array.from([0x41, ...new Uint8Array(20).fill(9)]) },
    { version: 2 },
    { chainId: 1n },
    { contract: owner },
    { mailboxes: 'x' },
    { encryptionKey: generateIdentity().encryptionKey },
    { identityKey: generateIdentity().identityKey as IdentityKey },
  ];
  for (const c of changes) assert.equal(codeOf(() => verifyRegistryRecord({ ...full, ...c }, sig)), 'BAD_RECORD', JSON.stringify(Object.keys(c)));
});

test('identities are independent: a fresh identity has distinct signing and encryption keys', () => {
  const a = generateIdentity();
  assert.notEqual(toHex(a.identityKey), toHex(a.encryptionKey));
  assert.equal(a.onion, onionAddress(a.identityKey) as OnionAddress);
});
