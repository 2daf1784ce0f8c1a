/**
 * First contact while the recipient is offline (PROTOCOL.md §14.8), with whole nodes over real ws
 * on 127.0.0.1, real SQLite files and the registry on the dev chain: bob subscribes at a provider
 * (which keeps his bundle and a batch of his one-time prekeys) and goes offline before anyone
 * talked to him. Alice sends to "bob" by name: the direct dial finds him offline, she gets his
 * bundle from the provider his registry record lists, agrees, and leaves the INIT there
 * ("in_mailbox"). A second sender gets another one-time prekey; once the provider has none left a
 * third still gets through (without one). Bob starts, fetches, opens each INIT with the prekey it
 * named, and every sender sees "delivered".
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { toHex } from '../../src/bytes.js';
import { generateIdentity, onionOfSeed, type Identity } from '../../src/crypto/index.js';
import { recordView } from '../../src/api/handlers.js';
import { randomBytes } from 'node:crypto';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { loopbackNetwork, type OnionpostNode } from '../../src/node/index.js';
import { MAILBOX_PATH, MailboxClient, ProviderError } from '../../src/provider/index.js';
import { systemClock } from '../../src/clock.js';
import { decodeBundleAnswer } from '../../src/session/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { startRegistryChain, type RegistryChain } from '../fixtures/registry-chain.js';

let reg: RegistryChain;
let t: TestNodes;
let p1: OnionpostNode;
let bobId: Identity;

before(async () => {
  t = await testNodes('onionpost-first-contact-');
  reg = await startRegistryChain();
  p1 = await t.make('p1', { provider: { dbPath: join(t.root, 'p1-held.db') } });
  bobId = generateIdentity();
  const bob = await t.make('bob', { identity: bobId });
  await bob.mailboxes.add(p1.identity.onion);
  await reg.client(2).register(bobId, 'bob', { mailboxes: [p1.identity.onion] });
  await bob.close();
});
after(async () => {
  await t.cleanup();
  await reg.close();
});

/** The one-time prekey an INIT envelope names (PROTOCOL.md §5: flag at 41, id at 42), or null. */
function initPrekey(envelope: Uint8Array): number | null {
  assert.equal(envelope[0], 0x21, 'an INIT');
  return envelope[41] === 1 ? new DataView(envelope.buffer, envelope.byteOffset).getUint32(42) : null;
}

async function sendToBob(node: OnionpostNode, subject: string): Promise<string> {
  assert.deepEqual(node.store.deposits.peerMailboxes(toHex(bobId.identityKey)), [], 'never had a bundle of bob\'s');
  const r = await node.send({ to: 'bob', subject, body: 'first contact while you are away' });
  const list = () => node.handlers['messages.outbox']!({ limit: 100 }) as { id: string; state: string }[];
  await eventually(() => list().find((m) => m.id === r.id)?.state === 'in_mailbox', 20_000, `${subject}: in mailbox`);
  assert.deepEqual(node.store.getMessage(r.id)!.mailboxes, [p1.identity.onion]);
  return r.id;
}

test('first contact with an offline recipient: bundle from its provider, INIT in its mailbox, delivered when it comes back', async () => {
  const alice = await t.make('alice', { registry: reg.client(null) });
  const carol = await t.make('carol', { registry: reg.client(null) });
  const dave = await t.make('dave', { registry: reg.client(null) });
  const a = await sendToBob(alice, 'from alice');
  const c = await sendToBob(carol, 'from carol');
  const pa = initPrekey(alice.store.getMessage(a)!.envelope!);
  const pc = initPrekey(carol.store.getMessage(c)!.envelope!);
  assert.ok(pa !== null && pc !== null, 'both INITs used a one-time prekey');
  assert.notEqual(pa, pc, 'each sender got its own one-time prekey');

  // Someone takes every prekey the provider has left for bob (anonymous GET_BUNDLE, one at a time).
  const channel = await loopbackNetwork(join(t.root, 'loopback')).dial(p1.identity.onion, { path: MAILBOX_PATH, limits: DEFAULT_LIMITS, timeoutMs: 10_000, signal: AbortSignal.timeout(10_000) });
  const client = new MailboxClient({ channel, providerKey: p1.identity.identityKey, clock: systemClock, maxEnvelope: DEFAULT_LIMITS.maxEnvelope });
  const taken = new Set<number>([pa!, pc!]);
  try {
    for (let i = 0; i < 100; i++) {
      const k = decodeBundleAnswer(await client.getBundle(bobId.identityKey)).oneTimePrekey;
      if (!k) break;
      const id = k.id;
      assert.ok(!taken.has(id), `prekey ${id} handed out twice`);
      taken.add(id);
    }
    // Not bob's identity: no bundle.
    await assert.rejects(client.getBundle(generateIdentity().identityKey), (e: unknown) => e instanceof ProviderError && e.code === 'REMOTE' && e.remoteCode === 15);
  } finally {
    await client.close();
  }
  assert.equal(taken.size, 20, 'the provider held 20 of bob\'s one-time prekeys, each handed out once');

  // Exhausted: dave still gets bob's bundle, without a one-time prekey.
  const d = await sendToBob(dave, 'from dave');
  assert.equal(initPrekey(dave.store.getMessage(d)!.envelope!), null);

  const bob = await t.make('bob', { identity: bobId });
  await eventually(() => [a, c, d].every((id) => bob.store.getMessage(id) !== null), 20_000, 'bob fetched all three');
  assert.equal(bob.store.getMessage(a)!.subject, 'from alice');
  // The INITs' one-time prekeys are gone from bob's store (used once).
  assert.equal(bob.store.sessions.getOneTimePrekey(pa!), null);
  assert.equal(bob.store.sessions.getOneTimePrekey(pc!), null);
  await eventually(() => alice.store.getMessage(a)!.state === 'delivered', 30_000, 'alice sees delivered');
  await eventually(() => carol.store.getMessage(c)!.state === 'delivered', 30_000, 'carol sees delivered');
  await eventually(() => dave.store.getMessage(d)!.state === 'delivered', 30_000, 'dave sees delivered');
  await eventually(() => p1.status().provider?.held === 0, 20_000, 'the provider deleted what bob fetched');
  // Back online, bob topped his prekeys at the provider up again: 20 more handed out from his pool
  // (18 of the first batch are still out there, unused; his self-check at each start takes one more).
  await eventually(() => bob.store.sessions.oneTimePrekeyCounts().handedOut >= 18 + 20, 20_000, 'bob put a new batch of prekeys at the provider');
});

test('a hidden user: strangers reach it through its providers by name, its record lists no onion, its contacts dial its direct onion', async () => {
  const erinId = generateIdentity();
  const direct = onionOfSeed(new Uint8Array(randomBytes(32)));
  const fast = { outbox: { policy: { fastBaseMs: 200, fastMaxMs: 500, busyMs: 50, slowBaseMs: 500, slowMaxMs: 500 } } };
  const erin = await t.make('erin', { identity: erinId, directOnion: direct, registry: reg.client(null), ...fast });
  await erin.mailboxes.add(p1.identity.onion);
  await reg.client(3).register(erinId, 'erin', { mailboxes: [p1.identity.onion], hidden: true });
  const rec = await reg.client(null).resolveName('erin');
  assert.equal(rec?.hidden, true);
  assert.deepEqual(recordView(rec!).onion, null, 'the registry lists no onion for her');

  // A stranger writes to "erin" by name while she runs: the onion her record's key names is not
  // online, so the bundle and the INIT go through her provider, which tells her at once.
  const frank = await t.make('frank', { registry: reg.client(null), ...fast });
  const r = await frank.send({ to: 'erin', subject: 'hello', body: 'found you by name' });
  await eventually(() => frank.store.getMessage(r.id)!.mailboxes.length > 0, 30_000, `in mailbox (${frank.store.getMessage(r.id)?.state} ${frank.store.getMessage(r.id)?.lastErrorCode})`);
  await eventually(() => erin.store.getMessage(r.id) !== null, 30_000, 'erin got it through her provider');
  await eventually(() => frank.store.getMessage(r.id)!.state === 'delivered', 30_000, 'frank sees delivered');

  // She adds him: he learns her direct onion in their session, and his next mail goes there.
  await erin.handlers['contacts.add']!({ alias: 'frank', address: frank.identity.onion });
  await eventually(() => frank.store.contactQueues.theirOnion(toHex(erinId.identityKey)) === direct, 30_000, 'frank was told her direct onion');
  const again = await frank.send({ to: 'erin', subject: 'direct', body: 'now straight to you', wait: true, waitMs: 20_000 });
  assert.equal(again.state, 'delivered');
  assert.deepEqual(frank.store.getMessage(again.id)!.mailboxes, [], 'delivered directly, not through a provider');
});
