/**
 * Bundles kept at mailbox providers (PROTOCOL.md §14.8) against test/vectors/first_contact.json:
 * known answers from an independent Python implementation of that section
 * (test/vectors/first_contact_vectors.py), not from this code. Every valid frame is encoded byte for
 * byte and decoded back to its fields (and refused by the other direction's decoder); every invalid
 * frame is refused MALFORMED; every PUT_BUNDLE statement body and signature is reproduced exactly
 * (Ed25519 is deterministic), verifies, and stops verifying for another provider.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../src/bytes.js';
import { cryptoReady, identityFromSecrets } from '../../src/crypto/index.js';
import {
  ProviderError, decodeMailboxAnswer, decodeMailboxFrame, decodeMailboxRequest, encodeMailboxFrame, type BundlePrekey, type MailboxFrame,
} from '../../src/provider/index.js';
import { DOMAINS, putBundleBody, sign, verify } from '../../src/provider/statements.js';

const here = dirname(fileURLToPath(import.meta.url));
// Vectors live in the source tree (test/vectors), two levels above dist/test/unit.
const V = JSON.parse(readFileSync(join(here, '../../../test/vectors/first_contact.json'), 'utf8')) as Vectors;

interface PrekeyV { id: number; public: string }
interface Vectors {
  parties: Record<'provider' | 'bob', { identitySeed: string; identityKey: string }>;
  statements: { name: string; domain: string; provider: string; subscriber: string; time: number; replace: boolean; bundleSha256: string; prekeys: PrekeyV[]; body: string; signature: string }[];
  frames: { name: string; direction: 'request' | 'answer'; type: MailboxFrame['type']; fields: Record<string, unknown>; frame: string }[];
  invalidFrames: { name: string; bytes: string; expect: 'MALFORMED' }[];
}

const MAX = 262_144;
const h = fromHex;
const prekeysOf = (l: PrekeyV[]): BundlePrekey[] => l.map((k) => ({ id: k.id, public: h(k.public) }));

/** A vector's fields as the codec's frame. */
function frameOf(v: Vectors['frames'][number]): MailboxFrame {
  const f = v.fields;
  const b = (k: string) => h(f[k] as string);
  switch (v.type) {
    case 'PUT_BUNDLE':
      return { type: v.type, id: f['id'] as number, identity: b('identity'), time: f['time'] as number, replace: f['replace'] as boolean, bundle: b('bundle'), prekeys: prekeysOf(f['prekeys'] as PrekeyV[]), sig: b('sig') };
    case 'GET_BUNDLE':
      return { type: v.type, id: f['id'] as number, identity: b('identity') };
    case 'BUNDLE_KEPT':
      return { type: v.type, id: f['id'] as number, prekeys: f['prekeys'] as number };
    case 'BUNDLE': {
      const k = f['prekey'] as PrekeyV | null;
      return { type: v.type, id: f['id'] as number, bundle: b('bundle'), prekey: k ? { id: k.id, public: h(k.public) } : null };
    }
    default:
      throw new Error(`no frame type ${v.type} in first_contact.json`);
  }
}

before(() => cryptoReady());

test('vectors: every PUT_BUNDLE, GET_BUNDLE, BUNDLE_KEPT and BUNDLE frame, byte for byte, both ways', () => {
  assert.deepEqual(new Set(V.frames.map((f) => f.type)), new Set(['PUT_BUNDLE', 'GET_BUNDLE', 'BUNDLE_KEPT', 'BUNDLE']));
  for (const v of V.frames) {
    const f = frameOf(v);
    assert.equal(toHex(encodeMailboxFrame(f, MAX)), v.frame, `${v.name}: encoded`);
    assert.deepEqual(decodeMailboxFrame(h(v.frame), MAX), f, `${v.name}: decoded`);
    const mine = v.direction === 'request' ? decodeMailboxRequest : decodeMailboxAnswer;
    const other = v.direction === 'request' ? decodeMailboxAnswer : decodeMailboxRequest;
    assert.deepEqual(mine(h(v.frame), MAX), f);
    assert.throws(() => other(h(v.frame), MAX), (e: unknown) => e instanceof ProviderError && e.code === 'MALFORMED', `${v.name}: other direction`);
  }
});

test('vectors: invalid frames are refused with their code', () => {
  assert.ok(V.invalidFrames.length >= 10);
  for (const v of V.invalidFrames) {
    assert.throws(() => decodeMailboxFrame(h(v.bytes), MAX), (e: unknown) => e instanceof ProviderError && e.code === v.expect, v.name);
  }
});

test('vectors: mailbox-put-bundle/v1 bodies and signatures, reproduced; they verify for this provider only', () => {
  assert.equal(DOMAINS.putBundle, 'mailbox-put-bundle/v1');
  const bob = identityFromSecrets(h(V.parties.bob.identitySeed), createHash('sha256').update('encryption/bob').digest());
  assert.equal(toHex(bob.identityKey), V.parties.bob.identityKey);
  const frames = V.frames.filter((f) => f.type === 'PUT_BUNDLE');
  assert.equal(V.statements.length, frames.length);
  for (const [i, s] of V.statements.entries()) {
    assert.equal(s.domain, DOMAINS.putBundle);
    const bundle = h(frames[i]!.fields['bundle'] as string);
    assert.equal(toHex(createHash('sha256').update(bundle).digest()), s.bundleSha256);
    const body = putBundleBody(h(s.provider), h(s.subscriber), s.time, s.replace, bundle, prekeysOf(s.prekeys));
    assert.equal(toHex(body), s.body, `${s.name}: body`);
    assert.equal(toHex(sign(bob, DOMAINS.putBundle, body)), s.signature, `${s.name}: signature`);
    assert.ok(verify(bob.identityKey, DOMAINS.putBundle, body, h(s.signature)));
    assert.equal(frames[i]!.fields['sig'], s.signature, 'the frame carries that signature');
    const elsewhere = putBundleBody(h(V.parties.bob.identityKey), h(s.subscriber), s.time, s.replace, bundle, prekeysOf(s.prekeys));
    assert.ok(!verify(bob.identityKey, DOMAINS.putBundle, elsewhere, h(s.signature)), 'replayed at another provider');
  }
});
