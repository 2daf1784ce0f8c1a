/**
 * The node's providers.* API (issue 12 item 3) over real HTTP, against the provider directory
 * contract on the dev chain: a listed provider comes back with its terms, price and stake; one we
 * subscribed at is marked ours; `show` finds one by onion or owner and adds what the node measured;
 * unknown or malformed names and a node without a directory answer with their codes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateIdentity, type Identity } from '../../src/crypto/index.js';
import { apiClient, RemoteError, type ApiClient } from '../../src/api/index.js';
import type { ProviderTerms } from '../../src/registry/index.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { DIRECTORY_MIN_STAKE as MIN_STAKE, startDirectoryChain, type DirectoryChain } from '../fixtures/directory-chain.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

const TOKEN = 'test-token-providers-api';
let dc: DirectoryChain;
let nodes: TestNodes;
let free: Identity;
let priced: Identity;
let user: OnionpostNode;
let api: ApiClient;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RemoteError, String(err));
    return err.code;
  }
  return 'ok';
}

before(async () => {
  dc = await startDirectoryChain({ accounts: 4 });
  nodes = await testNodes('onionpost-api-providers-');
  free = generateIdentity();
  priced = generateIdentity();
  await dc.client(1).register(free, { retentionDays: 14, quotaMB: 256, token: null, price: 0n }, MIN_STAKE);
  await dc.client(2).register(priced, { retentionDays: 30, quotaMB: 512, token: null, price: 5_500_000n } satisfies ProviderTerms, 2n * MIN_STAKE);
  // The free one runs as a provider on the loopback network, so the user can subscribe there.
  await nodes.make('free', { identity: free, provider: { dbPath: join(nodes.root, 'free-held.db') } });
  user = await nodes.make('user', { directory: dc.client(), api: { token: TOKEN } });
  api = apiClient(user.apiUrl!, TOKEN);
});

after(async () => {
  await nodes?.cleanup();
  await dc?.close();
});

interface Listing {
  owner: string; onion: string; status: string; ours: boolean; paidUntil: number | null; reputation: unknown; stakeSun: string; stake: string;
  terms: { retentionDays: number; quotaMB: number; token: string | null; pricePer30Days: string; price: string };
}

test('providers.list shows each listed provider with its terms, price and stake, and marks the one we subscribed at as ours', async () => {
  let page = await api.call<{ total: number; providers: Listing[] }>('providers.list');
  assert.equal(page.total, 2);
  const byOnion = new Map(page.providers.map((p) => [p.onion, p]));
  const f = byOnion.get(free.onion);
  const p = byOnion.get(priced.onion);
  assert.ok(f && p, 'both listings');
  assert.deepEqual(p.terms, { retentionDays: 30, quotaMB: 512, token: null, pricePer30Days: '5500000', price: '5.5 TRX per 30 days' });
  assert.equal(p.stakeSun, '200000000');
  assert.equal(p.stake, '200 TRX');
  assert.equal(p.owner, dc.chain.accounts[2]!.address);
  assert.equal(p.status, 'listed');
  assert.deepEqual(f.terms, { retentionDays: 14, quotaMB: 256, token: null, pricePer30Days: '0', price: 'free' });
  assert.equal(f.ours, false);
  assert.equal(f.paidUntil, null);

  await api.call('mailboxes.add', { onion: free.onion });
  page = await api.call<{ total: number; providers: Listing[] }>('providers.list');
  assert.deepEqual(page.providers.map((x) => [x.onion, x.ours]).sort(), [[free.onion, true], [priced.onion, false]].sort());
});

test('providers.show finds a listing by onion or by owner, with what the node measured of it; unknown and malformed names get their codes', async () => {
  const byOnion = await api.call<Listing & { measured: { onion: string; history: unknown[] } }>('providers.show', { provider: priced.onion });
  assert.equal(byOnion.owner, dc.chain.accounts[2]!.address);
  assert.equal(byOnion.measured.onion, priced.onion);
  assert.ok(Array.isArray(byOnion.measured.history));
  const byOwner = await api.call<Listing>('providers.show', { provider: dc.chain.accounts[1]!.address });
  assert.equal(byOwner.onion, free.onion);
  assert.equal(await code(api.call('providers.show', { provider: generateIdentity().onion })), 'NOT_FOUND');
  assert.equal(await code(api.call('providers.show', { provider: 'not-a-provider' })), 'BAD_PROVIDER');
});

test('a node started without a directory answers NO_DIRECTORY', async () => {
  const bare = await nodes.make('bare', { api: { token: TOKEN } });
  assert.equal(await code(apiClient(bare.apiUrl!, TOKEN).call('providers.list')), 'NO_DIRECTORY');
});
