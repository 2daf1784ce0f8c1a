/**
 * The mailbox protocol: frame codecs (round trips, every truncation refused, limits checked from
 * length prefixes), and a client against the service over the in-memory channel pair with a real
 * ProviderStore file: subscribe with signed terms, queues, deposit receipts verified, fetch/ack,
 * refusals with their codes, replayed or foreign-signed requests, rate limit, malformed frames.
 */
import { afterEach, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { cryptoReady, generateIdentity, type Identity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import {
  MailboxClient, MailboxErrorCode, MailboxService, ProviderError, ProviderStore, decodeMailboxFrame, encodeMailboxFrame,
  verifyDepositReceipt, type MailboxFrame,
} from '../../src/provider/index.js';
import { createMemoryPair, type MessageChannel } from '../../src/transport/index.js';

const MAX = 262_144;
const SIZES = new Set([1024, 4096, 16384, 65536, 262144]);
let provider: Identity;
let alice: Identity;
let mallory: Identity;
let dir: string;
let clock: ManualClock;
let store: ProviderStore;
let service: MailboxService;
let client: MailboxClient;
let channels: MessageChannel[];

const q = (n: number) => new Uint8Array(16).fill(n);
const cap = (n: number) => new Uint8Array(32).fill(n);
const env = (fill: number, size = 1024) => new Uint8Array(size).fill(fill);

before(async () => {
  await cryptoReady();
  provider = generateIdentity();
  alice = generateIdentity();
  mallory = generateIdentity();
});

function connect(o: { paidUntil?: (tag: Uint8Array) => Promise<number>; requestsPerSecond?: number; requestBurst?: number } = {}): void {
  service = new MailboxService({
    identity: provider, store, clock, logger: silentLogger(),
    limits: { maxEnvelope: MAX, ...(o.requestsPerSecond ? { requestsPerSecond: o.requestsPerSecond, requestBurst: o.requestBurst ?? 1 } : {}) },
    ...(o.paidUntil ? { paidUntil: o.paidUntil } : {}),
  });
  const [a, b] = createMemoryPair({ clock });
  channels = [a, b];
  service.serve(b);
  client = new MailboxClient({ channel: a, providerKey: provider.identityKey, clock, maxEnvelope: MAX });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'onionpost-mailbox-'));
  clock = new ManualClock(Date.UTC(2026, 10, 29));
  store = new ProviderStore({ path: join(dir, 'provider.db'), logger: silentLogger(), isEnvelopeSize: (n) => SIZES.has(n) });
});
afterEach(() => {
  service?.close();
  for (const c of channels ?? []) c.destroy();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});
async function remoteCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ProviderError, String(err));
    return err.code === 'REMOTE' ? `REMOTE:${Object.entries(MailboxErrorCode).find(([, v]) => v === err.remoteCode)?.[0]}` : err.code;
  }
  return 'ok';
}

test('codec: every frame type round-trips; every proper prefix is refused; lengths are checked before reading', () => {
  const frames: MailboxFrame[] = [
    { type: 'SUBSCRIBE', id: 1, identity: cap(1), time: 5, tag: cap(2), sig: new Uint8Array(64).fill(3) },
    { type: 'SUBSCRIBE', id: 2, identity: cap(1), time: 5, tag: null, sig: new Uint8Array(64).fill(3) },
    { type: 'CREATE_QUEUE', id: 3, identity: cap(1), time: 6, queue: q(1), writeHash: null, readHash: cap(4), sig: new Uint8Array(64) },
    { type: 'REMOVE_QUEUE', id: 4, identity: cap(1), time: 6, queue: q(1), sig: new Uint8Array(64) },
    { type: 'DEPOSIT', id: 5, queue: q(2), writeCap: cap(5), envelope: env(7) },
    { type: 'FETCH', id: 6, queue: q(2), readCap: cap(6), afterSeq: 9, limit: 64 },
    { type: 'ACK', id: 7, queue: q(2), readCap: cap(6), seqs: [1, 2, 2 ** 40] },
    { type: 'TERMS', id: 8, retentionMs: 1, quotaBytes: 2, time: 3, sig: new Uint8Array(64) },
    { type: 'OK', id: 9 },
    { type: 'DEPOSITED', id: 10, seq: 1, digest: cap(8), depositedAt: 2, expiresAt: 3, sig: new Uint8Array(64) },
    { type: 'HELD', id: 11, items: [{ seq: 1, depositedAt: 2, envelope: env(1) }, { seq: 2, depositedAt: 3, envelope: env(2, 4096) }] },
    { type: 'ACKED', id: 12, count: 3 },
    { type: 'ERROR', id: 13, code: MailboxErrorCode.OVER_QUOTA, retryable: true, reason: 'full' },
    { type: 'ACCOUNT', id: 14, identity: cap(1), time: 7, sig: new Uint8Array(64).fill(4) },
    { type: 'ACCOUNT_STATUS', id: 15, paidUntil: 2 ** 45, graceMs: 3, heldCount: 0xffff_ffff, heldBytes: 5, quotaBytes: 6, time: 8, sig: new Uint8Array(64).fill(5) },
  ];
  for (const f of frames) {
    const bytes = encodeMailboxFrame(f, MAX);
    assert.deepEqual(decodeMailboxFrame(bytes, MAX), f);
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => decodeMailboxFrame(bytes.subarray(0, n), MAX), (e: unknown) => e instanceof ProviderError && e.code === 'MALFORMED', `${f.type} cut at ${n}`);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.throws(() => decodeMailboxFrame(longer, MAX), /trailing/);
  }
  const dep = encodeMailboxFrame({ type: 'DEPOSIT', id: 1, queue: q(1), writeCap: null, envelope: env(1) }, MAX);
  assert.throws(() => decodeMailboxFrame(dep, 1000), (e: unknown) => e instanceof ProviderError && e.code === 'BAD_SIZE');
  const bad = Uint8Array.from(dep);
  bad[0] = 2;
  assert.throws(() => decodeMailboxFrame(bad, MAX), /version/);
  bad[0] = 1;
  bad[1] = 0x40;
  assert.throws(() => decodeMailboxFrame(bad, MAX), /unknown type/);
  const fetch0 = encodeMailboxFrame({ type: 'FETCH', id: 1, queue: q(1), readCap: cap(1), afterSeq: 0, limit: 0 }, MAX);
  assert.throws(() => decodeMailboxFrame(fetch0, MAX), /limit/);
});

test('a user subscribes (signed terms), creates a queue, a contact deposits (signed receipt), the user fetches and acks', async () => {
  connect();
  const terms = await client.subscribe(alice, null);
  assert.equal(terms.retentionMs, 14 * 24 * 3600 * 1000);
  await client.createQueue(alice, q(1), { write: cap(0xa1), read: cap(0xb1) });
  const r1 = await client.deposit(q(1), cap(0xa1), env(1));
  const r2 = await client.deposit(q(1), cap(0xa1), env(2, 4096));
  assert.deepEqual([r1.seq, r2.seq], [1, 2]);
  assert.ok(verifyDepositReceipt(provider.identityKey, r1, env(1)));
  assert.ok(!verifyDepositReceipt(provider.identityKey, r1, env(9)), 'a receipt is for exactly one envelope');
  assert.ok(!verifyDepositReceipt(alice.identityKey, r1, env(1)), 'and from exactly one provider');
  const held = await client.fetch(q(1), cap(0xb1));
  assert.deepEqual(held.map((h) => [h.seq, h.envelope.length]), [[1, 1024], [2, 4096]]);
  assert.equal(await client.ack(q(1), cap(0xb1), [1, 2]), 2);
  assert.deepEqual(await client.fetch(q(1), cap(0xb1)), []);
  await client.removeQueue(alice, q(1));
  assert.equal(await remoteCode(client.deposit(q(1), cap(0xa1), env(3))), 'REMOTE:NO_CAPABILITY');
});

test('refusals carry their codes and store nothing; the connection stays up', async () => {
  connect();
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: cap(0xa1), read: cap(0xb1) });
  assert.equal(await remoteCode(client.deposit(q(1), null, env(1))), 'REMOTE:NO_CAPABILITY');
  assert.equal(await remoteCode(client.deposit(q(1), cap(0xb1), env(1))), 'REMOTE:NO_CAPABILITY');
  assert.equal(await remoteCode(client.deposit(q(1), cap(0xa1), env(1, 1000))), 'REMOTE:BAD_SIZE');
  assert.equal(await remoteCode(client.fetch(q(1), cap(0xa1))), 'REMOTE:NO_CAPABILITY');
  assert.equal(await remoteCode(client.createQueue(mallory, q(2), { write: null, read: cap(1) })), 'REMOTE:NOT_SUBSCRIBED');
  assert.equal(await remoteCode(client.createQueue(alice, q(1), { write: null, read: cap(1) })), 'REMOTE:QUEUE_EXISTS');
  assert.equal(store.stats().held, 0);
  // A request signed at another time is stale (replays of an old request die here).
  const stale = new MailboxClient({ channel: channels[0]!, providerKey: provider.identityKey, clock: new ManualClock(clock.now() - 3_600_000), maxEnvelope: MAX });
  assert.equal(await remoteCode(stale.subscribe(alice, null)), 'REMOTE:STALE');
  // Terms signed by someone else than the provider we meant are refused by the client.
  const wrongKey = new MailboxClient({ channel: channels[0]!, providerKey: mallory.identityKey, clock, maxEnvelope: MAX });
  assert.equal(await remoteCode(wrongKey.subscribe(alice, null)), 'REMOTE:BAD_SIGNATURE', 'the subscribe names another provider: refused');
  assert.ok(await client.fetch(q(1), cap(0xb1)), 'still serving');
});

test('a priced provider serves only a paid (or graced) tag', async () => {
  const paid = new Map<string, number>();
  const tag = cap(0x77);
  connect({ paidUntil: async (t) => paid.get(Buffer.from(t).toString('hex')) ?? 0 });
  assert.equal(await remoteCode(client.subscribe(alice, null)), 'REMOTE:NOT_PAID');
  assert.equal(await remoteCode(client.subscribe(alice, tag)), 'REMOTE:NOT_PAID');
  paid.set(Buffer.from(tag).toString('hex'), clock.now() - 24 * 3600 * 1000);
  await client.subscribe(alice, tag); // lapsed a day ago: inside the 3-day grace
  assert.deepEqual(store.account(alice.identityKey)!.tag, tag);
  paid.set(Buffer.from(tag).toString('hex'), clock.now() - 4 * 24 * 3600 * 1000);
  assert.equal(await remoteCode(client.subscribe(alice, tag)), 'REMOTE:NOT_PAID');
});

test('ACCOUNT: a free provider answers paid-until 0 with what it holds; a priced one its paid-until, also once lapsed past the grace, while FETCH is NOT_PAID', async () => {
  const DAY = 24 * 3600 * 1000;
  connect();
  assert.equal(await remoteCode(client.account(alice)), 'REMOTE:NOT_SUBSCRIBED');
  await client.subscribe(alice, null);
  assert.deepEqual({ ...(await client.account(alice)), sig: null }, {
    paidUntil: 0, graceMs: 0, heldCount: 0, heldBytes: 0, quotaBytes: 256 * 1024 * 1024, time: clock.now(), sig: null,
  });
  await client.createQueue(alice, q(1), { write: null, read: cap(0xb1) });
  await client.deposit(q(1), null, env(1));
  await client.deposit(q(1), null, env(2, 4096));
  const s = await client.account(alice);
  assert.deepEqual([s.heldCount, s.heldBytes], [2, 1024 + 4096]);
  // Only alice may ask, only now, and only this provider's signature is taken.
  const stale = new MailboxClient({ channel: channels[0]!, providerKey: provider.identityKey, clock: new ManualClock(clock.now() - 3_600_000), maxEnvelope: MAX });
  assert.equal(await remoteCode(stale.account(alice)), 'REMOTE:STALE');
  const wrongKey = new MailboxClient({ channel: channels[0]!, providerKey: mallory.identityKey, clock, maxEnvelope: MAX });
  assert.equal(await remoteCode(wrongKey.account(alice)), 'REMOTE:BAD_SIGNATURE', 'the request names another provider');
  service.close();

  // Priced: paid until in 5 days → that date and the grace; the chain is read again only past it.
  const tag = cap(0x77);
  let paidUntil = clock.now() + 5 * DAY;
  let reads = 0;
  connect({ paidUntil: async () => (reads++, paidUntil) });
  await client.subscribe(alice, tag);
  reads = 0;
  assert.deepEqual([(await client.account(alice)).paidUntil, (await client.account(alice)).graceMs], [paidUntil, 3 * DAY]);
  assert.equal(reads, 0, 'the remembered date covers now');
  // A day past the grace: FETCH is refused, ACCOUNT still tells alice when it lapsed.
  clock.advance(9 * DAY);
  assert.equal(await remoteCode(client.fetch(q(1), cap(0xb1))), 'REMOTE:NOT_PAID');
  const lapsed = await client.account(alice);
  assert.deepEqual([lapsed.paidUntil, lapsed.heldCount], [paidUntil, 2]);
  // Paid again: the next ACCOUNT past the recheck interval reads the new date.
  paidUntil = clock.now() + 30 * DAY;
  clock.advance(10 * 60_000);
  assert.equal((await client.account(alice)).paidUntil, paidUntil);
  assert.equal((await client.fetch(q(1), cap(0xb1))).length, 2);
  // A priced provider never says 0 (free): an account with no payment found is paid until 1.
  await client.subscribe(mallory, tag);
  paidUntil = 0;
  store.setPaidUntil(mallory.identityKey, 0);
  assert.equal((await client.account(mallory)).paidUntil, 1);
});

test('rate limit per connection; a malformed frame closes the connection with an ERROR first', async () => {
  connect({ requestsPerSecond: 1, requestBurst: 2 });
  await client.subscribe(alice, null);
  await client.createQueue(alice, q(1), { write: null, read: cap(1) });
  assert.equal(await remoteCode(client.fetch(q(1), cap(1))), 'REMOTE:RATE_LIMITED');
  const got: MailboxFrame[] = [];
  const [a] = channels;
  const raw = createMemoryPair({ clock });
  service.serve(raw[1]);
  raw[0].on('message', (b) => got.push(decodeMailboxFrame(b, MAX)));
  const closed = new Promise((r) => raw[0].on('close', r));
  raw[0].send(new Uint8Array([1, 0x04, 0, 0, 0, 1, 9]));
  await closed;
  assert.equal(got[0]?.type, 'ERROR');
  assert.equal((got[0] as { code: number }).code, MailboxErrorCode.MALFORMED);
  assert.equal(a!.state, 'open', 'other connections are untouched');
});

test('an answer sent to a provider, and a request sent to a client, are unknown types there: MALFORMED, connection closed', async () => {
  connect();
  const got: MailboxFrame[] = [];
  const toProvider = createMemoryPair({ clock });
  channels.push(...toProvider);
  service.serve(toProvider[1]);
  toProvider[0].on('message', (b) => got.push(decodeMailboxFrame(b, MAX)));
  const providerClosed = new Promise((r) => toProvider[0].on('close', r));
  toProvider[0].send(encodeMailboxFrame({ type: 'OK', id: 7 }, MAX));
  await providerClosed;
  assert.deepEqual(got.map((f) => [f.type, (f as { code?: number }).code]), [['ERROR', MailboxErrorCode.MALFORMED]]);

  // A "provider" that sends a request frame, under an id the client is not waiting for: the client
  // must not skip it as a late answer, but fail and close like for any frame that does not decode.
  const [a, b] = createMemoryPair({ clock });
  channels.push(a, b);
  const c = new MailboxClient({ channel: a, providerKey: provider.identityKey, clock, maxEnvelope: MAX });
  const pending = remoteCode(c.subscribe(alice, null));
  const clientClosed = new Promise((r) => b.on('close', r));
  b.send(encodeMailboxFrame({ type: 'FETCH', id: 999, queue: q(1), readCap: cap(1), afterSeq: 0, limit: 1 }, MAX));
  await clientClosed;
  assert.equal(await pending, 'MALFORMED');
});
