/**
 * A node in the mailbox-provider role, over real ws on 127.0.0.1 (the loopback network) with real
 * SQLite files: its listener serves /mailbox/v1 beside the message protocol at /, a user's client
 * subscribes, makes a queue, a contact deposits and gets the provider's signed receipt, the user
 * fetches and acks; what the provider acknowledged survives a restart; unknown paths are refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateIdentity, type Identity } from '../../src/crypto/index.js';
import { loopbackNetwork } from '../../src/node/index.js';
import { MAILBOX_PATH, MailboxClient, verifyDepositReceipt } from '../../src/provider/index.js';
import { TransportError, dialWs } from '../../src/transport/index.js';
import { systemClock } from '../../src/clock.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

let nodes: TestNodes;
let providerId: Identity;
let alice: Identity;

before(async () => {
  nodes = await testNodes('onionpost-provider-node-');
  providerId = generateIdentity();
  alice = generateIdentity();
});
after(async () => {
  await nodes.cleanup();
});

async function client(onion: string): Promise<MailboxClient> {
  const channel = await loopbackNetwork(join(nodes.root, 'loopback')).dial(onion, { signal: AbortSignal.timeout(10_000), timeoutMs: 10_000, limits: {}, path: MAILBOX_PATH });
  return new MailboxClient({ channel, providerKey: providerId.identityKey, clock: systemClock, maxEnvelope: DEFAULT_LIMITS.maxEnvelope });
}

test('a provider node serves the mailbox protocol on its onion; held mail survives a restart', async () => {
  const dbPath = join(nodes.root, 'provider-held.db');
  const p = await nodes.make('provider', { identity: providerId, provider: { dbPath } });
  const c = await client(p.identity.onion);
  const terms = await c.subscribe(alice, null);
  assert.equal(terms.retentionMs, 14 * 24 * 3600 * 1000);
  const queue = new Uint8Array(16).fill(1);
  const write = new Uint8Array(32).fill(2);
  const read = new Uint8Array(32).fill(3);
  await c.createQueue(alice, queue, { write, read });
  const envelope = new Uint8Array(1024).fill(9);
  const receipt = await c.deposit(queue, write, envelope);
  assert.ok(verifyDepositReceipt(providerId.identityKey, receipt, envelope));
  assert.deepEqual(p.status().provider, { users: 1, queues: 1, held: 1, heldBytes: 1024 });
  await c.close();
  await p.close();

  const again = await nodes.make('provider2', { identity: providerId, provider: { dbPath } });
  const c2 = await client(again.identity.onion);
  const held = await c2.fetch(queue, read);
  assert.deepEqual(held.map((h) => [h.seq, h.envelope.length]), [[1, 1024]]);
  assert.equal(await c2.ack(queue, read, [1]), 1);
  assert.equal(again.status().provider?.held, 0);
  await c2.close();
});

test('a node without the role has no /mailbox/v1; unknown paths are refused with 404', async () => {
  const n = await nodes.make('plain');
  assert.equal(n.status().provider, null);
  await assert.rejects(client(n.identity.onion), (e: unknown) => e instanceof TransportError && e.code === 'DIAL_REJECTED');
  const port = n.status().listener!.port;
  await assert.rejects(dialWs({ url: `ws://127.0.0.1:${port}/other`, timeoutMs: 5_000, limits: {} }), (e: unknown) => e instanceof TransportError && e.code === 'DIAL_REJECTED');
});

test('a user who proved a capability is not held to the anonymous frame budget: 190 deposits and their fetch on one connection, default limits', async () => {
  // The listener lets an unproven connection send 128 frames at once, then 20/s (src/limits.ts);
  // the provider's own budget is 50 requests/s with a burst of 200.
  assert.ok(DEFAULT_LIMITS.unprovenFrameBurst < 190 && 190 < 200);
  const p = await nodes.make('provider-busy', { identity: providerId, provider: { dbPath: join(nodes.root, 'busy-held.db') } });
  const c = await client(p.identity.onion);
  await c.subscribe(alice, null);
  const queue = new Uint8Array(16).fill(4);
  const write = new Uint8Array(32).fill(5);
  const read = new Uint8Array(32).fill(6);
  await c.createQueue(alice, queue, { write, read });
  for (let i = 0; i < 190 - 3; i++) await c.deposit(queue, write, new Uint8Array(1024).fill(i % 256));
  const seqs: number[] = [];
  for (let round = 0; round < 10 && seqs.length < 187; round++) {
    const held = await c.fetch(queue, read, seqs.at(-1) ?? 0);
    seqs.push(...held.map((h) => h.seq));
  }
  assert.equal(seqs.length, 187, 'every deposit fetched on the same connection');
  assert.equal(await c.ack(queue, read, seqs.slice(0, 1024)), 187);
  assert.equal(p.status().provider?.held, 0);
  await c.close();
});
