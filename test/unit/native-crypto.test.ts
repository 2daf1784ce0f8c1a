/**
 * Differential tests: the OpenSSL hot path (src/crypto/native.ts) must decide exactly as libsodium
 * does, on honest input and on the edge cases libsodium guards against.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../src/bytes.js';
import { cryptoReady } from '../../src/crypto/index.js';
import { ed25519Sign, ed25519Verify } from '../../src/crypto/native.js';
import { sodium } from '../../src/crypto/sodium.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(join(here, '../../../test/vectors/crypto.json'), 'utf8')) as {
  identities: { seed: string; message: string; signature: string }[];
};

before(cryptoReady);

const rnd = (n: number) => new Uint8Array(randomBytes(n));

// Group order L = 2^252 + 27742317777372353535851937790883648493, and field prime p = 2^255 - 19.
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const leToBig = (b: Uint8Array) => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
const bigToLe = (n: bigint, len: number) => Uint8Array.from({ length: len }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));

// Points of small order (as Ed25519 encodings, sign bit both ways) and non-canonical encodings (y ≥ p).
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].flatMap((h) => {
  const a = fromHex(h);
  const b = Uint8Array.from(a);
  b[31] = b[31]! ^ 0x80;
  return [a, b];
});
const NON_CANONICAL = Array.from({ length: 19 }, (_, i) => bigToLe((1n << 255n) - 19n + BigInt(i), 32));

test('ed25519Sign gives the RFC 8032 vectors and libsodium’s bytes', () => {
  for (const v of vectors.identities) {
    const kp = sodium().crypto_sign_seed_keypair(fromHex(v.seed));
    assert.equal(toHex(ed25519Sign(kp.privateKey, fromHex(v.message))), v.signature);
  }
  for (let i = 0; i < 50; i++) {
    const kp = sodium().crypto_sign_seed_keypair(rnd(32));
    const m = rnd(i * 37);
    assert.deepEqual(ed25519Sign(kp.privateKey, m), sodium().crypto_sign_detached(m, kp.privateKey));
  }
});

test('ed25519Sign never serves a cached key for a key array that changed', () => {
  const key = sodium().crypto_sign_seed_keypair(rnd(32)).privateKey;
  const m = rnd(40);
  const first = ed25519Sign(key, m);
  const other = sodium().crypto_sign_seed_keypair(rnd(32)).privateKey;
  key.set(other);
  assert.deepEqual(ed25519Sign(key, m), sodium().crypto_sign_detached(m, other));
  assert.notDeepEqual(ed25519Sign(key, m), first);
});

test('ed25519Verify decides as libsodium on valid, tampered, malleated, small-order and non-canonical input', () => {
  const libsodium = (pk: Uint8Array, m: Uint8Array, sig: Uint8Array): boolean => {
    try {
      return sodium().crypto_sign_verify_detached(sig, m, pk);
    } catch {
      return false;
    }
  };
  const cases: { what: string; pk: Uint8Array; m: Uint8Array; sig: Uint8Array; expect: boolean }[] = [];
  for (let i = 0; i < 20; i++) {
    const kp = sodium().crypto_sign_seed_keypair(rnd(32));
    const m = rnd(1 + i * 13);
    const sig = sodium().crypto_sign_detached(m, kp.privateKey);
    cases.push({ what: 'valid', pk: kp.publicKey, m, sig, expect: true });
    const flipped = Uint8Array.from(sig);
    flipped[i % 64] = flipped[i % 64]! ^ (1 << (i % 8));
    cases.push({ what: 'flipped signature bit', pk: kp.publicKey, m, sig: flipped, expect: false });
    const malleated = Uint8Array.from(sig);
    malleated.set(bigToLe(leToBig(sig.subarray(32)) + L, 32), 32);
    cases.push({ what: 'S + L', pk: kp.publicKey, m, sig: malleated, expect: false });
    const otherM = Uint8Array.from(m);
    otherM[0] = otherM[0]! ^ 1;
    cases.push({ what: 'other message', pk: kp.publicKey, m: otherM, sig, expect: false });
    for (const p of SMALL_ORDER) {
      cases.push({ what: 'small-order public key', pk: p, m, sig, expect: false });
      const r = Uint8Array.from(sig);
      r.set(p, 0);
      cases.push({ what: 'small-order R', pk: kp.publicKey, m, sig: r, expect: false });
    }
    for (const p of NON_CANONICAL) cases.push({ what: 'non-canonical public key', pk: p, m, sig, expect: false });
    cases.push({ what: 'random public key', pk: rnd(32), m, sig, expect: false });
  }
  // The identity element with S = 0 and R = identity verifies for any message under cofactorless
  // rules; libsodium refuses it through the small-order checks, and so must we.
  const identity = fromHex('0100000000000000000000000000000000000000000000000000000000000000');
  const zeroSig = new Uint8Array(64);
  zeroSig.set(identity, 0);
  cases.push({ what: 'identity key, identity R, S = 0', pk: identity, m: rnd(10), sig: zeroSig, expect: false });

  for (const c of cases) {
    assert.equal(libsodium(c.pk, c.m, c.sig), c.expect, `libsodium on ${c.what}`);
    assert.equal(ed25519Verify(c.pk, c.m, c.sig), c.expect, `ed25519Verify on ${c.what} (${toHex(c.pk)})`);
  }
  assert.equal(ed25519Verify(new Uint8Array(31), new Uint8Array(0), new Uint8Array(64)), false);
  assert.equal(ed25519Verify(new Uint8Array(32), new Uint8Array(0), new Uint8Array(63)), false);
});
