/**
 * A user's mailbox providers (issue 11, `mailboxes add|list|remove`), with whole nodes over real ws
 * on 127.0.0.1 and real SQLite files: one node runs the provider role, the user's node subscribes
 * there (signed SUBSCRIBE, signed TERMS verified), remembers it, shows it in status, and lists it in
 * the bundle it hands out; refusals and unreachable or non-provider onions store nothing; remove
 * takes it out again. One round trip through the real `onionpost` CLI against the running node.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex } from '../../src/bytes.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { MailboxesError, type MailboxView, type OnionpostNode } from '../../src/node/index.js';
import { PeerConnection } from '../../src/protocol/index.js';
import { DOMAINS, termsBody, verify } from '../../src/provider/statements.js';
import { decodeBundle, decodeBundleAnswer, verifyBundle } from '../../src/session/index.js';
import { API_ENDPOINT_FILE, API_TOKEN_FILE } from '../../src/api/index.js';
import { dialWs } from '../../src/transport/index.js';
import { cliEnv, oneLineError, runCliAsync } from '../fixtures/cli.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

let t: TestNodes;
let provider: OnionpostNode;
let user: OnionpostNode;
const TOKEN = 'b'.repeat(64);

before(async () => {
  t = await testNodes('onionpost-mailboxes-');
  provider = await t.make('provider', { provider: { dbPath: join(t.root, 'provider-held.db') } });
  user = await t.make('user', { api: { token: TOKEN } });
});
after(() => t.cleanup());

/** The bundle `node` hands out to anyone who asks, decoded and verified. */
async function bundleOf(node: OnionpostNode) {
  const channel = await dialWs({ url: `ws://127.0.0.1:${node.status().listener!.port}/`, limits: DEFAULT_LIMITS });
  const conn = new PeerConnection({ channel, role: 'client' });
  try {
    await conn.ready;
    const a = decodeBundleAnswer(await conn.requestBundle({ timeoutMs: 10_000 }));
    verifyBundle(a.bundle, { now: Date.now(), maxClockSkewMs: DEFAULT_LIMITS.maxClockSkewMs, expectedIdentity: node.identity.identityKey });
    return a;
  } finally {
    await conn.close();
  }
}

const rejectsWith = (p: Promise<unknown>, code: string) => assert.rejects(p, (e: unknown) => e instanceof MailboxesError && e.code === code);

test('add: subscribed with verified terms, stored, listed, in status and in the bundle the node hands out; remove takes it out', async () => {
  assert.deepEqual((await bundleOf(user)).bundle.mailboxes, []);
  const before = (await bundleOf(user)).bundle.bytes;

  const m = await user.mailboxes.add(provider.identity.onion) as MailboxView;
  assert.equal(m.onion, provider.identity.onion);
  assert.equal(m.terms.retentionMs, 14 * 24 * 3600 * 1000);
  assert.equal(m.lastFetchAt, null);
  // The terms as stored are the provider's signature over them, for us.
  assert.ok(verify(provider.identity.identityKey, DOMAINS.terms,
    termsBody(provider.identity.identityKey, user.identity.identityKey, m.terms.retentionMs, m.terms.quotaBytes, m.terms.time), fromHex(m.terms.signature)));
  // The provider holds an account for us now.
  assert.equal(provider.status().provider?.users, 1);

  // (What a provider says of our account and when we fetched move on: the node fetches a provider
  // it just added at once, so it is watched; the subscription itself is what stays.)
  const steady = (v: MailboxView) => ({ onion: v.onion, identityKey: v.identityKey, terms: v.terms, subscribedAt: v.subscribedAt });
  assert.deepEqual((user.handlers['mailboxes.list']!({}) as MailboxView[]).map(steady), [steady(m)]);
  assert.deepEqual(user.store.mailboxProviders.list().map((p) => p.onion), [provider.identity.onion]);
  assert.deepEqual(user.status().mailboxes.map(steady), [steady(m)]);
  await eventually(() => user.mailboxes.list()[0]?.lastFetchAt !== null, 10_000, 'a provider just added is fetched at once');

  const a = await bundleOf(user);
  assert.deepEqual(a.bundle.mailboxes, [provider.identity.onion]);
  assert.ok(a.oneTimePrekey, 'the one-time prekey is still handed out with the re-signed bundle');
  // Same keys as the bundle without mailboxes: only the list (and the signature) changed.
  const b = decodeBundle(before);
  assert.deepEqual([a.bundle.signedPrekeyId, a.bundle.pqPrekeyId, a.bundle.encryptionKey], [b.signedPrekeyId, b.pqPrekeyId, b.encryptionKey]);

  // Adding again renews the subscription, still one entry.
  await user.mailboxes.add(provider.identity.onion);
  assert.equal(user.mailboxes.list().length, 1);

  const removed = await user.handlers['mailboxes.remove']!({ onion: provider.identity.onion }) as MailboxView;
  assert.equal(removed.onion, provider.identity.onion);
  assert.deepEqual(user.mailboxes.list(), []);
  assert.deepEqual(user.status().mailboxes, []);
  assert.deepEqual((await bundleOf(user)).bundle.mailboxes, []);
  assert.throws(() => user.mailboxes.remove(provider.identity.onion), (e: unknown) => e instanceof MailboxesError && e.code === 'NOT_FOUND');
});

test('a non-provider onion, an onion that is not online, a bad address and a refusal are typed errors; nothing is stored', async () => {
  const plain = await t.make('plain');
  await rejectsWith(user.mailboxes.add(plain.identity.onion), 'NOT_A_PROVIDER');
  await rejectsWith(user.mailboxes.add(generateIdentity().onion), 'UNREACHABLE');
  await rejectsWith(user.mailboxes.add('not-an-onion.onion'), 'BAD_ADDRESS');
  const full = await t.make('full', { provider: { dbPath: join(t.root, 'full-held.db'), limits: { maxUsers: 0 } } });
  await assert.rejects(user.mailboxes.add(full.identity.onion), (e: unknown) => e instanceof MailboxesError && e.code === 'TOO_MANY_USERS' && e.retryable === false);
  assert.deepEqual(user.mailboxes.list(), []);
  assert.deepEqual((await bundleOf(user)).bundle.mailboxes, []);
});

test('at most 8 providers: a ninth is refused before anything is sent', async () => {
  const other = await t.make('crowded');
  const sig = new Uint8Array(64);
  for (let i = 0; i < 8; i++) {
    const id = generateIdentity();
    other.store.mailboxProviders.put({ onion: id.onion, identityKey: Buffer.from(id.identityKey).toString('hex'), terms: { retentionMs: 1, quotaBytes: 1, time: i, sig }, subscribedAt: i });
  }
  const usersBefore = provider.status().provider?.users;
  await rejectsWith(other.mailboxes.add(provider.identity.onion), 'TOO_MANY_MAILBOXES');
  assert.equal(provider.status().provider?.users, usersBefore, 'the provider was not asked');
  assert.equal(other.mailboxes.list().length, 8);
  assert.equal((await bundleOf(other)).bundle.mailboxes.length, 8);
});

test('CLI: mailboxes add, list --json, status --json and remove against the running node; a refusal is one line with its code', async () => {
  const dataDir = join(t.root, 'user-data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, API_ENDPOINT_FILE), JSON.stringify({ url: user.apiUrl, pid: process.pid }));
  writeFileSync(join(dataDir, API_TOKEN_FILE), TOKEN, { mode: 0o600 });
  const env = cliEnv(t.root);
  const cli = (...args: string[]) => runCliAsync(env, [...args, '--data-dir', dataDir]);

  const add = await cli('mailboxes', 'add', provider.identity.onion);
  assert.equal(add.code, 0, add.err);
  assert.match(add.out, /^Subscribed at .*: it keeps mail 14 days, up to 256 MB\n$/);
  const list = await cli('mailboxes', 'list', '--json');
  assert.equal(list.code, 0, list.err);
  const views = JSON.parse(list.out) as MailboxView[];
  assert.deepEqual(views.map((v) => v.onion), [provider.identity.onion]);
  const status = JSON.parse((await cli('status', '--json')).out) as { mailboxes: MailboxView[] };
  assert.deepEqual(status.mailboxes.map((v) => v.onion), [provider.identity.onion]);
  const plain = await cli('status');
  assert.match(plain.out, new RegExp(`mailboxes: ${provider.identity.onion}`));

  const rm = await cli('mailboxes', 'remove', provider.identity.onion, '--json');
  assert.equal(rm.code, 0, rm.err);
  assert.equal((JSON.parse(rm.out) as MailboxView).onion, provider.identity.onion);
  oneLineError(await cli('mailboxes', 'remove', provider.identity.onion), 'NOT_FOUND');
  oneLineError(await cli('mailboxes', 'add', generateIdentity().onion), 'UNREACHABLE');
  assert.deepEqual(user.mailboxes.list(), []);
});
