/**
 * The Envelopes seam as a replacement scheme uses it: a node built with its own `envelopes`
 * factory (here sessions with a flaky state write); the scheme's per-message writes (`commit`)
 * run in the transaction that commits the message, once per new message, and a failing write
 * rolls the commit back (nothing of the message or the session state is left, the tag window is
 * untouched, and the message is written again on its own).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex } from '../../src/bytes.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { SessionEnvelopes, type Opened } from '../../src/pipeline/index.js';
import { PeerConnection } from '../../src/protocol/index.js';
import { dialWs } from '../../src/transport/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
before(async () => {
  t = await testNodes('onionpost-envelopes-');
});
after(() => t.cleanup());

test('a node runs on an injected Envelopes; commit runs inside the message\'s transaction, once per new message', async () => {
  let failNext = 0;
  let opened = 0;
  let afters = 0;
  const bob = await t.make('bob', {
    envelopes: (ctx) => new (class extends SessionEnvelopes {
      override open(envelope: Uint8Array, now: number): Opened {
        const r = super.open(envelope, now);
        if (!('message' in r)) return r;
        opened++;
        return {
          ...r,
          commit: () => {
            r.commit();
            if (failNext > 0) {
              failNext--;
              throw new Error('state write failed (test)');
            }
            const n = Number(ctx.store.getSetting('test.committed') ?? '0');
            ctx.store.setSetting('test.committed', String(n + 1));
          },
          after: () => {
            afters++;
            r.after();
          },
        };
      }
    })(ctx),
  });
  const alice = await t.make('alice');
  const first = await alice.send({ to: bob.identity.onion, subject: 'seam', body: 'the INIT', wait: true, waitMs: 20_000 });
  assert.equal(first.state, 'delivered');
  failNext = 1;
  const sent = await alice.send({ to: bob.identity.onion, subject: 'seam', body: 'through an injected scheme' });
  await eventually(() => alice.store.getMessage(sent.id)?.state === 'delivered', 20_000, 'delivered');
  assert.equal(bob.store.getMessage(sent.id)?.body, 'through an injected scheme');
  assert.equal(bob.store.counts().inbox, 2);
  assert.ok(opened >= 3, 'the failed commit was rolled back and the message opened and written again');
  assert.equal(bob.store.getSetting('test.committed'), '2', 'state written once per message, with the committed message');
  assert.equal(afters, 2, 'the tag window moved only after the commits that held');

  // The same DELIVER again: a duplicate gets its receipt and writes nothing.
  const conn = new PeerConnection({ channel: await dialWs({ url: `ws://127.0.0.1:${bob.status().listener!.port}/`, limits: DEFAULT_LIMITS }), role: 'client' });
  await conn.ready;
  const again = await conn.deliver(fromHex(sent.id), alice.store.getMessage(sent.id)!.envelope!);
  await conn.close();
  assert.equal(again.kind, 'receipt');
  assert.deepEqual(again.kind === 'receipt' && again.mac, alice.store.getMessage(sent.id)!.receipt);
  assert.equal(bob.store.getSetting('test.committed'), '2', 'no state written for a duplicate');
  assert.equal(afters, 2);
});
