/**
 * How a delivery attempt's failure becomes an outbox outcome: by the typed retry advice the error
 * carries from where it was made (adopted by each wrapper at construction), never by walking causes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CryptoError } from '../../src/crypto/index.js';
import { OnionpostError } from '../../src/errors.js';
import { TorDownError, NetworkError } from '../../src/node/index.js';
import { failureOutcome, looksOffline, rejectOutcome } from '../../src/pipeline/index.js';
import { ProtocolError, RejectCode } from '../../src/protocol/index.js';
import { StoreError } from '../../src/store/index.js';
import { socksReplyError } from '../../src/tor/index.js';
import { TransportError } from '../../src/transport/index.js';

const wrapped = (rep: number) => new TransportError('DIAL_FAILED', 'dial ws://x.onion/ failed', { cause: socksReplyError(rep, 'x.onion:80') });

test('a wrapped SOCKS error keeps its advice and code: never → failed, soon/later → retry on the backoff', () => {
  assert.deepEqual(wrapped(0xf6).retryAdvice, { retryClass: 'never', code: 'ONION_BAD_ADDRESS' }, 'adopted at the wrapping point');
  const bad = failureOutcome(wrapped(0xf6));
  assert.equal(bad.kind, 'failed');
  assert.equal(bad.kind === 'failed' && bad.code, 'ONION_BAD_ADDRESS');
  assert.deepEqual(failureOutcome(wrapped(0xf0)), { kind: 'retry', code: 'ONION_DESC_NOT_FOUND', when: 'soon' });
  assert.deepEqual(failureOutcome(wrapped(0xf2)), { kind: 'retry', code: 'ONION_INTRO_FAILED', when: 'soon' });
  // Two wrappers deep (a protocol error over the transport's): the advice still travels.
  const deeper = new ProtocolError('CLOSED', 'closed', { cause: wrapped(0xf4) });
  const o = failureOutcome(deeper);
  assert.equal(o.kind === 'failed' ? o.code : o.kind, 'ONION_CLIENT_AUTH_MISSING');
});

test('an ad-hoc `retry` property down a cause chain is not read', () => {
  const sneaky = Object.assign(new Error('looks like socks'), { retry: 'never', code: 'ONION_BAD_ADDRESS' });
  assert.deepEqual(failureOutcome(new TransportError('DIAL_FAILED', 'dial failed', { cause: sneaky })), { kind: 'retry', code: 'DIAL_FAILED', when: 'soon' });
});

test('families without advice: crypto → later, other typed errors → soon, foreign errors → UNEXPECTED', () => {
  assert.deepEqual(failureOutcome(new TorDownError('restarting')), { kind: 'retry', code: 'TOR_DOWN', when: 'soon' });
  assert.deepEqual(failureOutcome(new CryptoError('BUNDLE_SIGNATURE', 'x')), { kind: 'retry', code: 'BUNDLE_SIGNATURE', when: 'later' });
  assert.deepEqual(failureOutcome(new NetworkError('PEER_UNKNOWN', 'x')), { kind: 'retry', code: 'PEER_UNKNOWN', when: 'soon' });
  assert.deepEqual(failureOutcome(new TransportError('DIAL_TIMEOUT', 'x')), { kind: 'retry', code: 'DIAL_TIMEOUT', when: 'soon' });
  assert.deepEqual(failureOutcome(new StoreError('BUSY', 'x')), { kind: 'retry', code: 'BUSY', when: 'soon' });
  assert.deepEqual(failureOutcome(new TypeError('bug')), { kind: 'retry', code: 'UNEXPECTED', when: 'soon' });
  assert.ok(new OnionpostError('X', 'no advice').retryAdvice === undefined);
});

test('REJECT answers: not retryable → failed; STORAGE_FULL → later; BUSY → busy; others → soon', () => {
  assert.deepEqual(rejectOutcome({ kind: 'reject', code: RejectCode.WRONG_RECIPIENT, retryable: false, reason: 'nope' }), { kind: 'failed', code: 'WRONG_RECIPIENT', reason: 'nope' });
  assert.deepEqual(rejectOutcome({ kind: 'reject', code: RejectCode.STORAGE_FULL, retryable: true, reason: '' }), { kind: 'retry', code: 'STORAGE_FULL', when: 'later' });
  assert.deepEqual(rejectOutcome({ kind: 'reject', code: RejectCode.BUSY, retryable: true, reason: '' }), { kind: 'retry', code: 'BUSY', when: 'busy' });
  assert.deepEqual(rejectOutcome({ kind: 'reject', code: RejectCode.CLOCK_SKEW, retryable: true, reason: '' }), { kind: 'retry', code: 'CLOCK_SKEW', when: 'soon' });
});

test('looksOffline: what makes a message go to the recipient\'s providers at once (issue 11 item 7)', () => {
  const offline = [0xf0, 0xf1, 0xf2, 0xf7, 0x01, 0x04].map((rep) => socksReplyError(rep, 'x.onion:80'));
  for (const e of offline) assert.equal(looksOffline(e), true, e.code);
  assert.equal(looksOffline(new TransportError('DIAL_TIMEOUT', 'no answer in the whole budget')), true);
  assert.equal(looksOffline(new NetworkError('PEER_UNKNOWN', 'not online', { retryAdvice: { retryClass: 'later', code: 'PEER_UNKNOWN' } })), true);
  // Our own tor, a circuit that timed out, a refusal by the peer itself: not a reason to deposit.
  for (const e of [socksReplyError(0x06, 'x.onion:80'), new TorDownError('our tor is down'), new ProtocolError('CLOSED', 'closed'), new TransportError('DIAL_REJECTED', 'http 503')]) {
    assert.equal(looksOffline(e), false, e.code);
  }
});
