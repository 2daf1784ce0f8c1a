/**
 * The Envelopes seam as a replacement scheme uses it: a node built with its own `envelopes`
 * factory; the scheme's per-message state (`persist`) is written in the transaction that commits
 * the message, once per new message, and a failing write rolls the commit back (the sender retries).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../src/bytes.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { sealedBoxEnvelopes, type Envelopes } from '../../src/pipeline/index.js';
import { PeerConnection } from '../../src/protocol/index.js';
import { dialWs } from '../../src/transport/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-envelopes-');
});
after(() => t.cleanup());

test('a node runs on an injected Envelopes; persist runs inside the commit, once per new message', async () => {
  let failNext = true;
  let opened = 0;
  const bob = await t.make('bob', {
    envelopes: (ctx): Envelopes => {
      const inner = sealedBoxEnvelopes({ identity: ctx.identity, random: ctx.random, maxClockSkewMs: ctx.limits.maxClockSkewMs, maxEnvelope: ctx.limits.maxEnvelope, now: ctx.clock.now() });
      return {
        ...inner,
        open(envelope, o) {
          const r = inner.open(envelope, o);
          if ('reject' in r) return r;
          opened++;
          return {
            ...r,
            persist: () => {
              if (failNext) {
                failNext = false;
                throw new Error('state write failed (test)');
              }
              const n = Number(ctx.store.getSetting('test.persisted') ?? '0');
              ctx.store.setSetting('test.persisted', String(n + 1));
            },
          };
        },
      };
    },
  });
  const alice = await t.make('alice');
  const sent = await alice.send({ to: bob.identity.onion, subject: 'seam', body: 'through an injected scheme' });
  await eventually(() => alice.store.getMessage(sent.id)?.state === 'delivered', 20_000, 'delivered after the retry');
  assert.equal(bob.store.getMessage(sent.id)?.body, 'through an injected scheme');
  assert.equal(bob.store.counts().inbox, 1);
  assert.ok(opened >= 2, 'the first commit was rolled back with its failed state write, and the sender retried');
  assert.equal(bob.store.getSetting('test.persisted'), '1', 'state written once, with the committed message');

  // The same DELIVER again: a duplicate gets its receipt and writes no state.
  const conn = new PeerConnection({ channel: await dialWs({ url: `ws://127.0.0.1:${bob.status().listener!.port}/`, limits: DEFAULT_LIMITS }), role: 'client' });
  await conn.ready;
  const again = await conn.deliver(fromHex(sent.id), alice.store.getMessage(sent.id)!.envelope!);
  await conn.close();
  assert.equal(again.kind, 'receipt');
  assert.equal(bob.store.getSetting('test.persisted'), '1', 'no state written for a duplicate');
});
