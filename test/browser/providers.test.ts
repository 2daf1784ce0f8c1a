/**
 * The provider directory on the Mailboxes page (issue 12 item 3), driven in Debian's Chromium: the
 * user's node reads the directory contract on the dev chain; its listings show with their terms,
 * price and stake; a priced one shows the command that pays it and says the page cannot pay (the
 * node holds no TRON key); "Use" on a free one subscribes there (the node's mailboxes.add), after
 * which it is listed among the user's providers and marked as used.
 *
 * Nodes run in this process on the loopback network (no Tor). Screenshot: providers.png.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { TronWeb } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { deployContract } from '../../src/contract/index.js';
import { generateIdentity, type Identity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { createProviderDirectory, type ProviderDirectory } from '../../src/registry/index.js';
import { createWebHandler } from '../../src/web/index.js';
import { CHROMIUM_ARGS, KEEP_SHOTS, SHOTS, jsErrors, openUi, shot } from '../fixtures/browser.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

const CTX = { viewport: { width: 1200, height: 900 }, reducedMotion: 'reduce' as const, locale: 'en-GB', timezoneId: 'UTC' };
const MIN_STAKE = 100_000_000n;

let chain: DevChain;
let t: TestNodes;
let browser: Browser;
let user: OnionpostNode;
let free: Identity;
let priced: Identity;
const clients: ProviderDirectory[] = [];

function directoryClient(contract: string, account?: number): ProviderDirectory {
  const c = createProviderDirectory({ fullHost: chain.url, contractAddress: contract, pollIntervalMs: 20, ...(account === undefined ? {} : { tronPrivateKey: chain.accounts[account]!.privateKey }) });
  clients.push(c);
  return c;
}

before(async () => {
  chain = await startDevChain({ accounts: 4 });
  const tw = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
  const contract = (await deployContract({ tronWeb: tw, timeoutMs: 10_000, pollIntervalMs: 50 }, 'ProviderDirectory', [Number(MIN_STAKE), 3 * 24 * 3600])).address;
  t = await testNodes('onionpost-web-providers-');
  free = generateIdentity();
  priced = generateIdentity();
  await directoryClient(contract, 1).register(free, { retentionDays: 14, quotaMB: 256, token: null, price: 0n }, MIN_STAKE);
  await directoryClient(contract, 2).register(priced, { retentionDays: 30, quotaMB: 512, token: null, price: 5_000_000n }, 2n * MIN_STAKE);
  await t.make('free', { identity: free, provider: { dbPath: join(t.root, 'free-held.db') } });
  user = await t.make('user', { directory: directoryClient(contract), api: { token: randomBytes(32).toString('hex'), web: createWebHandler({ logger: silentLogger() }) } });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await t?.cleanup();
  for (const c of clients) c.close();
  await chain?.close();
  if (!KEEP_SHOTS) rmSync(SHOTS, { recursive: true, force: true });
});

test('the directory\'s providers show with terms, price and stake; a priced one shows how to pay; "Use" subscribes at a free one', async () => {
  const page = await openUi(await browser.newContext(CTX), user, '#/mailboxes');
  const freeCard = page.locator(`[data-testid="directory-listing"][data-onion="${free.onion}"]`);
  const pricedCard = page.locator(`[data-testid="directory-listing"][data-onion="${priced.onion}"]`);
  await freeCard.waitFor();
  assert.equal(await page.locator('[data-testid="directory-listing"]').count(), 2);
  assert.equal(await freeCard.locator('[data-testid="directory-price"]').textContent(), 'free');
  assert.equal(await freeCard.locator('[data-testid="directory-retention"]').textContent(), '14 days');
  assert.equal(await freeCard.locator('[data-testid="directory-quota"]').textContent(), '256 MB');
  assert.equal(await freeCard.locator('[data-testid="directory-stake"]').textContent(), '100 TRX locked');
  assert.equal(await pricedCard.locator('[data-testid="directory-price"]').textContent(), '5 TRX per 30 days');
  assert.equal(await pricedCard.locator('[data-testid="directory-stake"]').textContent(), '200 TRX locked');
  assert.equal(await pricedCard.locator('[data-testid="directory-pay"] code').textContent(), `onionpost providers pay ${chain.accounts[2]!.address} --periods 1`);
  assert.match((await pricedCard.locator('[data-testid="directory-pay"]').textContent())!, /TRON key, which your node does not hold/);
  assert.equal(await freeCard.locator('[data-testid="directory-pay"]').count(), 0);
  // The directory policy: off by default, each listing judged by its filters (the priced one is unpaid).
  assert.equal(await freeCard.locator('[data-testid="directory-eligible"]').textContent(), 'eligible');
  assert.equal(await pricedCard.locator('[data-testid="directory-eligible"]').textContent(), `not eligible: not paid: pay with \`onionpost providers pay ${priced.onion}\``);
  assert.match((await page.locator('[data-testid="directory-policy"]').textContent())!, /does not pick from these by itself.*onionpost mailboxes policy --directory on/);
  await page.evaluate("document.getElementById('m-dir-h').scrollIntoView()");
  await shot(page, 'providers');

  await freeCard.getByRole('button', { name: `Use ${free.onion}` }).click();
  await page.locator(`[data-testid="mailbox"][data-onion="${free.onion}"]`).waitFor();
  await freeCard.locator('[data-testid="directory-ours"]', { hasText: 'use it' }).waitFor();
  assert.equal(await freeCard.locator('[data-testid="directory-use"]').count(), 0, 'no "Use" on one we use');
  assert.deepEqual(user.mailboxes.list().map((m) => m.onion), [free.onion]);
  assert.doesNotMatch(await page.locator('main').innerText(), /\b(null|undefined|NaN)\b/);
  assert.deepEqual(jsErrors(page), []);
});
