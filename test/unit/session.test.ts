import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoReady } from '../../src/crypto/index.js';
import { receiptMac, verifyReceiptMac } from '../../src/session/index.js';
import { Endpoint, Party, message } from '../fixtures/sessions.js';

before(cryptoReady);

test('INIT then SESSION envelopes both ways, with DH ratchet steps, and receipts that verify at the sender', () => {
  const alice = new Endpoint(new Party('alice'));
  const bob = new Endpoint(new Party('bob'));
  const m0 = message('hello bob');
  const init = alice.initiate(bob.party, m0);
  assert.equal(init.envelope.length, 4096);
  const r0 = bob.receive(init.envelope);
  assert.ok(verifyReceiptMac(init.receiptKey, m0.id, sha(init.envelope), r0.receipt));
  assert.equal(bob.inbox[0]!.body, 'hello bob');
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 2; i++) {
      const m = message(`a${round}.${i}`);
      const s = alice.send(bob.party, m);
      assert.equal(s.envelope.length, 1024);
      const r = bob.receive(s.envelope);
      assert.deepEqual(r.receipt, receiptMac(s.receiptKey, m.id, sha(s.envelope)));
    }
    const m = message(`b${round}`);
    const s = bob.send(alice.party, m);
    const r = alice.receive(s.envelope);
    assert.deepEqual(r.receipt, receiptMac(s.receiptKey, m.id, sha(s.envelope)));
  }
  assert.deepEqual(bob.inbox.map((m) => m.body), ['hello bob', 'a0.0', 'a0.1', 'a1.0', 'a1.1', 'a2.0', 'a2.1']);
  assert.deepEqual(alice.inbox.map((m) => m.body), ['b0', 'b1', 'b2']);
});

import { createHash } from 'node:crypto';
function sha(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}
