/**
 * The pure part of the user's mailbox providers: the CLI's terms in words. (The bundle listing the
 * providers is the session layer's own bundle: test/component/mailboxes.test.ts.)
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoReady } from '../../src/crypto/index.js';
import { termsWords } from '../../src/cli/mailbox-commands.js';

before(cryptoReady);

test('terms in words', () => {
  assert.equal(termsWords({ retentionMs: 14 * 86_400_000, quotaBytes: 256 * 1024 * 1024 }), 'keeps mail 14 days, up to 256 MB');
  assert.equal(termsWords({ retentionMs: 86_400_000, quotaBytes: 1536 * 1024 }), 'keeps mail 1 day, up to 1.5 MB');
});
