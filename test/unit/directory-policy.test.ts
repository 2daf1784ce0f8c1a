/**
 * The directory policy (issue 12 item 3): which directory listings a node may pick by itself
 * (filters, price and payment, measured score, cooling), how they rank, the stored policy's
 * validation, and the review that replaces a bad provider of ours and fills up to the target from
 * the directory only while the policy is on. Real SQLite in a temp dir; the directory, the
 * subscription and the network are stand-ins.
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
import { MailboxesError } from '../../src/node/errors.js';
import { DEFAULT_MAILBOX_POLICY, filtersOf, mergePolicy, readPolicy } from '../../src/node/mailbox-policy.js';
import { MailboxReview } from '../../src/node/mailbox-review.js';
import { ProviderScores } from '../../src/node/provider-scores.js';
import { DEFAULT_POLICY, judge, rank, type ProviderCandidate, type ProviderPolicy } from '../../src/provider/index.js';
import { openStore } from '../../src/store/index.js';
import { TransportError } from '../../src/transport/index.js';

const DAY = 24 * 3600 * 1000;
const NOW = Date.UTC(2026, 10, 30);
const TOKEN = 'TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t';
let dir: string;
let on: string[];

before(async () => {
  await cryptoReady();
  dir = mkdtempSync(join(tmpdir(), 'onionpost-dirpolicy-'));
  on = Array.from({ length: 8 }, () => generateIdentity().onion as string);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const listing = (i: number, over: Partial<ProviderCandidate> = {}): ProviderCandidate =>
  ({ onion: on[i]!, source: 'directory', stakeSun: 200_000_000n, retentionDays: 14, quotaMB: 256, price: 0n, token: null, ...over });
const policyOf = (over: Partial<typeof DEFAULT_MAILBOX_POLICY> = {}): ProviderPolicy =>
  ({ ...DEFAULT_POLICY, ...filtersOf(mergePolicy(DEFAULT_MAILBOX_POLICY, over)) });

test('judge: a priced listing that fits is payable until paid; free-only and a cap keep it out for good', () => {
  const p = policyOf();
  const priced = listing(1, { price: 5_000_000n });
  const unpaid = judge(priced, p, NOW);
  assert.equal(unpaid.eligible, false);
  assert.equal(unpaid.payable, true);
  assert.equal(unpaid.reason, `not paid: pay with \`onionpost providers pay ${on[1]}\``);
  assert.equal(judge({ ...priced, paidUntil: NOW }, p, NOW).payable, true, 'paid until now is not paid');
  assert.ok(judge({ ...priced, paidUntil: NOW + DAY }, p, NOW).eligible);
  assert.ok(judge(listing(2), p, NOW).eligible, 'free needs no payment');

  const free = policyOf({ freeOnly: true });
  assert.deepEqual(judge({ ...priced, paidUntil: NOW + DAY }, free, NOW), { onion: on[1], eligible: false, reason: 'not free' });
  const capped = policyOf({ maxPrice: { amount: '4000000', token: null } });
  assert.equal(judge({ ...priced, paidUntil: NOW + DAY }, capped, NOW).reason, 'costs more than your maximum');
  assert.equal(judge(priced, capped, NOW).payable, undefined, 'paying would not help');
  assert.equal(judge(listing(3, { price: 1n, token: TOKEN, paidUntil: NOW + DAY }), capped, NOW).reason, 'priced in a currency you do not pay in');
  const tokenCap = policyOf({ maxPrice: { amount: '10', token: TOKEN } });
  assert.ok(judge(listing(3, { price: 10n, token: TOKEN, paidUntil: NOW + DAY }), tokenCap, NOW).eligible);

  const strict = policyOf({ minStakeSun: '300000000', minRetentionDays: 30 });
  assert.equal(judge(listing(4), strict, NOW).reason, 'stake below your minimum');
  assert.equal(judge(listing(4, { stakeSun: 300_000_000n }), strict, NOW).reason, 'keeps mail for too short a time');
  assert.ok(judge(listing(4, { stakeSun: 300_000_000n, retentionDays: 30 }), strict, NOW).eligible);
});

test('rank: measured good listings before unmeasured ones, then stake; proven bad and cooling ones never', () => {
  const ranked = rank([
    listing(1, { stakeSun: 900_000_000n }),
    listing(2, { proven: true, score: 0.8 }),
    listing(3, { proven: true, score: 0.95 }),
    listing(4, { proven: true, score: 0.3, stakeSun: 999_000_000n }),
    listing(5, { stakeSun: 950_000_000n, coolingUntil: NOW + 60_000 }),
    listing(6),
    listing(7, { price: 1n }),
  ], policyOf(), NOW).map((c) => c.onion);
  assert.deepEqual(ranked, [on[3], on[2], on[1], on[6]]);
});

test('the stored policy: defaults, every field checked, amounts normalised', () => {
  assert.deepEqual(readPolicy(null), DEFAULT_MAILBOX_POLICY);
  assert.equal(DEFAULT_MAILBOX_POLICY.directory, false, 'off unless the user turns it on');
  const p = mergePolicy(DEFAULT_MAILBOX_POLICY, { directory: true, minStakeSun: '0200000000', maxPrice: { amount: '5000000', token: null } });
  assert.equal(p.minStakeSun, '200000000');
  assert.deepEqual(readPolicy(JSON.stringify(p)), p);
  const refused = (patch: object) => assert.throws(() => mergePolicy(DEFAULT_MAILBOX_POLICY, patch), (e: unknown) => e instanceof MailboxesError && e.code === 'BAD_POLICY', JSON.stringify(patch));
  refused({ target: 0 });
  refused({ target: 9 });
  refused({ minStakeSun: '1.5' });
  refused({ minRetentionDays: -1 });
  refused({ maxPrice: { amount: '5', token: 'not-an-address' } });
  refused({ directory: 'yes' });
  assert.deepEqual(filtersOf(p).maxPrice, new Map([[null, 5_000_000n]]));
  assert.equal(filtersOf(DEFAULT_MAILBOX_POLICY).maxPrice, null, 'no cap by default');
});

let n = 0;
function setup(directory: ProviderCandidate[], refuse = new Set<string>()) {
  const clock = new ManualClock(NOW);
  const store = openStore({ path: join(dir, `node-${n++}.db`), logger: silentLogger(), clock });
  const signal = new AbortController().signal;
  const scores = new ProviderScores({ store: () => store, clock, logger: silentLogger(), signal });
  const events: { type: string; [k: string]: unknown }[] = [];
  let asked = 0;
  const put = (onion: string) => store.mailboxProviders.put({
    onion, identityKey: randomBytes(32).toString('hex'), terms: { retentionMs: 14 * DAY, quotaBytes: 1 << 20, time: clock.now(), sig: new Uint8Array(64) }, subscribedAt: clock.now(),
  });
  const review = new MailboxReview({
    store: () => store, scores, clock, logger: silentLogger(), signal, emit: (ev) => events.push(ev), unreachableReplaceMs: DAY,
    mailboxes: {
      add: async (onion) => {
        if (refuse.has(onion)) throw new Error('refused');
        return put(onion);
      },
      remove: (onion) => store.mailboxProviders.remove(onion),
    },
    fetchFrom: async () => {},
    deposit: async (m) => m.mailboxes,
    candidates: async (policy) => {
      asked++;
      assert.equal(policy.minStakeSun, BigInt(review.policy().minStakeSun), 'judged by the stored policy');
      return directory;
    },
  });
  const ours = () => store.mailboxProviders.list().map((p) => p.onion);
  /** `onion` becomes one of ours that no fetch has reached for two days. */
  const unreachable = (onion: string) => {
    put(onion);
    for (let i = 0; i < 3; i++) {
      scores.observe(onion, { op: 'fetch', ok: false, error: new TransportError('DIAL_FAILED', 'down') });
      clock.advance(DAY);
    }
  };
  return { store, review, events, ours, put, unreachable, asked: () => asked };
}

test('review, policy off: the directory is not asked and a bad provider with no spare is kept', async () => {
  const s = setup([listing(2)]);
  s.put(on[0]!);
  s.unreachable(on[1]!);
  const r = await s.review.review();
  assert.equal(s.asked(), 0);
  assert.deepEqual(r.kept.map((k) => k.provider), [on[1]]);
  assert.deepEqual(r.added, []);
  assert.deepEqual(s.ours().sort(), [on[0], on[1]].sort());
  s.store.close();
});

test('review, policy on: a spare first, then the best eligible listing; never an ineligible one; fills up to the target from the directory', async () => {
  const directory = [
    listing(3, { stakeSun: 900_000_000n, retentionDays: 3 }), // too short a retention, the highest stake
    listing(4, { price: 5_000_000n, stakeSun: 800_000_000n }), // priced, unpaid
    listing(5, { stakeSun: 300_000_000n }),
    listing(6, { stakeSun: 250_000_000n }),
    listing(7, { price: 5_000_000n, paidUntil: NOW + 90 * DAY, stakeSun: 210_000_000n }), // paid
  ];
  const s = setup(directory, new Set([on[5]!]));
  s.review.setPolicy({ directory: true, target: 2 });
  s.put(on[0]!);
  s.unreachable(on[1]!);
  s.review.addSpare(on[2]!);
  let r = await s.review.review();
  assert.deepEqual(r.replaced.map((x) => [x.dropped, x.added]), [[on[1], on[2]]], 'the spare the user named comes before the directory');
  assert.deepEqual(r.added, []);

  // The spare goes bad too: the best eligible listing (5) refuses, the next (6) takes its place.
  s.unreachable(on[2]!);
  r = await s.review.review();
  assert.deepEqual(r.replaced.map((x) => [x.dropped, x.added]), [[on[2], on[6]]]);
  assert.ok(!s.ours().includes(on[3]!) && !s.ours().includes(on[4]!));

  // Target 4: the paid listing joins; the unpaid one is named with the command that pays it, not used.
  s.review.setPolicy({ target: 4 });
  r = await s.review.review();
  assert.deepEqual(r.added, [on[7]]);
  assert.deepEqual(s.ours().sort(), [on[0], on[6], on[7]].sort());
  assert.deepEqual(r.payable.map((x) => x.provider), [on[4]]);
  assert.match(r.payable[0]!.message, /5 TRX per 30 days.*onionpost providers pay/);
  assert.ok(s.review.warnings().some((w) => w.type === 'mailbox.short' && w.message.includes(`providers pay ${on[4]}`)));
  assert.ok(s.events.some((e) => e.type === 'mailbox.added' && e['provider'] === on[7]));

  // Free only: nothing priced, paid or not; the paid one already ours stays (it is the user's now).
  s.review.setPolicy({ freeOnly: true, target: 2 });
  const asked = s.asked();
  r = await s.review.review();
  assert.equal(s.asked(), asked, 'nothing to replace or fill: the directory is not read');
  assert.deepEqual(r.added, []);
  assert.deepEqual(r.replaced, []);
  assert.ok(!s.review.warnings().some((w) => w.type === 'mailbox.short'));
  s.store.close();
});
