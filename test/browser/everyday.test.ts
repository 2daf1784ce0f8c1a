/**
 * Everyday use of the web UI, driven as a person would in Debian's Chromium (playwright-core):
 * people by name in the inbox and in replies (contacts, verified registry names, strangers with
 * "Add to contacts"), the chat view live both ways, Enter/Ctrl+Enter, files sent and downloaded
 * byte for byte with the limit stated, search, a draft back after the node restarts, archive,
 * unread and delete, a stuck message explained in plain words with retry now and cancel, rejecting
 * a key change (a real one, on the dev chain), the safety number, notifications and the unread
 * count in the title, and the 390-px phone layout without horizontal overflow.
 *
 * Nodes run in this process on the loopback network; names on the in-process dev chain. Screenshots
 * (inbox-names, read-files, chat, contact, outbox, search, phone-*) go to docs/screenshots/ with
 * ONIONPOST_SCREENSHOTS=1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { TronWeb } from 'tronweb';
import { startDevChain, type DevChain } from '../../src/chain/index.js';
import { deployRegistry } from '../../src/contract/index.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { MESSAGE_CAPACITY } from '../../src/session/index.js';
import { silentLogger } from '../../src/log.js';
import { OnionpostNode, loopbackNetwork } from '../../src/node/index.js';
import { createTronRegistry, type IdentityRegistry } from '../../src/registry/index.js';
import { createWebHandler } from '../../src/web/index.js';
import { CHROMIUM_ARGS, KEEP_SHOTS, SHOTS, WAIT, jsErrors, openUi, phoneLayout, shot } from '../fixtures/browser.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';

const CTX = { viewport: { width: 1200, height: 800 }, reducedMotion: 'reduce' as const, locale: 'en-GB', timezoneId: 'UTC' };

let t: TestNodes;
let chain: DevChain;
let contract: string;
const registries: IdentityRegistry[] = [];
let alice: OnionpostNode;
let bob: OnionpostNode;
let browser: Browser;
let aliceCtx: BrowserContext;
let bobCtx: BrowserContext;

function registry(account: number | null): IdentityRegistry {
  const r = createTronRegistry({ fullHost: chain.url, contractAddress: contract, cacheTtlMs: 1, ...(account === null ? {} : { tronPrivateKey: chain.accounts[account]!.privateKey }) });
  registries.push(r);
  return r;
}

const web = () => createWebHandler({ logger: silentLogger() });
const api = () => ({ token: randomBytes(32).toString('hex'), web: web() });

before(async () => {
  t = await testNodes('onionpost-web-everyday-');
  chain = await startDevChain({ accounts: 6 });
  const tronWeb = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
  contract = (await deployRegistry({ tronWeb, minCommitmentAge: 0, maxCommitmentAge: 86_400, timeoutMs: 30_000 })).address;
  alice = await t.make('alice', {
    api: api(), registry: registry(null), outbox: { policy: { fastBaseMs: 120_000, fastMaxMs: 120_000, jitter: 0 } },
  });
  bob = await t.make('bob', { api: api(), registry: registry(null) });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  aliceCtx = await browser.newContext(CTX);
  bobCtx = await browser.newContext(CTX);
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  for (const r of registries) r.close();
  await t?.cleanup();
  await chain?.close();
  if (!KEEP_SHOTS) rmSync(SHOTS, { recursive: true, force: true });
});

async function go(page: Page, hash: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  await page.waitForSelector(`main[data-view="${hash.slice(2).split(/[/?]/)[0]}"]`);
}

function noErrors(page: Page): void {
  assert.deepEqual(jsErrors(page), []);
}

test('people by name: a contact by alias, a registered stranger by verified name, an unknown sender as onion + fingerprint with "Add to contacts"; a reply goes to the name', async () => {
  const carolId = generateIdentity();
  await registry(1).register(carolId, 'carol');
  const carol = await t.make('carol', { identity: carolId, registryName: 'carol' });
  const eve = await t.make('eve');
  const page = await openUi(bobCtx, bob, '#/contacts');
  // Bob adds Alice as a contact, as he would.
  await page.fill('[data-testid="contact-alias"]', 'Alice');
  await page.fill('[data-testid="contact-address"]', alice.identity.onion);
  await page.click('[data-testid="contact-add"]');
  await page.locator('[data-testid="contact"][data-alias="Alice"]').waitFor();
  await go(page, '#/inbox');

  await alice.send({ to: bob.identity.onion, subject: 'From a contact', body: 'Hello from Alice, who Bob knows.', wait: true, waitMs: WAIT });
  await carol.send({ to: bob.identity.onion, subject: 'From a registered name', body: 'Carol here.', wait: true, waitMs: WAIT });
  await eve.send({ to: bob.identity.onion, subject: 'From a stranger', body: 'Who am I?', wait: true, waitMs: WAIT });

  const from = (subject: string) => page.locator('[data-testid="thread"]', { hasText: subject }).locator('[data-testid="thread-from"]');
  await eventually(async () => (await from('From a contact').textContent()) === 'Alice', WAIT, 'Alice by alias');
  await eventually(async () => (await from('From a registered name').textContent()) === 'carol', WAIT, 'carol by her verified name');
  const stranger = from('From a stranger');
  assert.equal(await stranger.getAttribute('data-unknown'), 'true');
  assert.match((await stranger.textContent())!, /^[a-z2-7]{8}…[a-z2-7]{4}\.onion · [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4} [0-9a-f]{4}$/);
  assert.equal(await stranger.getAttribute('title'), eve.identity.onion);
  assert.match((await page.locator('[data-testid="thread"]', { hasText: 'From a contact' }).locator('[data-testid="thread-preview"]').textContent())!, /Hello from Alice/);
  // The title follows the node's counts (a debounced node.status after the events), not the list.
  await eventually(async () => /^\(3\) Inbox · onionpost$/.test(await page.title()), WAIT, 'the unread count leads the tab title');
  await shot(page, 'inbox-names');

  // The reply is addressed to the name, not to 56 characters of onion.
  await page.locator('[data-testid="thread"]', { hasText: 'From a contact' }).click();
  await page.waitForSelector('main[data-view="read"]');
  assert.equal(await page.locator('[data-testid="message-from"]').first().textContent(), 'Alice');
  await page.click('[data-testid="reply"]');
  await page.waitForSelector('main[data-view="compose"]');
  assert.equal(await page.inputValue('[data-testid="compose-to"]'), 'Alice');
  await page.fill('[data-testid="compose-body"]', 'Got it.');
  await page.click('[data-testid="compose-send"]');
  await page.waitForSelector('[data-testid="send-state"][data-state="delivered"]');
  assert.equal(await page.getAttribute('[data-testid="send-result"]', 'class'), 'result ok', 'delivered: the green box');

  // The stranger: added to contacts from the message itself.
  await go(page, '#/inbox');
  await page.locator('[data-testid="thread"]', { hasText: 'From a stranger' }).click();
  await page.waitForSelector('main[data-view="read"]');
  await page.click('[data-testid="add-sender"]');
  await page.fill('[data-testid="add-sender-alias"]', 'Eve');
  await page.press('[data-testid="add-sender-alias"]', 'Enter');
  await eventually(async () => (await page.locator('[data-testid="message-from"]').first().textContent()) === 'Eve', WAIT, 'named after adding');
  assert.equal(await page.locator('[data-testid="add-sender"]').count(), 0);
  noErrors(page);
  await page.close();
});

test('chat: a conversation per person with the reply box under it; Enter sends; updates arrive live both ways; chat stays out of the inbox', async () => {
  await alice.handlers['contacts.add']!({ alias: 'Bob', address: bob.identity.onion });
  const a = await openUi(aliceCtx, alice, `#/chat/${bob.identity.onion}`);
  const b = await openUi(bobCtx, bob, '#/chats');
  assert.equal(await a.locator('[data-testid="chat-title"]').textContent(), 'Bob');
  await a.fill('[data-testid="chat-input"]', 'Are you free tonight?');
  await a.press('[data-testid="chat-input"]', 'Enter');
  await a.locator('[data-testid="chat-message"][data-state="delivered"]', { hasText: 'Are you free tonight?' }).waitFor();
  assert.equal(await a.inputValue('[data-testid="chat-input"]'), '', 'the box is cleared for the next line');

  const row = b.locator('[data-testid="chat-row"]', { hasText: 'Are you free tonight?' });
  await row.waitFor();
  assert.equal(await row.getAttribute('data-unread'), 'true');
  assert.equal(await row.locator('[data-testid="chat-name"]').textContent(), 'Alice');
  await row.click();
  await b.waitForSelector('main[data-view="chat"]');
  await b.locator('[data-testid="chat-message"]', { hasText: 'Are you free tonight?' }).waitFor();
  // Shift+Enter is a new line, Enter sends.
  await b.fill('[data-testid="chat-input"]', 'Yes!');
  await b.press('[data-testid="chat-input"]', 'Shift+Enter');
  await b.type('[data-testid="chat-input"]', 'After eight.');
  await b.press('[data-testid="chat-input"]', 'Enter');
  const reply = a.locator('[data-testid="chat-message"]', { hasText: 'After eight.' });
  await reply.waitFor();
  assert.equal(await reply.locator('[data-testid="chat-body"]').textContent(), 'Yes!\nAfter eight.');
  const bodies = await a.locator('[data-testid="chat-body"]').allTextContents();
  assert.deepEqual(bodies.slice(-2), ['Are you free tonight?', 'Yes!\nAfter eight.'], 'oldest first, the reply box under them');
  await shot(a, 'chat');
  await go(b, '#/inbox');
  assert.equal(await b.locator('[data-testid="thread"]', { hasText: 'Are you free' }).count(), 0);
  noErrors(a);
  noErrors(b);
  await Promise.all([a.close(), b.close()]);
});

test('read receipts: off until Bob turns them on under the chat box; then Alice sees "Read" live, and only for what he read after', async () => {
  const a = await openUi(aliceCtx, alice, `#/chat/${bob.identity.onion}`);
  const b = await openUi(bobCtx, bob, `#/chat/${alice.identity.onion}`);
  const earlier = a.locator('[data-testid="chat-message"]', { hasText: 'Are you free tonight?' });
  await earlier.waitFor();
  const box = b.locator('[data-testid="read-receipts"]');
  assert.equal(await box.isChecked(), false, 'off by default');
  await box.check();
  await eventually(async () => ((await bob.handlers['settings.get']!({})) as { readReceipts: boolean }).readReceipts, 5_000, 'the switch sets the node');

  await a.fill('[data-testid="chat-input"]', 'Did you read this?');
  await a.press('[data-testid="chat-input"]', 'Enter');
  await b.locator('[data-testid="chat-message"]', { hasText: 'Did you read this?' }).waitFor();
  const mine = a.locator('[data-testid="chat-message"][data-state="read"]', { hasText: 'Did you read this?' });
  await mine.waitFor({ timeout: 20_000 });
  assert.equal(await mine.locator('[data-testid="chat-state"]').textContent(), 'Read');
  assert.equal(await earlier.getAttribute('data-state'), 'delivered', 'read while receipts were off: not reported');
  await shot(a, 'chat'); // the README's chat screenshot: with a "Read" indicator

  await box.uncheck();
  await eventually(async () => !((await bob.handlers['settings.get']!({})) as { readReceipts: boolean }).readReceipts, 5_000, 'and off again');
  noErrors(a);
  noErrors(b);
  await Promise.all([a.close(), b.close()]);
});

test('compose: Enter in the subject does not send, Ctrl+Enter in the body does; files with the limit stated before sending; downloaded by the recipient byte for byte', async () => {
  const page = await openUi(aliceCtx, alice, '#/compose');
  const sentBefore = alice.store.listMessages({ direction: 'out', limit: 1000 }).length;
  await page.fill('[data-testid="compose-to"]', 'Bob');
  await page.press('[data-testid="compose-to"]', 'Enter');
  assert.equal(await page.evaluate('document.activeElement.dataset.testid'), 'compose-subject');
  await page.fill('[data-testid="compose-subject"]', 'Plans and a photo');
  await page.press('[data-testid="compose-subject"]', 'Enter');
  assert.equal(await page.evaluate('document.activeElement.dataset.testid'), 'compose-body');
  assert.equal(alice.store.listMessages({ direction: 'out', limit: 1000 }).length, sentBefore, 'Enter did not send');
  const limit = page.locator('[data-testid="compose-limit"]');
  assert.ok((await limit.textContent())!.startsWith(`Up to 16 files; ${(MESSAGE_CAPACITY / 1024).toFixed(1)} KiB in all, text included`));

  const photo = randomBytes(70_000);
  const plan = Buffer.from('1. bread\n2. wine\n');
  await page.setInputFiles('[data-testid="compose-files"]', [
    { name: 'plan.txt', mimeType: 'text/plain', buffer: plan },
    { name: 'photo.jpg', mimeType: 'image/jpeg', buffer: photo },
  ]);
  await page.locator('[data-testid="compose-file"]').nth(1).waitFor();
  assert.match((await limit.textContent())!, /Used: 68\.\d KiB in 2 files and text/);
  // One file too many bytes: said at once, and Send is off until it is removed.
  await page.setInputFiles('[data-testid="compose-files"]', [{ name: 'huge.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(MESSAGE_CAPACITY - 60_000) }]);
  await page.locator('[data-testid="compose-too-big"]:not([hidden])').waitFor();
  assert.match((await page.locator('[data-testid="compose-too-big"]').textContent())!, /over the limit/);
  assert.equal(await page.isDisabled('[data-testid="compose-send"]'), true);
  await page.locator('[data-testid="compose-file"]', { hasText: 'huge.bin' }).locator('[data-testid="compose-file-remove"]').click();
  assert.equal(await page.isDisabled('[data-testid="compose-send"]'), false);
  await page.fill('[data-testid="compose-body"]', 'See the files.');
  await page.press('[data-testid="compose-body"]', 'Control+Enter');
  await page.waitForSelector('[data-testid="send-state"][data-state="delivered"]');
  assert.equal(await page.locator('[data-testid="compose-file"]').count(), 0, 'a sent message leaves an empty form');
  noErrors(page);
  await page.close();

  const b = await openUi(bobCtx, bob);
  await b.locator('[data-testid="thread"]', { hasText: 'Plans and a photo' }).click();
  await b.waitForSelector('main[data-view="read"] [data-testid="attachment"]');
  assert.deepEqual(await b.locator('[data-testid="attachment-name"]').allTextContents(), ['plan.txt', 'photo.jpg']);
  await shot(b, 'read-files');
  for (const [name, bytes] of [['plan.txt', plan], ['photo.jpg', photo]] as const) {
    const [download] = await Promise.all([b.waitForEvent('download'), b.click(`[data-testid="attachment-download"][data-name="${name}"]`)]);
    assert.equal(download.suggestedFilename(), name);
    assert.deepEqual(readFileSync((await download.path())!), bytes);
  }
  noErrors(b);
  await b.close();
});

test('search: words from the subject, the body or the sender find the message', async () => {
  await alice.send({ to: bob.identity.onion, subject: 'Quarterly figures', body: 'The numbers for Zürich are in.', wait: true, waitMs: WAIT });
  const page = await openUi(bobCtx, bob);
  await page.fill('[data-testid="search-input"]', 'zurich numbers');
  await page.press('[data-testid="search-input"]', 'Enter');
  await page.waitForSelector('main[data-view="search"]');
  const results = page.locator('[data-testid="search-result"]');
  await results.first().waitFor();
  assert.deepEqual(await results.locator('.subject').allTextContents(), [' Quarterly figures']);
  await shot(page, 'search');
  await page.fill('[data-testid="search-input"]', 'Alice');
  await page.press('[data-testid="search-input"]', 'Enter');
  await eventually(async () => /Alice/.test((await page.locator('[data-testid="search-summary"]').textContent())!), WAIT, 'search by sender');
  assert.ok((await results.count()) >= 3, 'every message of the contact');
  await results.filter({ hasText: 'Quarterly' }).click();
  await page.waitForSelector('main[data-view="read"]');
  assert.equal(await page.locator('[data-testid="read-subject"]').textContent(), 'Quarterly figures');
  noErrors(page);
  await page.close();
});

test('a draft is saved as you type and is there again after the node restarts', async () => {
  const identity = generateIdentity();
  const dbPath = join(t.root, 'dora.db');
  const network = () => loopbackNetwork(join(t.root, 'loopback'));
  let dora = new OnionpostNode({ identity, dbPath, network: network(), logger: silentLogger(), api: api() });
  await dora.start();
  const ctx = await browser.newContext(CTX);
  try {
    let page = await openUi(ctx, dora, '#/compose');
    await page.fill('[data-testid="compose-to"]', bob.identity.onion);
    await page.fill('[data-testid="compose-subject"]', 'Half a thought');
    await page.fill('[data-testid="compose-body"]', 'I was going to say…');
    await page.locator('[data-testid="draft-status"]', { hasText: 'Draft saved' }).waitFor();
    await page.close();
    await dora.close();

    dora = new OnionpostNode({ identity, dbPath, network: network(), logger: silentLogger(), api: api() });
    await dora.start();
    page = await openUi(ctx, dora, '#/drafts');
    const d = page.locator('[data-testid="draft"]', { hasText: 'Half a thought' });
    await d.waitFor();
    await d.click();
    await page.waitForSelector('main[data-view="compose"]');
    await page.locator('[data-testid="draft-status"]', { hasText: 'Draft restored' }).waitFor();
    assert.equal(await page.inputValue('[data-testid="compose-to"]'), bob.identity.onion);
    assert.equal(await page.inputValue('[data-testid="compose-subject"]'), 'Half a thought');
    assert.equal(await page.inputValue('[data-testid="compose-body"]'), 'I was going to say…');
    await page.fill('[data-testid="compose-body"]', 'I was going to say: see you.');
    await page.click('[data-testid="compose-send"]');
    await page.waitForSelector('[data-testid="send-state"][data-state="delivered"]');
    await go(page, '#/drafts');
    await page.locator('[data-testid="drafts-empty"]:not([hidden])').waitFor();
    noErrors(page);
  } finally {
    await ctx.close();
    await dora.close();
  }
});

test('archive, mark unread and delete from the read view', async () => {
  const keep = await alice.send({ to: bob.identity.onion, subject: 'To archive', body: 'a', wait: true, waitMs: WAIT });
  const drop = await alice.send({ to: bob.identity.onion, subject: 'To delete', body: 'the secret plan', wait: true, waitMs: WAIT });
  const page = await openUi(bobCtx, bob);
  await page.locator('[data-testid="thread"]', { hasText: 'To archive' }).click();
  await page.click('[data-testid="archive"]');
  await page.waitForSelector('main[data-view="inbox"]');
  await eventually(async () => (await page.locator('[data-testid="thread"]', { hasText: 'To archive' }).count()) === 0, WAIT, 'gone from the inbox');
  await page.click('[data-testid="to-archive"]');
  await page.locator('[data-testid="thread"]', { hasText: 'To archive' }).waitFor();
  assert.equal(bob.store.getMessage(keep.id)!.archived, true);

  await go(page, '#/inbox');
  await page.locator('[data-testid="thread"]', { hasText: 'To delete' }).click();
  await page.click('[data-testid="mark-unread"]');
  await page.waitForSelector('main[data-view="inbox"]');
  await eventually(async () => (await page.locator('[data-testid="thread"]', { hasText: 'To delete' }).getAttribute('data-unread')) === 'true', WAIT, 'unread again');
  await page.locator('[data-testid="thread"]', { hasText: 'To delete' }).click();
  await page.click('[data-testid="delete"]');
  await page.click('[data-testid="delete-confirm"]');
  await page.waitForSelector('main[data-view="inbox"]');
  await eventually(async () => (await page.locator('[data-testid="thread"]', { hasText: 'To delete' }).count()) === 0, WAIT, 'gone');
  assert.equal(bob.store.getMessage(drop.id), null);
  assert.deepEqual(bob.store.search('secret plan'), []);
  noErrors(page);
  await page.close();
});

test('a stuck message says why in plain words, and can be retried now, cancelled and opened', async () => {
  const nobody = generateIdentity(); // a node that never comes online
  await alice.handlers['contacts.add']!({ alias: 'Zoe', address: nobody.onion });
  const page = await openUi(aliceCtx, alice, '#/compose');
  await page.fill('[data-testid="compose-to"]', 'Zoe');
  await page.fill('[data-testid="compose-subject"]', 'Are you there?');
  await page.fill('[data-testid="compose-body"]', 'Ping.');
  await page.click('[data-testid="compose-send"]');
  await page.waitForSelector('[data-testid="send-state"]');
  assert.notEqual(await page.getAttribute('[data-testid="send-result"]', 'class'), 'result ok', 'not a green success');

  await go(page, '#/outbox');
  const row = page.locator('[data-testid="outbox-row"]', { hasText: 'Are you there?' });
  await eventually(async () => /offline/.test((await row.locator('[data-testid="outbox-reason"]').textContent()) ?? ''), WAIT, 'the first try failed');
  assert.match((await row.locator('[data-testid="outbox-reason"]').textContent())!, /^Zoe's node has been offline since \d\d:\d\d; next try in 2 min$/);
  const id = (await row.getAttribute('data-id'))!;
  await shot(page, 'outbox');

  await row.locator('[data-testid="retry-now"]').click();
  await eventually(() => alice.store.getMessage(id)!.attempts === 2 && alice.store.getMessage(id)!.state === 'queued', WAIT, 'tried again at once');
  await row.locator('[data-testid="cancel"]').click();
  await row.locator('[data-testid="outbox-state"][data-state="failed"]').waitFor();
  assert.equal(await row.locator('[data-testid="outbox-reason"]').textContent(), 'cancelled by you');
  await row.locator('[data-testid="open"]').click();
  await page.waitForSelector('main[data-view="read"]');
  assert.equal(await page.locator('[data-testid="message-reason"]').textContent(), 'cancelled by you');
  noErrors(page);
  await page.close();
});

test('a key change can be rejected: the held mail is cancelled and the alert goes; the safety number is the same on both sides', async () => {
  const daveId = generateIdentity();
  const daveChain = registry(2);
  await daveChain.register(daveId, 'dave');
  const dave = await t.make('dave', { identity: daveId });
  assert.equal((await alice.send({ to: 'dave', subject: 'hi', body: 'first', wait: true, waitMs: WAIT })).state, 'delivered');
  // Dave's record is moved to another key without a statement from his pinned one.
  await daveChain.update(generateIdentity(), { rotation: null });

  const page = await openUi(aliceCtx, alice, '#/compose');
  await page.fill('[data-testid="compose-to"]', 'dave');
  await page.fill('[data-testid="compose-subject"]', 'While his key changed');
  await page.fill('[data-testid="compose-body"]', 'Should not go out.');
  await page.click('[data-testid="compose-send"]');
  await page.waitForSelector('[data-testid="send-state"][data-state="held"]');
  assert.equal(await page.getAttribute('[data-testid="send-result"]', 'class'), 'result warn', 'held is a warning, not a green success');
  await page.locator('[data-testid="global-keychange"]').waitFor();

  await go(page, '#/contacts');
  const alert = page.locator('[data-testid="key-change-alert"][data-alias="dave"]');
  await alert.waitFor();
  await alert.locator('[data-testid="reject-key"]').click();
  await alert.waitFor({ state: 'detached' });
  await page.locator('[data-testid="global-keychange"]').waitFor({ state: 'detached' });
  const held = alice.store.listMessages({ direction: 'out', limit: 50 }).find((m) => m.subject === 'While his key changed')!;
  assert.deepEqual([held.state, held.lastErrorCode], ['failed', 'KEY_REJECTED']);
  await go(page, '#/outbox');
  assert.match((await page.locator(`[data-testid="outbox-row"][data-id="${held.id}"] [data-testid="outbox-reason"]`).textContent())!, /you rejected dave's new key/);

  // The contact page: the safety number, which Dave's node computes the same.
  await go(page, '#/contact/dave');
  const sn = page.locator('[data-testid="safety-number"]');
  await sn.waitFor();
  const digits = (await sn.getAttribute('data-digits'))!;
  assert.match((await sn.textContent())!.replaceAll(/\s/g, ''), /^\d{60}$/);
  await dave.handlers['contacts.add']!({ alias: 'alice', address: alice.identity.onion });
  assert.equal(((await dave.handlers['contacts.safetyNumber']!({ alias: 'alice' })) as { digits: string }).digits, digits);
  await shot(page, 'contact');
  noErrors(page);
  await page.close();
});

test('desktop notifications when allowed (sender and subject only)', async () => {
  const ctx = await browser.newContext(CTX);
  // Test-only: a recording Notification and a page that believes it is in the background.
  await ctx.addInitScript(`{
    window.__notes = [];
    window.Notification = class { constructor(title, o) { window.__notes.push({ title, body: o && o.body }); } static get permission() { return 'granted'; } static requestPermission() { return Promise.resolve('granted'); } };
    Object.defineProperty(document, 'hidden', { get: () => window.__hidden === true });
  }`);
  try {
    const page = await openUi(ctx, bob, '#/status');
    await page.check('[data-testid="setting-notifications"]');
    await page.evaluate('window.__hidden = true');
    await alice.send({ to: bob.identity.onion, subject: 'Dinner?', body: 'secret menu', wait: true, waitMs: WAIT });
    await eventually(async () => ((await page.evaluate('window.__notes.length')) as number) > 0, WAIT, 'a notification');
    assert.deepEqual(await page.evaluate('window.__notes'), [{ title: 'Mail from Alice', body: 'Dinner?' }]);
    await page.uncheck('[data-testid="setting-notifications"]');
    noErrors(page);
    await page.close();

  } finally {
    await ctx.close();
  }
});

test('390-px phone screen: every view fits without horizontal scrolling, and the header is one short row', async () => {
  const ctx = await browser.newContext({ ...CTX, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  try {
    const firstIn = bob.store.listMessages({ direction: 'in', kind: 'mail', limit: 1 })[0]!;
    const page = await openUi(ctx, bob);
    const views = ['#/inbox', '#/archive', `#/read/${firstIn.id}`, '#/search?q=alice', '#/chats', `#/chat/${alice.identity.onion}`, '#/compose', '#/drafts', '#/outbox', '#/sent', '#/contacts', '#/contact/Alice', '#/mailboxes', '#/status'];
    for (const v of views) {
      await go(page, v);
      await page.waitForTimeout(50);
      const m = await phoneLayout(page);
      assert.ok(m.sw <= m.cw, `${v}: page is ${m.sw} px wide on a ${m.cw} px screen`);
      assert.ok(m.header <= 64, `${v}: header takes ${m.header} px`);
      assert.doesNotMatch((await page.locator('main').innerText()), /\b(null|undefined|NaN)\b/, `${v}: no placeholder leaks into the page`);
      // The nav scrolls sideways on a phone: its current entry is in sight.
      const current = (await page.locator('nav a[data-nav][aria-current="page"]').boundingBox())!;
      assert.ok(current.x >= 0 && current.x + current.width <= m.cw + 0.5, `${v}: the current nav entry is in sight (x ${current.x}, width ${current.width})`);
      if (v === '#/inbox') await shot(page, 'phone-inbox');
      if (v.startsWith('#/chat/')) await shot(page, 'phone-chat');
    }
    // The outbox with a stuck message, on the phone.
    const p2 = await openUi(ctx, alice, '#/outbox');
    const m = (await p2.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(m <= 390, `outbox is ${m} px wide`);
    await shot(p2, 'phone-outbox');
    noErrors(page);
    noErrors(p2);
  } finally {
    await ctx.close();
  }
});
