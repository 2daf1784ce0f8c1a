/**
 * DELIVER admission (src/node/admission.ts) under a hand-driven clock: contacts go at once, proven
 * and unproven peers wait for their buckets (unproven ones in turn by scope), past the queue or the
 * in-flight bytes the answer is BUSY, and what a DELIVER's answer teaches moves its scope's trust.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { resolveLimits } from '../../src/limits.js';
import { DeliverScheduler, InboundAdmission } from '../../src/node/admission.js';
import { RejectCode, type DeliverAnswer } from '../../src/protocol/index.js';
import { createMemoryPair } from '../../src/transport/index.js';

const limits = resolveLimits({
  unprovenDecryptsPerSecond: 10, unprovenDecryptBurst: 2, provenDecryptsPerSecond: 100, provenDecryptBurst: 1, maxQueuedDelivers: 4, maxInflightDeliverBytes: 10_000,
});

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

test('scheduler: contacts at once; unproven past the burst wait, served one scope after another; then BUSY past the queue', async () => {
  const clock = new ManualClock();
  const s = new DeliverScheduler(limits, clock);
  for (let i = 0; i < 10; i++) assert.equal(s.admit('contact', 'c', 10), true, 'a contact never waits');
  assert.equal(s.admit('unproven', 'x', 10), true);
  assert.equal(s.admit('unproven', 'x', 10), true, 'the burst of 2');
  const order: string[] = [];
  const wait = (scope: string) => (s.admit('unproven', scope, 10) as Promise<boolean>).then((ok) => ok && order.push(scope));
  const waiting = [wait('x'), wait('x'), wait('x'), wait('y')];
  assert.equal(s.admit('unproven', 'z', 10), false, 'the queue (4) is full: BUSY');
  assert.equal(s.stats().queued.unproven, 4);
  clock.advance(100);
  await flush();
  clock.advance(100);
  await flush();
  assert.deepEqual(order, ['x', 'y'], "y's one DELIVER is served before x's second: turns by scope");
  clock.advance(200);
  await Promise.all(waiting);
  assert.deepEqual(order, ['x', 'y', 'x', 'x']);
  assert.equal(s.stats().busy, 1);
  s.close();
});

test('scheduler: in-flight bytes are capped for every class, contacts included; release frees them; close refuses the waiting', async () => {
  const clock = new ManualClock();
  const s = new DeliverScheduler(limits, clock);
  assert.equal(s.admit('contact', 'c', 9_000), true);
  assert.equal(s.admit('contact', 'c', 2_000), false, 'over maxInflightDeliverBytes: BUSY');
  s.release(9_000);
  assert.equal(s.admit('proven', 'p', 100), true);
  const later = s.admit('proven', 'p', 100) as Promise<boolean>;
  s.close();
  assert.equal(await later, false, 'refused on close');
  assert.equal(s.stats().inflightBytes, 100);
});

test('admission: a RECEIPT proves the scope (contact if the sender is one), a DELIVER that does not open demotes it', async () => {
  const clock = new ManualClock();
  const [ch] = createMemoryPair({ limits, clock });
  let contact = false;
  const roomy = { ...limits, unprovenDecryptBurst: 10, provenDecryptBurst: 10 };
  const a = new InboundAdmission({ limits: roomy, clock, listener: () => undefined, senderIsContact: () => contact });
  const receipt: DeliverAnswer = { receipt: new Uint8Array(16) };
  const bad: DeliverAnswer = { reject: { code: RejectCode.DECRYPT_FAILED, retryable: false, reason: 'x' } };
  const classes: string[] = [];
  const deliver = (answer: DeliverAnswer) => a.deliver(ch, '00', 10, async () => answer);
  const watch = () => classes.push(JSON.stringify(a.scheduler.stats().admitted));
  await deliver(receipt);
  watch();
  await deliver(receipt);
  watch();
  contact = true;
  await deliver(receipt);
  await deliver(receipt);
  watch();
  await deliver(bad);
  await deliver(receipt);
  watch();
  assert.deepEqual(classes.map((c) => JSON.parse(c)), [
    { contact: 0, proven: 0, unproven: 1 },
    { contact: 0, proven: 1, unproven: 1 }, // proven by the first
    { contact: 1, proven: 2, unproven: 1 }, // the sender became a contact: contact from then on
    { contact: 2, proven: 2, unproven: 2 }, // the bad one (as contact) demoted the scope; the next is unproven again
  ]);
  a.close();
});

test('scheduler: a waiter whose connection closed is skipped without spending a token', async () => {
  const clock = new ManualClock();
  const s = new DeliverScheduler(limits, clock);
  s.admit('unproven', 'x', 10);
  s.admit('unproven', 'x', 10); // burst spent
  let open = true;
  const dead = s.admit('unproven', 'gone', 10, () => open) as Promise<boolean>;
  const live = s.admit('unproven', 'y', 10) as Promise<boolean>;
  open = false;
  clock.advance(100); // one token
  assert.equal(await dead, false, 'the closed one is dropped');
  assert.equal(await live, true, 'and the one token goes to the next');
  s.close();
});
