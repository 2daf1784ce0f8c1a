/**
 * A priced provider on the dev chain, end to end: a node in the provider role whose listing in the
 * provider directory has a price checks payments there (PROTOCOL.md §14.4). With the real
 * MailboxClient over 127.0.0.1 (loopback network, real ws), real SQLite and the real directory
 * contract: no payment → NOT_PAID; paid for 30 days (TRX, and the TRC-20 test token) → TERMS, and
 * deposits and fetches work; once the clock (one clock for the chain and the node) passes
 * paid-until + grace → SUBSCRIBE, DEPOSIT and FETCH each answer NOT_PAID, not retryable; paying again
 * → served again. A node listed for free serves without a tag. A user's node is told before it is
 * cut off (issue 12 item 2): paid until in 3 days → its status warns and mailbox.lapsing is emitted;
 * lapsed past the grace → ACCOUNT is still answered (paid until) while FETCH is NOT_PAID.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TronWeb } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { systemClock, type Clock } from '../../src/clock.js';
import { deployContract, loadArtifact } from '../../src/contract/index.js';
import { generateIdentity, publicQueueId, publicQueueReadCap, subscriberTag, subscriberTagKey, type Identity } from '../../src/crypto/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { loopbackNetwork } from '../../src/node/index.js';
import { DEFAULT_PROVIDER_LIMITS, DEFAULT_SERVICE_LIMITS, MAILBOX_PATH, MailboxClient, MailboxErrorCode, ProviderError } from '../../src/provider/index.js';
import { createProviderDirectory, type ProviderDirectory, type ProviderTerms } from '../../src/registry/index.js';
import { API_ENDPOINT_FILE, API_TOKEN_FILE } from '../../src/api/index.js';
import { cliEnv, runCliAsync } from '../fixtures/cli.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const MIN_STAKE = 100_000_000n;
const DAY = 24 * 3600 * 1000;
let chain: DevChain;
let nodes: TestNodes;
let directory: string;
let token: string;
let reader: ProviderDirectory;
const closers: { close(): unknown }[] = [];
/** Real timers, and a time that the test moves: the chain's blocks and the node's checks both read it. */
let skew = 0;
const clock: Clock = { now: () => Date.now() + skew, setTimeout: systemClock.setTimeout, clearTimeout: systemClock.clearTimeout };

function directoryClient(account?: number): ProviderDirectory {
  const c = createProviderDirectory({
    fullHost: chain.url, contractAddress: directory, pollIntervalMs: 20,
    ...(account === undefined ? {} : { tronPrivateKey: chain.accounts[account]!.privateKey }),
  });
  closers.push(c);
  return c;
}

async function mailbox(provider: Identity): Promise<MailboxClient> {
  const channel = await loopbackNetwork(join(nodes.root, 'loopback')).dial(provider.onion, { signal: AbortSignal.timeout(10_000), timeoutMs: 10_000, limits: {}, path: MAILBOX_PATH });
  const c = new MailboxClient({ channel, providerKey: provider.identityKey, clock, maxEnvelope: DEFAULT_LIMITS.maxEnvelope });
  closers.push(c);
  return c;
}

/** The provider's refusal: its wire code's name and whether it said to retry; 'ok' if none. */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ProviderError && err.code === 'REMOTE', String(err));
    return `${Object.entries(MailboxErrorCode).find(([, v]) => v === err.remoteCode)?.[0]}${err.retryable ? ' (retryable)' : ''}`;
  }
  return 'ok';
}

before(async () => {
  nodes = await testNodes('onionpost-provider-paid-');
  chain = await startDevChain({ accounts: 6, clock });
  const tw = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
  const o = { tronWeb: tw, timeoutMs: 10_000, pollIntervalMs: 50 };
  directory = (await deployContract(o, 'ProviderDirectory', [Number(MIN_STAKE), 3 * 24 * 3600])).address;
  token = (await deployContract(o, 'TestToken', ['Test USD', 'TUSD', 1_000_000_000_000])).address;
  const tok: any = tw.contract(loadArtifact('TestToken').abi as any, token);
  await tok.transfer(chain.accounts[3]!.hexAddress, 100_000_000).send({ feeLimit: 1e9 });
  reader = directoryClient();
});

after(async () => {
  for (const c of closers) await c.close();
  await nodes?.cleanup();
  await chain?.close();
});

/** Lists a provider under `owner` with `terms` and starts its node with the directory wired in. */
async function pricedProvider(name: string, owner: number, terms: ProviderTerms): Promise<{ id: Identity; owner: string }> {
  const id = generateIdentity();
  await directoryClient(owner).register(id, terms, MIN_STAKE);
  await nodes.make(name, { identity: id, clock, provider: { dbPath: join(nodes.root, `${name}-held.db`), directory: reader } });
  return { id, owner: chain.accounts[owner]!.address };
}

for (const [currency, owner] of [['TRX', 1], ['the TRC-20 test token', 2]] as const) {
  test(`paid in ${currency}: unpaid refused, paid served, lapsed refused after the grace on every request, paid again served again`, async () => {
    const terms: ProviderTerms = { retentionDays: 14, quotaMB: 10, token: currency === 'TRX' ? null : (token as never), price: 2_000_000n };
    const p = await pricedProvider(`provider-${owner}`, owner, terms);
    const user = generateIdentity();
    const tag = subscriberTag(subscriberTagKey(user), p.id.identityKey);
    const c = await mailbox(p.id);
    assert.equal(await refusal(c.subscribe(user, tag)), 'NOT_PAID');
    assert.equal(await refusal(c.subscribe(user, null)), 'NOT_PAID', 'a priced provider wants the tag');

    const payer = directoryClient(3);
    const paid = await payer.pay(p.owner, tag, 1);
    assert.equal(paid.token, terms.token);
    assert.ok(Math.abs(paid.paidUntil - (clock.now() + 30 * DAY)) < 60_000);
    assert.equal((await c.subscribe(user, tag)).retentionMs, 14 * DAY);
    const queue = new Uint8Array(16).fill(owner);
    const write = new Uint8Array(32).fill(2);
    const read = new Uint8Array(32).fill(3);
    await c.createQueue(user, queue, { write, read });
    await c.deposit(queue, write, new Uint8Array(1024).fill(1));
    assert.deepEqual((await c.fetch(queue, read)).map((h) => h.seq), [1]);

    // Inside the grace the subscription is still served; one minute past it, nothing is.
    skew += paid.paidUntil - clock.now() + DEFAULT_SERVICE_LIMITS.graceMs - 60_000;
    await c.deposit(queue, write, new Uint8Array(1024).fill(2));
    skew += 2 * 60_000;
    assert.equal(await refusal(c.deposit(queue, write, new Uint8Array(1024).fill(3))), 'NOT_PAID');
    assert.equal(await refusal(c.fetch(queue, read)), 'NOT_PAID');
    assert.equal(await refusal(c.subscribe(user, tag)), 'NOT_PAID');
    // Someone without the capability learns nothing new from a lapsed queue.
    assert.equal(await refusal(c.deposit(queue, new Uint8Array(32).fill(9), new Uint8Array(1024).fill(4))), 'NO_CAPABILITY');

    await payer.pay(p.owner, tag, 1);
    await c.subscribe(user, tag);
    await c.deposit(queue, write, new Uint8Array(1024).fill(5));
    assert.deepEqual((await c.fetch(queue, read)).map((h) => h.seq), [1, 2, 3]);
  });
}

test('a provider listed for free serves without a tag', async () => {
  const p = await pricedProvider('provider-free', 4, { retentionDays: 7, quotaMB: 10, token: null, price: 0n });
  const user = generateIdentity();
  const c = await mailbox(p.id);
  // The retention served is the node's own (--provider-retention-days), not the listing's.
  assert.equal((await c.subscribe(user, null)).retentionMs, 14 * DAY);
  const queue = new Uint8Array(16).fill(0x44);
  await c.createQueue(user, queue, { write: null, read: new Uint8Array(32).fill(1) });
  assert.equal(await refusal(c.deposit(queue, null, new Uint8Array(1024))), 'ok');
});

test('the user is told before a priced provider stops: its node warns 3 days ahead, and once lapsed still learns why while FETCH is NOT_PAID', async () => {
  const p = await pricedProvider('provider-lapse', 5, { retentionDays: 14, quotaMB: 10, token: null, price: 1_000_000n });
  const token = 'c'.repeat(64);
  const user = await nodes.make('lapse-user', { clock, api: { token } });
  const dataDir = join(nodes.root, 'lapse-user-data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, API_ENDPOINT_FILE), JSON.stringify({ url: user.apiUrl, pid: process.pid }));
  writeFileSync(join(dataDir, API_TOKEN_FILE), token, { mode: 0o600 });
  const cli = (...args: string[]) => runCliAsync(cliEnv(nodes.root), [...args, '--data-dir', dataDir]);
  const events: { type: string; [k: string]: unknown }[] = [];
  const unsubscribe = user.events.subscribe((ev) => void (ev.type === 'mailbox.lapsing' && events.push(ev)));
  try {
    const tag = subscriberTag(subscriberTagKey(user.identity), p.id.identityKey);
    const payer = directoryClient(3);
    const paid = await payer.pay(p.owner, tag, 1);
    // Subscribing asks how the account stands at once: paid for 30 days, nothing held (the quota is the
    // node's own, not the listing's), no warning.
    const added = await user.mailboxes.add(p.id.onion);
    assert.deepEqual([added.paidUntil, added.graceMs, added.held, added.warning], [paid.paidUntil, DEFAULT_SERVICE_LIMITS.graceMs, { count: 0, bytes: 0, quotaBytes: DEFAULT_PROVIDER_LIMITS.quotaBytes }, null]);
    await user.fetchMailboxes();
    assert.deepEqual(user.status().warnings, []);

    // 3 days before paid-until: the next fetch round learns it; status, the list and one event say so.
    skew += paid.paidUntil - clock.now() - 3 * DAY;
    await user.fetchMailboxes();
    const day = new Date(paid.paidUntil).toISOString().slice(0, 10);
    const words = `mailbox provider ${p.id.onion} is paid until ${day}: pay with \`onionpost providers pay ${p.id.onion}\``;
    assert.deepEqual(user.status().warnings, [{ type: 'mailbox.lapsing', provider: p.id.onion, message: words }]);
    assert.equal(user.status().mailboxes[0]!.warning, words);
    assert.deepEqual(events.map((e) => [e.provider, e.state, e.paidUntil]), [[p.id.onion, 'due', paid.paidUntil]]);
    // The CLI says it in words: under `mailboxes list`, and in `status`.
    const list = await cli('mailboxes', 'list');
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, new RegExp(`PAID UNTIL\\s+HELD\\n[\\s\\S]*${p.id.onion}.*${day}\\s+0 \\(0 B of 256 MB\\)\\n`));
    assert.ok(list.out.endsWith(`\nWARNING: ${words}\n`), list.out);
    assert.ok((await cli('status')).out.includes(`WARNING:   ${words}\n`));
    await user.fetchMailboxes();
    assert.equal(events.length, 1, 'once a day, not once a round');
    const fetchedAt = user.status().mailboxes[0]!.lastFetchAt;
    assert.ok(fetchedAt !== null);

    // A minute past paid-until + grace: the provider no longer hands out mail, but still says why.
    skew += 3 * DAY + DEFAULT_SERVICE_LIMITS.graceMs + 60_000;
    const c = await mailbox(p.id);
    const s = await c.account(user.identity);
    assert.deepEqual([s.paidUntil, s.graceMs], [paid.paidUntil, DEFAULT_SERVICE_LIMITS.graceMs]);
    const queue = publicQueueId(user.identity.identityKey, p.id.identityKey);
    assert.equal(await refusal(c.fetch(queue, publicQueueReadCap(user.identity, p.id.identityKey))), 'NOT_PAID');
    await user.fetchMailboxes();
    assert.equal(user.status().mailboxes[0]!.lastFetchAt, fetchedAt, 'the fetch itself was refused');
    assert.match(user.status().warnings[0]!.message, new RegExp(`was paid until ${day} and no longer holds or hands out your mail`));
    assert.deepEqual(events.map((e) => e.state), ['due', 'lapsed']);

    // Paid again: once the provider reads the chain again (10 min on), the warning goes.
    const again = await payer.pay(p.owner, tag, 1);
    skew += 11 * 60_000;
    await user.fetchMailboxes();
    assert.deepEqual(user.status().warnings, []);
    assert.equal(user.status().mailboxes[0]!.paidUntil, again.paidUntil);
    assert.ok(user.status().mailboxes[0]!.lastFetchAt! > fetchedAt!, 'fetching again');
  } finally {
    unsubscribe();
  }
});
