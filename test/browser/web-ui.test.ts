/**
 * The web UI in a real browser (Debian's Chromium through playwright-core), against two nodes
 * running in this process over the loopback peer network, each with its API and UI on 127.0.0.1.
 *
 * Covers: sign-in by a single-use link from `onionpost ui` (the session model of src/api/sessions.ts:
 * one cookie per port, useless to other services on 127.0.0.1 without its page secret, sign-out,
 * revoke-all, expired links and sessions, each with a human page), compose → live inbox on the other node → live `delivered` in the outbox
 * (no reloads), sending to a contact alias, replying, the key-change alert and its approval, the
 * sign-in page, refusals (wrong token, foreign Host, foreign Origin, a foreign page's fetch and
 * WebSocket), the static handler's headers and path handling. Takes screenshots of the inbox,
 * compose, outbox, contacts and status views (1200×800): into docs/screenshots/ for the README
 * when ONIONPOST_SCREENSHOTS=1, otherwise into a temp dir, so a test run leaves the tree clean.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { API_METHODS, createApiServer, type Handler } from '../../src/api/index.js';
import { ManualClock } from '../../src/clock.js';
import { generateIdentity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { createWebHandler } from '../../src/web/index.js';
import { CHROMIUM_ARGS, KEEP_SHOTS, REPO, SHOTS, WAIT, hideToast, jsErrors, openUi } from '../fixtures/browser.js';
import { eventually, testNodes, type TestNodes } from '../fixtures/nodes.js';


const tokens = { alice: randomBytes(32).toString('hex'), bob: randomBytes(32).toString('hex') };
let t: TestNodes;
let alice: OnionpostNode;
let bob: OnionpostNode;
let browser: Browser;
let aliceCtx: BrowserContext;
let bobCtx: BrowserContext;
let foreign: Server | undefined;

before(async () => {
  t = await testNodes('onionpost-web-');
  const web = () => createWebHandler({ logger: silentLogger() });
  alice = await t.make('alice', { api: { token: tokens.alice, web: web() } });
  bob = await t.make('bob', { api: { token: tokens.bob, web: web() } });
  // playwright gives every launch a fresh temporary profile (user-data dir) and removes it on close.
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  // One context per user, as two people would have (one context holding both is tested below).
  const ctxOpts = { viewport: { width: 1200, height: 800 }, reducedMotion: 'reduce' as const, locale: 'en-GB', timezoneId: 'UTC' };
  aliceCtx = await browser.newContext(ctxOpts);
  bobCtx = await browser.newContext(ctxOpts);
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await new Promise<void>((r) => (foreign ? foreign.close(() => r()) : r()));
  await t?.cleanup();
  if (!KEEP_SHOTS) rmSync(SHOTS, { recursive: true, force: true });
});

const apiUrl = (n: OnionpostNode) => n.apiUrl!;

/** Sets a flag in the page; `assertNotReloaded` fails if the page was reloaded or navigated away since. */
async function markPage(page: Page): Promise<void> {
  await page.evaluate('window.__noReload = true');
}
async function assertNotReloaded(page: Page): Promise<void> {
  assert.equal(await page.evaluate('window.__noReload === true'), true, 'the page was reloaded');
}

async function compose(page: Page, to: string, subject: string, body: string, kind: 'mail' | 'chat' = 'mail'): Promise<void> {
  await page.click('nav a[data-nav="compose"]');
  await page.waitForSelector('main[data-view="compose"]');
  await page.fill('[data-testid="compose-to"]', to);
  await page.check(`[data-testid="compose-kind-${kind}"]`);
  await page.fill('[data-testid="compose-subject"]', subject);
  await page.fill('[data-testid="compose-body"]', body);
  await page.click('[data-testid="compose-send"]');
}

/** Raw HTTP, so the test controls Host and Origin (fetch forbids setting both). */
function http(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolveP, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (b += c));
      res.on('end', () => resolveP({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const portOf = (n: OnionpostNode) => Number(new URL(apiUrl(n)).port);

test('compose to an onion: the message appears in the recipient UI and turns delivered in the outbox, live', async () => {
  const bobInbox = await openUi(bobCtx, bob);
  // Delivered mail is listed under Sent (the outbox keeps what still waits or failed).
  const aliceOutbox = await openUi(aliceCtx, alice, '#/sent');
  const aliceCompose = await aliceCtx.newPage();
  aliceCompose.setDefaultTimeout(WAIT);
  await aliceCompose.goto(`${apiUrl(alice)}/#/inbox`); // the session cookie carries over within the context
  await aliceCompose.waitForSelector('[data-testid="conn-state"][data-state="live"]');
  await markPage(bobInbox);
  await markPage(aliceOutbox);

  await compose(aliceCompose, bob.identity.onion, 'Hello Bob', 'First line.\nSecond line <b>not bold</b>.');
  await aliceCompose.waitForSelector('[data-testid="send-result"]:not([hidden]) [data-testid="send-state"]');
  // The compose view follows the message's state live too.
  await aliceCompose.waitForSelector('[data-testid="send-state"][data-state="delivered"]');

  const thread = bobInbox.locator('[data-testid="thread"]', { hasText: 'Hello Bob' });
  await thread.waitFor();
  assert.equal(await thread.getAttribute('data-unread'), 'true');
  assert.equal(await bobInbox.locator('[data-testid="unread-count"]').getAttribute('data-count'), '1');

  const row = aliceOutbox.locator('[data-testid="outbox-row"]', { hasText: 'Hello Bob' });
  await row.locator('[data-testid="outbox-state"][data-state="delivered"]').waitFor();

  // Bob reads it: the body is text, not HTML, and the thread is no longer unread.
  await thread.click();
  await bobInbox.waitForSelector('main[data-view="read"]');
  const body = bobInbox.locator('[data-testid="message-body"]').first();
  assert.equal(await body.textContent(), 'First line.\nSecond line <b>not bold</b>.');
  assert.equal(await bobInbox.locator('[data-testid="message-body"] b').count(), 0);
  await bobInbox.locator('[data-testid="unread-count"][hidden]').waitFor({ state: 'attached' });

  await assertNotReloaded(bobInbox);
  await assertNotReloaded(aliceOutbox);
  for (const p of [bobInbox, aliceOutbox, aliceCompose]) assert.deepEqual(jsErrors(p), []);
  await Promise.all([bobInbox.close(), aliceOutbox.close(), aliceCompose.close()]);
});

test('add a contact, compose to its alias, reply from the other side; inboxes update live', async () => {
  const alicePage = await openUi(aliceCtx, alice, '#/contacts');
  const bobPage = await openUi(bobCtx, bob);
  await markPage(bobPage);

  await alicePage.fill('[data-testid="contact-alias"]', 'bob');
  await alicePage.fill('[data-testid="contact-address"]', bob.identity.onion);
  await alicePage.click('[data-testid="contact-add"]');
  const card = alicePage.locator('[data-testid="contact"][data-alias="bob"]');
  await card.waitFor();
  const fp = (await card.locator('[data-testid="contact-fingerprint"]').textContent())!.replaceAll(' ', '');
  assert.equal(fp, Buffer.from(bob.identity.identityKey).toString('hex'));

  await markPage(alicePage);
  await compose(alicePage, 'bob', 'Via alias', 'Sent to a contact name.');
  await alicePage.waitForSelector('[data-testid="send-state"][data-state="delivered"]');
  const thread = bobPage.locator('[data-testid="thread"]', { hasText: 'Via alias' });
  await thread.waitFor();

  // Bob replies from the read view; Alice's inbox gets it without a reload.
  await alicePage.click('nav a[data-nav="inbox"]');
  await alicePage.waitForSelector('main[data-view="inbox"]');
  await thread.click();
  await bobPage.click('[data-testid="reply"]');
  await bobPage.waitForSelector('main[data-view="compose"]');
  assert.equal(await bobPage.inputValue('[data-testid="compose-to"]'), alice.identity.onion);
  assert.equal(await bobPage.inputValue('[data-testid="compose-subject"]'), 'Re: Via alias');
  assert.equal(await bobPage.isChecked('[data-testid="compose-kind-mail"]'), true);
  await bobPage.fill('[data-testid="compose-body"]', 'Got it, thanks.');
  await bobPage.click('[data-testid="compose-send"]');
  await bobPage.waitForSelector('[data-testid="send-state"][data-state="delivered"]');

  const reply = alicePage.locator('[data-testid="thread"]', { hasText: 'Via alias' });
  await reply.waitFor();
  assert.equal(await reply.getAttribute('data-unread'), 'true');
  // The reply continues the thread: opening it shows both messages, oldest first.
  await reply.click();
  await alicePage.waitForSelector('main[data-view="read"]');
  const bodies = await alicePage.locator('[data-testid="message-body"]').allTextContents();
  assert.deepEqual(bodies, ['Sent to a contact name.', 'Got it, thanks.']);

  await assertNotReloaded(alicePage);
  await assertNotReloaded(bobPage);
  for (const p of [alicePage, bobPage]) assert.deepEqual(jsErrors(p), []);
  await Promise.all([alicePage.close(), bobPage.close()]);
});

test('a pending key change shows a prominent alert in Contacts, live; "Approve new key" clears it; held and failed show in the outbox', async () => {
  const carol = generateIdentity();
  const carolNew = generateIdentity();
  await alice.handlers['contacts.add']!({ alias: 'carol', address: carol.onion });
  const page = await openUi(aliceCtx, alice, '#/contacts');
  const outbox = await openUi(aliceCtx, alice, '#/outbox');
  await markPage(page);
  await markPage(outbox);
  assert.equal(await page.locator('[data-testid="key-change-alert"]').count(), 0);

  const reason = 'registry record v2 without a rotation statement';
  alice.store.setKeyChange('carol', {
    identityKey: Buffer.from(carolNew.identityKey).toString('hex'), encryptionKey: Buffer.from(carolNew.encryptionKey).toString('hex'),
    onion: carolNew.onion, seenAt: Date.now(), reason, registryVersion: 2,
  });
  alice.events.emit({ type: 'contact.keyChange', alias: 'carol', reason });

  const alert = page.locator('[data-testid="key-change-alert"][data-alias="carol"]');
  await alert.waitFor();
  assert.equal(await alert.getAttribute('role'), 'alert');
  assert.match((await alert.textContent())!, new RegExp(reason));
  assert.equal((await alert.locator('[data-testid="new-key"]').textContent())!.replaceAll(' ', ''), Buffer.from(carolNew.identityKey).toString('hex'));
  await page.locator('[data-testid="global-keychange"]').waitFor();
  await page.locator('[data-testid="keychange-count"]:not([hidden])').waitFor();

  // A message to carol now is held, and the outbox says so (with why), live.
  const sent = (await alice.handlers['messages.send']!({ to: 'carol', subject: 'While keys changed', body: 'x' })) as { id: string; state: string };
  assert.equal(sent.state, 'held');
  const heldRow = outbox.locator(`[data-testid="outbox-row"][data-id="${sent.id}"]`);
  await heldRow.locator('[data-testid="outbox-state"][data-state="held"]').waitFor();
  assert.match((await heldRow.locator('[data-testid="outbox-reason"]').textContent())!, /key change/);

  await hideToast(page);
  await page.screenshot({ path: join(SHOTS, 'contacts.png') });

  await alert.locator('[data-testid="approve-key"]').click();
  await alert.waitFor({ state: 'detached' });
  await page.locator('[data-testid="global-keychange"]').waitFor({ state: 'detached' });
  const fp = await page.locator('[data-testid="contact"][data-alias="carol"] [data-testid="contact-fingerprint"]').textContent();
  assert.equal(fp!.replaceAll(' ', ''), Buffer.from(carolNew.identityKey).toString('hex'));
  assert.equal(alice.store.getContact('carol')!.keyChange, null);

  // Approval re-sends the held message to the new key: the old copy turns failed (with why) and a new row appears.
  await heldRow.locator('[data-testid="outbox-state"][data-state="failed"]').waitFor();
  assert.match((await heldRow.locator('[data-testid="outbox-reason"]').textContent())!, /superseded/);
  await eventually(async () => (await outbox.locator('[data-testid="outbox-row"]', { hasText: 'While keys changed' }).count()) === 2, WAIT, 'the re-sent copy in the outbox');

  for (const p of [page, outbox]) {
    await assertNotReloaded(p);
    assert.deepEqual(jsErrors(p), []);
  }
  await Promise.all([page.close(), outbox.close()]);
});

test('without a session the UI explains how to sign in; an old token link is not a way in', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  try {
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(`${apiUrl(alice)}/`);
    const box = page.locator('[data-testid="login-needed"][data-reason="none"]');
    await box.waitFor();
    assert.equal(await box.locator('[data-testid="signin-command"]').textContent(), 'onionpost ui');
    assert.equal(await page.locator('#nav').isHidden(), true);
    await page.screenshot({ path: join(SHOTS, 'signin.png') });
    await page.goto(`${apiUrl(alice)}/login?token=${tokens.alice}`);
    await page.locator('[data-testid="login-needed"][data-reason="none"]').waitFor();
    assert.equal(page.url(), `${apiUrl(alice)}/login`, 'the query is dropped from the address bar');
    assert.deepEqual(await ctx.cookies(), []);
  } finally {
    await ctx.close();
  }
});

/** Writes what `onionpost start` writes for a running node, so the CLI finds `n`. */
function cliDir(n: OnionpostNode, token: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'onionpost-web-cli-'));
  writeFileSync(join(dir, 'api.json'), JSON.stringify({ url: apiUrl(n), pid: process.pid }), { mode: 0o600 });
  writeFileSync(join(dir, 'api-token'), `${token}\n`, { mode: 0o600 });
  return dir;
}
const BIN = join(REPO, 'bin', 'onionpost.js');

/** Runs the command the sign-in page names, as its words say, against `dir`'s node (in this process, so not spawnSync). */
async function runNamedCommand(command: string, dir: string, ...extra: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const [prog, ...args] = command.split(' ');
  assert.equal(prog, 'onionpost');
  return new Promise((resolveRun) => {
    execFile(process.execPath, [BIN, ...args, '--data-dir', dir, ...extra], { encoding: 'utf8', timeout: 30_000 }, (err, out, errOut) =>
      resolveRun({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, err: errOut }));
  });
}

test('the command the sign-in page names exists and prints a link that signs in, once; sign-out revokes; the token never travels', async () => {
  const dir = cliDir(alice, tokens.alice);
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const other = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const seen: string[] = [];
  ctx.on('request', (r) => void r.allHeaders().then((hs) => seen.push(r.url(), ...Object.values(hs))));
  try {
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    await page.goto(`${apiUrl(alice)}/`);
    const command = (await page.locator('[data-testid="signin-command"]').textContent())!;
    const ui = await runNamedCommand(command, dir);
    assert.equal(ui.code, 0, ui.err);
    const link = ui.out.split('\n')[0]!;
    assert.match(link, new RegExp(`^${apiUrl(alice)}/login\\?code=[A-Za-z0-9_-]{22}$`));
    assert.ok(!ui.out.includes(tokens.alice));

    await page.goto(link);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
    assert.equal(page.url(), `${apiUrl(alice)}/#/inbox`);
    const cookies = await ctx.cookies();
    assert.deepEqual(cookies.map((c) => [c.name, c.httpOnly, c.sameSite, c.path]), [[`onionpost_session_${portOf(alice)}`, true, 'Strict', '/']]);
    assert.ok(cookies[0]!.expires > Date.now() / 1000, 'the cookie expires');
    const pageSecret = (await page.evaluate("localStorage.getItem('onionpost.session')")) as string;
    assert.match(pageSecret, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(![cookies[0]!.value, pageSecret].includes(tokens.alice));

    // The same link in another browser: used, and a page (not JSON) says so and names the command.
    const page2 = await other.newPage();
    page2.setDefaultTimeout(WAIT);
    await page2.goto(link);
    const used = page2.locator('[data-testid="login-needed"][data-reason="LOGIN_CODE_USED"]');
    await used.waitFor();
    assert.equal(await used.locator('[data-testid="signin-command"]').textContent(), 'onionpost ui');
    assert.deepEqual(await other.cookies(), []);
    await page2.goto(`${apiUrl(alice)}/login?code=AAAAAAAAAAAAAAAAAAAAAA`);
    await page2.locator('[data-testid="login-needed"][data-reason="LOGIN_CODE_UNKNOWN"]').waitFor();

    // Sign out: the page says so, and the session's two halves no longer open anything.
    const cookie = `${cookies[0]!.name}=${cookies[0]!.value}`;
    const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node.address' });
    const asSession = { 'content-type': 'application/json', cookie, 'x-onionpost-session': pageSecret };
    assert.equal((await http(portOf(alice), 'POST', '/rpc', asSession, call)).status, 200);
    await page.click('[data-testid="sign-out"]');
    await page.locator('[data-testid="login-needed"][data-reason="signed-out"]').waitFor();
    const after = await http(portOf(alice), 'POST', '/rpc', asSession, call);
    assert.equal(after.status, 401);
    assert.equal(JSON.parse(after.body).error.data.code, 'SESSION_ENDED');
    assert.deepEqual(await ctx.cookies(), [], 'the cookie is cleared');
    await page.reload();
    await page.locator('[data-testid="login-needed"]').waitFor();

    // `onionpost ui --sign-out-all` ends every browser session; an open page finds out by itself.
    await page.goto((await runNamedCommand(command, dir)).out.split('\n')[0]!);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
    const revoke = await runNamedCommand(command, dir, '--sign-out-all', '--json');
    assert.equal(revoke.code, 0, revoke.err);
    assert.ok((JSON.parse(revoke.out) as { revoked: number }).revoked >= 1);
    await page.locator('[data-testid="login-needed"][data-reason="ended"]').waitFor();
    assert.deepEqual(jsErrors(page), []);

    await eventually(() => seen.length > 10, WAIT, 'requests recorded');
    assert.deepEqual(seen.filter((v) => v.includes(tokens.alice)), [], 'the API token is in no URL and no header the browser sent');
  } finally {
    await Promise.all([ctx.close(), other.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two nodes in one browser: one cookie per port, both signed in at once', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  try {
    const a = await openUi(ctx, alice);
    const b = await openUi(ctx, bob);
    const names = (await ctx.cookies()).map((c) => c.name).sort();
    assert.deepEqual(names, [`onionpost_session_${portOf(alice)}`, `onionpost_session_${portOf(bob)}`].sort());
    // Both still work after the other signed in.
    for (const [page, n] of [[a, alice], [b, bob]] as const) {
      await page.click('nav a[data-nav="status"]');
      await page.waitForSelector('[data-testid="onion-address"]');
      assert.equal(await page.locator('[data-testid="onion-address"]').textContent(), n.identity.onion);
    }
  } finally {
    await ctx.close();
  }
});

test('Status shows how to rotate keys: the command the node was started with, and what it changes', async () => {
  const command = 'npx onionpost --data-dir /tmp/carol keys rotate --network dev --dev-account <N>';
  const carol = await t.make('carol-rotate', { api: { token: randomBytes(32).toString('hex'), web: createWebHandler({ logger: silentLogger() }) }, registryName: 'carol', rotateKeysCommand: command });
  const ctx = await browser.newContext({ viewport: { width: 390, height: 800 } });
  try {
    const page = await openUi(ctx, carol, '#/status');
    await page.waitForSelector('[data-testid="rotate-keys"]');
    assert.equal(await page.locator('[data-testid="rotate-command"]').textContent(), command);
    assert.match((await page.locator('[data-testid="rotate-follow"]').textContent())!, /"carol".*move to the new address by themselves.*does not hide/s);
    assert.equal(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), true, 'the command wraps on a phone');
  } finally {
    await ctx.close();
  }
});

test('another service on 127.0.0.1 receives the session cookie but nothing it can use', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const received: string[] = [];
  // What a local process of another user could run: a page on another port the user happens to open.
  const thief = createServer((req, res) => {
    received.push(req.headers.cookie ?? '');
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>elsewhere</title><script>window.__stolen = localStorage.getItem('onionpost.session');</script>`);
  });
  await new Promise<void>((r) => thief.listen(0, '127.0.0.1', () => r()));
  try {
    const ui = await openUi(ctx, alice);
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${(thief.address() as AddressInfo).port}/`);
    // The browser does hand our cookie to the other port: that is why the cookie alone is not a credential.
    const cookie = received.find((c) => c.includes(`onionpost_session_${portOf(alice)}=`));
    assert.ok(cookie, `the browser sent the cookie to the other port (got ${JSON.stringify(received)})`);
    assert.equal(await page.evaluate('window.__stolen'), null, 'the page secret stays with its origin');
    const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'messages.send', params: { to: bob.identity.onion, subject: 'stolen' } });
    const replay = await http(portOf(alice), 'POST', '/rpc', { 'content-type': 'application/json', cookie }, call);
    assert.equal(replay.status, 401);
    assert.equal(JSON.parse(replay.body).error.data.code, 'SESSION_ENDED');
    const ws = await new Promise<number>((resolveWs) => {
      const req = request({ host: '127.0.0.1', port: portOf(alice), path: '/ws', headers: {
        host: `127.0.0.1:${portOf(alice)}`, cookie, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'), 'sec-websocket-protocol': 'onionpost',
      } });
      req.on('response', (res) => resolveWs(res.statusCode ?? 0));
      req.on('upgrade', () => resolveWs(101));
      req.on('error', () => resolveWs(0));
      req.end();
    });
    assert.equal(ws, 401);
    assert.deepEqual(alice.store.listMessages({ direction: 'out', limit: 1000 }).filter((m) => m.subject === 'stolen'), []);
    await Promise.all([page.close(), ui.close()]);
  } finally {
    await ctx.close();
    await new Promise<void>((r) => thief.close(() => r()));
  }
});

test('an expired login link and an idle-expired session each get a page that says so', async () => {
  const clock = new ManualClock(Date.now());
  const handlers: Record<string, Handler> = Object.fromEntries(API_METHODS.map((m) => [m.name, () => ({})]));
  Object.assign(handlers, {
    'node.status': () => ({ onion: alice.identity.onion, reachable: true, tor: { mode: 'none', bootstrap: 100 }, counts: {}, peers: { connected: 0 }, warnings: [] }),
    'messages.inbox': () => [], 'messages.outbox': () => [], 'contacts.list': () => [],
  });
  const api = await createApiServer({ token: 'x'.repeat(64), methods: API_METHODS, handlers, logger: silentLogger(), clock, web: createWebHandler({ logger: silentLogger() }) });
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  try {
    const page = await ctx.newPage();
    page.setDefaultTimeout(WAIT);
    const stale = api.loginLink();
    clock.advance(2 * 60_000);
    await page.goto(stale.url);
    await page.locator('[data-testid="login-needed"][data-reason="LOGIN_CODE_EXPIRED"]').waitFor();
    assert.match((await page.locator('[data-testid="login-reason"]').textContent())!, /2 minutes/);

    await page.goto(api.loginLink().url);
    await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
    clock.advance(12 * 60 * 60_000);
    // Navigating by hash, not by the nav: a background refresh may have met the ended session
    // first and put the sign-in page (without the nav) up already.
    await page.evaluate("location.hash = '#/outbox'");
    await page.locator('[data-testid="login-needed"][data-reason="ended"]').waitFor();
    assert.equal(await page.locator('[data-testid="signin-command"]').textContent(), 'onionpost ui');
  } finally {
    await ctx.close();
    await api.close();
  }
});

test('the API refuses a wrong token, a foreign Host and a foreign Origin', async () => {
  const port = portOf(alice);
  const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node.status' });
  const json = { 'content-type': 'application/json' };
  assert.equal((await http(port, 'POST', '/rpc', { ...json, authorization: `Bearer ${tokens.bob}` }, call)).status, 401);
  assert.equal((await http(port, 'POST', '/rpc', { ...json, cookie: `onionpost_session_${port}=${tokens.alice}` }, call)).status, 401);
  assert.equal((await http(port, 'POST', '/rpc', json, call)).status, 401);
  const good = { ...json, authorization: `Bearer ${tokens.alice}` };
  assert.equal((await http(port, 'POST', '/rpc', good, call)).status, 200);
  assert.equal((await http(port, 'POST', '/rpc', { ...good, host: `evil.example:${port}` }, call)).status, 403);
  assert.equal((await http(port, 'POST', '/rpc', { ...good, origin: 'http://evil.example' }, call)).status, 403);
  assert.equal((await http(port, 'POST', '/rpc', { ...good, origin: `http://127.0.0.1:${port + 1}` }, call)).status, 403);
  // The UI shell is refused too when Host is foreign (DNS rebinding cannot even load it).
  assert.equal((await http(port, 'GET', '/', { host: `evil.example:${port}` })).status, 403);
});

test('a page from another origin, with the user logged in, can neither call /rpc nor open /ws', async () => {
  const apiOrigin = apiUrl(alice);
  const before = alice.store.listMessages({ direction: 'out', limit: 1000 }).length;
  const send = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'messages.send', params: { to: bob.identity.onion, subject: 'forged' } });
  // The attacking page's script: a credentialed JSON fetch (preflighted), a no-cors "simple" POST,
  // and a WebSocket (not covered by CORS at all: only the server's Origin check stops it).
  const script = `
    (async () => {
      const api = ${JSON.stringify(apiOrigin)}, body = ${JSON.stringify(send)}, out = {};
      try { const r = await fetch(api + '/rpc', { method: 'POST', credentials: 'include', headers: { 'content-type': 'application/json' }, body }); out.fetch = 'status ' + r.status + ' ' + await r.text(); }
      catch (e) { out.fetch = 'blocked'; }
      try { const r = await fetch(api + '/rpc', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body }); out.simple = r.type; }
      catch (e) { out.simple = 'blocked'; }
      out.ws = await new Promise((res) => {
        const ws = new WebSocket(api.replace('http:', 'ws:') + '/ws');
        ws.onopen = () => { ws.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'messages.send', params: { to: ${JSON.stringify(bob.identity.onion)}, subject: 'forged-ws' } })); setTimeout(() => res('open'), 500); };
        ws.onerror = () => res('error');
        setTimeout(() => res('timeout'), 5000);
      });
      window.__result = out;
    })();`;
  foreign = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>elsewhere</title><script>${script}</script>`);
  });
  await new Promise<void>((r) => foreign!.listen(0, '127.0.0.1', () => r()));
  const foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`;

  // Log in first, so the browser holds a valid session cookie that the foreign page could ride on.
  const uiPage = await openUi(aliceCtx, alice);
  assert.ok((await aliceCtx.cookies(apiOrigin)).some((c) => c.name === `onionpost_session_${portOf(alice)}`));
  const page = await aliceCtx.newPage();
  await page.goto(foreignUrl);
  await page.waitForFunction('window.__result !== undefined', undefined, { timeout: WAIT });
  const result = (await page.evaluate('window.__result')) as { fetch: string; simple: string; ws: string };
  assert.equal(result.fetch, 'blocked');
  assert.equal(result.ws, 'error');
  // The opaque no-cors POST may reach the server; the server must have refused it (no message queued).
  await new Promise((r) => setTimeout(r, 200));
  const forged = alice.store.listMessages({ direction: 'out', limit: 1000 }).filter((m) => m.subject?.startsWith('forged'));
  assert.deepEqual(forged, []);
  assert.equal(alice.store.listMessages({ direction: 'out', limit: 1000 }).length, before);
  await Promise.all([page.close(), uiPage.close()]);
});

test('static files: security headers, content types, / → index.html, HEAD, 405, 404, no traversal', async () => {
  const port = portOf(alice);
  const index = await http(port, 'GET', '/');
  assert.equal(index.status, 200);
  assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
  assert.match(index.body, /<main id="main"/);
  assert.equal(index.headers['content-security-policy'],
    "default-src 'self'; connect-src 'self' ws://127.0.0.1:* ws://localhost:*; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  assert.equal(index.headers['x-frame-options'], 'DENY');
  assert.equal(index.headers['referrer-policy'], 'no-referrer');
  assert.equal(index.headers['x-content-type-options'], 'nosniff');
  assert.equal((await http(port, 'GET', '/index.html')).body, index.body);
  assert.equal((await http(port, 'GET', '/js/app.js')).headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal((await http(port, 'GET', '/style.css')).headers['content-type'], 'text/css; charset=utf-8');
  assert.equal((await http(port, 'GET', '/favicon.svg')).headers['content-type'], 'image/svg+xml');
  const head = await http(port, 'HEAD', '/style.css');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.ok(Number(head.headers['content-length']) > 0);
  const post = await http(port, 'POST', '/index.html');
  assert.equal(post.status, 405);
  assert.equal(post.headers['allow'], 'GET, HEAD');
  for (const path of [
    '/nope.html', '/js/', '/../package.json', '/%2e%2e/package.json', '/js/..%2f..%2fpackage.json', '/..%5cpackage.json',
    '/js/%2e%2e/%2e%2e/package.json', '/%2e%2e%2f%2e%2e%2fpackage.json', '/.gitignore', '/index.html%00.js', '/%E0%A4%A', '//etc/passwd',
    '/../../../../etc/passwd', '/..%2f..%2f..%2f..%2fetc%2fpasswd',
  ]) {
    const r = await http(port, 'GET', path);
    assert.equal(r.status, 404, `${path} → ${r.status}`);
    assert.doesNotMatch(r.body, /"name": "onionpost"|root:/, path);
  }

  // A handler on its own, over a directory with a symlink pointing outside it.
  const dir = mkdtempSync(join(tmpdir(), 'onionpost-webroot-'));
  const outside = mkdtempSync(join(tmpdir(), 'onionpost-outside-'));
  let srv: Server | undefined;
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'index.html'), '<p>root</p>');
    writeFileSync(join(dir, 'sub', 'a.txt'), 'a');
    writeFileSync(join(dir, 'data.bin'), 'x');
    writeFileSync(join(outside, 'secret.txt'), 'secret');
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'leak.txt'));
    const handler = createWebHandler({ logger: silentLogger(), root: dir });
    srv = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => srv!.listen(0, '127.0.0.1', () => r()));
    const p = (srv.address() as AddressInfo).port;
    assert.equal((await http(p, 'GET', '/')).body, '<p>root</p>');
    assert.equal((await http(p, 'GET', '/sub/a.txt')).body, 'a');
    assert.equal((await http(p, 'GET', '/leak.txt')).status, 404);
    assert.equal((await http(p, 'GET', '/data.bin')).status, 404, 'unknown types are not served');
    assert.equal((await http(p, 'GET', '/sub')).status, 404, 'a directory is not a file');
  } finally {
    await new Promise<void>((r) => (srv ? srv.close(() => r()) : r()));
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});

test('the live connection reconnects with backoff after it drops, and the view catches up on what it missed', async () => {
  const page = await bobCtx.newPage();
  page.setDefaultTimeout(WAIT);
  // Test-only instrumentation: record the page's WebSockets, and while __blockWs is set, point new
  // ones at a closed port so that reconnection attempts fail like a node that is down.
  await page.addInitScript(`{
    const Orig = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Orig {
      constructor(url, protocols) {
        super(window.__blockWs ? 'ws://127.0.0.1:9/' : url, protocols);
        window.__sockets.push(this);
      }
    };
  }`);
  await page.goto(`${apiUrl(bob)}/#/inbox`);
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
  await markPage(page);
  await page.evaluate('window.__blockWs = true; window.__sockets.forEach((s) => s.close())');
  await page.waitForSelector('[data-testid="conn-state"][data-state="offline"]');
  await alice.send({ to: bob.identity.onion, subject: 'Sent while you were away', body: '…', wait: true, waitMs: WAIT });
  await eventually(async () => (await page.evaluate('window.__sockets.length')) as number >= 3, WAIT, 'two failed reconnection attempts');
  assert.equal(await page.locator('[data-testid="thread"]', { hasText: 'Sent while you were away' }).count(), 0);
  await page.evaluate('window.__blockWs = false');
  await page.waitForSelector('[data-testid="conn-state"][data-state="live"]');
  await page.locator('[data-testid="thread"]', { hasText: 'Sent while you were away' }).waitFor();
  await assertNotReloaded(page);
  await page.close();
});

test('screenshots: inbox, compose, sent, status (docs/screenshots, 1200×800)', async () => {
  // Give Bob a few more messages, unread, from a sender he knows by name, so the inbox looks like an inbox.
  await bob.handlers['contacts.add']!({ alias: 'alice', address: alice.identity.onion });
  await alice.send({ to: bob.identity.onion, subject: 'Lunch on Friday?', body: 'The usual place at noon?', wait: true, waitMs: WAIT });
  await alice.send({ to: bob.identity.onion, subject: 'Minutes of the tenants’ meeting', body: 'Attached below, in plain text.', wait: true, waitMs: WAIT });
  const bobPage = await openUi(bobCtx, bob);
  await bobPage.locator('[data-testid="thread"]', { hasText: 'Minutes' }).waitFor();
  await hideToast(bobPage);
  await bobPage.screenshot({ path: join(SHOTS, 'inbox.png') });
  await bobPage.locator('[data-testid="thread"]', { hasText: 'Via alias' }).click();
  await bobPage.waitForSelector('main[data-view="read"] [data-testid="reply"]');
  await hideToast(bobPage);
  await bobPage.screenshot({ path: join(SHOTS, 'read.png') });

  // Compose after one message went out: the result panel shows its state; a new draft is filled in.
  const alicePage = await openUi(aliceCtx, alice, '#/compose');
  await alicePage.fill('[data-testid="compose-to"]', 'bob');
  await alicePage.fill('[data-testid="compose-subject"]', 'Plans for the weekend');
  await alicePage.fill('[data-testid="compose-body"]', 'Hi Bob, are you around on Saturday?');
  await alicePage.click('[data-testid="compose-send"]');
  await alicePage.waitForSelector('[data-testid="send-state"][data-state="delivered"]');
  await alicePage.fill('[data-testid="compose-subject"]', 'Re: Plans for the weekend');
  await alicePage.fill('[data-testid="compose-body"]', 'And I could bring the maps.\n\nAlice');
  await hideToast(alicePage);
  await alicePage.screenshot({ path: join(SHOTS, 'compose.png') });

  await alicePage.click('nav a[data-nav="outbox"]');
  await alicePage.waitForSelector('main[data-view="outbox"]');
  await alicePage.click('[data-testid="tab-sent"]');
  await alicePage.waitForSelector('main[data-view="sent"] [data-testid="outbox-row"]');
  await hideToast(alicePage);
  await alicePage.screenshot({ path: join(SHOTS, 'sent.png') });

  await alicePage.click('nav a[data-nav="status"]');
  await alicePage.waitForSelector('[data-testid="onion-address"]');
  assert.equal(await alicePage.locator('[data-testid="onion-address"]').textContent(), alice.identity.onion);
  assert.equal(await alicePage.locator('[data-testid="reachable"]').getAttribute('data-value'), alice.reachable ? 'yes' : 'no');
  await eventually(async () => (await alicePage.locator('[data-testid="bootstrap-pct"]').textContent()) === '100%', WAIT, 'bootstrap shown');
  await hideToast(alicePage);
  await alicePage.screenshot({ path: join(SHOTS, 'status.png') });
  // The copy button puts the full address on the clipboard.
  await aliceCtx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: apiUrl(alice) });
  await alicePage.click('[data-testid="copy-onion"]');
  assert.equal(await alicePage.evaluate('navigator.clipboard.readText()'), alice.identity.onion);
  for (const p of [alicePage, bobPage]) assert.deepEqual(jsErrors(p), []);
  await Promise.all([alicePage.close(), bobPage.close()]);
  for (const f of ['inbox', 'read', 'compose', 'sent', 'status']) assert.ok(statSync(join(SHOTS, `${f}.png`)).size > 10_000, `${f}.png written`);
});
