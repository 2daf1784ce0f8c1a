/**
 * Names end to end at the node level, against the dev chain through real tronweb: a node sends to
 * "bob" by name and pins his keys; when bob's record moves to a new identity key WITHOUT a rotation
 * statement, messages to him are held and the user is warned; WITH a valid statement from the
 * pinned key, the node follows the rotation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TronWeb } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { deployRegistry } from '../../src/contract/index.js';
import { toHex } from '../../src/bytes.js';
import { generateIdentity, signRotation, type Identity } from '../../src/crypto/index.js';
import { createTronRegistry, type IdentityRegistry } from '../../src/registry/index.js';
import { OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let chain: DevChain;
let contract: string;
let t: TestNodes;
const clients: IdentityRegistry[] = [];
const toHexIdentity = (id: Identity) => toHex(id.identityKey);

function client(account: number | null): IdentityRegistry {
  const c = createTronRegistry({
    fullHost: chain.url, contractAddress: contract, cacheTtlMs: 1,
    ...(account === null ? {} : { tronPrivateKey: chain.accounts[account]!.privateKey }),
  });
  clients.push(c);
  return c;
}

before(async () => {
  t = await testNodes('onionpost-node-registry-');
  chain = await startDevChain();
  const tronWeb = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
  contract = (await deployRegistry({ tronWeb, minCommitmentAge: 0, maxCommitmentAge: 86_400, timeoutMs: 30_000 })).address;
});

after(async () => {
  for (const c of clients) c.close();
  await t.cleanup();
  await chain.close();
});

test('send by name pins the keys; a key change without a statement holds mail and warns; with one, the node follows', async () => {
  const alice = await t.make('alice', { registry: client(null) });
  const bobId = generateIdentity();
  await t.make('bob', { identity: bobId }); // online to receive
  const bobChain = client(2);
  await bobChain.register(bobId, 'bob');

  // 1. By name: resolved, verified, pinned, delivered.
  const first = await alice.send({ to: 'bob', subject: 'by name', body: 'hi', wait: true, waitMs: 10_000 });
  assert.equal(first.state, 'delivered');
  assert.equal(first.to, bobId.onion);
  const pinned = alice.store.getContact('bob')!;
  assert.deepEqual([pinned.source, pinned.registryName, pinned.identityKey, pinned.registryVersion], ['registry', 'bob', toHexIdentity(bobId), 1]);

  // 2. Bob's record now names another identity key, with no rotation statement.
  const impostor = generateIdentity();
  await bobChain.update(impostor, { rotation: null });
  const held = await alice.send({ to: 'bob', subject: 'after the change', body: 'should be held' });
  assert.equal(held.state, 'held');
  assert.equal(held.to, bobId.onion, 'still addressed to the pinned key, not the new one');
  const contact = alice.store.getContact('bob')!;
  assert.equal(contact.identityKey, toHexIdentity(bobId), 'pin unchanged');
  assert.equal(contact.keyChange?.identityKey, toHexIdentity(impostor));
  const status = alice.status();
  assert.ok(status.warnings.some((w) => w.alias === 'bob' && /changed/.test(w.message)), 'status warns');
  const list = (await alice.handlers['contacts.list']!({})) as { alias: string; keyChange: unknown }[];
  assert.ok(list.find((c) => c.alias === 'bob')?.keyChange, 'contacts shows the pending change');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(alice.store.getMessage(held.id)?.state, 'held', 'held mail is not sent');

  // 3. Carol rotates properly: a statement signed by her pinned key moves alice to the new key.
  const carolOld = generateIdentity();
  const carolNew = generateIdentity();
  const carolChain = client(3);
  await carolChain.register(carolOld, 'carol');
  const carolNode = await t.make('carol-new', { identity: carolNew });
  await alice.send({ to: 'carol', subject: 'pin me', body: 'x' }); // pins carolOld (she is offline: queued)
  assert.equal(alice.store.getContact('carol')!.identityKey, toHexIdentity(carolOld));
  await carolChain.update(carolNew, { rotation: signRotation(carolOld, carolNew, Date.now()) });
  const rotated = await alice.send({ to: 'carol', subject: 'after rotation', body: 'to the new key', wait: true, waitMs: 10_000 });
  assert.equal(rotated.to, carolNew.onion);
  assert.equal(rotated.state, 'delivered');
  assert.equal(alice.store.getContact('carol')!.identityKey, toHexIdentity(carolNew));
  assert.equal(alice.store.getContact('carol')!.keyChange, null);
  await eventually(() => carolNode.store.getMessage(rotated.id)?.body === 'to the new key', 5_000, 'carol received it');
  assert.ok(alice instanceof OnionpostNode);
});
