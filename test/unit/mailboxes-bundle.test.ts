/**
 * The pure part of the user's mailbox providers (src/node/mailboxes.ts): a BUNDLE answer re-signed
 * with our providers listed, the same keys and one-time prekey; and the CLI's terms in words.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoReady, generateIdentity } from '../../src/crypto/index.js';
import { bundleWithMailboxes } from '../../src/node/mailboxes.js';
import { decodeBundleAnswer, encodeBundleAnswer, newPqPrekey, newSignedPrekey, signBundle, verifyBundle } from '../../src/session/index.js';
import { termsWords } from '../../src/cli/mailbox-commands.js';

before(cryptoReady);

const NOW = 1_800_000_000_000;

function answer(id = generateIdentity()) {
  const bundle = signBundle(id, { signedPrekey: newSignedPrekey(7), pqPrekey: newPqPrekey(9), now: NOW - 1000, lifetimeMs: 5000 });
  return { id, bytes: encodeBundleAnswer({ bundle, oneTimePrekey: newSignedPrekey(42) }) };
}

test('the re-signed bundle lists the providers, verifies, keeps keys, lifetime and the one-time prekey', () => {
  const { id, bytes } = answer();
  const providers = [generateIdentity().onion, generateIdentity().onion];
  const out = decodeBundleAnswer(bundleWithMailboxes(bytes, id, providers, NOW));
  const orig = decodeBundleAnswer(bytes);
  verifyBundle(out.bundle, { now: NOW, maxClockSkewMs: 0, expectedIdentity: id.identityKey });
  assert.deepEqual(out.bundle.mailboxes, providers);
  assert.deepEqual([out.bundle.signedPrekeyId, out.bundle.signedPrekey, out.bundle.pqPrekeyId, out.bundle.pqPrekey, out.bundle.encryptionKey],
    [orig.bundle.signedPrekeyId, orig.bundle.signedPrekey, orig.bundle.pqPrekeyId, orig.bundle.pqPrekey, orig.bundle.encryptionKey]);
  assert.equal(out.bundle.createdAt, NOW);
  assert.equal(out.bundle.expiresAt - out.bundle.createdAt, 5000);
  assert.deepEqual(out.oneTimePrekey, orig.oneTimePrekey);
});

test('no providers: the answer is returned unchanged; more than 8 or a bad onion: refused', () => {
  const { id, bytes } = answer();
  assert.equal(bundleWithMailboxes(bytes, id, [], NOW), bytes);
  const nine = Array.from({ length: 9 }, () => generateIdentity().onion);
  assert.throws(() => bundleWithMailboxes(bytes, id, nine, NOW), /more than 8 mailboxes/);
  assert.throws(() => bundleWithMailboxes(bytes, id, ['nope.onion' as never], NOW));
});

test('terms in words', () => {
  assert.equal(termsWords({ retentionMs: 14 * 86_400_000, quotaBytes: 256 * 1024 * 1024 }), 'keeps mail 14 days, up to 256 MB');
  assert.equal(termsWords({ retentionMs: 86_400_000, quotaBytes: 1536 * 1024 }), 'keeps mail 1 day, up to 1.5 MB');
});
