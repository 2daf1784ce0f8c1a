/**
 * Measured reputation in the node (issue 12, item 4): the constant-space tally against the event
 * list it replaces, what the node records for each outcome (and what it does not hold against a
 * provider), the hourly sampling of fetches, decay with an injected clock, settling deposits into
 * `delivered` / `lost` once, and the review that replaces one of our providers with a spare or a
 * provider on an accepted trust list.
 * Real SQLite in a temp dir; the courier, the subscription and the network are stand-ins.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady, generateIdentity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import { MailboxReview } from '../../src/node/mailbox-review.js';
import { ProviderScores } from '../../src/node/provider-scores.js';
import {
  MailboxErrorCode, ProviderError, addToTally, reputationOf, reputationOfTally, signTrustList,
  type ReputationEvent, type ReputationEventKind, type ReputationTally,
} from '../../src/provider/index.js';
import { toHex } from '../../src/bytes.js';
import { TransportError } from '../../src/transport/index.js';
import { StoreError, openStore, type Store } from '../../src/store/index.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PEER = 'ab'.repeat(32);
let dir: string;
let onions: string[];

before(async () => {
  await cryptoReady();
  dir = mkdtempSync(join(tmpdir(), 'onionpost-reputation-'));
  onions = Array.from({ length: 6 }, () => generateIdentity().onion);
});
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function setup(opts: { fetchSampleMs?: number } = {}) {
  const clock = new ManualClock();
  const store = openStore({ path: join(dir, `node-${n++}.db`), logger: silentLogger(), clock });
  const closing = new AbortController();
  const scores = new ProviderScores({ store: () => store, clock, logger: silentLogger(), signal: closing.signal, ...opts });
  return { clock, store, closing, scores };
}

/** A queued message to PEER, deposited at `providers` with the given signed hold. */
function deposited(store: Store, clock: ManualClock, providers: string[], o: { ttlMs?: number; heldMs?: number } = {}): string {
  const id = randomBytes(16).toString('hex');
  const hash = randomBytes(32);
  store.insertOutgoing({
    id, kind: 'mail', peerIdentity: PEER, body: 'x', createdAt: clock.now(), expiresAt: clock.now() + (o.ttlMs ?? DAY),
    envelope: randomBytes(1072), envelopeHash: hash,
  });
  for (const [i, provider] of providers.entries()) {
    store.deposits.record({
      messageId: id, provider, seq: i + 1, envelopeHash: hash, depositedAt: clock.now(), expiresAt: clock.now() + (o.heldMs ?? 14 * DAY),
      receipt: new Uint8Array(64),
    });
  }
  return id;
}

test('tally: the constant-space sums score what the whole event list scores, old events faded', () => {
  const kinds: ReputationEventKind[] = ['deposit_ok', 'deposit_refused', 'unreachable', 'fetch_ok', 'delivered', 'lost', 'malformed'];
  const start = Date.UTC(2026, 0, 1);
  for (let round = 0; round < 20; round++) {
    const events: ReputationEvent[] = [];
    const tally: ReputationTally = {};
    // Mostly in time order, some late arrivals (a lost verdict is recorded long after its deposit).
    for (let i = 0; i < 200; i++) {
      const kind = kinds[Math.floor(Math.random() * kinds.length)]!;
      const at = start + Math.floor(Math.random() * 60 * DAY);
      events.push({ kind, at });
      tally[kind] = addToTally(tally[kind], at);
    }
    const now = start + 61 * DAY;
    const a = reputationOf(events, now);
    const b = reputationOfTally(tally, now);
    assert.ok(Math.abs(a.score - b.score) < 1e-9, `${a.score} vs ${b.score}`);
    assert.ok(Math.abs(a.good - b.good) < 1e-6 && Math.abs(a.bad - b.bad) < 1e-6);
    assert.deepEqual(a.counts, b.counts);
    assert.equal(a.proven, b.proven);
  }
  // One event now weighs 1; 14 days (a half-life) later, 0.5.
  const t = addToTally(undefined, start);
  assert.equal(reputationOfTally({ lost: t }, start).bad, 20);
  assert.ok(Math.abs(reputationOfTally({ lost: t }, start + 14 * DAY).bad - 10) < 1e-9);
});

test('recording: each deposit outcome counts, with the refusal code; our own failures and the node closing do not', () => {
  const { store, closing, scores, clock } = setup();
  const [p] = onions as [string];
  scores.observe(p, { op: 'deposit', ok: true });
  scores.observe(p, { op: 'deposit', ok: true });
  scores.observe(p, { op: 'deposit', ok: false, error: new ProviderError('REMOTE', 'over quota', { remoteCode: MailboxErrorCode.OVER_QUOTA }) });
  scores.observe(p, { op: 'deposit', ok: false, error: new TransportError('DIAL_TIMEOUT', 'no answer') });
  scores.observe(p, { op: 'deposit', ok: false, error: new ProviderError('BAD_SIGNATURE', 'receipt does not verify') });
  scores.observe(p, { op: 'deposit', ok: false, error: new StoreError('DISK_FULL', 'ours') });
  scores.observe(p, { op: 'deposit', ok: false, error: new ProviderError('ABORTED', 'cancelled') });
  // An unpaid subscription is the user's (or the recipient's) to settle, not the provider's fault.
  const notPaid = new ProviderError('REMOTE', 'lapsed', { remoteCode: MailboxErrorCode.NOT_PAID });
  scores.observe(p, { op: 'deposit', ok: false, error: notPaid });
  scores.observe(p, { op: 'fetch', ok: false, error: notPaid });
  let r = scores.reputation(p);
  assert.deepEqual({ ...r.counts }, { deposit_ok: 2, deposit_refused: 1, unreachable: 1, fetch_ok: 0, delivered: 0, lost: 0, malformed: 1 });
  assert.equal(r.good, 2);
  assert.equal(r.bad, 1 + 1 + 5);
  const h = scores.history(p);
  assert.deepEqual(h.map((e) => e.kind), ['malformed', 'unreachable', 'deposit_refused', 'deposit_ok', 'deposit_ok']);
  assert.equal(h[2]!.detail, 'OVER_QUOTA');
  assert.equal(h[1]!.detail, 'deposit: DIAL_TIMEOUT');
  closing.abort();
  scores.observe(p, { op: 'deposit', ok: false, error: new TransportError('DIAL_FAILED', 'closing') });
  assert.equal(scores.reputation(p).counts.unreachable, 1);
  // Decay with the clock: a half-life later every weight is halved, counts stay.
  clock.advance(14 * DAY);
  r = scores.reputation(p);
  assert.ok(Math.abs(r.good - 1) < 1e-9 && Math.abs(r.bad - 3.5) < 1e-9);
  assert.equal(r.counts.deposit_ok, 2);
  store.close();
});

test('recording: fetches count at most once an hour per outcome; failing-since is kept for our providers', () => {
  const { store, scores, clock } = setup();
  const [p] = onions as [string];
  store.mailboxProviders.put({ onion: p, identityKey: '11'.repeat(32), terms: { retentionMs: 14 * DAY, quotaBytes: 1 << 20, time: clock.now(), sig: new Uint8Array(64) }, subscribedAt: clock.now() });
  for (let i = 0; i < 12; i++) {
    scores.observe(p, { op: 'fetch', ok: true });
    clock.advance(5 * 60_000);
  }
  assert.equal(scores.reputation(p).counts.fetch_ok, 1, 'an hour of 5-minute rounds is one mark');
  scores.observe(p, { op: 'fetch', ok: true });
  assert.equal(scores.reputation(p).counts.fetch_ok, 2);
  assert.equal(store.mailboxProviders.get(p)!.fetchFailingSince, null);
  const failedAt = clock.now();
  for (let i = 0; i < 24; i++) {
    scores.observe(p, { op: 'fetch', ok: false, error: new TransportError('DIAL_FAILED', 'down') });
    clock.advance(30 * 60_000);
  }
  assert.equal(scores.reputation(p).counts.unreachable, 12, 'half-hourly failures over 12 hours: 12 marks');
  assert.equal(store.mailboxProviders.get(p)!.fetchFailingSince, failedAt, 'the first failure since the last good fetch');
  store.mailboxProviders.setLastFetch(p, clock.now());
  assert.equal(store.mailboxProviders.get(p)!.fetchFailingSince, null);
  store.close();
});

test('settling: delivered and lost count once per deposit; retention shorter than the TTL and failures are void', () => {
  const { store, scores, clock } = setup();
  const [good, bad, brief] = onions as [string, string, string];
  const ok = deposited(store, clock, [good]);
  const gone = deposited(store, clock, [bad], { ttlMs: DAY, heldMs: 14 * DAY });
  const short = deposited(store, clock, [brief], { ttlMs: 20 * DAY, heldMs: 14 * DAY });
  const failed = deposited(store, clock, [good]);
  assert.deepEqual(scores.settle(), { delivered: 0, lost: 0, void: 0 }, 'nothing final yet');
  store.markDelivered(ok, new Uint8Array(16), clock.now());
  store.transition(failed, 'failed', { reason: 'test' });
  clock.advance(21 * DAY);
  assert.deepEqual(store.expireDue(clock.now()).sort(), [gone, short].sort());
  assert.deepEqual(scores.settle(), { delivered: 1, lost: 1, void: 2 });
  assert.deepEqual(scores.settle(), { delivered: 0, lost: 0, void: 0 }, 'each deposit counts once');
  assert.equal(scores.reputation(good).counts.delivered, 1);
  assert.equal(scores.reputation(bad).counts.lost, 1);
  assert.equal(scores.history(bad)[0]!.detail, `message ${gone}`);
  assert.equal(scores.reputation(brief).counts.lost, 0);
  // One lost message outweighs ten good deposits: proven, below the line, not used.
  for (let i = 0; i < 10; i++) scores.observe(bad, { op: 'deposit', ok: true });
  const r = scores.reputation(bad);
  assert.ok(r.proven && r.belowThreshold, JSON.stringify(r));
  assert.equal(scores.usable(bad), false);
  assert.equal(scores.usable(good), true);
  assert.deepEqual(scores.list().map((v) => v.onion), [good, bad], 'best first');
  store.close();
});

/** A review over the stand-ins: subscribing works unless the onion is in `refuse`. */
function reviewer(store: Store, scores: ProviderScores, clock: ManualClock, refuse = new Set<string>()) {
  const events: { type: string; [k: string]: unknown }[] = [];
  const fetched: string[] = [];
  const review = new MailboxReview({
    store: () => store, scores, clock, logger: silentLogger(), signal: new AbortController().signal, emit: (ev) => events.push(ev),
    mailboxes: {
      add: async (onion) => {
        if (refuse.has(onion)) throw new Error('refused');
        return store.mailboxProviders.put({ onion, identityKey: randomBytes(32).toString('hex'), terms: { retentionMs: 14 * DAY, quotaBytes: 1 << 20, time: clock.now(), sig: new Uint8Array(64) }, subscribedAt: clock.now() });
      },
      remove: (onion) => store.mailboxProviders.remove(onion),
    },
    fetchFrom: async (onion) => void fetched.push(onion),
    deposit: async (m) => m.mailboxes,
  });
  return { review, events, fetched };
}

function subscribe(store: Store, clock: ManualClock, onion: string): void {
  store.mailboxProviders.put({ onion, identityKey: randomBytes(32).toString('hex'), terms: { retentionMs: 14 * DAY, quotaBytes: 1 << 20, time: clock.now(), sig: new Uint8Array(64) }, subscribedAt: clock.now() });
}

test('review: one of ours that lost mail is replaced by the best spare; without a spare it is kept and warned about once', async () => {
  const { store, scores, clock } = setup();
  const [good, bad, spare1, spare2] = onions as [string, string, string, string];
  subscribe(store, clock, good);
  subscribe(store, clock, bad);
  deposited(store, clock, [bad], { ttlMs: HOUR });
  clock.advance(2 * HOUR);
  store.expireDue(clock.now());

  const { review, events, fetched } = reviewer(store, scores, clock, new Set([spare1]));
  let r = await review.review();
  assert.deepEqual(r.settled, { delivered: 0, lost: 1, void: 0 });
  assert.deepEqual(r.kept.map((k) => k.provider), [bad]);
  assert.match(r.kept[0]!.reason, /below 0.6/);
  assert.deepEqual(events.map((e) => e.type), ['mailbox.warning']);
  assert.ok(review.warnings().some((w) => w.type === 'mailbox.belowThreshold' && w.provider === bad && /mailboxes spare/.test(w.message)));
  await review.review();
  assert.equal(events.length, 1, 'warned once, not at every review');
  assert.deepEqual(store.mailboxProviders.list().map((p) => p.onion).sort(), [good, bad].sort());

  // spare1 refuses the subscription: the next candidate takes its place.
  review.addSpare(spare1);
  review.addSpare(spare2);
  r = await review.review();
  assert.deepEqual(r.replaced.map((x) => [x.dropped, x.added]), [[bad, spare2]]);
  assert.deepEqual(store.mailboxProviders.list().map((p) => p.onion).sort(), [good, spare2].sort());
  assert.deepEqual(fetched, [bad], 'one last fetch from the dropped provider');
  assert.equal(events.at(-1)!.type, 'mailbox.replaced');
  assert.ok(review.warnings().some((w) => w.type === 'mailbox.replaced' && w.provider === bad));
  assert.equal(scores.history(bad)[0]!.kind, 'replaced');
  clock.advance(8 * DAY);
  assert.ok(!review.warnings().some((w) => w.type === 'mailbox.replaced'), 'the notice is shown for a week');
  store.close();
});

test('review: one of ours that no fetch reached for two days is replaced; a shorter outage is not', async () => {
  const { store, scores, clock } = setup({ fetchSampleMs: HOUR });
  const [good, flaky, spare] = onions.slice(3) as [string, string, string];
  subscribe(store, clock, good);
  subscribe(store, clock, flaky);
  const { review } = reviewer(store, scores, clock);
  review.addSpare(spare);
  // Long-good history: the score alone would take days to fall.
  for (let i = 0; i < 200; i++) {
    scores.observe(flaky, { op: 'fetch', ok: true });
    clock.advance(HOUR);
  }
  for (let i = 0; i < 47; i++) {
    scores.observe(flaky, { op: 'fetch', ok: false, error: new TransportError('DIAL_FAILED', 'down') });
    clock.advance(HOUR);
  }
  assert.ok(!scores.reputation(flaky).belowThreshold);
  assert.deepEqual((await review.review()).replaced, [], '47 hours');
  scores.observe(flaky, { op: 'fetch', ok: false, error: new TransportError('DIAL_FAILED', 'down') });
  clock.advance(HOUR);
  const r = await review.review();
  assert.deepEqual(r.replaced.map((x) => [x.dropped, x.added]), [[flaky, spare]]);
  assert.match(r.replaced[0]!.reason, /no fetch from it has worked since/);
  store.close();
});

test('review: providers on an accepted trust list are candidates while the list holds; others\' lists are refused', async () => {
  const { store, scores, clock } = setup();
  const [mine, bad, listed] = onions as [string, string, string];
  const friend = generateIdentity();
  const stranger = generateIdentity();
  subscribe(store, clock, mine);
  subscribe(store, clock, bad);
  const { review } = reviewer(store, scores, clock);
  const text = signTrustList(friend, { name: 'friends', providers: [listed], now: clock.now(), lifetimeMs: 3 * DAY });
  assert.throws(() => review.addTrustList(text, toHex(stranger.identityKey)), (e: unknown) => e instanceof ProviderError && e.code === 'UNTRUSTED_SIGNER');
  assert.throws(() => review.addTrustList(text.replace('friends', 'fiends'), toHex(friend.identityKey)), (e: unknown) => e instanceof ProviderError && e.code === 'BAD_TRUST_LIST');
  assert.deepEqual(review.addTrustList(text, toHex(friend.identityKey)).providers, [listed]);
  assert.deepEqual(review.trustLists().map((l) => [l.name, l.valid]), [['friends', true]]);

  // The list expires before bad goes bad: nothing to switch to.
  clock.advance(4 * DAY);
  deposited(store, clock, [bad], { ttlMs: HOUR });
  clock.advance(2 * HOUR);
  store.expireDue(clock.now());
  assert.deepEqual(review.trustLists().map((l) => [l.name, l.valid]), [['friends', false]]);
  assert.deepEqual((await review.review()).kept.map((k) => k.provider), [bad]);

  // A fresh list from the same signer replaces it, and its provider takes bad's place.
  review.addTrustList(signTrustList(friend, { name: 'friends', providers: [listed], now: clock.now(), lifetimeMs: 3 * DAY }), toHex(friend.identityKey));
  assert.equal(review.trustLists().length, 1);
  const r = await review.review();
  assert.deepEqual(r.replaced.map((x) => [x.dropped, x.added]), [[bad, listed]]);
  review.removeTrustList('friends');
  assert.deepEqual(review.trustLists(), []);
  store.close();
});
