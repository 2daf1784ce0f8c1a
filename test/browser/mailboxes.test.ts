/**
 * The Mailboxes page of the web UI (issue 12 item 3, issue 11 item 10), driven in Debian's Chromium
 * (playwright-core): a user adds a node that runs the provider role by its onion and sees it listed
 * with the terms the provider signed; a plain node's onion is refused in plain words and nothing is
 * listed; removing asks first, "Keep it" keeps it, "Remove it" removes it (in the node too); the
 * page fits a 390-px phone screen without horizontal scrolling. What the provider says of our
 * account shows on its card (a free provider: "free"); a priced one whose payment ends within 7 days
 * shows the node's warning with the command that pays it (the account as a priced provider's
 * ACCOUNT_STATUS leaves it in the store; the exchange itself: test/component/provider-paid.test.ts).
 *
 * Nodes run in this process on the loopback network (no Tor, no chain). Screenshot: mailboxes.png
 * (docs/screenshots/ with ONIONPOST_SCREENSHOTS=1).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { silentLogger } from '../../src/log.js';
import type { OnionpostNode } from '../../src/node/index.js';
import { createWebHandler } from '../../src/web/index.js';
import { CHROMIUM_ARGS, KEEP_SHOTS, SHOTS, jsErrors, openUi, phoneLayout, shot } from '../fixtures/browser.js';
import { testNodes, type TestNodes } from '../fixtures/nodes.js';

const CTX = { viewport: { width: 1200, height: 800 }, reducedMotion: 'reduce' as const, locale: 'en-GB', timezoneId: 'UTC' };
const PHONE = { ...CTX, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

let t: TestNodes;
let provider: OnionpostNode;
let plain: OnionpostNode;
let user: OnionpostNode;
let browser: Browser;
let ctx: BrowserContext;

before(async () => {
  t = await testNodes('onionpost-web-mailboxes-');
  provider = await t.make('provider', { provider: { dbPath: join(t.root, 'provider-held.db') } });
  plain = await t.make('plain');
  user = await t.make('user', { api: { token: randomBytes(32).toString('hex'), web: createWebHandler({ logger: silentLogger() }) } });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, timeout: 30_000 });
  ctx = await browser.newContext(CTX);
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await t?.cleanup();
  if (!KEEP_SHOTS) rmSync(SHOTS, { recursive: true, force: true });
});

test('add a provider by onion, see its signed terms; a plain node is refused in plain words; remove asks first; fits a 390-px phone', async () => {
  const page = await openUi(ctx, user, '#/mailboxes');
  assert.equal(await page.locator('nav a[data-nav="mailboxes"]').getAttribute('aria-current'), 'page');
  assert.equal(await page.locator('[data-testid="mailbox-empty"]').isVisible(), true);

  // A node that serves no mailbox protocol: refused, in words, and nothing listed.
  await page.fill('[data-testid="mailbox-address"]', plain.identity.onion);
  await page.click('[data-testid="mailbox-add"]');
  const result = page.locator('[data-testid="mailbox-add-result"]');
  await page.locator('[data-testid="mailbox-add-result"].error').waitFor();
  assert.equal(await result.getAttribute('data-code'), 'NOT_A_PROVIDER');
  assert.equal(await result.textContent(), 'This onion is online but is not a mailbox provider.');
  assert.equal(await page.locator('[data-testid="mailbox"]').count(), 0);
  assert.deepEqual(user.mailboxes.list(), []);

  // Not an onion at all.
  await page.fill('[data-testid="mailbox-address"]', 'nope.onion');
  await page.click('[data-testid="mailbox-add"]');
  await page.locator('[data-testid="mailbox-add-result"][data-code="BAD_ADDRESS"]').waitFor();
  assert.match((await result.textContent())!, /^That is not a v3 \.onion address/);

  // The provider: subscribed, listed with the terms it signed (14 days, 256 MB by default).
  await page.fill('[data-testid="mailbox-address"]', provider.identity.onion);
  await page.click('[data-testid="mailbox-add"]');
  await page.locator('[data-testid="mailbox-add-result"].ok').waitFor();
  assert.equal(await result.textContent(), 'Subscribed: it keeps mail 14 days, up to 256 MB.');
  const card = page.locator(`[data-testid="mailbox"][data-onion="${provider.identity.onion}"]`);
  await card.waitFor();
  assert.equal(await card.locator('code.onion').textContent(), provider.identity.onion);
  assert.equal(await card.locator('[data-testid="mailbox-retention"]').textContent(), '14 days');
  assert.equal(await card.locator('[data-testid="mailbox-quota"]').textContent(), '256 MB');
  // The node fetches a provider it just added at once: shown as the time of that fetch, or "never" if the page came first.
  assert.match(String(await card.locator('[data-testid="mailbox-last-fetch"]').textContent()), /^(never|\d{2}:\d{2})$/);
  assert.equal(await card.locator('[data-testid="mailbox-paid-until"]').textContent(), 'free');
  assert.equal(await card.locator('[data-testid="mailbox-held"]').textContent(), '0 messages, 0 KB of 256 MB');
  assert.equal(await card.locator('[data-testid="mailbox-warning"]').count(), 0);
  const subscribedAt = user.mailboxes.list()[0]!.subscribedAt;
  assert.equal(await card.locator('[data-testid="mailbox-subscribed"] time').getAttribute('datetime'), new Date(subscribedAt).toISOString());
  assert.equal(await page.locator('[data-testid="mailbox-address"]').inputValue(), '', 'the field is cleared after a success');
  assert.equal(await page.locator('[data-testid="mailbox-empty"]').isVisible(), false);
  assert.equal(provider.status().provider?.users, 1, 'the provider holds an account for us');
  await shot(page, 'mailboxes');

  // A priced provider paid for 2 more days, as its ACCOUNT_STATUS would leave it: the node's warning.
  const now = Date.now();
  const paidUntil = now + 2 * 24 * 3600 * 1000;
  const day = new Date(paidUntil).toISOString().slice(0, 10);
  user.store.mailboxProviders.setAccount(provider.identity.onion, {
    paidUntil, graceMs: 3 * 24 * 3600 * 1000, heldCount: 2, heldBytes: 5 * 1024, quotaBytes: 256 * 1024 * 1024, time: now, checkedAt: now,
  });
  await page.reload();
  await card.locator('[data-testid="mailbox-warning"]').waitFor();
  assert.equal(await card.locator('[data-testid="mailbox-paid-until"]').textContent(), day);
  assert.equal(await card.locator('[data-testid="mailbox-held"]').textContent(), '2 messages, 5.0 KB of 256 MB');
  assert.equal(await card.locator('[data-testid="mailbox-warning"]').textContent(),
    `mailbox provider ${provider.identity.onion} is paid until ${day}: pay with onionpost providers pay ${provider.identity.onion}`);
  assert.equal(await card.locator('[data-testid="mailbox-warning"] code').textContent(), `onionpost providers pay ${provider.identity.onion}`);
  await shot(page, 'mailboxes-lapsing');

  // On a phone: no horizontal scrolling, the full onion wraps inside its card.
  const phone = await browser.newContext(PHONE);
  try {
    const p = await openUi(phone, user, '#/mailboxes');
    await p.locator('[data-testid="mailbox"]').waitFor();
    const m = await phoneLayout(p);
    assert.ok(m.sw <= m.cw, `the page is ${m.sw} px wide on a ${m.cw} px screen`);
    assert.ok(m.header <= 64, `the header takes ${m.header} px`);
    assert.doesNotMatch(await p.locator('main').innerText(), /\b(null|undefined|NaN)\b/);
    assert.deepEqual(jsErrors(p), []);
  } finally {
    await phone.close();
  }

  // Remove asks first; "Keep it" keeps it.
  await card.locator('[data-testid="mailbox-remove"]').click();
  assert.equal(await card.locator('[data-testid="mailbox-remove-confirm"]').isVisible(), true);
  await card.locator('[data-testid="mailbox-remove-cancel"]').click();
  assert.equal(await card.locator('[data-testid="mailbox-remove-confirm"]').isVisible(), false);
  assert.equal(user.mailboxes.list().length, 1);
  await card.locator('[data-testid="mailbox-remove"]').click();
  await card.locator('[data-testid="mailbox-remove-confirm"]').click();
  await page.locator('[data-testid="mailbox-empty"]').waitFor();
  assert.equal(await page.locator('[data-testid="mailbox"]').count(), 0);
  assert.deepEqual(user.mailboxes.list(), []);
  assert.deepEqual(jsErrors(page), []);
  await page.close();
});
