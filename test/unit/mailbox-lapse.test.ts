/**
 * Telling the user before a priced mailbox provider stops serving (issue 12, item 2), with an
 * injected clock: the warning rule (lapseOf: due within 7 days, in the grace, past it; nothing for a
 * free provider or one paid for longer), and the node's side of ACCOUNT_STATUS (UserMailboxes
 * checkAccount over a real store file, the provider's answer given by a stand-in client): the
 * answer is kept and shown in the list and in `status` warnings, and mailbox.lapsing is emitted at
 * most once a day per provider. The CLI's words for it too.
 */
import { afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { heldWords, paidWords } from '../../src/cli/mailbox-commands.js';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady, generateIdentity, type Identity } from '../../src/crypto/index.js';
import { DEFAULT_LIMITS } from '../../src/limits.js';
import { silentLogger } from '../../src/log.js';
import { LAPSE_WARNING_MS, UserMailboxes, lapseOf } from '../../src/node/mailboxes.js';
import type { PeerNetwork } from '../../src/node/network.js';
import type { AccountStatus, MailboxClient } from '../../src/provider/index.js';
import { openStore, type Store } from '../../src/store/index.js';

const DAY = 24 * 3600 * 1000;
const GRACE = 3 * DAY;
const NOW = Date.UTC(2026, 10, 26, 12);
let dir: string;
let store: Store;
let clock: ManualClock;
let me: Identity;
let provider: Identity;

before(async () => {
  await cryptoReady();
  me = generateIdentity();
  provider = generateIdentity();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onionpost-lapse-'));
  clock = new ManualClock(NOW);
  store = openStore({ path: join(dir, 'node.db'), logger: silentLogger(), clock });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the rule: warned from 7 days before paid-until, in the grace and past it; never for a free provider or one paid for longer', () => {
  const onion = provider.onion;
  const at = (paidUntil: number) => lapseOf(onion, { paidUntil, graceMs: GRACE }, NOW);
  assert.equal(lapseOf(onion, null, NOW), null, 'not asked yet');
  assert.equal(at(0), null, 'a free provider');
  assert.equal(at(NOW + LAPSE_WARNING_MS + 1), null, 'paid for more than 7 days');
  const due = at(NOW + LAPSE_WARNING_MS)!;
  assert.equal(due.state, 'due');
  assert.equal(due.message, `mailbox provider ${onion} is paid until 2026-12-03: pay with \`onionpost providers pay ${onion}\``);
  const grace = at(NOW - DAY)!;
  assert.deepEqual([grace.state, grace.servedUntil], ['grace', NOW + 2 * DAY]);
  assert.equal(grace.message, `mailbox provider ${onion} was paid until 2026-11-25; it stops holding your mail after 2026-11-28: pay with \`onionpost providers pay ${onion}\``);
  const lapsed = at(NOW - GRACE - 1)!;
  assert.equal(lapsed.state, 'lapsed');
  assert.match(lapsed.message, /no longer holds or hands out your mail: pay with `onionpost providers pay /);
  assert.match(at(1)!.message, /has no payment for your mailbox and no longer holds/, 'a priced provider that found no payment says 1');
});

function mailboxes(events: { type: string; [k: string]: unknown }[]): UserMailboxes {
  return new UserMailboxes({
    identity: me, store: () => store, network: {} as PeerNetwork, clock, limits: DEFAULT_LIMITS, logger: silentLogger(),
    emit: (ev) => events.push(ev), signal: new AbortController().signal,
  });
}

/** A stand-in for the provider's answer (the real exchange is test/unit/mailbox-protocol.test.ts). */
function answering(s: () => Omit<AccountStatus, 'sig' | 'time'>): MailboxClient {
  return { account: async () => ({ ...s(), time: clock.now(), sig: new Uint8Array(64) }) } as unknown as MailboxClient;
}

test('the node keeps what the provider said, shows it, warns in status, and emits mailbox.lapsing at most once a day', async () => {
  const events: { type: string; [k: string]: unknown }[] = [];
  const m = mailboxes(events);
  const onion = provider.onion;
  store.mailboxProviders.put({ onion, identityKey: Buffer.from(provider.identityKey).toString('hex'), terms: { retentionMs: 14 * DAY, quotaBytes: 1 << 20, time: NOW, sig: new Uint8Array(64) }, subscribedAt: NOW });
  assert.deepEqual(m.list().map((v) => [v.paidUntil, v.held, v.warning]), [[null, null, null]], 'nothing known before the first answer');
  assert.equal(paidWords(m.list()[0]!), '?');

  let paidUntil = NOW + 20 * DAY;
  const client = answering(() => ({ paidUntil, graceMs: GRACE, heldCount: 3, heldBytes: 3072, quotaBytes: 1 << 20 }));
  const opts = { signal: new AbortController().signal, timeoutMs: 1000 };
  await m.checkAccount(onion, client, opts);
  const v = m.list()[0]!;
  assert.deepEqual([v.paidUntil, v.graceMs, v.held, v.accountCheckedAt, v.warning], [paidUntil, GRACE, { count: 3, bytes: 3072, quotaBytes: 1 << 20 }, NOW, null]);
  assert.deepEqual([paidWords(v), heldWords(v)], ['2026-12-16', '3 (3.0 KB of 1.0 MB)']);
  assert.deepEqual(m.warnings(), []);
  assert.equal(events.length, 0);

  // 13 days later: 7 days left. One event, one warning in status and in the list.
  clock.advance(13 * DAY);
  await m.checkAccount(onion, client, opts);
  assert.deepEqual(events.map((e) => [e.type, e.provider, e.state, e.paidUntil]), [['mailbox.lapsing', onion, 'due', paidUntil]]);
  const w = `mailbox provider ${onion} is paid until 2026-12-16: pay with \`onionpost providers pay ${onion}\``;
  assert.deepEqual(m.warnings(), [{ type: 'mailbox.lapsing', provider: onion, message: w }]);
  assert.equal(m.list()[0]!.warning, w);
  // Every fetch round asks again (every 5 min): still one event that day, a second the next day.
  for (let i = 0; i < 3; i++) {
    clock.advance(5 * 60_000);
    await m.checkAccount(onion, client, opts);
  }
  assert.equal(events.length, 1);
  clock.advance(DAY);
  await m.checkAccount(onion, client, opts);
  assert.equal(events.length, 2);
  // In the grace, then past it: the words change with the clock, the event comes once a day.
  clock.advance(7 * DAY);
  await m.checkAccount(onion, client, opts);
  assert.deepEqual(events.map((e) => e.state), ['due', 'due', 'grace']);
  assert.match(m.warnings()[0]!.message, /stops holding your mail after 2026-12-19/);
  clock.advance(3 * DAY);
  assert.match(m.warnings()[0]!.message, /no longer holds or hands out your mail/, 'status goes by the clock between rounds too');
  // Paid again (for 30 days): the warning goes at the next answer.
  paidUntil = clock.now() + 30 * DAY;
  await m.checkAccount(onion, client, opts);
  assert.deepEqual([m.warnings(), m.list()[0]!.warning, events.length], [[], null, 3]);
  // A free provider is never a warning.
  paidUntil = 0;
  await m.checkAccount(onion, client, opts);
  assert.deepEqual([m.warnings(), paidWords(m.list()[0]!)], [[], 'free']);
  // What a provider no longer ours answers is dropped.
  store.mailboxProviders.remove(onion);
  await m.checkAccount(onion, client, opts);
  assert.deepEqual(m.list(), []);
});
