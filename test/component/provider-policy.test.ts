/**
 * The directory policy (issue 12 item 3: "a node choosing providers by policy"), over the node's
 * API on real HTTP, against the provider directory contract on the dev chain, with real provider
 * nodes on the loopback network and real SQLite.
 *
 *   listed:   good      free, stake 300 TRX, keeps mail 14 days          eligible
 *             lowStake  free, stake 150 TRX                            below the policy's 200 TRX
 *             short     free, stake 900 TRX, keeps mail 3 days         below the policy's 7 days
 *             unpaid    5 TRX per 30 days, stake 1000 TRX              fits, but the user has not paid
 *             paid      5 TRX per 30 days, stake 250 TRX, paid by the user (another TRON account)
 *   p0:       not listed; the user's provider until it stops answering.
 *
 * Every provider node serves anyone (none checks payments), so a wrong pick would succeed and show.
 * With the policy off, the user's node keeps p0 when it goes away; on, it replaces p0 by `good` (the
 * ineligible ones have higher stakes, so the filters are what keeps them out), then fills up to the
 * target with `paid` and names `unpaid` with the command that pays it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateIdentity, subscriberTag, subscriberTagKey, type Identity } from '../../src/crypto/index.js';
import { apiClient, RemoteError, type ApiClient } from '../../src/api/index.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { startDirectoryChain, type DirectoryChain } from '../fixtures/directory-chain.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

const TRX = 1_000_000n;
const TOKEN = 'test-token-provider-policy';
let dc: DirectoryChain;
let nodes: TestNodes;
const id: Record<'user' | 'p0' | 'good' | 'lowStake' | 'short' | 'unpaid' | 'paid', Identity> = {} as never;
const providers = new Map<string, OnionpostNode>();
let user: OnionpostNode;
let api: ApiClient;

interface Judged { onion: string; eligible: boolean; reason: string | null }
interface Review { replaced: { dropped: string; added: string }[]; kept: { provider: string }[]; added: string[]; payable: { provider: string; message: string }[] }

async function judged(): Promise<Map<string, Judged>> {
  const page = await api.call<{ providers: Judged[]; policy: { directory: boolean } }>('providers.list');
  return new Map(page.providers.map((p) => [p.onion, p]));
}
const users = (who: keyof typeof id) => providers.get(who)!.status().provider!.users;
const ours = async () => (await api.call<{ onion: string }[]>('mailboxes.list')).map((m) => m.onion);

before(async () => {
  dc = await startDirectoryChain({ accounts: 7 });
  nodes = await testNodes('onionpost-provider-policy-');
  for (const k of Object.keys({ user: 0, p0: 0, good: 0, lowStake: 0, short: 0, unpaid: 0, paid: 0 }) as (keyof typeof id)[]) id[k] = generateIdentity();
  const listed: [keyof typeof id, number, bigint, number, bigint][] = [
    ['good', 1, 300n, 14, 0n], ['lowStake', 2, 150n, 30, 0n], ['short', 3, 900n, 3, 0n], ['unpaid', 4, 1000n, 30, 5n], ['paid', 5, 250n, 30, 5n],
  ];
  await Promise.all(listed.map(([k, account, stake, retentionDays, price]) =>
    dc.client(account).register(id[k], { retentionDays, quotaMB: 256, token: null, price: price * TRX }, stake * TRX)));
  // The user pays `paid` from a TRON account of its own, under the user's subscriber tag for it.
  await dc.client(6).pay(dc.chain.accounts[5]!.address, subscriberTag(subscriberTagKey(id.user), id.paid.identityKey), 1);
  for (const k of ['p0', ...listed.map((l) => l[0])] as (keyof typeof id)[]) {
    providers.set(k, await nodes.make(k, { identity: id[k], provider: { dbPath: join(nodes.root, `${k}-held.db`) } }));
  }
  // A provider none of whose fetches worked is to be replaced at once (the default waits 2 days).
  user = await nodes.make('user', { identity: id.user, directory: dc.client(), api: { token: TOKEN }, mailboxReview: { unreachableReplaceMs: 0 } });
  api = apiClient(user.apiUrl!, TOKEN);
});

after(async () => {
  await nodes?.cleanup();
  await dc?.close();
});

test('providers.list says which listings pass the policy and why the others do not; the policy is checked and stored', async () => {
  const policy = await api.call<{ directory: boolean; target: number }>('mailboxes.setPolicy', { minStakeSun: String(200n * TRX), minRetentionDays: 7 });
  assert.equal(policy.directory, false, 'off until the user turns it on');
  assert.equal(policy.target, 2);
  let j = await judged();
  assert.deepEqual([...j.values()].filter((x) => x.eligible).map((x) => x.onion).sort(), [id.good.onion, id.paid.onion].sort());
  assert.equal(j.get(id.lowStake.onion)!.reason, 'stake below your minimum');
  assert.equal(j.get(id.short.onion)!.reason, 'keeps mail for too short a time');
  assert.equal(j.get(id.unpaid.onion)!.reason, `not paid: pay with \`onionpost providers pay ${id.unpaid.onion}\``);
  assert.equal(j.get(id.good.onion)!.reason, null);

  await api.call('mailboxes.setPolicy', { freeOnly: true });
  assert.equal((await judged()).get(id.paid.onion)!.reason, 'not free');
  await api.call('mailboxes.setPolicy', { freeOnly: false, maxPrice: { amount: String(TRX), token: null } });
  j = await judged();
  assert.equal(j.get(id.paid.onion)!.reason, 'costs more than your maximum');
  assert.equal(j.get(id.unpaid.onion)!.reason, 'costs more than your maximum');
  await api.call('mailboxes.setPolicy', { maxPrice: null });

  await assert.rejects(api.call('mailboxes.setPolicy', { maxPrice: { amount: '5', token: 'not-a-tron-address' } }), (e: unknown) => e instanceof RemoteError && e.code === 'BAD_POLICY');
  await assert.rejects(api.call('mailboxes.setPolicy', { target: 0 }), (e: unknown) => e instanceof RemoteError);
  const stored = await api.call<{ minStakeSun: string; maxPrice: unknown; freeOnly: boolean }>('mailboxes.policy');
  assert.deepEqual([stored.minStakeSun, stored.maxPrice, stored.freeOnly], [String(200n * TRX), null, false]);
});

test('policy off: a provider of ours that stops answering is kept, and nothing is taken from the directory', async () => {
  await api.call('mailboxes.add', { onion: id.p0.onion });
  await providers.get('p0')!.close();
  await user.fetchMailboxes().catch(() => {});
  const r = await api.call<Review>('mailboxes.review');
  assert.deepEqual(r.kept.map((k) => k.provider), [id.p0.onion]);
  assert.deepEqual([r.replaced, r.added], [[], []]);
  assert.deepEqual(await ours(), [id.p0.onion]);
});

test('policy on: the provider that stopped answering is replaced by the best eligible listing, never an ineligible one; then filled up with the paid one', async () => {
  await api.call('mailboxes.setPolicy', { directory: true, target: 1 });
  let r = await api.call<Review>('mailboxes.review');
  assert.deepEqual(r.replaced.map((x) => [x.dropped, x.added]), [[id.p0.onion, id.good.onion]]);
  assert.deepEqual(await ours(), [id.good.onion]);
  assert.equal(users('good'), 1);
  for (const k of ['lowStake', 'short', 'unpaid', 'paid'] as const) assert.equal(users(k), 0, `${k} was not subscribed at`);

  // Three wanted: the paid listing joins; the unpaid one is named with the command that pays it, and not used.
  await api.call('mailboxes.setPolicy', { target: 3 });
  r = await api.call<Review>('mailboxes.review');
  assert.deepEqual(r.added, [id.paid.onion]);
  assert.deepEqual((await ours()).sort(), [id.good.onion, id.paid.onion].sort());
  assert.equal(users('paid'), 1);
  for (const k of ['lowStake', 'short', 'unpaid'] as const) assert.equal(users(k), 0, `${k} was not subscribed at`);
  assert.deepEqual(r.payable.map((x) => x.provider), [id.unpaid.onion]);
  assert.match(r.payable[0]!.message, new RegExp(`5 TRX per 30 days.*onionpost providers pay ${id.unpaid.onion}`));
  const status = await api.call<{ warnings: { type: string; message: string }[] }>('node.status');
  assert.ok(status.warnings.some((w) => w.type === 'mailbox.short' && w.message.includes(`providers pay ${id.unpaid.onion}`)), JSON.stringify(status.warnings));
});
