import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoReady } from '../../src/crypto/index.js';
import { SessionError, decrypt, respond } from '../../src/session/index.js';
import { Endpoint, Party, RECV, message, sessionCodeOf } from '../fixtures/sessions.js';

before(cryptoReady);

function tally(codes: Map<string, number>, code: string): void {
  codes.set(code, (codes.get(code) ?? 0) + 1);
}

test('every byte of an INIT flipped: each rejected with a typed SessionError, never a plaintext', () => {
  const alice = new Endpoint(new Party('alice'));
  const bob = new Party('bob', 1);
  const init = alice.initiate(bob, message('flip me'));
  assert.equal(init.envelope.length, 4096);
  const ok = respond({ self: bob.id, prekeys: bob.lookup, envelope: init.envelope, ...RECV });
  assert.equal(ok.message.body, 'flip me');
  const codes = new Map<string, number>();
  for (let i = 0; i < init.envelope.length; i++) {
    const t = Uint8Array.from(init.envelope);
    t[i] = t[i]! ^ 0x01;
    const code = sessionCodeOf(() => respond({ self: bob.id, prekeys: bob.lookup, envelope: t, ...RECV }));
    assert.notEqual(code, 'no error', `byte ${i} flipped was accepted`);
    tally(codes, code);
  }
  for (const c of codes.keys()) assert.ok(['UNSUPPORTED_VERSION', 'BAD_ENVELOPE', 'BAD_INIT', 'PREKEY_UNKNOWN', 'DECRYPT_FAILED'].includes(c), c);
  assert.ok((codes.get('DECRYPT_FAILED') ?? 0) > 4000, 'almost every byte is caught by authentication');
  assert.ok(codes.get('PREKEY_UNKNOWN'), 'flipped prekey ids name keys we do not hold');
});

test('every byte of a SESSION envelope flipped (two masks): each rejected with a typed SessionError', () => {
  const alice = new Endpoint(new Party('alice'));
  const bob = new Endpoint(new Party('bob'));
  bob.receive(alice.initiate(bob.party, message('init')).envelope);
  alice.receive(bob.send(alice.party, message('reply')).envelope);
  const s = alice.send(bob.party, message('flip me'));
  const state = [...bob.sessions.values()][0]!;
  assert.equal(decrypt(state, s.envelope, { k: s.k, ...RECV }).message.body, 'flip me');
  const codes = new Map<string, number>();
  for (let i = 0; i < s.envelope.length; i++) {
    for (const mask of [0x01, 0x80]) {
      const t = Uint8Array.from(s.envelope);
      t[i] = t[i]! ^ mask;
      let code: string;
      try {
        decrypt(state, t, { k: s.k, ...RECV });
        code = 'no error';
      } catch (err) {
        assert.ok(err instanceof SessionError, String(err));
        code = err.code;
      }
      assert.notEqual(code, 'no error', `byte ${i} ^ ${mask} was accepted`);
      tally(codes, code);
      // and the tag index does not even find a flipped tag
      if (i >= 1 && i < 17) assert.equal(bob.index.lookup(t.subarray(1, 17)), undefined);
    }
  }
  assert.deepEqual([...codes.keys()].sort(), ['BAD_TAG', 'DECRYPT_FAILED', 'UNSUPPORTED_VERSION', ...(codes.has('BAD_ENVELOPE') ? ['BAD_ENVELOPE'] : [])].sort());
  assert.equal(codes.get('BAD_TAG'), 32, 'the 16 tag bytes × 2 masks');
});

test('truncated and extended envelopes are not a bucket size; a version-1 size names the version', () => {
  const alice = new Endpoint(new Party('alice'));
  const bob = new Endpoint(new Party('bob'));
  const init = alice.initiate(bob.party, message('x'));
  const state = [...alice.sessions.values()][0]!;
  for (const n of [0, 1, 100, 1023, 1025, 4095]) {
    assert.equal(sessionCodeOf(() => decrypt(state, init.envelope.subarray(0, n), { k: 0, ...RECV })), 'BAD_ENVELOPE', `length ${n}`);
  }
  assert.equal(sessionCodeOf(() => respond({ self: bob.party.id, prekeys: bob.party.lookup, envelope: new Uint8Array(1024 + 48), ...RECV })), 'UNSUPPORTED_VERSION');
  const wrongKind = new Uint8Array(1024);
  wrongKind[0] = 0x23;
  assert.equal(sessionCodeOf(() => decrypt(state, wrongKind, { k: 0, ...RECV })), 'BAD_ENVELOPE');
  const shortInit = new Uint8Array(1024);
  shortInit[0] = 0x21;
  assert.equal(sessionCodeOf(() => respond({ self: bob.party.id, prekeys: bob.party.lookup, envelope: shortInit, ...RECV })), 'BAD_ENVELOPE');
});
