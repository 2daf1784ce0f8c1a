/**
 * Names end to end at the node level, against the dev chain through real tronweb: a node sends to
 * "bob" by name and pins his keys; when bob's record moves to a new identity key WITHOUT a rotation
 * statement, messages to him are held and the user is warned; WITH a valid statement from the
 * pinned key, the node follows the rotation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TronWeb } from 'tronweb';
import { toHex } from '../../src/bytes.js';
import { generateIdentity, signRegistryRecord, signRotation, type Identity } from '../../src/crypto/index.js';
import { loadRegistryArtifact } from '../../src/contract/index.js';
import { parseTronAddress, type IdentityRegistry } from '../../src/registry/index.js';
import { OnionpostNode } from '../../src/node/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { startRegistryChain, type RegistryChain } from '../fixtures/registry-chain.js';

let reg: RegistryChain;
let t: TestNodes;
const toHexIdentity = (id: Identity) => toHex(id.identityKey);

const client = (account: number | null): IdentityRegistry => reg.client(account);

before(async () => {
  t = await testNodes('onionpost-node-registry-');
  reg = await startRegistryChain();
});

after(async () => {
  await t.cleanup();
  await reg.close();
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

test('a key change that clears by itself (the record is back to the pinned key) releases the held mail, which is delivered', async () => {
  const alice = await t.make('alice-release', { registry: client(null) });
  const daveId = generateIdentity();
  const dave = await t.make('dave', { identity: daveId });
  const daveChain = client(5);
  await daveChain.register(daveId, 'dave');
  assert.equal((await alice.send({ to: 'dave', subject: 'pin', body: 'x', wait: true, waitMs: 10_000 })).state, 'delivered');

  await daveChain.update(generateIdentity(), { rotation: null }); // someone else's key, no statement
  const held = await alice.send({ to: 'dave', subject: 'held while in doubt', body: 'hold me' });
  assert.equal(held.state, 'held');
  assert.ok(alice.status().warnings.some((w) => w.alias === 'dave'));

  // Dave's record goes back to his pinned key (a new version, signed by it). Nobody sends to him:
  // the periodic recheck alone must release what was held.
  await daveChain.update(daveId, { rotation: null });
  const cleared: string[] = [];
  const off = alice.events.subscribe((ev) => {
    if (ev.type === 'contact.keyChangeCleared') cleared.push(ev.alias as string);
  });
  await alice.recheckContacts();
  off();
  assert.deepEqual(cleared, ['dave'], 'the user is told');
  assert.equal(alice.store.getContact('dave')!.keyChange, null, 'no pending change left');
  assert.ok(!alice.status().warnings.some((w) => w.alias === 'dave'), 'the warning is gone');
  await eventually(() => alice.store.getMessage(held.id)?.state === 'delivered', 10_000, 'the held message delivered');
  assert.equal(dave.store.getMessage(held.id)?.body, 'hold me');
  assert.ok(alice.store.listEvents(held.id).some((e) => e.state === 'queued' && e.detail === 'released'), 'its history says it was released');
  await assert.rejects(Promise.resolve().then(() => alice.handlers['contacts.approveKeyChange']!({ alias: 'dave' })), { code: 'NO_KEY_CHANGE' });
});

test('a registry record that fails verification does not block a pinned contact: pinned keys, a lasting warning, an event', async () => {
  const alice = await t.make('alice-badrecord', { registry: client(null) });
  const erinId = generateIdentity();
  await t.make('erin', { identity: erinId });
  const erinChain = client(6);
  await erinChain.register(erinId, 'erin');
  assert.equal((await alice.send({ to: 'erin', subject: 'pin', body: 'x', wait: true, waitMs: 10_000 })).state, 'delivered');

  // Erin's account writes version 2 straight through the contract, with a signature over other data.
  const account = reg.chain.accounts[6]!;
  const tronWeb = new TronWeb({ fullHost: reg.chain.url, privateKey: account.privateKey });
  const c = tronWeb.contract(loadRegistryArtifact().abi as never, reg.contract);
  const sig = signRegistryRecord(erinId, {
    name: 'not-erin', owner: parseTronAddress(account.address)!.bytes, mailboxes: '', version: 2, chainId: BigInt(reg.chain.chainId),
    contract: parseTronAddress(reg.contract)!.bytes,
  });
  await c.update(`0x${toHex(erinId.identityKey)}`, `0x${toHex(erinId.encryptionKey)}`, '', 2, `0x${toHex(sig)}`).send({ feeLimit: 1e9 });

  const problems: string[] = [];
  const off = alice.events.subscribe((ev) => {
    if (ev.type === 'contact.registryProblem') problems.push(ev.alias as string);
  });
  const sent = await alice.send({ to: 'erin', subject: 'despite the bad record', body: 'y', wait: true, waitMs: 10_000 });
  assert.equal(sent.state, 'delivered', 'the pinned keys keep working');
  assert.equal(sent.to, erinId.onion);
  const again = await alice.send({ to: 'erin', subject: 'and again', body: 'z', wait: true, waitMs: 10_000 });
  assert.equal(again.state, 'delivered');
  off();
  assert.deepEqual(problems, ['erin'], 'one event, not one per send');
  const warning = alice.status().warnings.find((w) => w.type === 'contact.registryProblem');
  assert.equal(warning?.alias, 'erin', 'a lasting warning in status');
  assert.match(warning!.message, /BAD_RECORD/);

  // Someone with no pin has nothing to fall back on.
  const stranger = await t.make('stranger', { registry: client(null) });
  await assert.rejects(stranger.send({ to: 'erin', body: 'x' }), { code: 'BAD_RECORD' });

  // A good record again (version 3, signed by Erin's key): the warning goes.
  await erinChain.update(erinId, { rotation: null });
  await alice.send({ to: 'erin', subject: 'fine again', body: 'w' });
  assert.ok(!alice.status().warnings.some((w) => w.type === 'contact.registryProblem'), 'cleared once a record verifies');
});
