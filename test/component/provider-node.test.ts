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
