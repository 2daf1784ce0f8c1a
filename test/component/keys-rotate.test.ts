/**
 * `onionpost keys rotate`, run as a user runs it (the CLI entry point, a real key file, the dev
 * chain's registry through real tronweb): bob rotates while his node is stopped; alice's node,
 * which pinned his old key, follows the statement without an alert (a contact.rotated notice), the
 * mail she queued while he was away goes to his new identity, and so does new mail; bob's node,
 * started again on the same store under the new key, reaches alice from the new identity (a fresh
 * agreement, not the old key's session). A change without a statement still alerts and holds.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../../src/bytes.js';
import { generateIdentity, readKeyFile } from '../../src/crypto/index.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';
import { startRegistryChain, type RegistryChain } from '../fixtures/registry-chain.js';
import { cliEnv, oneLineError, runCliAsync } from '../fixtures/cli.js';

let reg: RegistryChain;
let t: TestNodes;
let env: NodeJS.ProcessEnv;
const PASS = 'correct horse'; // cliEnv's ONIONPOST_PASSPHRASE

before(async () => {
  t = await testNodes('onionpost-keys-rotate-');
  reg = await startRegistryChain();
  env = cliEnv(t.root);
});

after(async () => {
  await t.cleanup();
  await reg.close();
});

test('keys rotate: contacts who pinned the old key follow it without an alert, queued and new mail reach the new identity; a bare change still alerts', async () => {
  const bobDir = join(t.root, 'bob');
  mkdirSync(bobDir, { recursive: true, mode: 0o700 });
  const tronKeyFile = join(t.root, 'bob-tron-key');
  writeFileSync(tronKeyFile, reg.chain.accounts[2]!.privateKey, { mode: 0o600 });
  const chainArgs = ['--full-host', reg.chain.url, '--tron-key-file', tronKeyFile];
  const cli = async (args: string[]) => {
    const r = await runCliAsync(env, [...args, '--data-dir', bobDir]);
    return r;
  };
  const ok = async (args: string[]) => {
    const r = await cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    return r;
  };
  await ok(['init', '--kdf', 'fast']);
  await ok(['register', 'bob', '--registry', reg.contract, ...chainArgs]);
  const bobOld = readKeyFile(join(bobDir, 'identity.json'), PASS);

  const alice = await t.make('alice', { registry: reg.client(null) });
  let bob = await t.make('bob', { identity: bobOld, dbPath: join(bobDir, 'node.db') });
  const events: { type: string; alias?: unknown }[] = [];
  const off = alice.events.subscribe((ev) => {
    if (String(ev.type).startsWith('contact.')) events.push(ev as { type: string; alias?: unknown });
  });

  assert.equal((await alice.send({ to: 'bob', subject: 'before', body: 'pin me', wait: true, waitMs: 10_000 })).state, 'delivered');
  assert.equal(alice.store.getContact('bob')!.identityKey, toHex(bobOld.identityKey));
  // Bob writes back: his node now has a session with alice, made by his old key.
  assert.equal((await bob.send({ to: alice.identity.onion, subject: 'hi alice', body: 'old bob', wait: true, waitMs: 10_000 })).state, 'delivered');

  // While his node runs, the command refuses (a typed error, one line).
  writeFileSync(join(bobDir, 'api.json'), JSON.stringify({ url: 'http://127.0.0.1:9/', pid: process.pid }), { mode: 0o600 });
  writeFileSync(join(bobDir, 'api-token'), 'x'.repeat(64), { mode: 0o600 });
  oneLineError(await cli(['keys', 'rotate', ...chainArgs]), 'NODE_RUNNING');
  rmSync(join(bobDir, 'api.json'));
  assert.equal(readKeyFile(join(bobDir, 'identity.json'), PASS).onion, bobOld.onion, 'nothing changed');

  await bob.close();
  const queued = await alice.send({ to: 'bob', subject: 'while you were away', body: 'queued for the old key' });
  assert.equal(queued.state, 'queued');

  const out = await ok(['keys', 'rotate', ...chainArgs, '--kdf', 'fast', '--json']);
  const r = JSON.parse(out.out) as { previousOnion: string; onion: string; retiredKeyFile: string; registry: { name: string; version: number } };
  assert.equal(r.previousOnion, bobOld.onion);
  assert.notEqual(r.onion, bobOld.onion);
  assert.deepEqual([r.registry.name, r.registry.version], ['bob', 2]);
  const bobNew = readKeyFile(join(bobDir, 'identity.json'), PASS);
  assert.equal(bobNew.onion, r.onion, 'identity.json is the new identity');
  assert.equal(readKeyFile(r.retiredKeyFile, PASS).onion, bobOld.onion, 'the old key is kept');
  assert.equal(statSync(r.retiredKeyFile).mode & 0o777, 0o600);
  assert.ok(!existsSync(join(bobDir, 'identity.next.json')));
  const rec = (await reg.client(null).resolveName('bob'))!;
  assert.equal(rec.onion, r.onion);
  assert.deepEqual(rec.rotation?.oldIdentity, bobOld.identityKey, 'the record carries the statement from the old key');

  // Bob starts again on the same store, under the new key.
  bob = await t.make('bob-rotated', { identity: bobNew, dbPath: join(bobDir, 'node.db') });

  // Bob writes first: his mail comes from his new identity, in a fresh agreement, not on the
  // session his old key made with alice (reset when his node opened the store under the new key).
  const back = await bob.send({ to: alice.identity.onion, subject: 'from new bob', body: 'new bob', wait: true, waitMs: 10_000 });
  assert.equal(back.state, 'delivered');
  await eventually(() => alice.store.getMessage(back.id) !== null, 5_000, 'alice has it');
  assert.equal(alice.store.getMessage(back.id)!.peerIdentity, toHex(bobNew.identityKey));

  // Alice's node follows (its periodic recheck looks at contacts with mail queued for them).
  await alice.recheckContacts();
  assert.equal(alice.store.getContact('bob')!.identityKey, toHex(bobNew.identityKey), 're-pinned to the new key');
  assert.equal(alice.store.getContact('bob')!.keyChange, null);
  assert.ok(events.some((e) => e.type === 'contact.rotated' && e.alias === 'bob'), 'a rotated notice');
  assert.ok(!events.some((e) => e.type === 'contact.keyChange'), 'no attack warning');
  assert.ok(!alice.status().warnings.some((w) => w.alias === 'bob'));
  const old = alice.store.getMessage(queued.id)!;
  assert.equal(old.state, 'failed');
  const copyId = /\(([0-9a-f]+)\)$/.exec(old.stateReason ?? '')?.[1];
  assert.ok(copyId, `the old copy names its re-sent copy: ${old.stateReason}`);
  await eventually(() => bob.store.getMessage(copyId)?.body === 'queued for the old key', 10_000, 'the queued mail reached the new identity');
  assert.equal(alice.store.getMessage(copyId)!.peerOnion, bobNew.onion);

  const after = await alice.send({ to: 'bob', subject: 'after', body: 'to the new key', wait: true, waitMs: 10_000 });
  assert.deepEqual([after.state, after.to], ['delivered', bobNew.onion]);
  assert.equal(bob.store.getMessage(after.id)?.body, 'to the new key');

  // A change with no statement (someone else's key) still alerts and holds.
  await reg.client(2).update(generateIdentity(), { rotation: null });
  const held = await alice.send({ to: 'bob', subject: 'in doubt', body: 'hold me' });
  assert.equal(held.state, 'held');
  assert.ok(events.some((e) => e.type === 'contact.keyChange' && e.alias === 'bob'), 'the key-change alert');
  assert.equal(alice.store.getContact('bob')!.identityKey, toHex(bobNew.identityKey), 'the pin stays');
  off();
});

test('keys rotate without a registry record: NOT_REGISTERED, unless --local-only (a new identity, the old key kept)', async () => {
  const dir = join(t.root, 'carol');
  const run = (args: string[]) => runCliAsync(env, [...args, '--data-dir', dir]);
  assert.equal((await run(['init', '--kdf', 'fast'])).code, 0);
  const before = readKeyFile(join(dir, 'identity.json'), PASS);
  oneLineError(await run(['keys', 'rotate']), 'NOT_REGISTERED');
  assert.equal(readKeyFile(join(dir, 'identity.json'), PASS).onion, before.onion, 'nothing changed');

  const r = await run(['keys', 'rotate', '--local-only', '--kdf', 'fast']);
  assert.equal(r.code, 0, r.err);
  const now = readKeyFile(join(dir, 'identity.json'), PASS);
  assert.notEqual(now.onion, before.onion);
  assert.match(r.out, new RegExp(`your address is now ${now.onion}`));
  assert.match(r.out, /registry: +not updated \(--local-only\): give your contacts the new address/);
  assert.match(r.out, /Start your node again: .*onionpost start --data-dir /);
  assert.equal(readKeyFile(join(dir, `identity.retired-${before.onion.slice(0, 16)}.json`), PASS).onion, before.onion);
});
